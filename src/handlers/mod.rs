//! What each kind of callback changes. Handlers are pure: they read the journaled body and
//! return a plan; the store applies it together with marking the callback processed. That
//! keeps them testable without a database, and replay safe (the store's writes are
//! idempotent).

mod aggregates;
mod consents;
mod contacts;
mod events;
mod journal_only;
mod messages;
mod sms;

use crate::callback::Trigger;
use crate::callback::payload::PayloadError;
use crate::store::{Effect, PendingCallback, Plan};

/// The plan for one journaled callback. One arm per trigger, so a new trigger is a
/// compile error until someone decides what it does.
pub fn plan(callback: &PendingCallback) -> Plan {
    use Trigger::*;
    if let Some(reason) = &callback.unreadable {
        return Plan::Unprocessable(reason.clone());
    }
    let body = callback.body.as_str();
    match callback.trigger {
        MessageDelivery => messages::delivery_report(body),
        MessageInbound => messages::inbound(body),
        MessageInboundSmartConversationRedaction => messages::redaction(body),
        ChannelEvent => consents::channel_event(body),
        MessageSubmit => messages::submitted(body),
        EventInbound => events::inbound(body),
        EventDelivery => events::delivery_report(body),
        OptIn => consents::opt_in(body),
        OptOut => consents::opt_out(body),
        Capability => consents::capability(body),
        ContactCreate | ContactUpdate | ContactDelete | ContactMerge => {
            contacts::contact(body, callback.trigger)
        }
        ContactIdentitiesDuplication => contacts::identity_duplication(body),
        ConversationStart | ConversationStop | ConversationDelete => {
            contacts::conversation(body, callback.trigger)
        }
        SmsRecipientDeliveryReport | MmsRecipientDeliveryReport => sms::delivery_report(body),
        SmsDeliveryReport | MmsDeliveryReport => sms::batch_report(body),
        SmsInboundText | SmsInboundBinary | SmsInboundMedia => sms::inbound(body),
        SmartConversation => messages::analysis(body),
        RecordNotification => messages::record(body),
        BatchStatusUpdate => messages::batch_status(body),
        Unsupported => journal_only::known(callback),
        NumbersEvent => aggregates::number(body, callback.received_at),
        VoiceIce | VoiceAce | VoicePie | VoiceDice | VoiceNotify | VoiceEvent => {
            aggregates::voice(body, callback.received_at)
        }
        VerificationRequest | VerificationResult | VerificationSmsDelivered | VerificationEvent => {
            aggregates::verification(body, callback.received_at)
        }
        Unknown => journal_only::unknown(callback),
    }
}

