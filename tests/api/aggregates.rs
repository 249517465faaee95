//! Voice calls, Verifications and Numbers resources on both backends: each callback is a
//! step of its aggregate, order is kept by the domain rules whatever the arrival order,
//! replays change nothing, and a stored aggregate that cannot be read back is reported.

use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use serde_json::{Value, json};
use sinch_webhooks::callback::application::classify_application;
use sinch_webhooks::callback::family::OpenName;
use sinch_webhooks::callback::{Api, classify};
use sinch_webhooks::dispatch::process_due;
use sinch_webhooks::replay::{ReplaySelection, replay};
use sinch_webhooks::store::{
    CallQuery, NewCallback, NumberQuery, Origin, Store, StoreError, VerificationQuery,
};

use crate::contract::{Backend, postgres_store, sqlite_store};
use crate::helpers::fixture;

contract!(a_late_ace_never_reopens_a_call_that_dice_closed);
contract!(a_pending_result_after_a_final_one_does_not_change_the_result);
contract!(an_older_numbers_event_goes_to_history_and_not_to_the_latest_state);
contract!(replaying_every_call_verification_and_numbers_callback_changes_nothing);
contract!(the_lists_filter_on_the_summary_and_page_without_repeating);

/// The journal entry Sinch's callback would make: Numbers bodies are classified as the
/// webhook classifies them, Voice and Verification ones as an application's source does.
pub fn entry(body: &str) -> NewCallback {
    let numbers = classify(body.as_bytes()).unwrap();
    let classification = if numbers.api == Api::Numbers {
        numbers
    } else {
        classify_application(body.as_bytes()).unwrap()
    };
    let now = Utc::now();
    let origin = Origin {
        source: "test".into(),
        secret_label: None,
        nonce: ulid::Ulid::new().to_string(),
        signature_timestamp: now.timestamp(),
    };
    NewCallback::new(classification, body.to_owned(), origin, now)
}

/// Journals and processes each body in turn; the callback ids.
pub async fn ingest(store: &dyn Store, bodies: &[String]) -> Vec<i64> {
    let mut ids = Vec::new();
    for body in bodies {
        let outcome = store.journal(vec![entry(body)]).await.unwrap();
        if let sinch_webhooks::store::JournalOutcome::Accepted { id } = outcome[0] {
            ids.push(id);
        }
        while process_due(store).await.unwrap() > 0 {}
    }
    ids
}

