//! The read-only query API over what the receiver stored. Behind `API_TOKEN` (see `auth`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::params::{Params, encode_cursor, path_id};
use super::{ApiError, AppState};
use crate::store::{CallbackQuery, MessageQuery};

type ApiResult = Result<Json<Value>, ApiError>;

/// `GET /api/messages/{id}`: current state and every report received.
pub async fn message(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let message = state.store.queries().message(&id).await?;
    let Some(message) = message else {
        return Err(ApiError::NoSuch {
            what: "message",
            id,
        });
    };
    let history = state.store.queries().message_history(&id).await?;
    let (analyses, records) = state.store.queries().message_extras(&id).await?;
    Ok(Json(json!({
        "message": message,
        "history": history,
        "analyses": analyses,
        "records": records,
    })))
}

#[derive(Serialize, Deserialize)]
struct MessageCursor {
    created_at: DateTime<Utc>,
    message_id: String,
}

/// `GET /api/messages`: newest first, keyset-paginated (a page never repeats or skips rows
/// because others were inserted meanwhile).
pub async fn messages(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult {
    let params = Params::parse(
        query.as_deref(),
        &[
            "status",
            "direction",
            "channel",
            "since",
            "until",
            "limit",
            "cursor",
        ],
    )?;
    if let Some(direction) = params.text("direction")
        && direction != "inbound"
        && direction != "outbound"
    {
        return Err(ApiError::BadParameter {
            name: "direction".into(),
            reason: "expected inbound or outbound".into(),
        });
    }
    let limit = params.limit()?;
    let query = MessageQuery {
        status: params.text("status"),
        direction: params.text("direction"),
        channel: params.text("channel"),
        since: params.time("since")?,
        until: params.time("until")?,
        after: params
            .cursor::<MessageCursor>()?
            .map(|c| (c.created_at, c.message_id)),
        limit,
    };
    let messages = state.store.queries().messages(&query).await?;
    let next_cursor = (messages.len() == limit as usize)
        .then(|| messages.last())
        .flatten()
        .map(|last| {
            encode_cursor(&MessageCursor {
                created_at: last.created_at,
                message_id: last.message_id.clone(),
            })
        });
    Ok(Json(
        json!({ "messages": messages, "next_cursor": next_cursor }),
    ))
}

#[derive(Serialize, Deserialize)]
struct CallbackCursor {
    before_id: i64,
}

/// `GET /api/callbacks`: the journal, newest first, raw bodies included.
pub async fn callbacks(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult {
    let params = Params::parse(
        query.as_deref(),
        &["trigger", "source", "since", "processed", "limit", "cursor"],
    )?;
    let limit = params.limit()?;
    let query = CallbackQuery {
        trigger: params.text("trigger"),
        source: params.text("source"),
        since: params.time("since")?,
        processed: params.boolean("processed")?,
        before_id: params.cursor::<CallbackCursor>()?.map(|c| c.before_id),
        limit,
    };
    let callbacks = state.store.queries().callbacks(&query).await?;
    let next_cursor = (callbacks.len() == limit as usize)
        .then(|| callbacks.last())
        .flatten()
        .map(|last| encode_cursor(&CallbackCursor { before_id: last.id }));
    Ok(Json(
        json!({ "callbacks": callbacks, "next_cursor": next_cursor }),
    ))
}

/// `GET /api/callbacks/{id}`: one journaled callback with its processing state.
pub async fn callback(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let number = path_id("id", &id, "a callback id")?;
    match state.store.queries().callback(number).await? {
        Some(callback) => Ok(Json(json!({ "callback": callback }))),
        None => Err(ApiError::NoSuch {
            what: "callback",
            id,
        }),
    }
}

/// `GET /api/consents/{channel}/{identity}`: may this identity be messaged on this channel?
/// `may_message` is true only when the latest successful consent change was an opt-in.
pub async fn consent(
    State(state): State<AppState>,
    Path((channel, identity)): Path<(String, String)>,
) -> ApiResult {
    let consent = state.store.queries().consent(&channel, &identity).await?;
    let capability = state
        .store
        .queries()
        .capability(&channel, &identity)
        .await?;
    let history = state
        .store
        .queries()
        .consent_history(&channel, &identity)
        .await?;
    let consented = consent.as_ref().and_then(|c| c.consented);
    Ok(Json(json!({
        "channel": channel,
        "identity": identity,
        "may_message": consented == Some(true),
        "consented": consented,
        "consent": consent,
        "capability": capability,
        "history": history,
    })))
}

/// `GET /api/contacts/{id}`: the contact, its identities and conversations, and the consents
/// and capability checks kept by contact (notifications that named this contact and no
/// identity). Known from those alone, a contact is shown with `contact: null`.
pub async fn contact(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let queries = state.store.queries();
    let contact = queries.contact(&id).await?;
    let consents = queries.contact_consents(&id).await?;
    let capabilities = queries.contact_capabilities(&id).await?;
    if contact.is_none() && consents.is_empty() && capabilities.is_empty() {
        return Err(ApiError::NoSuch {
            what: "contact",
            id,
        });
    }
    let identities = queries.contact_identities(&id).await?;
    let conversations = queries.contact_conversations(&id).await?;
    Ok(Json(json!({
        "contact": contact,
        "identities": identities,
        "conversations": conversations,
        "consents": consents,
        "capabilities": capabilities,
    })))
}

/// How many of a channel's events `GET /api/channels/{channel}` lists.
const CHANNEL_HISTORY: u32 = 100;

/// `GET /api/channels/{channel}`: the channel's newest event of each type per app (its
/// state: WhatsApp quality rating, number status, ...) and its latest events.
pub async fn channel(State(state): State<AppState>, Path(channel): Path<String>) -> ApiResult {
    let (latest, history) = state
        .store
        .queries()
        .channel_events(&channel, CHANNEL_HISTORY)
        .await?;
    if latest.is_empty() {
        return Err(ApiError::NoSuch {
            what: "channel event",
            id: channel,
        });
    }
    Ok(Json(json!({
        "channel": channel,
        "latest": latest,
        "history": history,
    })))
}

/// `GET /api/batches/{batch_id}`: a Conversation Batch API batch's state (its newest status
/// report) and every report received.
pub async fn batch(State(state): State<AppState>, Path(batch_id): Path<String>) -> ApiResult {
    let (current, history) = state.store.queries().batch_status(&batch_id).await?;
    let Some(current) = current else {
        return Err(ApiError::NoSuch {
            what: "batch",
            id: batch_id,
        });
    };
    Ok(Json(json!({ "batch": current, "history": history })))
}

/// `GET /api/sms/batches/{batch_id}`: the batch summary and each recipient's status.
pub async fn sms_batch(State(state): State<AppState>, Path(batch_id): Path<String>) -> ApiResult {
    let batch = state.store.queries().sms_batch(&batch_id).await?;
    let recipients = state.store.queries().sms_deliveries(&batch_id).await?;
    if batch.is_none() && recipients.is_empty() {
        return Err(ApiError::NoSuch {
            what: "SMS batch",
            id: batch_id,
        });
    }
    let summary = batch.map(|b| {
        let statuses: Value = serde_json::from_str(&b.statuses).unwrap_or(Value::Null);
        json!({
            "kind": b.kind,
            "total_message_count": b.total_message_count,
            "statuses": statuses,
            "client_reference": b.client_reference,
            "updated_at": b.updated_at,
        })
    });
    Ok(Json(json!({
        "batch_id": batch_id,
        "summary": summary,
        "recipients": recipients,
    })))
}
