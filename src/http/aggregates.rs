//! The query API's Voice calls, Verifications and Numbers resources: one of each with its
//! timeline or history, and lists of their summaries. Behind `API_TOKEN` (see `auth`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::params::{CURSOR_DOC, LIMIT_DOC, Params, encode_cursor};
use super::{ApiError, AppState, ErrorBody};
use crate::callback::family::Money;
use crate::domain::call::CallEntry;
use crate::domain::number::NumberState;
use crate::domain::verification::VerificationEntry;
use crate::store::{
    AnswerRecord, CallQuery, CallRecord, NumberQuery, NumberRecord, VerificationQuery,
    VerificationRecord,
};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A Voice call: its summary, what it cost and every event.
#[derive(Serialize, ToSchema)]
pub struct CallView {
    call: CallRecord,
    /// What Sinch charged (the DiCE's `debit`): `{"currencyId", "amount"}`.
    #[schema(value_type = Option<Object>)]
    cost: Option<Money>,
    /// Every event by its own time (its arrival when it has none), whether or not it moved
    /// the call's progress.
    timeline: Vec<CallEntry>,
    /// The answers given to its ICE, ACE and PIEs, oldest first: the SVAML, where it came
    /// from and why.
    answers: Vec<AnswerRecord>,
}

/// The most answers a view lists: a call's menus are rarely more than a few dozen.
const MAX_ANSWERS: u32 = 200;