pub fn voice(event: &str, call: &str, second: u32, extra: Value) -> String {
    let mut body = json!({
        "event": event, "callid": call, "timestamp": format!("2025-03-04T12:00:{second:02}Z"),
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body.to_string()
}

pub fn verification(event: &str, id: &str, extra: Value) -> String {
    let mut body = json!({
        "event": event, "id": id, "method": "sms",
        "identity": {"type": "number", "endpoint": "+46700000001"}, "reference": "r-1",
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body.to_string()
}

pub fn numbers(event_id: &str, resource: &str, at: &str, event_type: &str, status: &str) -> String {
    json!({
        "eventId": event_id, "timestamp": at, "projectId": "p-1", "resourceId": resource,
        "resourceType": "ACTIVE_NUMBER", "eventType": event_type, "status": status,
        "failureCode": null,
    })
    .to_string()
}

/// An inbound call: ICE, DiCE, then an ACE that Sinch sent before the DiCE but that
/// arrived after it.
pub fn call_bodies(call: &str) -> Vec<String> {
    let dice = json!({"result": "ANSWERED", "reason": "CALLERHANGUP", "duration": 4,
        "debit": {"currencyId": "EUR", "amount": 0.02}, "from": "private"});
    vec![
        voice(
            "ice",
            call,
            1,
            json!({"cli": "+46701", "to": {"type": "number", "endpoint": "+46709"}}),
        ),
        voice("dice", call, 5, dice),
        voice("ace", call, 2, json!({})),
    ]
}

async fn event_kinds(store: &dyn Store, kind: &str) -> Vec<Value> {
    let events = store.queries().events_after(0, 1000).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| serde_json::from_str(&e.payload).unwrap())
        .collect()
}

async fn a_late_ace_never_reopens_a_call_that_dice_closed(store: Arc<dyn Store>) {
    ingest(store.as_ref(), &call_bodies("c-1")).await;
    let (record, call) = store.queries().call("c-1").await.unwrap().unwrap();
    assert_eq!(
        (record.progress.as_deref(), record.direction.as_deref()),
        (Some("ended"), Some("inbound"))
    );
    assert_eq!(
        (record.from.as_deref(), record.to.as_deref()),
        (Some("+46701"), Some("+46709")),
        "the ICE says who called whom, not the DiCE"
    );
    assert_eq!(
        (
            record.result.as_deref(),
            record.reason.as_deref(),
            record.duration
        ),
        (Some("ANSWERED"), Some("CALLERHANGUP"), Some(4))
    );
    let order: Vec<&str> = call.timeline.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(order, ["ice", "ace", "dice"], "by the events' own times");
    assert_eq!(
        (record.first_event_at, record.last_event_at),
        (
            call.timeline.first().map(|e| e.at),
            call.timeline.last().map(|e| e.at)
        )
    );
    let events = event_kinds(store.as_ref(), "call").await;
    let progress: Vec<(&str, &str, bool)> = events
        .iter()
        .map(|e| {
            let event = e["event"].as_str().unwrap();
            (
                event,
                e["progress"].as_str().unwrap(),
                e["advanced"] == true,
            )
        })
        .collect();
    assert_eq!(
        progress,
        [
            ("ice", "incoming", true),
            ("dice", "ended", true),
            ("ace", "ended", false)
        ]
    );
    assert_eq!(events[2]["cost"]["currencyId"], "EUR");
}

async fn a_pending_result_after_a_final_one_does_not_change_the_result(store: Arc<dyn Store>) {
    let result = "VerificationResultEvent";
    let bodies = [
        verification("VerificationRequestEvent", "v-1", json!({})),
        verification(
            result,
            "v-1",
            json!({"status": "SUCCESSFUL", "source": "intercepted"}),
        ),
        verification(result, "v-1", json!({"status": "PENDING"})),
    ];
    ingest(store.as_ref(), &bodies).await;
    let (record, whole) = store.queries().verification("v-1").await.unwrap().unwrap();
    assert_eq!(
        (record.status.as_deref(), record.result_status.as_deref()),
        (Some("SUCCESSFUL"), Some("SUCCESSFUL"))
    );
    assert_eq!(record.result_source.as_deref(), Some("intercepted"));
    assert_eq!(
        (record.method.as_deref(), record.identity.as_deref()),
        (Some("sms"), Some("+46700000001"))
    );
    assert_eq!(
        whole.timeline.len(),
        3,
        "the late PENDING is in the timeline"
    );
    let events = event_kinds(store.as_ref(), "verification").await;
    let statuses: Vec<(&str, bool)> = events
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["decided"] == true))
        .collect();
    assert_eq!(
        statuses,
        [
            ("PENDING", false),
            ("SUCCESSFUL", true),
            ("SUCCESSFUL", false)
        ]
    );
}

async fn an_older_numbers_event_goes_to_history_and_not_to_the_latest_state(store: Arc<dyn Store>) {
    // Both fixtures are about +1234567890; n3 was queued a day before n2.
    let bodies = [
        fixture("numbers/n2.json"),
        fixture("numbers/n3.json"),
        fixture("numbers/n2.json"),
    ];
    ingest(store.as_ref(), &bodies).await;
    let (record, resource) = store
        .queries()
        .number("+1234567890")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.event_id.as_deref(), Some("event_id"));
    assert_eq!(
        record.event_type.as_deref(),
        Some("PROVISIONING_TO_VOICE_PLATFORM")
    );
    // The column holds what the database holds of a time (microseconds); the state keeps
    // Sinch's nanoseconds, which the ordering rule compares.
    assert_eq!(record.event_at, Some(resource.latest.at.trunc_subsecs(6)));
    assert_eq!(resource.latest.at.timestamp_subsec_nanos(), 854_087_603);
    let history: Vec<Option<&str>> = resource
        .history
        .iter()
        .map(|s| s.event_id.as_deref())
        .collect();
    assert_eq!(
        history,
        [Some("01jr7stexp0znky34pj07dwp41"), Some("event_id")],
        "oldest first; the retry of n2 is a duplicate"
    );
    let events = event_kinds(store.as_ref(), "number").await;
    let became: Vec<bool> = events.iter().map(|e| e["became_latest"] == true).collect();
    assert_eq!(became, [true, false]);
}

