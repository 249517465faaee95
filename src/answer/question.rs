//! What Sinch asks in a callback that waits for an answer, as far as choosing the answer
//! needs it, and whether an answer fits the question. Pure.

use crate::callback::Trigger;
use crate::callback::answer::InvalidAnswer;
use crate::callback::answer::verification::validate_verification_answer;
use crate::callback::answer::voice::validate_svaml;
use crate::callback::family::OpenName;
use crate::callback::verification::VerificationMethod;
use crate::callback::voice::VoiceEvent;

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
    /// The question a journaled callback asks; `None` when its trigger takes no answer.
    /// Only the members a rule matches on are read, each on its own: a member of another
    /// shape elsewhere in the body (Sinch adds fields) must not make a rule for the number
    /// called stop matching. A detail that does not read is absent: Sinch waits all the same.
    pub fn of(trigger: Trigger, body: &[u8]) -> Option<Question> {
        let event = match trigger {
            Trigger::VoiceIce => VoiceEvent::Ice,
            Trigger::VoiceAce => VoiceEvent::Ace,
            Trigger::VoicePie => VoiceEvent::Pie,
            Trigger::VerificationRequest => {
                let method = Details::read(body)
                    .text(&["method"])
                    .map(|method| VerificationMethod::parse(&method));
                return Some(Question::Verification { method });
            }
            _ => return None,
        };
        let details = Details::read(body);
        let (to, menu, value) = match event {
            VoiceEvent::Ice => (details.text(&["to", "endpoint"]), None, None),
            VoiceEvent::Pie => (
                None,
                details.text(&["menuResult", "menuId"]),
                details.text(&["menuResult", "value"]),
            ),
            _ => (None, None, None),
        };
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

/// A body read as loosely as JSON allows, for the few members a rule matches on.
struct Details(Option<serde_json::Value>);

impl Details {
    fn read(body: &[u8]) -> Details {
        Details(serde_json::from_slice(body).ok())
    }

    /// A string member at `path`, or `None` when absent, empty or not a string.
    fn text(&self, path: &[&str]) -> Option<String> {
        let mut at = self.0.as_ref()?;
        for name in path {
            at = at.get(name)?;
        }
        at.as_str()
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
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
    fn a_member_of_an_unexpected_shape_elsewhere_leaves_the_details_readable() {
        let ice = br#"{"event":"ice","callid":"c","version":"1","custom":{"a":1},
            "userRate":{"amount":"0.1"},"to":{"type":"number","endpoint":"+46201000188"}}"#;
        let Some(Question::Voice { to, .. }) = Question::of(Trigger::VoiceIce, ice) else {
            panic!("not a voice question")
        };
        assert_eq!(to.as_deref(), Some("+46201000188"));
        let pie = br#"{"event":"pie","callid":"c","version":[],
            "menuResult":{"type":"sequence","menuId":"main","value":"1","inputMethod":7}}"#;
        let Some(Question::Voice { menu, value, .. }) = Question::of(Trigger::VoicePie, pie) else {
            panic!("not a voice question")
        };
        assert_eq!(
            (menu.as_deref(), value.as_deref()),
            (Some("main"), Some("1"))
        );
        let request = br#"{"event":"VerificationRequestEvent","id":"v","method":"SMS",
            "price":"free","identity":{"type":"number","endpoint":"+4670"}}"#;
        assert_eq!(
            Question::of(Trigger::VerificationRequest, request),
            Some(Question::Verification {
                method: Some(VerificationMethod::Sms)
            })
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
