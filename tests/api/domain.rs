//! What each trigger family changes, on both backends: the fixture's effect, order-awareness
//! and idempotence (replaying everything changes nothing).

use std::sync::Arc;

use serde_json::Value;
use sinch_webhooks::dispatch::process_due;
use sinch_webhooks::replay::{ReplaySelection, replay};
use sinch_webhooks::store::{Store, StoreError};

use crate::contract::entry;
use crate::helpers::{delivery_report, fixture};

contract!(every_fixture_changes_its_table);
contract!(replaying_everything_changes_nothing);
contract!(consent_follows_event_time_and_only_success_decides);
contract!(contacts_merge_and_delete_without_dropping_history);
contract!(sms_final_statuses_are_never_replaced);
contract!(a_submit_is_recorded_but_never_moves_a_status);
contract!(conversations_keep_their_times_whatever_the_order);
contract!(a_batch_keeps_its_newest_report_whatever_the_order);

/// The batch of `batch_status_update.json`.
const BATCH: &str = "01HBATCH000000000000000001";

const FIXTURES: &[&str] = &[
    "batch_status_update.json",
    "capability.json",
    "channel_event.json",
    "contact_create.json",
    "contact_identities_duplication.json",
    "conversation_start.json",
    "event_delivery.json",
    "event_inbound.json",
    "message_delivery.json",
    "message_inbound.json",
    "message_submit.json",
    "opt_in.json",
    "sms_recipient_delivery_report.json",
    "unsupported.json",
];

/// Journals and processes each body in turn, as if each arrived after the last was done.
pub async fn ingest(store: &dyn Store, bodies: &[String]) {
    for body in bodies {
        store.journal(vec![entry(body)]).await.unwrap();
        while process_due(store).await.unwrap() > 0 {}
    }
}

async fn event_types(store: &dyn Store) -> Vec<String> {
    let events = store.queries().events_after(0, 1000).await.unwrap();
    events.into_iter().map(|e| e.kind).collect()
}

