//! Sinch callback payloads as types: pure, no I/O.

pub mod answer;
pub mod application;
pub mod classify;
pub mod family;
mod names;
pub mod numbers;
pub mod payload;
pub mod status;
pub mod trigger;
pub mod verification;
pub mod voice;

pub use classify::{Classification, ClassifyError, classify};
pub use trigger::{Api, Trigger};

/// The bodies a source takes, by how Sinch authenticates them: a source of one kind reads
/// its bodies with that kind's classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyShape {
    /// Conversation API and SMS (HMAC, Basic, header, OAuth2 or unsigned).
    Messaging,
    /// Voice and Verification (the application signature).
    Application,
    /// Numbers (`X-Sinch-Signature`).
    Numbers,
}

/// Classifies a verified body as a source taking `shape` reads it.
pub fn classify_as(shape: BodyShape, body: &[u8]) -> Result<Classification, ClassifyError> {
    match shape {
        BodyShape::Messaging => classify(body),
        BodyShape::Application => application::classify_application(body),
        BodyShape::Numbers => numbers::classify_numbers_source(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/callbacks/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn delivery_reports_say_which_status_they_report() {
        let status = |name| classify(&fixture(name)).ok().and_then(|c| c.status);
        assert_eq!(status("message_delivery.json").as_deref(), Some("FAILED"));
        assert_eq!(status("event_delivery.json").as_deref(), Some("DELIVERED"));
        assert_eq!(
            status("sms_recipient_delivery_report.json").as_deref(),
            Some("Delivered")
        );
        assert_eq!(status("message_inbound.json"), None);
        assert_eq!(status("opt_in.json"), None);
    }

    #[test]
    fn every_fixture_classifies_to_its_trigger() {
        let expected = [
            ("batch_status_update.json", Trigger::BatchStatusUpdate),
            ("capability.json", Trigger::Capability),
            ("channel_event.json", Trigger::ChannelEvent),
            ("contact_create.json", Trigger::ContactCreate),
            (
                "contact_identities_duplication.json",
                Trigger::ContactIdentitiesDuplication,
            ),
            ("conversation_start.json", Trigger::ConversationStart),
            ("event_delivery.json", Trigger::EventDelivery),
            ("event_inbound.json", Trigger::EventInbound),
            ("message_delivery.json", Trigger::MessageDelivery),
            ("message_inbound.json", Trigger::MessageInbound),
            ("message_submit.json", Trigger::MessageSubmit),
            ("opt_in.json", Trigger::OptIn),
            (
                "sms_recipient_delivery_report.json",
                Trigger::SmsRecipientDeliveryReport,
            ),
            ("unsupported.json", Trigger::Unsupported),
        ];
        let dir = format!("{}/tests/fixtures/callbacks", env!("CARGO_MANIFEST_DIR"));
        // Files only: the Voice, Verification and Numbers fixtures sit in subfolders and are
        // tested beside their own classifiers.
        let on_disk = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|entry| entry.as_ref().is_ok_and(|e| e.path().is_file()))
            .count();
        assert_eq!(
            on_disk,
            expected.len(),
            "a fixture was added without a classification test"
        );
        for (name, trigger) in expected {
            let c = classify(&fixture(name)).unwrap();
            assert_eq!(c.trigger, trigger, "{name}");
            assert_eq!(Some(c.api), trigger.api(), "{name}");
        }
    }

    #[test]
    fn dedupe_keys_follow_natural_ids() {
        let key = |name| classify(&fixture(name)).unwrap().dedupe_key;
        assert_eq!(
            key("message_delivery.json"),
            r#"MESSAGE_DELIVERY:["01HMSGOUT0000000000000000B","FAILED","WHATSAPP"]"#
        );
        assert_eq!(
            key("message_inbound.json"),
            r#"MESSAGE_INBOUND:["01HMSGIN00000000000000000A"]"#
        );
        assert_eq!(
            key("event_inbound.json"),
            r#"EVENT_INBOUND:["01HEVTIN00000000000000000C"]"#
        );
        assert_eq!(
            key("message_submit.json"),
            r#"MESSAGE_SUBMIT:["01HMSGOUT0000000000000000B","SMS"]"#
        );
        assert_eq!(
            key("event_delivery.json"),
            r#"EVENT_DELIVERY:["01HEVTOUT0000000000000000F","DELIVERED","MESSENGER"]"#
        );
        assert_eq!(
            key("opt_in.json"),
            r#"OPT_IN:["01HREQ0000000000000000000G"]"#
        );
        assert_eq!(
            key("contact_create.json"),
            r#"CONTACT_CREATE:["01HCONT000000000000000000E","2025-03-04T12:10:00.000Z"]"#
        );
        assert_eq!(
            key("sms_recipient_delivery_report.json"),
            r#"recipient_delivery_report_sms:["01JHFFHQ0P99JPPNQPJDV7JTBP","33662162466","Delivered","0"]"#
        );
        // No accepted_time and no other natural key: the body hash.
        assert!(key("conversation_start.json").starts_with("sha256:"));
        assert!(key("channel_event.json").starts_with("sha256:"));
    }

    #[test]
    fn same_event_reformatted_keeps_its_key_but_another_status_does_not() {
        let compact = br#"{"message_delivery_report":{"message_id":"m1","status":"READ","channel_identity":{"channel":"SMS"}}}"#;
        let spaced = b"{ \"message_delivery_report\" : { \"status\" : \"READ\", \"message_id\" : \"m1\", \"channel_identity\": {\"channel\":\"SMS\"} } }\n";
        let other = br#"{"message_delivery_report":{"message_id":"m1","status":"DELIVERED","channel_identity":{"channel":"SMS"}}}"#;
        let key = |b: &[u8]| classify(b).unwrap().dedupe_key;
        assert_eq!(key(compact), key(spaced));
        assert_ne!(key(compact), key(other));
    }

    #[test]
    fn ids_with_separators_or_escapes_cannot_collide() {
        let a = br#"{"message_delivery_report":{"message_id":"a\",\"b","status":"READ","channel_identity":{"channel":"SMS"}}}"#;
        let b = br#"{"message_delivery_report":{"message_id":"a","status":"b\",\"READ","channel_identity":{"channel":"SMS"}}}"#;
        assert_ne!(
            classify(a).unwrap().dedupe_key,
            classify(b).unwrap().dedupe_key
        );
    }

    #[test]
    fn ids_and_envelope_fields_are_extracted() {
        let c = classify(&fixture("message_delivery.json")).unwrap();
        assert_eq!(c.app_id.as_deref(), Some("01HAPPAAAAAAAAAAAAAAAAAAA1"));
        assert_eq!(
            c.project_id.as_deref(),
            Some("9d1f6a52-0000-4000-8000-00000000c0de")
        );
        assert_eq!(c.message_id.as_deref(), Some("01HMSGOUT0000000000000000B"));
        let sms = classify(&fixture("sms_recipient_delivery_report.json")).unwrap();
        assert_eq!(
            (sms.api, sms.app_id, sms.message_id),
            (Api::Sms, None, None)
        );
    }

    #[test]
    fn aliases_and_unknown_shapes_are_accepted() {
        let c = classify(br#"{"duplicated_identities":[]}"#).unwrap();
        assert_eq!(c.trigger, Trigger::ContactIdentitiesDuplication);
        let c = classify(br#"{"brand_new_notification":{"id":"x"}}"#).unwrap();
        assert_eq!((c.api, c.trigger), (Api::Conversation, Trigger::Unknown));
        assert!(c.dedupe_key.starts_with("sha256:"));
        let c = classify(br#"{"type":"future_sms_type"}"#).unwrap();
        assert_eq!((c.api, c.trigger), (Api::Sms, Trigger::Unknown));
        // A known key with an unexpected shape still classifies; the key falls back.
        let c = classify(br#"{"message_delivery_report":"surprise"}"#).unwrap();
        assert_eq!(c.trigger, Trigger::MessageDelivery);
        assert!(c.dedupe_key.starts_with("sha256:"));
        let c = classify(br#"{"message_delivery_report":{"message_id":5}}"#).unwrap();
        assert!(c.dedupe_key.starts_with("sha256:"));
    }

    #[test]
    fn non_objects_are_refused_with_a_reason() {
        assert_eq!(classify(b"[1,2]"), Err(ClassifyError::NotAnObject));
        assert_eq!(classify(b"\"text\""), Err(ClassifyError::NotAnObject));
        assert!(matches!(classify(b"[x"), Err(ClassifyError::NotJson(_))));
        assert!(matches!(classify(b"5 x"), Err(ClassifyError::NotJson(_))));
        // Valid JSON object with a member name no Rust string can hold: still a callback.
        let c = classify(br#"{"\ud800":1}"#).unwrap();
        assert_eq!(c.trigger, Trigger::Unknown);
        assert!(matches!(
            classify(b"{\"a\":"),
            Err(ClassifyError::NotJson(_))
        ));
        assert!(matches!(classify(b""), Err(ClassifyError::NotJson(_))));
        assert!(matches!(classify(b"{} x"), Err(ClassifyError::NotJson(_))));
        assert_eq!(
            classify(b"{\"a\":\"\xff\"}"),
            Err(ClassifyError::NotUtf8 { valid_up_to: 6 })
        );
    }

    #[test]
    fn deep_nesting_neither_overflows_the_stack_nor_is_refused() {
        let depth = 200_000;
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let body = format!("{{\"a\":{nested}}}");
        assert_eq!(classify(body.as_bytes()).unwrap().trigger, Trigger::Unknown);
        let body =
            format!("{{\"message_delivery_report\":{{\"message_id\":\"m\",\"status\":{nested}}}}}");
        let c = classify(body.as_bytes()).unwrap();
        assert_eq!(c.trigger, Trigger::MessageDelivery);
        assert!(c.dedupe_key.starts_with("sha256:"));
        let unbalanced = format!("{{\"a\":{}", "[".repeat(depth));
        assert!(matches!(
            classify(unbalanced.as_bytes()),
            Err(ClassifyError::NotJson(_))
        ));
    }
}
