//! The read and outbox interfaces (`SqlReads`, `SqlOutbox`) and the one-by-one failure path,
//! written once, on both backends: every filter empty (NULL parameters) and every filter set.

use std::sync::Arc;

use chrono::{Duration, Utc};
use sinch_webhooks::dispatch::process_due;
use sinch_webhooks::store::{
    CallbackQuery, MessageQuery, OutboxQuery, Redrive, ReplayQuery, Store,
};

use crate::contract::{Backend, drain, entry, postgres_store, sqlite_store};
use crate::domain::ingest;
use crate::helpers::delivery_report;

contract!(every_read_and_outbox_call_works_with_and_without_filters);
contract!(a_consent_that_names_only_a_contact_is_kept_by_contact);
contract!(a_redaction_replaces_the_stored_text_whichever_arrives_first);
contract!(a_channels_state_is_its_newest_event_of_each_type);
contract!(analyses_and_record_notifications_are_kept_with_their_message);

mod a_callback_that_fails_is_undone_alone_and_the_others_are_applied {
    #[tokio::test]
    async fn sqlite() {
        let (store, db) = super::sqlite_store().await;
        super::a_callback_that_fails_is_undone_alone_and_the_others_are_applied(store, &db).await;
    }

    #[tokio::test]
    async fn postgres() {
        let Some((store, db)) = super::postgres_store().await else {
            return;
        };
        super::a_callback_that_fails_is_undone_alone_and_the_others_are_applied(store, &db).await;
    }
}