async fn every_fixture_changes_its_table(store: Arc<dyn Store>) {
    let bodies: Vec<String> = FIXTURES.iter().map(|f| fixture(f)).collect();
    ingest(store.as_ref(), &bodies).await;
    let s = store.as_ref();

    let consent = s
        .queries()
        .consent("WHATSAPP", "46701234567")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (consent.consented, consent.last_kind.as_str()),
        (Some(true), "OPT_IN")
    );
    let capability = s
        .queries()
        .capability("RCS", "46701234567")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(capability.status, "NO_CAPABILITY");
    let (batch, _) = s.queries().batch_status(BATCH).await.unwrap();
    let batch = batch.unwrap();
    assert_eq!(
        (
            batch.status.as_str(),
            batch.successful_messages,
            batch.failed_messages
        ),
        ("PARTIAL", Some(8), Some(2))
    );
    let (channel, _) = s.queries().channel_events("WHATSAPP", 10).await.unwrap();
    assert_eq!(channel[0].event_type, "WHATS_APP_QUALITY_RATING_CHANGED");
    assert_eq!(
        channel[0].additional_data.as_deref(),
        Some(r#"{"quality_rating":"YELLOW"}"#)
    );
    let contact = s
        .queries()
        .contact("01HCONT000000000000000000E")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.display_name.as_deref(), Some("Unknown"));
    let identities = s
        .queries()
        .contact_identities("01HCONT000000000000000000E")
        .await
        .unwrap();
    assert_eq!(
        (
            identities[0].channel.as_str(),
            identities[0].identity.as_str()
        ),
        ("SMS", "46701234567")
    );
    let conversations = s
        .queries()
        .contact_conversations("01HCONT000000000000000000E")
        .await
        .unwrap();
    assert_eq!(
        conversations[0].conversation_id,
        "01HCONV000000000000000000D"
    );
    assert_eq!(conversations[0].active, Some(true));
    assert!(conversations[0].started_at.is_some());
    let sms = s
        .queries()
        .sms_deliveries("01JHFFHQ0P99JPPNQPJDV7JTBP")
        .await
        .unwrap();
    assert_eq!(sms[0].status.as_deref(), Some("Delivered"));
    let message = s
        .queries()
        .message("01HMSGOUT0000000000000000B")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.status.as_deref(), Some("FAILED"));
    assert!(message.submitted_at.is_some());

    let types = event_types(s).await;
    for expected in [
        "capability",
        "contact",
        "contact.duplicates",
        "conversation",
        "event.status",
        "event.inbound",
        "message.status",
        "message.inbound",
        "message.submitted",
        "consent",
        "sms.delivery",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "no {expected} event in {types:?}"
        );
    }
    // Journal-only triggers are kept and processed, with no state change.
    let unprocessed = s
        .queries()
        .callbacks(&sinch_webhooks::store::CallbackQuery {
            processed: Some(false),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(unprocessed.is_empty());
}

async fn replaying_everything_changes_nothing(store: Arc<dyn Store>) {
    let mut bodies: Vec<String> = FIXTURES.iter().map(|f| fixture(f)).collect();
    bodies.push(delivery_report(
        "01HMSGOUT0000000000000000B",
        "QUEUED_ON_CHANNEL",
        "2025-03-04T12:04:00Z",
    ));
    ingest(store.as_ref(), &bodies).await;
    let before = snapshot(store.as_ref()).await.unwrap();
    let everything = ReplaySelection::default();
    for _ in 0..2 {
        let summary = replay(store.as_ref(), &everything, |_| {}).await.unwrap();
        assert_eq!(summary.callbacks, bodies.len() as u64);
        assert_eq!(summary.failed, 0);
        assert_eq!(
            snapshot(store.as_ref()).await.unwrap(),
            before,
            "replay changed the state"
        );
    }
}

/// Everything a reader can see, as comparable JSON.
async fn snapshot(s: &dyn Store) -> Result<Value, StoreError> {
    Ok(serde_json::json!({
        "events": s.queries().latest_event_id().await?,
        "message": s.queries().message("01HMSGOUT0000000000000000B").await?,
        "history": s.queries().message_history("01HMSGOUT0000000000000000B").await?,
        "inbound": s.queries().message("01HMSGIN00000000000000000A").await?,
        "consent": s.queries().consent("WHATSAPP", "46701234567").await?,
        "consent_history": s.queries().consent_history("WHATSAPP", "46701234567").await?,
        "capability": s.queries().capability("RCS", "46701234567").await?,
        "contact": s.queries().contact("01HCONT000000000000000000E").await?,
        "identities": s.queries().contact_identities("01HCONT000000000000000000E").await?,
        "conversations": s.queries().contact_conversations("01HCONT000000000000000000E").await?,
        "sms": s.queries().sms_deliveries("01JHFFHQ0P99JPPNQPJDV7JTBP").await?,
        "batch": s.queries().batch_status(BATCH).await?,
    }))
}

fn consent_body(kind: &str, status: &str, at: &str, request: &str) -> String {
    let key = if kind == "OPT_IN" {
        "opt_in_notification"
    } else {
        "opt_out_notification"
    };
    let mut body = serde_json::json!({"accepted_time": at, "app_id": "a", "project_id": "p"});
    body[key] = serde_json::json!({
        "request_id": request, "channel": "WHATSAPP", "identity": "4670000",
        "status": format!("{kind}_{status}"),
        "error_details": {"description": if status == "FAILED" { "rejected" } else { "" }}
    });
    body.to_string()
}

async fn consent_follows_event_time_and_only_success_decides(store: Arc<dyn Store>) {
    let bodies = [
        consent_body("OPT_OUT", "SUCCEEDED", "2025-03-04T12:00:02Z", "r2"),
        consent_body("OPT_IN", "SUCCEEDED", "2025-03-04T12:00:01Z", "r1"), // late, older
        consent_body("OPT_IN", "FAILED", "2025-03-04T12:00:03Z", "r3"),    // newest, failed
    ];
    ingest(store.as_ref(), &bodies).await;
    let consent = store
        .queries()
        .consent("WHATSAPP", "4670000")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        consent.consented,
        Some(false),
        "the newest successful change is the opt-out"
    );
    assert_eq!(
        (consent.last_kind.as_str(), consent.last_status.as_str()),
        ("OPT_IN", "FAILED")
    );
    assert_eq!(consent.last_error.as_deref(), Some("rejected"));
    assert_eq!(consent.last_request_id.as_deref(), Some("r3"));
    let history = store
        .queries()
        .consent_history("WHATSAPP", "4670000")
        .await
        .unwrap();
    let requests: Vec<_> = history
        .iter()
        .map(|h| h.request_id.clone().unwrap_or_default())
        .collect();
    assert_eq!(requests, ["r1", "r2", "r3"], "full history, by event time");
}

