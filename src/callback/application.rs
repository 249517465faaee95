//! Callbacks signed with an application's key: Voice and Verification share the scheme, and
//! a source with `auth = "application"` may take both, so the body says which family it is.
//! Classification is the family's own (`voice`, `verification`), given in the journal's terms.

use super::classify::{Classification, ClassifyError};
use super::family::{Classified, OpenName, read_object, text};
use super::trigger::{Api, Trigger};
use super::verification::{VerificationEvent, classify_verification};
use super::voice::{VoiceEvent, classify_voice};

/// Which family an application-signed body belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Voice,
    Verification,
}

/// Classifies a verified body signed with an application key.
pub fn classify_application(body: &[u8]) -> Result<Classification, ClassifyError> {
    match family_of(body)? {
        Family::Voice => {
            let classified = classify_voice(body)?;
            let trigger = voice_trigger(&classified.event);
            Ok(journal_terms(Api::Voice, trigger, classified))
        }
        Family::Verification => {
            let classified = classify_verification(body)?;
            let trigger = verification_trigger(&classified.event);
            Ok(journal_terms(Api::Verification, trigger, classified))
        }
    }
}

/// A documented event names its family. Otherwise a Verification body has an `id` and a
/// `method` and no call id; everything else is taken for Voice, which has more events.
pub fn family_of(body: &[u8]) -> Result<Family, ClassifyError> {
    let Some(top) = read_object(body)? else {
        return Ok(Family::Voice);
    };
    let event = text(&top, "event").unwrap_or_default();
    if !matches!(VoiceEvent::parse(&event), VoiceEvent::Other(_)) {
        return Ok(Family::Voice);
    }
    if !matches!(
        VerificationEvent::parse(&event),
        VerificationEvent::Other(_)
    ) {
        return Ok(Family::Verification);
    }
    let call_id = top.get("callid").is_some() || top.get("callId").is_some();
    let verification = top.get("id").is_some() && top.get("method").is_some();
    Ok(if verification && !call_id {
        Family::Verification
    } else {
        Family::Voice
    })
}

fn voice_trigger(event: &VoiceEvent) -> Trigger {
    match event {
        VoiceEvent::Ice => Trigger::VoiceIce,
        VoiceEvent::Ace => Trigger::VoiceAce,
        VoiceEvent::Pie => Trigger::VoicePie,
        VoiceEvent::Dice => Trigger::VoiceDice,
        VoiceEvent::Notify => Trigger::VoiceNotify,
        VoiceEvent::Other(_) => Trigger::VoiceEvent,
    }
}

fn verification_trigger(event: &VerificationEvent) -> Trigger {
    match event {
        VerificationEvent::Request => Trigger::VerificationRequest,
        VerificationEvent::Result => Trigger::VerificationResult,
        VerificationEvent::SmsDelivered => Trigger::VerificationSmsDelivered,
        VerificationEvent::Other(_) => Trigger::VerificationEvent,
    }
}

/// The call id or verification id is kept as `message_id`, the journal's natural-id column,
/// so `GET /api/callbacks?message_id=` finds every callback of one call or verification.
fn journal_terms<E>(api: Api, trigger: Trigger, classified: Classified<E>) -> Classification {
    Classification {
        api,
        trigger,
        dedupe_key: classified.dedupe_key,
        app_id: None,
        project_id: None,
        message_id: classified.id,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::family::fixture;

    #[test]
    fn every_voice_and_verification_fixture_classifies_to_its_trigger() {
        let cases = [
            ("voice/ice.json", Trigger::VoiceIce),
            ("voice/ace.json", Trigger::VoiceAce),
            ("voice/pie.json", Trigger::VoicePie),
            ("voice/dice.json", Trigger::VoiceDice),
            ("voice/notify.json", Trigger::VoiceNotify),
            ("verification/request.json", Trigger::VerificationRequest),
            ("verification/result.json", Trigger::VerificationResult),
            (
                "verification/sms_delivered.json",
                Trigger::VerificationSmsDelivered,
            ),
        ];
        for (name, trigger) in cases {
            let body = fixture(&format!("callbacks/{name}"));
            let classification = classify_application(&body).unwrap();
            assert_eq!(classification.trigger, trigger, "{name}");
            assert_eq!(classification.api, trigger.api().unwrap(), "{name}");
            assert!(classification.message_id.is_some(), "{name} has its id");
        }
    }

    #[test]
    fn an_undocumented_event_is_told_apart_by_its_ids() {
        let voice = br#"{"event":"ringing","callid":"c-1"}"#;
        let verification = br#"{"event":"VerificationNewEvent","id":"v-1","method":"sms"}"#;
        assert_eq!(
            classify_application(voice).unwrap().trigger,
            Trigger::VoiceEvent
        );
        assert_eq!(
            classify_application(verification).unwrap().trigger,
            Trigger::VerificationEvent
        );
    }

    #[test]
    fn only_ice_ace_pie_and_the_verification_request_wait_for_an_answer() {
        let waiting: Vec<Trigger> = Trigger::all().filter(|t| t.awaits_answer()).collect();
        assert_eq!(
            waiting,
            [
                Trigger::VoiceIce,
                Trigger::VoiceAce,
                Trigger::VoicePie,
                Trigger::VerificationRequest
            ]
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_as_classify_refuses_it() {
        assert_eq!(
            classify_application(b"[1]").unwrap_err(),
            ClassifyError::NotAnObject
        );
        assert!(matches!(
            classify_application(b"{nope").unwrap_err(),
            ClassifyError::NotJson(_)
        ));
    }
}