async fn replaying_every_call_verification_and_numbers_callback_changes_nothing(
    store: Arc<dyn Store>,
) {
    let mut bodies = call_bodies("c-1");
    bodies.extend([
        voice(
            "pie",
            "c-1",
            3,
            json!({"menuResult": {"menuId": "main", "value": "1"}}),
        ),
        voice("notify", "c-1", 6, json!({"type": "recording_finished"})),
        voice("transfer", "c-1", 7, json!({})),
        verification("VerificationRequestEvent", "v-1", json!({})),
        verification("VerificationResultEvent", "v-1", json!({"status": "FAIL"})),
        fixture("numbers/n1.json"),
        fixture("numbers/n3.json"),
        fixture("numbers/n2.json"),
    ]);
    ingest(store.as_ref(), &bodies).await;
    let before = snapshot(store.as_ref()).await.unwrap();
    let (_, call) = store.queries().call("c-1").await.unwrap().unwrap();
    assert_eq!(
        call.timeline.last().map(|e| e.event.as_str()),
        Some("transfer"),
        "an undocumented event is in the timeline"
    );
    for _ in 0..2 {
        let summary = replay(store.as_ref(), &ReplaySelection::default(), |_| {})
            .await
            .unwrap();
        assert_eq!(
            (summary.callbacks, summary.failed),
            (bodies.len() as u64, 0)
        );
        assert_eq!(
            snapshot(store.as_ref()).await.unwrap(),
            before,
            "replay changed the state"
        );
    }
}

/// Everything a reader can see of these aggregates, as comparable JSON.
async fn snapshot(s: &dyn Store) -> Result<Value, StoreError> {
    let q = s.queries();
    Ok(json!({
        "events": q.latest_event_id().await?,
        "call": q.call("c-1").await?,
        "calls": q.calls(&CallQuery { limit: 10, ..Default::default() }).await?,
        "verification": q.verification("v-1").await?,
        "number": q.number("+1234567890").await?,
        "numbers": q.numbers(&NumberQuery { limit: 10, ..Default::default() }).await?,
    }))
}