fn contact_body(key: &str, contact: Value, at: &str) -> String {
    let mut body = serde_json::json!({"accepted_time": at, "app_id": "a", "project_id": "p"});
    body[key] = contact;
    body.to_string()
}

async fn contacts_merge_and_delete_without_dropping_history(store: Arc<dyn Store>) {
    let contact = |id: &str, channel: &str, identity: &str| serde_json::json!({"id": id, "display_name": id, "channel_identities": [{"channel": channel, "identity": identity}]});
    let bodies = [
        contact_body(
            "contact_create_notification",
            serde_json::json!({"contact": contact("keep", "SMS", "111")}),
            "2025-03-04T12:00:00Z",
        ),
        contact_body(
            "contact_create_notification",
            serde_json::json!({"contact": contact("gone", "WHATSAPP", "222")}),
            "2025-03-04T12:00:01Z",
        ),
        contact_body(
            "contact_merge_notification",
            serde_json::json!({"preserved_contact": contact("keep", "SMS", "111"), "deleted_contact": contact("gone", "WHATSAPP", "222")}),
            "2025-03-04T12:00:02Z",
        ),
        // A late update for the merged-away contact must not resurrect it.
        contact_body(
            "contact_update_notification",
            serde_json::json!({"contact": contact("gone", "WHATSAPP", "222")}),
            "2025-03-04T12:00:01.5Z",
        ),
        contact_body(
            "contact_create_notification",
            serde_json::json!({"contact": contact("old", "RCS", "333")}),
            "2025-03-04T12:00:03Z",
        ),
        contact_body(
            "contact_delete_notification",
            serde_json::json!({"contact": contact("old", "RCS", "333")}),
            "2025-03-04T12:00:04Z",
        ),
    ];
    ingest(store.as_ref(), &bodies).await;
    let identities: Vec<(String, String)> = store
        .queries()
        .contact_identities("keep")
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.channel, i.identity))
        .collect();
    assert_eq!(
        identities,
        [
            ("SMS".to_owned(), "111".to_owned()),
            ("WHATSAPP".to_owned(), "222".to_owned())
        ],
        "the merge moved the deleted contact's identities to the preserved one"
    );
    let gone = store
        .queries()
        .contact("gone")
        .await
        .unwrap()
        .expect("merged contacts are kept");
    assert_eq!(gone.merged_into.as_deref(), Some("keep"));
    assert!(gone.deleted_at.is_some());
    let old = store
        .queries()
        .contact("old")
        .await
        .unwrap()
        .expect("deleted contacts are kept");
    assert!(old.deleted_at.is_some());
    assert_eq!(
        store
            .queries()
            .contact_identities("old")
            .await
            .unwrap()
            .len(),
        1,
        "identities kept too"
    );
}

fn sms_body(status: &str, at: &str) -> String {
    serde_json::json!({
        "at": at, "batch_id": "b-1", "code": 0, "operator_status_at": at,
        "recipient": "4670", "status": status, "type": "recipient_delivery_report_sms"
    })
    .to_string()
}

async fn sms_final_statuses_are_never_replaced(store: Arc<dyn Store>) {
    let bodies = [
        sms_body("Queued", "2025-01-13T09:22:00Z"),
        sms_body("Delivered", "2025-01-13T09:22:02Z"),
        sms_body("Dispatched", "2025-01-13T09:22:05Z"), // newer, but Delivered is final
        sms_body("Failed", "2025-01-13T09:22:09Z"),
    ];
    ingest(store.as_ref(), &bodies).await;
    let recipients = store.queries().sms_deliveries("b-1").await.unwrap();
    assert_eq!(recipients.len(), 1);
    assert_eq!(recipients[0].status.as_deref(), Some("Delivered"));
    let sms_events = event_types(store.as_ref())
        .await
        .into_iter()
        .filter(|t| t == "sms.delivery")
        .count();
    assert_eq!(
        sms_events, 2,
        "only Queued and Delivered changed the status"
    );
}

