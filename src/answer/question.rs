//! What Sinch asks in a callback that waits for an answer, as far as choosing the answer
//! needs it, and whether an answer fits the question. Pure.

use crate::callback::Trigger;
use crate::callback::answer::InvalidAnswer;
use crate::callback::answer::verification::validate_verification_answer;
use crate::callback::answer::voice::validate_svaml;
use crate::callback::verification::{VerificationCallback, VerificationMethod, parse_verification};
use crate::callback::voice::{VoiceCallback, VoiceEvent, parse_voice};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// ICE, ACE or PIE: SVAML is the answer.
    Voice {
        event: VoiceEvent,
        /// ICE: the number called.
        to: Option<String>,
        /// PIE: the menu that returned, and its input.
        menu: Option<String>,
        value: Option<String>,
    },
    /// A verification request: allow or deny.
    Verification { method: Option<VerificationMethod> },
}

impl Question {
    /// The question a journaled callback asks; `None` when its trigger takes no answer. A
    /// body whose details do not read still asks its trigger's question, with no details:
    /// Sinch waits all the same.
    pub fn of(trigger: Trigger, body: &[u8]) -> Option<Question> {
        let event = match trigger {
            Trigger::VoiceIce => VoiceEvent::Ice,
            Trigger::VoiceAce => VoiceEvent::Ace,
            Trigger::VoicePie => VoiceEvent::Pie,
            Trigger::VerificationRequest => {
                let method = match parse_verification(body) {
                    Ok(VerificationCallback::Request(request)) => request.common.method,
                    _ => None,
                };
                return Some(Question::Verification { method });
            }
            _ => return None,
        };
        let (mut to, mut menu, mut value) = (None, None, None);
        match parse_voice(body) {
            Ok(VoiceCallback::Ice(ice)) => to = ice.to.and_then(|to| to.endpoint),
            Ok(VoiceCallback::Pie(pie)) => {
                if let Some(result) = pie.menu_result {
                    (menu, value) = (result.menu_id, result.value);
                }
            }
            _ => {}
        }
        Some(Question::Voice {
            event,
            to,
            menu,
            value,
        })
    }

    /// Reads an application's answer and checks it fits; what to relay to Sinch, in the SDK
    /// models' spelling.
    pub fn check(&self, answer: &[u8]) -> Result<serde_json::Value, InvalidAnswer> {
        let relayed = match self {
            Question::Voice { event, .. } => serde_json::to_value(validate_svaml(event, answer)?),
            Question::Verification { method } => {
                serde_json::to_value(validate_verification_answer(method.as_ref(), answer)?)
            }
        };
        relayed.map_err(|e| InvalidAnswer {
            reason: e.to_string(),
        })
    }

    /// `ice`, `ace`, `pie` or `verification_request`: the metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Question::Voice { event, .. } => match event {
                VoiceEvent::Ice => "ice",
                VoiceEvent::Ace => "ace",
                _ => "pie",
            },
            Question::Verification { .. } => "verification_request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::family::fixture;

    #[test]
    fn an_ice_asks_about_the_number_called_and_a_pie_about_its_menu() {
        let ice = Question::of(Trigger::VoiceIce, &fixture("callbacks/voice/ice.json")).unwrap();
        let Question::Voice { to, .. } = ice else {
            panic!("not a voice question")
        };
        assert!(to.is_some_and(|to| !to.is_empty()));
        let pie = Question::of(Trigger::VoicePie, &fixture("callbacks/voice/pie.json")).unwrap();
        let Question::Voice { menu, value, .. } = pie else {
            panic!("not a voice question")
        };
        assert!(menu.is_some() && value.is_some());
    }

    #[test]
    fn a_verification_request_asks_about_its_method() {
        let body = fixture("callbacks/verification/request.json");
        assert_eq!(
            Question::of(Trigger::VerificationRequest, &body),
            Some(Question::Verification {
                method: Some(VerificationMethod::Sms)
            })
        );
    }

    #[test]
    fn callbacks_that_take_no_answer_ask_nothing() {
        for trigger in [
            Trigger::VoiceDice,
            Trigger::VoiceNotify,
            Trigger::VerificationResult,
            Trigger::MessageDelivery,
        ] {
            assert_eq!(Question::of(trigger, b"{}"), None, "{trigger}");
        }
    }

    #[test]
    fn a_body_with_unreadable_details_still_asks_its_question() {
        let question = Question::of(Trigger::VoiceIce, br#"{"event":"ice","to":7}"#).unwrap();
        assert_eq!(
            question,
            Question::Voice {
                event: VoiceEvent::Ice,
                to: None,
                menu: None,
                value: None
            }
        );
    }

    #[test]
    fn an_answer_that_does_not_fit_is_refused_with_its_reason() {
        let ace = Question::of(Trigger::VoiceAce, &fixture("callbacks/voice/ace.json")).unwrap();
        assert!(ace.check(br#"{"action":{"name":"continue"}}"#).is_ok());
        let error = ace.check(br#"{"action":{"name":"park"}}"#).unwrap_err();
        assert!(error.reason.contains("park"), "{error}");
        assert!(ace.check(b"not json").is_err());
    }
}
