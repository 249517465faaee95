//! `GET /metrics`: Prometheus text format.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::{ApiError, AppState};
use crate::metrics::{BACKLOG, OLDEST_UNPROCESSED_SECONDS, OUTBOX_DELIVERIES};

/// Metrics, in Prometheus text format.
///
/// Callbacks by source, trigger and outcome, rejections by reason, ack latency, backlog,
/// forwarding and more. When `METRICS_ADDR` is set they are served there, on a port of
/// their own, and not here.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4",
            body = String),
        (status = 404, description = "`not_found`: no metrics recorder could be installed",
            body = super::error::ErrorBody),
    )
)]
pub async fn render(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.metrics else {
        return ApiError::NotFound.into_response();
    };
    // The backlog lives in the database: read it at scrape time, so it is right whichever
    // replica processed what.
    match state.store.queries().backlog().await {
        Ok((count, oldest)) => {
            ::metrics::gauge!(BACKLOG).set(count as f64);
            let age = oldest.map_or(0.0, |t| {
                (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
            });
            ::metrics::gauge!(OLDEST_UNPROCESSED_SECONDS).set(age);
        }
        Err(error) => tracing::warn!(%error, "metrics: could not read the backlog"),
    }
    match state.store.outbox().outbox_counts().await {
        Ok(counts) => {
            // Every state of every destination, zero included: a gauge only set when it has
            // rows would keep its last value (a dead-letter alert would never clear).
            let mut destinations: Vec<&str> =
                counts.iter().map(|c| c.destination.as_str()).collect();
            destinations.dedup();
            for destination in destinations {
                for state in ["pending", "delivered", "dead"] {
                    let count = counts
                        .iter()
                        .find(|c| c.destination == destination && c.state == state)
                        .map_or(0, |c| c.count);
                    ::metrics::gauge!(OUTBOX_DELIVERIES, "destination" => destination.to_owned(), "state" => state)
                        .set(count as f64);
                }
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: could not read the outbox"),
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}
