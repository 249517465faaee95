//! The forwarding outbox over HTTP: what was delivered where, what is still being retried,
//! the dead letters, and redriving them.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::params::{CURSOR_DOC, LIMIT_DOC, Params, encode_cursor, path_id};
use super::{ApiError, AppState, ErrorBody};
use crate::store::{DeliveryRecord, OutboxCount, OutboxQuery, Redrive};

const STATES: [&str; 3] = ["pending", "delivered", "dead"];

#[derive(Serialize, Deserialize)]
struct DeliveryCursor {
    event_id: i64,
    destination: String,
}

/// A page of deliveries and the count in each state.
#[derive(Serialize, ToSchema)]
pub struct OutboxPage {
    /// Newest event first.
    deliveries: Vec<DeliveryRecord>,
    /// Per destination and state, over the whole outbox.
    counts: Vec<OutboxCount>,
    /// For the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// Forwarded events' deliveries, newest event first, with the count in each state.
#[utoipa::path(
    get,
    path = "/api/outbox",
    operation_id = "list_outbox",
    tag = "forwarding",
    params(
        ("state" = Option<String>, Query, pattern = "^(pending|delivered|dead)$",
            description = "`pending`, `delivered` or `dead` (dead letters)"),
        ("destination" = Option<String>, Query, description = "A destination as the outbox names \
            it: the forward URL without its secrets, or `nats:<stream>`"),
        ("limit" = Option<u32>, Query, minimum = 1, description = LIMIT_DOC),
        ("cursor" = Option<String>, Query, description = CURSOR_DOC),
    ),
    responses(
        (status = 200, description = "A page of deliveries", body = OutboxPage),
        (status = 400, description = "`bad_parameter`: a parameter that cannot be right, or an \
            unknown one; the message names it", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<OutboxPage>, ApiError> {
    let params = Params::parse(
        query.as_deref(),
        &["state", "destination", "limit", "cursor"],
    )?;
    let wanted = params.text("state");
    if let Some(wanted) = wanted.as_deref().filter(|s| !STATES.contains(s)) {
        return Err(ApiError::BadParameter {
            name: "state".into(),
            reason: format!("{wanted:?}: expected pending, delivered or dead"),
        });
    }
    let limit = params.limit()?;
    let query = OutboxQuery {
        state: wanted,
        destination: params.text("destination"),
        before: params
            .cursor::<DeliveryCursor>()?
            .map(|c| (c.event_id, c.destination)),
        limit,
    };
    let deliveries = state.store.outbox().outbox_list(&query).await?;
    let counts = state.store.outbox().outbox_counts().await?;
    let next_cursor = (deliveries.len() == limit as usize)
        .then(|| deliveries.last())
        .flatten()
        .map(|last| {
            encode_cursor(&DeliveryCursor {
                event_id: last.event_id,
                destination: last.destination.clone(),
            })
        });
    Ok(Json(OutboxPage {
        deliveries,
        counts,
        next_cursor,
    }))
}

/// What a redrive did.
#[derive(Serialize, ToSchema)]
pub struct Redriven {
    event_id: i64,
    /// Dead letters sent again (one per destination that gave up), with a fresh retry window.
    redriven: u64,
}

/// Sends an event's dead letters again, with a fresh retry window.
#[utoipa::path(
    post,
    path = "/api/outbox/{event_id}/retry",
    operation_id = "retry_dead_letters",
    tag = "forwarding",
    params(("event_id" = i64, Path, description = "The event's id (its `event_id` in the outbox)")),
    responses(
        (status = 200, description = "Redriven: a running receiver picks them up within 5 s",
            body = Redriven),
        (status = 400, description = "`bad_parameter`: the id is not an integer", body = ErrorBody),
        (status = 404, description = "`not_found`: the event has no dead letter", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be written", body = ErrorBody),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Json<Redriven>, ApiError> {
    let id = path_id("event_id", &event_id, "an event id")?;
    let redriven = state
        .store
        .outbox()
        .outbox_redrive(&Redrive::Event(id), Utc::now())
        .await?;
    if redriven == 0 {
        return Err(ApiError::NoSuch {
            what: "dead letter for event",
            id: event_id,
        });
    }
    tracing::info!(
        event_id = id,
        redriven,
        "dead letters redriven from the API"
    );
    Ok(Json(Redriven {
        event_id: id,
        redriven,
    }))
}
