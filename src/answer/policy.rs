//! The answer policy: what to answer Sinch when the application does not (no `ANSWER_URL`,
//! or it was late or wrong). Read once from `CONFIG_FILE`'s `[[answer.voice]]` and
//! `[[answer.verification]]` rules, each checked against what Sinch accepts before the
//! service starts. Pure: a question comes in, the first rule that matches answers it, and
//! without one the documented defaults do (`callback::answer`).

use serde::Deserialize;

use super::question::Question;
use crate::callback::answer::svaml::Svaml;
use crate::callback::answer::verification::{
    VerificationAnswer, check_verification_answer, default_verification_answer,
};
use crate::callback::answer::voice::{check_svaml, default_svaml};
use crate::callback::family::OpenName;
use crate::callback::verification::VerificationMethod;
use crate::callback::voice::VoiceEvent;

/// The rules, in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    voice: Vec<VoiceRule>,
    verification: Vec<VerificationRule>,
}

#[derive(Debug, Clone)]
struct VoiceRule {
    /// `answer.voice[N]`, 1-based, for logs and the stored answer.
    name: String,
    event: VoiceEvent,
    to: Option<String>,
    menu: Option<String>,
    value: Option<String>,
    svaml: Svaml,
}

#[derive(Debug, Clone)]
struct VerificationRule {
    name: String,
    method: Option<VerificationMethod>,
    answer: VerificationAnswer,
}

/// What the policy answers, and which rule said so (`default` when none matched).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyAnswer {
    pub body: serde_json::Value,
    pub rule: String,
}

#[derive(Deserialize, Default)]
struct File {
    #[serde(default)]
    answer: Option<Section>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Section {
    #[serde(default)]
    voice: Vec<VoiceEntry>,
    #[serde(default)]
    verification: Vec<VerificationEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoiceEntry {
    event: String,
    to: Option<String>,
    menu: Option<String>,
    value: Option<String>,
    /// A table, or a string holding the JSON document.
    svaml: toml::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerificationEntry {
    method: Option<String>,
    /// A table, or a string holding the JSON document.
    answer: toml::Value,
}

impl Policy {
    /// Reads the `answer` rules of a configuration file (other sections are not its
    /// business). Errors name the rule and what Sinch would not accept.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let file: File = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        let section = file.answer.unwrap_or_default();
        let voice = section
            .voice
            .into_iter()
            .enumerate()
            .map(|(i, entry)| voice_rule(format!("answer.voice[{}]", i + 1), entry))
            .collect::<Result<_, _>>()?;
        let verification = section
            .verification
            .into_iter()
            .enumerate()
            .map(|(i, entry)| verification_rule(format!("answer.verification[{}]", i + 1), entry))
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            voice,
            verification,
        })
    }

