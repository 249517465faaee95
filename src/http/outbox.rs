//! The forwarding outbox over HTTP: what was delivered where, what is still being retried,
//! the dead letters, and redriving them.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::params::{Params, encode_cursor, path_id};
use super::{ApiError, AppState};
use crate::store::{OutboxQuery, Redrive};

const STATES: [&str; 3] = ["pending", "delivered", "dead"];

#[derive(Serialize, Deserialize)]
struct DeliveryCursor {
    event_id: i64,
    destination: String,
}

/// `GET /api/outbox`: deliveries, newest event first, with the count in each state.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "deliveries": deliveries,
        "counts": counts,
        "next_cursor": next_cursor,
    })))
}

/// `POST /api/outbox/{event_id}/retry`: sends an event's dead letters again.
pub async fn retry(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "event_id": id, "redriven": redriven })))
}