/// One effect from a parsed payload, or the reason it cannot be interpreted.
fn single<T>(parsed: Result<T, PayloadError>, effect: impl FnOnce(T) -> Effect) -> Plan {
    match parsed {
        Ok(value) => Plan::Apply(vec![effect(value)]),
        Err(error) => Plan::Unprocessable(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn plan_for(trigger: Trigger, body: &str) -> Plan {
        plan(&PendingCallback {
            id: 1,
            received_at: Utc::now(),
            trigger,
            body: body.to_owned(),
            attempts: 0,
            source: crate::store::Source::Journal,
            unreadable: None,
        })
    }

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/callbacks/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_fixture_plans_its_effect() {
        type IsExpected = fn(&Effect) -> bool;
        let cases: [(&str, Trigger, IsExpected); 13] = [
            ("message_delivery.json", Trigger::MessageDelivery, |e| {
                matches!(e, Effect::MessageStatus(_))
            }),
            ("message_inbound.json", Trigger::MessageInbound, |e| {
                matches!(e, Effect::InboundMessage(_))
            }),
            ("message_submit.json", Trigger::MessageSubmit, |e| {
                matches!(e, Effect::MessageSubmitted(_))
            }),
            ("event_inbound.json", Trigger::EventInbound, |e| {
                matches!(e, Effect::ContactEvent(_))
            }),
            ("event_delivery.json", Trigger::EventDelivery, |e| {
                matches!(e, Effect::AppEventStatus(_))
            }),
            ("opt_in.json", Trigger::OptIn, |e| {
                matches!(e, Effect::Consent(_))
            }),
            ("capability.json", Trigger::Capability, |e| {
                matches!(e, Effect::Capability(_))
            }),
            ("contact_create.json", Trigger::ContactCreate, |e| {
                matches!(e, Effect::Contact { .. })
            }),
            ("conversation_start.json", Trigger::ConversationStart, |e| {
                matches!(e, Effect::Conversation { .. })
            }),
            (
                "contact_identities_duplication.json",
                Trigger::ContactIdentitiesDuplication,
                |e| matches!(e, Effect::IdentityDuplications { .. }),
            ),
            (
                "sms_recipient_delivery_report.json",
                Trigger::SmsRecipientDeliveryReport,
                |e| matches!(e, Effect::SmsDelivery(_)),
            ),
            ("channel_event.json", Trigger::ChannelEvent, |e| {
                matches!(e, Effect::ChannelEvent(_))
            }),
            ("unsupported.json", Trigger::Unsupported, |_| false),
        ];
        for (name, trigger, expected) in cases {
            match plan_for(trigger, &fixture(name)) {
                // Journaled only, with no state of its own yet.
                Plan::Apply(effects) if trigger == Trigger::Unsupported => {
                    assert!(effects.is_empty())
                }
                Plan::Apply(effects) => assert!(
                    effects.len() == 1 && expected(&effects[0]),
                    "{name}: {effects:?}"
                ),
                Plan::Unprocessable(reason) => panic!("{name}: {reason}"),
            }
        }
    }

    #[test]
    fn voice_verification_and_numbers_callbacks_plan_one_step_of_their_aggregate() {
        let cases: [(&str, Trigger, &str); 4] = [
            ("voice/dice.json", Trigger::VoiceDice, "call/"),
            ("voice/notify.json", Trigger::VoiceNotify, "call/"),
            (
                "verification/request.json",
                Trigger::VerificationRequest,
                "verification/",
            ),
            ("numbers/n1.json", Trigger::NumbersEvent, "number/"),
        ];
        for (name, trigger, lock) in cases {
            match plan_for(trigger, &fixture(name)) {
                Plan::Apply(effects) => assert!(
                    effects.len() == 1 && effects[0].lock_key().starts_with(lock),
                    "{name}: {effects:?}"
                ),
                Plan::Unprocessable(reason) => panic!("{name}: {reason}"),
            }
        }
        // An event Sinch has not documented is still a step of its call.
        let other = r#"{"event":"transfer","callid":"c-1","timestamp":"2025-03-04T12:00:00Z"}"#;
        assert!(matches!(
            plan_for(Trigger::VoiceEvent, other),
            Plan::Apply(effects) if matches!(&effects[..], [Effect::Call(_)])
        ));
    }

    #[test]
    fn an_aggregate_callback_with_wrong_types_or_no_id_is_unprocessable_with_the_reason() {
        let cases = [
            (Trigger::VoiceAce, r#"{"event":"ace","callid":7}"#, "ace"),
            (Trigger::VoiceAce, r#"{"event":"ace"}"#, "no callid"),
            (
                Trigger::VerificationResult,
                r#"{"event":"VerificationResultEvent","id":"v","status":5}"#,
                "VerificationResultEvent",
            ),
            (
                Trigger::VerificationRequest,
                r#"{"event":"VerificationRequestEvent"}"#,
                "no id",
            ),
            (
                Trigger::NumbersEvent,
                r#"{"eventId":1,"resourceId":"+46"}"#,
                "numbers",
            ),
            (Trigger::NumbersEvent, r#"{"eventId":"e"}"#, "no resourceId"),
        ];
        for (trigger, body, says) in cases {
            match plan_for(trigger, body) {
                Plan::Unprocessable(reason) => assert!(reason.contains(says), "{body}: {reason}"),
                Plan::Apply(effects) => panic!("{body}: {effects:?}"),
            }
        }
    }

    #[test]
    fn a_payload_missing_its_ids_is_unprocessable() {
        for trigger in [
            Trigger::OptOut,
            Trigger::ContactUpdate,
            Trigger::SmsRecipientDeliveryReport,
            Trigger::EventInbound,
        ] {
            assert!(
                matches!(plan_for(trigger, "{}"), Plan::Unprocessable(_)),
                "{trigger}"
            );
        }
    }
}