/// A Voice call and its timeline.
#[utoipa::path(
    get,
    path = "/api/calls/{callid}",
    tag = "query",
    params(("callid" = String, Path, description = "The call's `callid`")),
    responses(
        (status = 200, description = "The call and its timeline", body = CallView),
        (status = 404, description = "`not_found`: no callback about this call was processed", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn call(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<CallView> {
    let Some((call, whole)) = state.store.queries().call(&id).await? else {
        return Err(ApiError::NoSuch { what: "call", id });
    };
    let answers = state
        .store
        .answers()
        .answers_given(&id, MAX_ANSWERS)
        .await?;
    Ok(Json(CallView {
        call,
        cost: whole.cost,
        timeline: whole.timeline,
        answers,
    }))
}

/// A page of calls, newest first.
#[derive(Serialize, ToSchema)]
pub struct CallPage {
    calls: Vec<CallRecord>,
    /// For the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// Calls, newest first (by when the receiver first heard of each), filtered.
#[utoipa::path(
    get,
    path = "/api/calls",
    tag = "query",
    params(
        ("progress" = Option<String>, Query, pattern = "^(incoming|answered|ended)$",
            description = "`incoming`, `answered` or `ended`"),
        ("result" = Option<String>, Query, description = "How it ended, e.g. `BUSY`"),
        ("direction" = Option<String>, Query, pattern = "^(inbound|outbound)$",
            description = "`inbound` or `outbound`"),
        ("from" = Option<String>, Query, description = "The caller"),
        ("to" = Option<String>, Query, description = "The callee"),
        ("since" = Option<DateTime<Utc>>, Query,
            description = "First heard of at or after this time (RFC 3339)"),
        ("limit" = Option<u32>, Query, minimum = 1, description = LIMIT_DOC),
        ("cursor" = Option<String>, Query, description = CURSOR_DOC),
    ),
    responses(
        (status = 200, description = "A page of calls", body = CallPage),
        (status = 400, description = "`bad_parameter`: a parameter that cannot be right, or an \
            unknown one; the message names it", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn calls(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<CallPage> {
    let names = [
        "progress",
        "result",
        "direction",
        "from",
        "to",
        "since",
        "limit",
        "cursor",
    ];
    let params = Params::parse(query.as_deref(), &names)?;
    let query = CallQuery {
        progress: params.one_of("progress", &["incoming", "answered", "ended"])?,
        result: params.text("result"),
        direction: params.one_of("direction", &["inbound", "outbound"])?,
        from: params.text("from"),
        to: params.text("to"),
        since: params.time("since")?,
        after: after(&params)?,
        limit: params.limit()?,
    };
    let calls = state.store.queries().calls(&query).await?;
    let next_cursor = next(&calls, query.limit, |c| (c.created_at, &c.call_id));
    Ok(Json(CallPage { calls, next_cursor }))
}

/// A verification: its summary and every event.
#[derive(Serialize, ToSchema)]
pub struct VerificationView {
    verification: VerificationRecord,
    /// Every event in arrival order (verification callbacks carry no time).
    timeline: Vec<VerificationEntry>,
    /// The answer given to its request (allow or deny), where it came from and why.
    answers: Vec<AnswerRecord>,
}

/// A verification and its timeline.
#[utoipa::path(
    get,
    path = "/api/verifications/{id}",
    tag = "query",
    params(("id" = String, Path, description = "The verification's `id`")),
    responses(
        (status = 200, description = "The verification and its timeline", body = VerificationView),
        (status = 404, description = "`not_found`: no callback about this verification was processed", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn verification(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<VerificationView> {
    let Some((verification, whole)) = state.store.queries().verification(&id).await? else {
        return Err(ApiError::NoSuch {
            what: "verification",
            id,
        });
    };
    let answers = state
        .store
        .answers()
        .answers_given(&id, MAX_ANSWERS)
        .await?;
    Ok(Json(VerificationView {
        verification,
        timeline: whole.timeline,
        answers,
    }))
}

/// A page of verifications, newest first.
#[derive(Serialize, ToSchema)]
pub struct VerificationPage {
    verifications: Vec<VerificationRecord>,
    /// For the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// Verifications, newest first, filtered.
#[utoipa::path(
    get,
    path = "/api/verifications",
    tag = "query",
    params(
        ("status" = Option<String>, Query, description = "e.g. `PENDING`, `SUCCESSFUL`, `FAIL`"),
        ("method" = Option<String>, Query, description = "e.g. `sms`, `flashcall`"),
        ("identity" = Option<String>, Query, description = "The phone number verified"),
        ("limit" = Option<u32>, Query, minimum = 1, description = LIMIT_DOC),
        ("cursor" = Option<String>, Query, description = CURSOR_DOC),
    ),
    responses(
        (status = 200, description = "A page of verifications", body = VerificationPage),
        (status = 400, description = "`bad_parameter`: a parameter that cannot be right, or an \
            unknown one; the message names it", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn verifications(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<VerificationPage> {
    let names = ["status", "method", "identity", "limit", "cursor"];
    let params = Params::parse(query.as_deref(), &names)?;
    let query = VerificationQuery {
        status: params.text("status"),
        method: params.text("method"),
        identity: params.text("identity"),
        after: after(&params)?,
        limit: params.limit()?,
    };
    let verifications = state.store.queries().verifications(&query).await?;
    let next_cursor = next(&verifications, query.limit, |v| (v.created_at, &v.id));
    Ok(Json(VerificationPage {
        verifications,
        next_cursor,
    }))
}

/// A Numbers resource: its latest state and every event.
#[derive(Serialize, ToSchema)]
pub struct NumberView {
    number: NumberRecord,
    /// Every event, the latest included, oldest first by its own time.
    history: Vec<NumberState>,
}

/// A Numbers resource (a phone number, an order): its latest state and history.
///
/// Its latest state is its newest event by Sinch's time: an older event arriving late is
/// kept in the history only.
#[utoipa::path(
    get,
    path = "/api/numbers/{number}",
    tag = "query",
    params(("number" = String, Path, description = "The event's `resourceId`: a phone \
        number in E.164 (`+` encoded as `%2B`), or an order's id", example = "+17818510001")),
    responses(
        (status = 200, description = "The resource's latest state and history", body = NumberView),
        (status = 404, description = "`not_found`: no event about this resource was processed", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn number(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<NumberView> {
    let Some((number, whole)) = state.store.queries().number(&id).await? else {
        return Err(ApiError::NoSuch {
            what: "Numbers resource",
            id,
        });
    };
    Ok(Json(NumberView {
        number,
        history: whole.history,
    }))
}

/// A page of Numbers resources, newest first.
#[derive(Serialize, ToSchema)]
pub struct NumberPage {
    numbers: Vec<NumberRecord>,
    /// For the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// Numbers resources, newest first, filtered by their latest event.
#[utoipa::path(
    get,
    path = "/api/numbers",
    tag = "query",
    params(
        ("event_type" = Option<String>, Query,
            description = "The latest event's type, e.g. `PROVISIONING_TO_SMS_PLATFORM`"),
        ("status" = Option<String>, Query, description = "The latest event's status, e.g. `FAILED`"),
        ("limit" = Option<u32>, Query, minimum = 1, description = LIMIT_DOC),
        ("cursor" = Option<String>, Query, description = CURSOR_DOC),
    ),
    responses(
        (status = 200, description = "A page of Numbers resources", body = NumberPage),
        (status = 400, description = "`bad_parameter`: a parameter that cannot be right, or an \
            unknown one; the message names it", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the database could not be read", body = ErrorBody),
    )
)]
pub async fn numbers(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<NumberPage> {
    let names = ["event_type", "status", "limit", "cursor"];
    let params = Params::parse(query.as_deref(), &names)?;
    let query = NumberQuery {
        // Stored as Sinch's types are read: upper-cased.
        event_type: params.text("event_type").map(|t| t.to_ascii_uppercase()),
        status: params.text("status"),
        after: after(&params)?,
        limit: params.limit()?,
    };
    let numbers = state.store.queries().numbers(&query).await?;
    let next_cursor = next(&numbers, query.limit, |n| (n.created_at, &n.resource_id));
    Ok(Json(NumberPage {
        numbers,
        next_cursor,
    }))
}

/// Where a page of these lists ended: when the receiver first heard of the row, and its key.
#[derive(Serialize, Deserialize)]
struct Position {
    created_at: DateTime<Utc>,
    id: String,
}

fn after(params: &Params) -> Result<Option<(DateTime<Utc>, String)>, ApiError> {
    Ok(params.cursor::<Position>()?.map(|p| (p.created_at, p.id)))
}

/// The cursor of the next page: `None` when this one was not full.
fn next<R>(
    rows: &[R],
    limit: u32,
    position: impl Fn(&R) -> (DateTime<Utc>, &String),
) -> Option<String> {
    let last = rows.last().filter(|_| rows.len() == limit as usize)?;
    let (created_at, id) = position(last);
    Some(encode_cursor(&Position {
        created_at,
        id: id.clone(),
    }))
}