async fn the_lists_filter_on_the_summary_and_page_without_repeating(store: Arc<dyn Store>) {
    let mut bodies = Vec::new();
    for n in 0..3 {
        bodies.extend(call_bodies(&format!("c-{n}")));
    }
    bodies.push(voice("ace", "callout", 1, json!({})));
    bodies.push(verification("VerificationRequestEvent", "v-1", json!({})));
    bodies.push(verification(
        "VerificationResultEvent",
        "v-2",
        json!({"status": "FAIL"}),
    ));
    bodies.push(fixture("numbers/n1.json"));
    bodies.push(fixture("numbers/n2.json"));
    ingest(store.as_ref(), &bodies).await;
    let q = store.queries();

    let ended = CallQuery {
        progress: Some("ended".into()),
        limit: 2,
        ..Default::default()
    };
    let first = q.calls(&ended).await.unwrap();
    let last = first.last().unwrap();
    let rest = CallQuery {
        after: Some((last.created_at, last.call_id.clone())),
        ..ended
    };
    let second = q.calls(&rest).await.unwrap();
    let ids: Vec<&str> = first
        .iter()
        .chain(&second)
        .map(|c| c.call_id.as_str())
        .collect();
    assert_eq!(ids, ["c-2", "c-1", "c-0"], "newest first, no repeat");
    let outbound = CallQuery {
        direction: Some("outbound".into()),
        limit: 10,
        ..Default::default()
    };
    let outbound = q.calls(&outbound).await.unwrap();
    assert_eq!(outbound.len(), 1);
    assert_eq!(
        (
            outbound[0].call_id.as_str(),
            outbound[0].progress.as_deref()
        ),
        ("callout", Some("answered"))
    );
    let by_caller = CallQuery {
        from: Some("+46701".into()),
        since: Some(Utc::now() - chrono::Duration::hours(1)),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(q.calls(&by_caller).await.unwrap().len(), 3);

    let failed = VerificationQuery {
        status: Some("FAIL".into()),
        method: Some("sms".into()),
        identity: Some("+46700000001".into()),
        limit: 10,
        ..Default::default()
    };
    let failed = q.verifications(&failed).await.unwrap();
    assert_eq!(
        failed.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        ["v-2"]
    );

    let voice = NumberQuery {
        event_type: Some("PROVISIONING_TO_VOICE_PLATFORM".into()),
        status: Some("SUCCEEDED".into()),
        limit: 10,
        ..Default::default()
    };
    let voice = q.numbers(&voice).await.unwrap();
    assert_eq!(
        voice
            .iter()
            .map(|n| n.resource_id.as_str())
            .collect::<Vec<_>>(),
        ["+1234567890"]
    );
}

/// An aggregate whose stored state this version cannot read (an edited database, a
/// downgrade) fails the callback about it with a reason naming the row, and the read API
/// reports it; neither takes it for "nothing stored".
async fn an_unreadable_aggregate_is_reported_and_never_taken_for_empty(
    store: Arc<dyn Store>,
    backend: Backend,
) {
    ingest(store.as_ref(), &call_bodies("c-1")[..1]).await;
    execute(&backend, "UPDATE calls SET state = '{\"call_id\": 7}'").await;
    let ids = ingest(store.as_ref(), &call_bodies("c-1")[1..2]).await;
    let callback = store.queries().callback(ids[0]).await.unwrap().unwrap();
    assert_eq!(callback.processed_at, None, "it is retried, not dropped");
    let error = callback.last_error.unwrap_or_default();
    assert!(
        error.contains("the stored call c-1 cannot be read back"),
        "{error}"
    );
    let read = store.queries().call("c-1").await;
    let error = read
        .expect_err("an unreadable call is an error")
        .to_string();
    assert!(error.contains("call c-1 cannot be read back"), "{error}");
    let all = CallQuery {
        limit: 10,
        ..Default::default()
    };
    let listed = store.queries().calls(&all).await.unwrap();
    assert_eq!(
        listed[0].progress.as_deref(),
        Some("incoming"),
        "the list, from the columns, still shows it"
    );
}

async fn execute(backend: &Backend, sql: &str) {
    use sqlx::Connection;
    match backend {
        Backend::Sqlite(dir) => {
            let url = format!("sqlite://{}", dir.path().join("contract.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres(schema) => {
            let mut conn = sqlx::PgConnection::connect(&schema.url()).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
}

#[tokio::test]
async fn an_unreadable_call_is_reported_on_sqlite() {
    let (store, backend) = sqlite_store().await;
    an_unreadable_aggregate_is_reported_and_never_taken_for_empty(store, backend).await;
}

#[tokio::test]
async fn an_unreadable_call_is_reported_on_postgres() {
    let Some((store, backend)) = postgres_store().await else {
        return;
    };
    an_unreadable_aggregate_is_reported_and_never_taken_for_empty(store, backend).await;
}