async fn every_read_and_outbox_call_works_with_and_without_filters(store: Arc<dyn Store>) {
    let q = store.queries();
    assert_eq!(q.backlog().await.unwrap(), (0, None));
    assert_eq!(q.latest_event_id().await.unwrap(), 0);
    let a = entry(&delivery_report("m1", "DELIVERED", "2025-03-04T12:00:00Z"));
    let b = entry(&delivery_report("m2", "READ", "2025-03-04T12:00:01Z"));
    store.journal(vec![a.clone(), b.clone()]).await.unwrap();
    let (count, oldest) = q.backlog().await.unwrap();
    assert_eq!(count, 2);
    assert!(oldest.is_some());
    // outbox: a destination seen first starts at the current end.
    let now = Utc::now();
    assert_eq!(store.outbox().outbox_feed("d", now, 100).await.unwrap(), 0);
    drain(&*store).await;
    assert_eq!(q.backlog().await.unwrap(), (0, None));
    assert!(q.latest_event_id().await.unwrap() > 0);

    let all = q
        .callbacks(&CallbackQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let filtered = q
        .callbacks(&CallbackQuery {
            trigger: Some("MESSAGE_DELIVERY".into()),
            since: Some(now - Duration::hours(1)),
            processed: Some(true),
            before_id: Some(all[0].id),
            source: Some("default".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1);
    let other_source = q
        .callbacks(&CallbackQuery {
            source: Some("sms".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        other_source.is_empty(),
        "every callback here came in on default"
    );
    let replay = ReplayQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(q.replay_batch(&replay).await.unwrap().len(), 2);
    assert_eq!(q.replay_count(&replay).await.unwrap(), 2);
    let replay = ReplayQuery {
        id: Some(all[0].id),
        since: Some(now - Duration::hours(1)),
        trigger: Some("MESSAGE_DELIVERY".into()),
        after_id: 0,
        limit: 10,
    };
    assert_eq!(q.replay_batch(&replay).await.unwrap().len(), 1);
    assert_eq!(q.replay_count(&replay).await.unwrap(), 1);
    let msgs = q
        .messages(&MessageQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(msgs.len(), 2);
    let msgs2 = q
        .messages(&MessageQuery {
            status: Some("READ".into()),
            direction: Some("outbound".into()),
            channel: Some("WHATSAPP".into()),
            since: Some(now - Duration::days(1)),
            until: Some(now + Duration::days(1)),
            after: Some((now + Duration::days(1), "zzz".into())),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(msgs2.len(), 1);
    // outbox on both backends
    let fed = store
        .outbox()
        .outbox_feed("d", Utc::now(), 100)
        .await
        .unwrap();
    assert!(fed > 0, "fed {fed}");
    let next = store.outbox().outbox_next_due("d").await.unwrap();
    assert!(next.is_some());
    let due = store
        .outbox()
        .outbox_claim(
            "d",
            Utc::now() + Duration::seconds(1),
            Utc::now() + Duration::minutes(1),
            100,
        )
        .await
        .unwrap();
    assert!(!due.is_empty());
    assert_eq!(due[0].attempts, 1);
    let list = store
        .outbox()
        .outbox_list(&OutboxQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.len() as u64, fed);
    let list = store
        .outbox()
        .outbox_list(&OutboxQuery {
            state: Some("pending".into()),
            destination: Some("d".into()),
            before: Some((i64::MAX, "d".into())),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(list.len() as u64, fed);
    assert_eq!(
        store
            .outbox()
            .outbox_redrive(&Redrive::AllDead, Utc::now())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .outbox()
            .outbox_redrive(&Redrive::Event(1), Utc::now())
            .await
            .unwrap(),
        0
    );
    assert!(!store.outbox().outbox_counts().await.unwrap().is_empty());
    assert!(!store.outbox().installation_id().await.unwrap().is_empty());
}

async fn a_callback_that_fails_is_undone_alone_and_the_others_are_applied(
    store: Arc<dyn Store>,
    db: &Backend,
) {
    match db {
        Backend::Postgres(schema) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&schema.url()).await.unwrap();
            sqlx::raw_sql(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.message_id = 'poisoned' THEN RAISE EXCEPTION 'poisoned message'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison();",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
        Backend::Sqlite(dir) => {
            let conn = rusqlite::Connection::open(dir.path().join("contract.db")).unwrap();
            conn.execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON messages \
                 WHEN NEW.message_id = 'poisoned' BEGIN SELECT RAISE(ABORT, 'poisoned message'); END",
            )
            .unwrap();
        }
    }
    let batch = vec![
        entry(&delivery_report(
            "healthy-1",
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        )),
        entry(&delivery_report(
            "poisoned",
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        )),
        entry(&delivery_report(
            "healthy-2",
            "READ",
            "2025-03-04T12:00:00Z",
        )),
    ];
    store.journal(batch).await.unwrap();
    process_due(&*store).await.unwrap();
    let q = store.queries();
    assert!(q.message("healthy-1").await.unwrap().is_some());
    assert!(q.message("healthy-2").await.unwrap().is_some());
    assert!(q.message("poisoned").await.unwrap().is_none());
    let all = q
        .callbacks(&CallbackQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let failed: Vec<_> = all.iter().filter(|c| c.processed_at.is_none()).collect();
    assert_eq!(failed.len(), 1, "{all:?}");
    assert_eq!(failed[0].attempts, 1);
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("poisoned"),
        "{:?}",
        failed[0]
    );
    assert_eq!(q.message_history("healthy-1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_delivery_whose_stored_time_cannot_be_read_fails_its_claim_instead_of_vanishing() {
    let (store, db) = sqlite_store().await;
    let Backend::Sqlite(dir) = &db else {
        unreachable!("a SQLite store")
    };
    store
        .outbox()
        .outbox_feed("d", Utc::now(), 100)
        .await
        .unwrap();
    store
        .journal(vec![entry(&delivery_report(
            "m1",
            "DELIVERED",
            "2025-03-04T12:00:00Z",
        ))])
        .await
        .unwrap();
    drain(&*store).await;
    assert_eq!(
        store
            .outbox()
            .outbox_feed("d", Utc::now(), 100)
            .await
            .unwrap(),
        1
    );
    let conn = rusqlite::Connection::open(dir.path().join("contract.db")).unwrap();
    conn.execute_batch(
        "UPDATE deliveries SET attempts = 1, window_started_at = 'an edit', \
         next_attempt_at = '2000-01-01T00:00:00.000000Z'",
    )
    .unwrap();
    let claimed = store
        .outbox()
        .outbox_claim("d", Utc::now(), Utc::now() + Duration::minutes(1), 10)
        .await;
    assert!(claimed.is_err(), "{claimed:?}");
}

fn contact_consent(kind: &str, status: &str, request: &str, at: &str) -> String {
    let key = if kind == "OPT_IN" {
        "opt_in_notification"
    } else {
        "opt_out_notification"
    };
    format!(
        r#"{{"app_id":"01HAPP","accepted_time":"{at}","event_time":"{at}","{key}":{{"request_id":"{request}","contact_id":"01HCONTACTONLY","channel":"WHATSAPP","status":"{kind}_{status}"}}}}"#
    )
}

async fn a_consent_that_names_only_a_contact_is_kept_by_contact(store: Arc<dyn Store>) {
    let opt_in = contact_consent("OPT_IN", "SUCCEEDED", "r1", "2025-03-04T12:00:00Z");
    let opt_out = contact_consent("OPT_OUT", "SUCCEEDED", "r2", "2025-03-04T12:00:05Z");
    // The opt-in, older, arrives last: the newer opt-out decides.
    store
        .journal(vec![entry(&opt_out), entry(&opt_in)])
        .await
        .unwrap();
    drain(&*store).await;
    let q = store.queries();
    let all = q
        .callbacks(&CallbackQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        all.iter()
            .all(|c| c.processed_at.is_some() && c.last_error.is_none()),
        "none set aside: {all:?}"
    );
    let consents = q.contact_consents("01HCONTACTONLY").await.unwrap();
    assert_eq!(consents.len(), 1, "{consents:?}");
    assert_eq!(consents[0].channel, "WHATSAPP");
    assert_eq!(consents[0].consented, Some(false));
    assert_eq!(consents[0].last_kind, "OPT_OUT");
    assert_eq!(consents[0].last_request_id.as_deref(), Some("r2"));
    assert!(
        q.consent("WHATSAPP", "").await.unwrap().is_none(),
        "nothing kept under an empty identity"
    );
    // A capability check naming only the contact, then an older one arriving late.
    let check = |status: &str, at: &str| {
        format!(
            r#"{{"app_id":"01HAPP","event_time":"{at}","capability_notification":{{"contact_id":"01HCONTACTONLY","channel":"RCS","capability_status":"{status}","request_id":"{status}"}}}}"#
        )
    };
    store
        .journal(vec![
            entry(&check("CAPABILITY_FULL", "2025-03-04T12:00:09Z")),
            entry(&check("NO_CAPABILITY", "2025-03-04T12:00:01Z")),
        ])
        .await
        .unwrap();
    drain(&*store).await;
    let capabilities = q.contact_capabilities("01HCONTACTONLY").await.unwrap();
    assert_eq!(capabilities.len(), 1, "{capabilities:?}");
    assert_eq!(
        capabilities[0].status, "CAPABILITY_FULL",
        "the newer check stays"
    );
}

fn inbound(key: &str, id: &str, text: &str) -> String {
    format!(
        r#"{{"app_id":"01HAPP","event_time":"2025-03-04T12:00:00Z","{key}":{{"id":"{id}","direction":"TO_APP","contact_message":{{"text_message":{{"text":"{text}"}}}},"channel_identity":{{"channel":"WHATSAPP","identity":"46701234567"}},"contact_id":"01HC"}}}}"#
    )
}

async fn a_redaction_replaces_the_stored_text_whichever_arrives_first(store: Arc<dyn Store>) {
    let q = store.queries();
    // The message, then its redaction.
    let first = [
        inbound("message", "m-first", "my card is 4111 1111"),
        inbound("message_redaction", "m-first", "my card is {CREDIT_CARD}"),
    ];
    ingest(&*store, &first).await;
    let message = q.message("m-first").await.unwrap().unwrap();
    assert_eq!(message.text.as_deref(), Some("my card is {CREDIT_CARD}"));
    assert!(message.redacted_at.is_some());
    // The redaction first: the message arriving later does not bring the text back.
    let late = [
        inbound("message_redaction", "m-late", "call {PHONE}"),
        inbound("message", "m-late", "call 555 0100"),
    ];
    ingest(&*store, &late).await;
    let message = q.message("m-late").await.unwrap().unwrap();
    assert_eq!(message.text.as_deref(), Some("call {PHONE}"));
    assert_eq!(message.direction, "inbound");
    let all = q
        .callbacks(&CallbackQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(all.iter().all(|c| c.last_error.is_none()), "{all:?}");
    let redacted = q.events_after(0, 100).await.unwrap();
    let kinds: Vec<&str> = redacted.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "message.redacted").count(),
        2,
        "{kinds:?}"
    );
}

fn channel_event(rating: &str, at: &str) -> String {
    format!(
        r#"{{"app_id":"01HAPP","event_time":"{at}","channel_event_notification":{{"channel_event":{{"channel":"WHATSAPP","event_type":"WHATS_APP_QUALITY_RATING_CHANGED","additional_data":{{"quality_rating":"{rating}"}}}}}}}}"#
    )
}

async fn a_channels_state_is_its_newest_event_of_each_type(store: Arc<dyn Store>) {
    // The newer event first, the older one late.
    store
        .journal(vec![
            entry(&channel_event("RED", "2025-03-04T12:00:09Z")),
            entry(&channel_event("GREEN", "2025-03-04T12:00:01Z")),
        ])
        .await
        .unwrap();
    drain(&*store).await;
    let (latest, history) = store
        .queries()
        .channel_events("WHATSAPP", 10)
        .await
        .unwrap();
    assert_eq!(latest.len(), 1, "{latest:?}");
    assert_eq!(latest[0].app_id, "01HAPP");
    assert_eq!(
        latest[0].additional_data.as_deref(),
        Some(r#"{"quality_rating":"RED"}"#)
    );
    assert_eq!(history.len(), 2);
    assert!(history[0].event_at > history[1].event_at, "newest first");
    let kinds: Vec<String> = store
        .queries()
        .events_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "channel.event").count(),
        1,
        "only the event that became the state is reported: {kinds:?}"
    );
}

async fn analyses_and_record_notifications_are_kept_with_their_message(store: Arc<dyn Store>) {
    let analysis = r#"{"app_id":"01HAPP","accepted_time":"2025-03-04T12:00:02Z","smart_conversation_notification":{"contact_id":"01HC","channel_identity":"46701234567","channel":"WHATSAPP","message_id":"m-analysed","conversation_id":"cv1","analysis_results":{"ml_sentiment_result":[{"message":"great","sentiment":"positive","score":0.93}]}}}"#;
    let record = r#"{"app_id":"01HAPP","accepted_time":"2025-03-04T12:00:03Z","record_notification":{"entity_id":"m-analysed","record_status":"EVENT_RECORD_STORED"}}"#;
    store
        .journal(vec![entry(analysis), entry(record)])
        .await
        .unwrap();
    drain(&*store).await;
    // Again, as a replay would: nothing is added twice.
    let (analyses, records) = store.queries().message_extras("m-analysed").await.unwrap();
    assert_eq!(analyses.len(), 1, "{analyses:?}");
    assert!(analyses[0].results.as_deref().unwrap().contains("positive"));
    assert_eq!(analyses[0].conversation_id.as_deref(), Some("cv1"));
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].record_status.as_deref(),
        Some("EVENT_RECORD_STORED")
    );
    let kinds: Vec<String> = store
        .queries()
        .events_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"message.analysis".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"record".to_owned()), "{kinds:?}");
}