async fn a_submit_is_recorded_but_never_moves_a_status(store: Arc<dyn Store>) {
    let id = "01HMSGOUT0000000000000000B";
    let bodies = [
        delivery_report(id, "DELIVERED", "2025-03-04T12:05:00Z"),
        fixture("message_submit.json"),
    ];
    ingest(store.as_ref(), &bodies).await;
    let message = store.queries().message(id).await.unwrap().unwrap();
    assert_eq!(message.status.as_deref(), Some("DELIVERED"));
    assert!(message.submitted_at.is_some());
    assert!(
        message
            .content
            .unwrap_or_default()
            .contains("Your code is 1234")
    );
    let history = store.queries().message_history(id).await.unwrap();
    let seen: Vec<(&str, bool)> = history
        .iter()
        .map(|h| (h.status.as_str(), h.applied))
        .collect();
    assert_eq!(seen, [("DELIVERED", true), ("SUBMITTED", false)]);
}

fn conversation_body(key: &str, active: Option<bool>, at: &str) -> String {
    let mut conversation =
        serde_json::json!({"id": "conv-1", "contact_id": "c-1", "active_channel": "SMS"});
    if let Some(active) = active {
        conversation["active"] = serde_json::json!(active);
    }
    contact_body(key, serde_json::json!({"conversation": conversation}), at)
}

async fn conversations_keep_their_times_whatever_the_order(store: Arc<dyn Store>) {
    let bodies = [
        conversation_body(
            "conversation_stop_notification",
            Some(false),
            "2025-03-04T12:00:05Z",
        ),
        conversation_body(
            "conversation_start_notification",
            Some(true),
            "2025-03-04T12:00:01Z",
        ),
    ];
    ingest(store.as_ref(), &bodies).await;
    let conversation = &store.queries().contact_conversations("c-1").await.unwrap()[0];
    assert_eq!(
        conversation.active,
        Some(false),
        "the late start does not reopen it"
    );
    assert!(conversation.started_at.is_some() && conversation.stopped_at.is_some());
    ingest(
        store.as_ref(),
        &[conversation_body(
            "conversation_delete_notification",
            None,
            "2025-03-04T12:00:09Z",
        )],
    )
    .await;
    let conversation = &store.queries().contact_conversations("c-1").await.unwrap()[0];
    assert!(
        conversation.deleted_at.is_some(),
        "deleted is marked, the row is kept"
    );
}

fn batch_body(status: &str, accepted: &str, successful: i64) -> String {
    serde_json::json!({
        "app_id": "a", "accepted_time": accepted,
        "batch_status_update": {"batch_id": "b-1", "status": status, "total_messages": 10,
            "successful_messages": successful, "failed_messages": 10 - successful}
    })
    .to_string()
}

async fn a_batch_keeps_its_newest_report_whatever_the_order(store: Arc<dyn Store>) {
    let newest = batch_body("COMPLETED", "2025-03-04T12:05:00Z", 9);
    let older = batch_body("PARTIAL", "2025-03-04T12:01:00Z", 4);
    ingest(store.as_ref(), &[newest.clone(), older, newest]).await;
    let (batch, history) = store.queries().batch_status("b-1").await.unwrap();
    let batch = batch.unwrap();
    assert_eq!(
        (batch.status.as_str(), batch.successful_messages),
        ("COMPLETED", Some(9)),
        "a late PARTIAL does not overwrite COMPLETED"
    );
    let statuses: Vec<&str> = history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["COMPLETED", "PARTIAL"],
        "the retry is a duplicate"
    );
    let events = event_types(store.as_ref()).await;
    assert_eq!(
        events.iter().filter(|e| *e == "batch.status").count(),
        1,
        "only the report that became the state is announced"
    );
}
