//! The read-only query API over what the receiver stored. Behind `API_TOKEN` (see `auth`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::params::{CURSOR_DOC, LIMIT_DOC, Params, encode_cursor, path_id};
use super::{ApiError, AppState, ErrorBody};
use crate::callback::Trigger;
use crate::store::{
    AnalysisRecord, AnswerRecord, BatchStatusRecord, CallbackQuery, CallbackRecord,
    CapabilityRecord, ChannelStateRecord, ConsentHistoryRecord, ConsentRecord,
    ContactCapabilityRecord, ContactConsentRecord, ContactRecord, ConversationRecord,
    IdentityRecord, MessageQuery, MessageRecord, RecordNotificationRecord, SmsDeliveryRecord,
    StatusHistoryRecord,
};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A message's state and everything received about it.
#[derive(Serialize, ToSchema)]
pub struct MessageDetail {
    /// With `redacted_at` once Smart Conversations redacted it.
    message: MessageRecord,
    /// Every delivery report, whether or not it became current.
    history: Vec<StatusHistoryRecord>,
    /// Its Smart Conversations analyses.
    analyses: Vec<AnalysisRecord>,
    /// Its record notifications.
    records: Vec<RecordNotificationRecord>,
}

/// A message: its current state and every report received.
#[utoipa::path(
    get,
    path = "/api/messages/{id}",
    tag = "query",
    params(("id" = String, Path, description = "The message id", example = "01HMSGOUT0000000000000000B")),
    responses(
        (status = 200, description = "The message and its history", body = MessageDetail),
        (status = 404, description = "`not_found`: no such message", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn message(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<MessageDetail> {
    let message = state.store.queries().message(&id).await?;
    let Some(message) = message else {
        return Err(ApiError::NoSuch {
            what: "message",
            id,
        });
    };
    let history = state.store.queries().message_history(&id).await?;
    let (analyses, records) = state.store.queries().message_extras(&id).await?;
    Ok(Json(MessageDetail {
        message,
        history,
        analyses,
        records,
    }))
}

#[derive(Serialize, Deserialize)]
struct MessageCursor {
    created_at: DateTime<Utc>,
    message_id: String,
}

/// A page of messages, newest first.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    messages: Vec<MessageRecord>,
    /// For the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// Messages, newest first, filtered.
///
/// Keyset-paginated: a page never repeats or skips rows because others were inserted
/// meanwhile.
#[utoipa::path(
    get,
    path = "/api/messages",
    tag = "query",
    params(
        ("status" = Option<String>, Query, description = "Current status, e.g. `FAILED`"),
        ("direction" = Option<String>, Query, pattern = "^(inbound|outbound)$",
            description = "`inbound` or `outbound`"),
        ("channel" = Option<String>, Query, description = "e.g. `WHATSAPP`"),
        ("since" = Option<DateTime<Utc>>, Query,
            description = "First seen at or after this time (RFC 3339)"),
        ("until" = Option<DateTime<Utc>>, Query,
            description = "First seen before this time (RFC 3339)"),
        ("limit" = Option<u32>, Query, minimum = 1, description = LIMIT_DOC),
        ("cursor" = Option<String>, Query, description = CURSOR_DOC),
    ),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 400, description = "`bad_parameter`: a parameter that cannot be right, or an \
            unknown one; the message names it", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn messages(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<MessagePage> {
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
    Ok(Json(MessagePage {
        messages,
        next_cursor,
    }))
}

#[derive(Serialize, Deserialize)]
struct CallbackCursor {
    before_id: i64,
}

/// A page of journaled callbacks, newest first.
#[derive(Serialize, ToSchema)]
pub struct CallbackPage {
    callbacks: Vec<CallbackRecord>,
    /// For the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// The journal: every acknowledged callback, newest first.
///
/// Raw bodies included, keyset-paginated.
#[utoipa::path(
    get,
    path = "/api/callbacks",
    tag = "query",
    params(
        ("trigger" = Option<String>, Query, description = "e.g. `MESSAGE_DELIVERY`, `OPT_OUT`"),
        ("source" = Option<String>, Query, description = "The source it came in on, e.g. `default`"),
        ("since" = Option<DateTime<Utc>>, Query,
            description = "Received at or after this time (RFC 3339)"),
        ("processed" = Option<bool>, Query, description = "`true` or `false`"),
        ("limit" = Option<u32>, Query, minimum = 1, description = LIMIT_DOC),
        ("cursor" = Option<String>, Query, description = CURSOR_DOC),
    ),
    responses(
        (status = 200, description = "A page of callbacks: every acknowledged one, including \
            those still in SQLite's spool (`processed_at` null, `attempts` 0)", body = CallbackPage),
        (status = 400, description = "`bad_parameter`: a parameter that cannot be right, or an \
            unknown one; the message names it", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn callbacks(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<CallbackPage> {
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
    Ok(Json(CallbackPage {
        callbacks,
        next_cursor,
    }))
}

/// One journaled callback.
#[derive(Serialize, ToSchema)]
pub struct CallbackDetail {
    /// With the `source` it came in on and the `secret_label` of the credential that
    /// authenticated it (`nonce` is empty and `signature_timestamp` the time of receipt for
    /// sources that do not sign).
    callback: CallbackRecord,
    /// For a callback Sinch waited on (ICE, ACE, PIE, a verification request): the answer
    /// it was given, where it came from, and how long deciding took.
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<AnswerRecord>,
}

/// One journaled callback with its processing state.
#[utoipa::path(
    get,
    path = "/api/callbacks/{id}",
    tag = "query",
    params(("id" = i64, Path, description = "The callback id (the webhook's `callback_id`)")),
    responses(
        (status = 200, description = "The callback, raw body included", body = CallbackDetail),
        (status = 400, description = "`bad_parameter`: the id is not an integer", body = ErrorBody),
        (status = 404, description = "`not_found`: no such callback", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<CallbackDetail> {
    let number = path_id("id", &id, "a callback id")?;
    match state.store.queries().callback(number).await? {
        Some(callback) => {
            let answer = match Trigger::parse(&callback.trigger).awaits_answer() {
                true => {
                    state
                        .store
                        .answers()
                        .answer_for(&callback.dedupe_key)
                        .await?
                }
                false => None,
            };
            Ok(Json(CallbackDetail { callback, answer }))
        }
        None => Err(ApiError::NoSuch {
            what: "callback",
            id,
        }),
    }
}

/// Whether an identity may be messaged on a channel, and why.
#[derive(Serialize, ToSchema)]
pub struct ConsentView {
    channel: String,
    identity: String,
    /// True only when the latest successful consent change was an opt-in.
    may_message: bool,
    /// The latest successful change: `true` opted in, `false` opted out, `null` never.
    consented: Option<bool>,
    consent: Option<ConsentRecord>,
    /// The latest capability check.
    capability: Option<CapabilityRecord>,
    /// Every opt-in and opt-out notification, successful or not.
    history: Vec<ConsentHistoryRecord>,
}

/// May this identity be messaged on this channel?
///
/// `may_message` is true only when the latest successful consent change was an opt-in.
#[utoipa::path(
    get,
    path = "/api/consents/{channel}/{identity}",
    tag = "query",
    params(
        ("channel" = String, Path, description = "e.g. `WHATSAPP`"),
        ("identity" = String, Path, description = "The identity on that channel, e.g. a phone number"),
    ),
    responses(
        (status = 200, description = "The consent state; an identity nothing is known of \
            is answered too (it never consented)", body = ConsentView),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn consent(
    State(state): State<AppState>,
    Path((channel, identity)): Path<(String, String)>,
) -> ApiResult<ConsentView> {
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
    Ok(Json(ConsentView {
        channel,
        identity,
        may_message: consented == Some(true),
        consented,
        consent,
        capability,
        history,
    }))
}

/// A contact: its identities, conversations, consents and capability checks.
///
/// The consents and capability checks kept by contact are from notifications that named this
/// contact and no identity. Known from those alone, a contact is shown with `contact: null`.
#[utoipa::path(
    get,
    path = "/api/contacts/{id}",
    tag = "query",
    params(("id" = String, Path, description = "The Conversation contact id")),
    responses(
        (status = 200, description = "The contact and what is kept by it", body = ContactView),
        (status = 404, description = "`not_found`: nothing is known of this contact", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn contact(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<ContactView> {
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
    Ok(Json(ContactView {
        contact,
        identities,
        conversations,
        consents,
        capabilities,
    }))
}

/// A contact, its identities and conversations, and the consents and capability checks kept
/// by contact.
#[derive(Serialize, ToSchema)]
pub struct ContactView {
    /// `null` for a contact known only from consents or capability checks that named it.
    contact: Option<ContactRecord>,
    identities: Vec<IdentityRecord>,
    conversations: Vec<ConversationRecord>,
    /// Opt-ins and opt-outs that named the contact but no identity.
    consents: Vec<ContactConsentRecord>,
    /// Capability checks that named the contact but no identity.
    capabilities: Vec<ContactCapabilityRecord>,
}

/// How many of a channel's events `GET /api/channels/{channel}` lists.
const CHANNEL_HISTORY: u32 = 100;

/// A channel's state and latest events (CHANNEL_EVENT).
///
/// Its state is its newest event of each type per app: WhatsApp quality rating, number
/// status, ...
#[utoipa::path(
    get,
    path = "/api/channels/{channel}",
    tag = "query",
    params(("channel" = String, Path, description = "e.g. `WHATSAPP`")),
    responses(
        (status = 200, description = "The channel's state and events (CHANNEL_EVENT)", body = ChannelView),
        (status = 404, description = "`not_found`: no event of this channel was received", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn channel(
    State(state): State<AppState>,
    Path(channel): Path<String>,
) -> ApiResult<ChannelView> {
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
    Ok(Json(ChannelView {
        channel,
        latest,
        history,
    }))
}

/// A channel's state, from its CHANNEL_EVENT callbacks.
#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    channel: String,
    /// The newest event of each type per app.
    latest: Vec<ChannelStateRecord>,
    /// The channel's last 100 events, newest first.
    history: Vec<ChannelStateRecord>,
}

/// A Conversation Batch API batch: its state and every report.
///
/// Its state is its newest status report.
#[utoipa::path(
    get,
    path = "/api/batches/{batch_id}",
    tag = "query",
    params(("batch_id" = String, Path, description = "The Conversation Batch API batch id")),
    responses(
        (status = 200, description = "The batch's state and its reports", body = BatchView),
        (status = 404, description = "`not_found`: no report of this batch was received", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn batch(
    State(state): State<AppState>,
    Path(batch_id): Path<String>,
) -> ApiResult<BatchView> {
    let (current, history) = state.store.queries().batch_status(&batch_id).await?;
    let Some(current) = current else {
        return Err(ApiError::NoSuch {
            what: "batch",
            id: batch_id,
        });
    };
    Ok(Json(BatchView {
        batch: current,
        history,
    }))
}

/// A Conversation Batch API batch.
#[derive(Serialize, ToSchema)]
pub struct BatchView {
    /// Its newest status report.
    batch: BatchStatusRecord,
    /// Every report, newest first.
    history: Vec<BatchStatusRecord>,
}

/// An SMS batch: its summary and each recipient's status.
#[utoipa::path(
    get,
    path = "/api/sms/batches/{batch_id}",
    tag = "query",
    params(("batch_id" = String, Path, description = "The SMS batch id")),
    responses(
        (status = 200, description = "The batch summary and each recipient's status", body = SmsBatchView),
        (status = 404, description = "`not_found`: no report of this batch was received", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn sms_batch(
    State(state): State<AppState>,
    Path(batch_id): Path<String>,
) -> ApiResult<SmsBatchView> {
    let batch = state.store.queries().sms_batch(&batch_id).await?;
    let recipients = state.store.queries().sms_deliveries(&batch_id).await?;
    if batch.is_none() && recipients.is_empty() {
        return Err(ApiError::NoSuch {
            what: "SMS batch",
            id: batch_id,
        });
    }
    let summary = batch.map(|b| SmsBatchSummary {
        statuses: serde_json::from_str(&b.statuses).unwrap_or(Value::Null),
        kind: b.kind,
        total_message_count: b.total_message_count,
        client_reference: b.client_reference,
        updated_at: b.updated_at,
    });
    Ok(Json(SmsBatchView {
        batch_id,
        summary,
        recipients,
    }))
}

/// An SMS batch: its latest batch report and each recipient's status.
#[derive(Serialize, ToSchema)]
pub struct SmsBatchView {
    batch_id: String,
    /// `null` until a batch report arrived.
    summary: Option<SmsBatchSummary>,
    recipients: Vec<SmsDeliveryRecord>,
}

/// The latest batch delivery report.
#[derive(Serialize, ToSchema)]
pub struct SmsBatchSummary {
    kind: String,
    total_message_count: Option<i64>,
    /// As Sinch sent it: `[{code, count, recipients, status}]`.
    statuses: Value,
    client_reference: Option<String>,
    updated_at: DateTime<Utc>,
}