    /// How many rules there are, for the startup log.
    pub fn len(&self) -> usize {
        self.voice.len() + self.verification.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The answer to `question`: the first matching rule's, else the default.
    pub fn answer(&self, question: &Question) -> PolicyAnswer {
        match question {
            Question::Voice {
                event,
                to,
                menu,
                value,
            } => {
                let to = to.as_deref().map(phone_number);
                let found = self.voice.iter().find(|rule| {
                    rule.event == *event
                        && matches_if_set(&rule.to, &to)
                        && matches_if_set(&rule.menu, menu)
                        && matches_if_set(&rule.value, value)
                });
                match found {
                    Some(rule) => answered(&rule.svaml, &rule.name),
                    // A question is only asked for ICE, ACE and PIE, which all have a default.
                    None => answered(
                        &default_svaml(event).unwrap_or_else(Svaml::hangup),
                        "default",
                    ),
                }
            }
            Question::Verification { method } => {
                let found = self
                    .verification
                    .iter()
                    .find(|rule| rule.method.is_none() || rule.method.as_ref() == method.as_ref());
                match found {
                    Some(rule) => answered(&rule.answer, &rule.name),
                    None => answered(&default_verification_answer(), "default"),
                }
            }
        }
    }
}

/// A number as compared: Sinch's captures show the called number with and without `+`, and
/// people write numbers with spaces and dashes.
fn phone_number(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
        .collect()
}

fn matches_if_set(rule: &Option<String>, given: &Option<String>) -> bool {
    rule.as_ref()
        .is_none_or(|wanted| Some(wanted) == given.as_ref())
}

fn answered<T: serde::Serialize>(document: &T, rule: &str) -> PolicyAnswer {
    PolicyAnswer {
        // Serialising these types cannot fail (string keys, no non-finite floats are
        // accepted when reading them); `Null` would be refused by Sinch, not panic here.
        body: serde_json::to_value(document).unwrap_or_default(),
        rule: rule.to_owned(),
    }
}

fn voice_rule(name: String, entry: VoiceEntry) -> Result<VoiceRule, String> {
    let at = |reason: String| format!("{name}: {reason}");
    let event = VoiceEvent::parse(&entry.event);
    if !event.awaits_answer() {
        return Err(at(format!(
            "event = {:?}: only ice, ace and pie wait for an answer",
            entry.event
        )));
    }
    if entry.to.is_some() && event != VoiceEvent::Ice {
        return Err(at("to is only known in an ICE (the number called)".into()));
    }
    if (entry.menu.is_some() || entry.value.is_some()) && event != VoiceEvent::Pie {
        return Err(at("menu and value are only known in a PIE".into()));
    }
    let svaml: Svaml = document(&entry.svaml).map_err(|e| at(format!("svaml: {e}")))?;
    check_svaml(&event, &svaml).map_err(|e| at(format!("svaml: {}", e.reason)))?;
    Ok(VoiceRule {
        name,
        event,
        to: entry.to.as_deref().map(phone_number),
        menu: entry.menu,
        value: entry.value,
        svaml,
    })
}

fn verification_rule(name: String, entry: VerificationEntry) -> Result<VerificationRule, String> {
    let at = |reason: String| format!("{name}: {reason}");
    let method = entry.method.as_deref().map(VerificationMethod::parse);
    if let Some(VerificationMethod::Other(other)) = &method {
        return Err(at(format!(
            "method = {other:?} is not one of sms, flashcall, callout, seamless, whatsapp"
        )));
    }
    let answer: VerificationAnswer =
        document(&entry.answer).map_err(|e| at(format!("answer: {e}")))?;
    check_verification_answer(method.as_ref(), &answer)
        .map_err(|e| at(format!("answer: {}", e.reason)))?;
    Ok(VerificationRule {
        name,
        method,
        answer,
    })
}

/// A document given as a TOML table or as a string of JSON.
fn document<T: serde::de::DeserializeOwned>(value: &toml::Value) -> Result<T, String> {
    let json = match value {
        toml::Value::String(text) => serde_json::from_str(text).map_err(|e| e.to_string())?,
        other => serde_json::to_value(other).map_err(|e| e.to_string())?,
    };
    serde_json::from_value(json).map_err(|e| e.to_string())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ice(to: &str) -> Question {
        Question::Voice {
            event: VoiceEvent::Ice,
            to: Some(to.into()),
            menu: None,
            value: None,
        }
    }

    const RULES: &str = r#"
        [[source]]
        name = "ignored here"

        [[answer.voice]]
        event = "ice"
        to = "+15550100"
        svaml = { action = { name = "connectPstn", number = "+15550199" } }

        [[answer.voice]]
        event = "ice"
        svaml = '{"instructions":[{"name":"say","text":"Closed","locale":"en-US"}],"action":{"name":"hangup"}}'

        [[answer.voice]]
        event = "pie"
        menu = "main"
        value = "1"
        svaml = { action = { name = "continue" } }

        [[answer.verification]]
        method = "sms"
        answer = { action = "allow", sms = { codeType = "Numeric" } }
    "#;

    #[test]
    fn the_first_rule_that_matches_answers_and_names_itself() {
        let policy = Policy::parse(RULES).unwrap();
        assert_eq!(policy.len(), 4);
        let to_sales = policy.answer(&ice("+15550100"));
        assert_eq!(to_sales.rule, "answer.voice[1]");
        assert_eq!(to_sales.body["action"]["name"], "connectPstn");
        let written_otherwise = policy.answer(&ice("1 555-0100"));
        assert_eq!(
            written_otherwise.rule, "answer.voice[1]",
            "with or without +"
        );
        let elsewhere = policy.answer(&ice("+15550111"));
        assert_eq!(elsewhere.rule, "answer.voice[2]");
        assert_eq!(elsewhere.body["instructions"][0]["text"], "Closed");
    }

    #[test]
    fn a_pie_rule_matches_its_menu_and_value_only() {
        let policy = Policy::parse(RULES).unwrap();
        let pie = |value: &str| Question::Voice {
            event: VoiceEvent::Pie,
            to: None,
            menu: Some("main".into()),
            value: Some(value.into()),
        };
        assert_eq!(policy.answer(&pie("1")).rule, "answer.voice[3]");
        let other = policy.answer(&pie("2"));
        assert_eq!(other.rule, "default");
        assert_eq!(other.body, json!({"action": {"name": "hangup"}}));
    }

    #[test]
    fn without_rules_the_documented_defaults_answer() {
        let policy = Policy::parse("").unwrap();
        let ace = Question::Voice {
            event: VoiceEvent::Ace,
            to: None,
            menu: None,
            value: None,
        };
        assert_eq!(
            policy.answer(&ice("+1")).body,
            json!({"action": {"name": "hangup"}})
        );
        assert_eq!(
            policy.answer(&ace).body,
            json!({"action": {"name": "continue"}})
        );
        let request = Question::Verification {
            method: Some(VerificationMethod::Sms),
        };
        assert_eq!(
            policy.answer(&request),
            PolicyAnswer {
                body: json!({"action": "deny"}),
                rule: "default".into()
            }
        );
    }

    #[test]
    fn a_verification_rule_applies_to_its_method_only() {
        let policy = Policy::parse(RULES).unwrap();
        let sms = Question::Verification {
            method: Some(VerificationMethod::Sms),
        };
        let callout = Question::Verification {
            method: Some(VerificationMethod::Callout),
        };
        let allowed = policy.answer(&sms);
        assert_eq!(allowed.rule, "answer.verification[1]");
        assert_eq!(
            allowed.body,
            json!({"action": "allow", "sms": {"codeType": "Numeric"}})
        );
        assert_eq!(policy.answer(&callout).body["action"], "deny");
    }

    #[test]
    fn rules_sinch_would_not_accept_stop_startup_with_the_rule_named() {
        let cases = [
            (
                "[[answer.voice]]\nevent = \"dice\"\nsvaml = { action = { name = \"hangup\" } }",
                "answer.voice[1]: event = \"dice\"",
            ),
            (
                "[[answer.voice]]\nevent = \"ace\"\nsvaml = { action = { name = \"park\" } }",
                "answer.voice[1]: svaml: park is not allowed",
            ),
            (
                "[[answer.voice]]\nevent = \"ace\"\nto = \"+1\"\nsvaml = { action = { name = \"continue\" } }",
                "to is only known in an ICE",
            ),
            (
                "[[answer.voice]]\nevent = \"ice\"\nsvaml = '{not json'",
                "answer.voice[1]: svaml:",
            ),
            (
                "[[answer.verification]]\nmethod = \"sms\"\nanswer = { action = \"allow\", callout = {} }",
                "answer.verification[1]: answer: callout settings for a sms verification",
            ),
            (
                "[[answer.verification]]\nmethod = \"carrier-pigeon\"\nanswer = { action = \"deny\" }",
                "not one of sms",
            ),
            (
                "[[answer.verification]]\nanswer = { action = \"maybe\" }",
                "action must be allow or deny",
            ),
            ("[answer]\nvoices = []", "unknown field `voices`"),
        ];
        for (text, expected) in cases {
            let error = Policy::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}\n→ {error}");
        }
    }
}
