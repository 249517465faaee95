use super::*;
use crate::callback::application::classify_application;
use crate::callback::numbers::parse_number_event;
use crate::callback::verification::parse_verification;
use crate::callback::voice::parse_voice;
use crate::callback::{Classification, Trigger, classify};

fn other(name: &str, options: &SampleOptions) -> (Family, String) {
    build_any(name, options).unwrap_or_else(|| panic!("{name} builds"))
}

/// As the receiver classifies the family's callbacks.
fn classified(family: Family, body: &str) -> Classification {
    match family {
        Family::Numbers => classify(body.as_bytes()).unwrap(),
        _ => classify_application(body.as_bytes()).unwrap(),
    }
}

#[test]
fn every_voice_verification_and_numbers_sample_classifies_to_its_own_trigger() {
    let expected = [
        ("voice_ice", Trigger::VoiceIce),
        ("voice_ace", Trigger::VoiceAce),
        ("voice_pie", Trigger::VoicePie),
        ("voice_dice", Trigger::VoiceDice),
        ("voice_notify", Trigger::VoiceNotify),
        ("verification_request", Trigger::VerificationRequest),
        ("verification_result", Trigger::VerificationResult),
        (
            "verification_sms_delivered",
            Trigger::VerificationSmsDelivered,
        ),
        ("numbers_event", Trigger::NumbersEvent),
    ];
    let names: Vec<&str> = OTHER_API_SAMPLES.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(names, expected.map(|(name, _)| name), "one case per sample");
    for (name, trigger) in expected {
        let (family, body) = other(name, &SampleOptions::default());
        assert_eq!(classified(family, &body).trigger, trigger, "{name}");
        // The typed payloads read every field the handlers need.
        let parsed = match family {
            Family::Voice => parse_voice(body.as_bytes()).map(drop),
            Family::Verification => parse_verification(body.as_bytes()).map(drop),
            Family::Numbers => parse_number_event(body.as_bytes()).map(drop),
            Family::Conversation => panic!("{name} is not a Conversation sample"),
        };
        assert!(parsed.is_ok(), "{name}: {parsed:?}");
    }
}

#[test]
fn each_family_goes_to_its_own_route() {
    let family = |name| other(name, &SampleOptions::default()).0;
    assert_eq!(family("voice_pie").path(), "/api/sinch/voice");
    assert_eq!(
        family("verification_request").path(),
        "/api/sinch/verification"
    );
    assert_eq!(family("numbers_event").path(), "/api/sinch/numbers");
    assert_eq!(family("message_delivery").path(), "/api/sinch/webhook");
}

#[test]
fn other_api_samples_are_new_callbacks_each_time_unless_an_id_is_given() {
    for (name, _, _) in OTHER_API_SAMPLES {
        let (family, a) = other(name, &SampleOptions::default());
        let (_, b) = other(name, &SampleOptions::default());
        assert_ne!(
            classified(family, &a).dedupe_key,
            classified(family, &b).dedupe_key,
            "{name}"
        );
    }
    let given = SampleOptions {
        message_id: Some("given-id".into()),
        status: None,
    };
    for name in ["voice_ice", "voice_dice", "verification_request"] {
        let (family, body) = other(name, &given);
        let id = classified(family, &body).message_id;
        assert_eq!(id.as_deref(), Some("given-id"), "{name}");
    }
    let (_, numbers) = other("numbers_event", &given);
    let event = parse_number_event(numbers.as_bytes()).unwrap();
    assert_eq!(event.resource_id.as_deref(), Some("given-id"));
}

#[test]
fn status_sets_the_call_result_the_verification_status_the_sms_result_and_the_numbers_status() {
    let failed = SampleOptions {
        message_id: None,
        status: Some("FAILED".into()),
    };
    let cases = [
        ("voice_dice", "result"),
        ("verification_result", "status"),
        ("verification_sms_delivered", "smsResult"),
        ("numbers_event", "status"),
    ];
    for (name, member) in cases {
        let (_, body) = other(name, &failed);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body[member], "FAILED", "{name}");
    }
}

#[test]
fn the_inspectors_samples_stay_conversation_and_sms_only() {
    for (name, _, _) in OTHER_API_SAMPLES {
        assert!(build(name, &SampleOptions::default()).is_none(), "{name}");
    }
    assert_eq!(names().count(), SAMPLES.len() + OTHER_API_SAMPLES.len());
}
