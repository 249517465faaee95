//! The answer to a VerificationRequestEvent: `{"action":"allow"|"deny"}` plus, for an allow,
//! the settings of the verification's method. Names follow the current spec (the Java SDK's
//! Verification 2.0.1 models and the Node SDK): `sms` {`code`, `codeType`, `expiry`,
//! `acceptLanguage`}, `flashCall` {`cli`, `dialTimeout`, `interceptionTimeout`}, `callout`
//! {`code`, `speech.locale`}, `whatsapp` {`codeType`, `acceptLanguage`}. The old docs'
//! `callout` {`locale`, `ttsMenu`, `wavFile`, `pin`} is not modelled. Every settings object
//! accepts other keys (additional properties in the Java SDK): they are relayed as given.

use crate::callback::family::OpenName;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{InvalidAnswer, read_answer};
use crate::callback::family::string_or_number;
use crate::callback::verification::VerificationMethod;

/// An answer to a verification request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationAnswer {
    pub action: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsSettings>,
    #[serde(
        rename = "flashCall",
        alias = "flashcall",
        skip_serializing_if = "Option::is_none"
    )]
    pub flash_call: Option<FlashCallSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callout: Option<CalloutSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<WhatsAppSettings>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `allow` or `deny` (read in any case, written in lower case as the spec spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Verdict {
    Allow,
    Deny,
}

impl TryFrom<String> for Verdict {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "allow" => Ok(Verdict::Allow),
            "deny" => Ok(Verdict::Deny),
            _ => Err(format!("action must be allow or deny, not {text:?}")),
        }
    }
}

/// `Numeric`, `Alpha` or `Alphanumeric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub enum CodeType {
    Numeric,
    Alpha,
    Alphanumeric,
}

impl TryFrom<String> for CodeType {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "numeric" => Ok(CodeType::Numeric),
            "alpha" => Ok(CodeType::Alpha),
            "alphanumeric" => Ok(CodeType::Alphanumeric),
            _ => Err(format!(
                "codeType must be Numeric, Alpha or Alphanumeric, not {text:?}"
            )),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsSettings {
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_type: Option<CodeType>,
    /// `HH:MM:SS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_language: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlashCallSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cli: Option<String>,
    /// How long the flash call rings, 5 to 120 seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dial_timeout: Option<u32>,
    /// 5 to 120 seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interception_timeout: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A phone call that speaks the code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CalloutSettings {
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speech: Option<Speech>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Speech {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatsAppSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_type: Option<CodeType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_language: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl VerificationAnswer {
    /// `{"action":"allow"}`: Sinch's own settings for the method.
    pub fn allow() -> Self {
        Self::bare(Verdict::Allow)
    }

    /// `{"action":"deny"}`.
    pub fn deny() -> Self {
        Self::bare(Verdict::Deny)
    }

    fn bare(action: Verdict) -> Self {
        VerificationAnswer {
            action,
            sms: None,
            flash_call: None,
            callout: None,
            whatsapp: None,
            extra: Map::new(),
        }
    }

    /// The JSON names of the settings objects present.
    fn settings(&self) -> Vec<&'static str> {
        [
            (self.sms.is_some(), "sms"),
            (self.flash_call.is_some(), "flashCall"),
            (self.callout.is_some(), "callout"),
            (self.whatsapp.is_some(), "whatsapp"),
        ]
        .into_iter()
        .filter_map(|(present, name)| present.then_some(name))
        .collect()
    }
}

/// The answer when neither the application nor a policy gives one: **deny**. Sinch itself
/// rejects the verification when its request event goes unanswered ("Failure to respond to
/// this callback will result in rejection of the entire verification process"), and the
/// request event is the one place to refuse a verification nobody vouched for: each allowed
/// verification sends a paid SMS or call, which is what SMS pumping and toll fraud exploit.
/// An operator who wants verifications to go ahead configures `allow` in the policy.
pub fn default_verification_answer() -> VerificationAnswer {
    VerificationAnswer::deny()
}

/// Reads and checks an application's answer to a request for a verification by `method`.
///
/// A deny is honoured as soon as the action reads as `deny`, whatever else the answer holds,
/// and is relayed as a bare deny: refusing it over a bad setting would hand the decision to
/// the fallback, which may allow what the application refused.
pub fn validate_verification_answer(
    method: Option<&VerificationMethod>,
    body: &[u8],
) -> Result<VerificationAnswer, InvalidAnswer> {
    if reads_as_deny(body) {
        return Ok(VerificationAnswer::deny());
    }
    let answer: VerificationAnswer = read_answer(body)?;
    check_verification_answer(method, &answer)?;
    Ok(answer)
}

fn reads_as_deny(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct ActionOnly {
        action: String,
    }
    serde_json::from_slice::<ActionOnly>(body).is_ok_and(|a| a.action.eq_ignore_ascii_case("deny"))
}

/// Checks an answer (an application's, or a policy's when configuration is loaded): at most
/// one method's settings, those of the verification's own method, within the spec's limits.
/// With no method known, any one method's settings are accepted.
pub fn check_verification_answer(
    method: Option<&VerificationMethod>,
    answer: &VerificationAnswer,
) -> Result<(), InvalidAnswer> {
    if answer.action == Verdict::Deny {
        return Ok(());
    }
    let settings = answer.settings();
    if settings.len() > 1 {
        return Err(InvalidAnswer::new(format!(
            "settings for more than one method: {}",
            settings.join(", ")
        )));
    }
    if let (Some(given), Some(method)) = (settings.first(), method)
        && settings_key(method) != Some(*given)
    {
        return Err(InvalidAnswer::new(format!(
            "{given} settings for a {} verification",
            method.as_str()
        )));
    }
    check_limits(answer)
}

/// Which settings object belongs to `method` (`seamless` and unknown methods take none).
pub fn settings_key(method: &VerificationMethod) -> Option<&'static str> {
    match method {
        VerificationMethod::Sms => Some("sms"),
        VerificationMethod::FlashCall => Some("flashCall"),
        VerificationMethod::Callout => Some("callout"),
        VerificationMethod::WhatsApp => Some("whatsapp"),
        VerificationMethod::Seamless | VerificationMethod::Other(_) => None,
    }
}

fn check_limits(answer: &VerificationAnswer) -> Result<(), InvalidAnswer> {
    if let Some(expiry) = answer.sms.as_ref().and_then(|s| s.expiry.as_deref())
        && !is_hh_mm_ss(expiry)
    {
        return Err(InvalidAnswer::new(format!(
            "sms.expiry must be HH:MM:SS, not {expiry:?}"
        )));
    }
    if let Some(flash) = &answer.flash_call {
        within("flashCall.dialTimeout", flash.dial_timeout)?;
        within("flashCall.interceptionTimeout", flash.interception_timeout)?;
    }
    Ok(())
}

fn within(what: &str, seconds: Option<u32>) -> Result<(), InvalidAnswer> {
    match seconds {
        Some(s) if !(5..=120).contains(&s) => Err(InvalidAnswer::new(format!(
            "{what} is {s}, outside 5 to 120 seconds"
        ))),
        _ => Ok(()),
    }
}

fn is_hh_mm_ss(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    let two_digits = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [h, m, s] if [h, m, s].iter().all(|p| two_digits(p)) => {
            m.parse::<u8>().is_ok_and(|m| m < 60) && s.parse::<u8>().is_ok_and(|s| s < 60)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::answer::answer_fixture;
    use serde_json::json;

    fn validate(method: VerificationMethod, body: &[u8]) -> Result<Value, String> {
        validate_verification_answer(Some(&method), body)
            .map(|a| serde_json::to_value(a).unwrap())
            .map_err(|e| e.reason)
    }

    #[test]
    fn the_spec_examples_are_valid_for_their_method_and_keep_extra_keys() {
        use VerificationMethod::*;
        let cases = [
            ("docs_sms.json", Sms),
            ("sms.json", Sms),
            ("flash_call.json", FlashCall),
            ("callout.json", Callout),
            ("whatsapp.json", WhatsApp),
            ("allow.json", Sms),
            ("allow.json", Seamless),
            ("deny.json", FlashCall),
        ];
        for (name, method) in cases {
            let body = answer_fixture(&format!("verification/{name}"));
            let answer = validate(method.clone(), &body);
            assert!(answer.is_ok(), "{name} for {}: {answer:?}", method.as_str());
        }
        let flash = validate(FlashCall, &answer_fixture("verification/flash_call.json")).unwrap();
        assert_eq!(
            flash,
            json!({"action":"allow","flashCall":{"cli":"+12025550187","dialTimeout":30,
                   "interceptionTimeout":60,"my key":"my value"}})
        );
    }

    #[test]
    fn settings_for_another_method_or_for_two_methods_are_refused() {
        let sms = answer_fixture("verification/sms.json");
        assert_eq!(
            validate(VerificationMethod::FlashCall, &sms).unwrap_err(),
            "sms settings for a flashcall verification"
        );
        assert_eq!(
            validate(VerificationMethod::Seamless, &sms).unwrap_err(),
            "sms settings for a seamless verification"
        );
        let two = br#"{"action":"allow","sms":{},"callout":{}}"#;
        assert_eq!(
            validate(VerificationMethod::Sms, two).unwrap_err(),
            "settings for more than one method: sms, callout"
        );
        assert!(validate_verification_answer(None, &sms).is_ok());
    }

    #[test]
    fn out_of_spec_settings_are_refused_with_a_reason() {
        use VerificationMethod::*;
        let cases = [
            (
                Sms,
                r#"{"action":"allow","sms":{"expiry":"1:02:03"}}"#,
                "sms.expiry must be HH:MM:SS, not \"1:02:03\"",
            ),
            (
                Sms,
                r#"{"action":"allow","sms":{"expiry":"00:61:00"}}"#,
                "sms.expiry must be HH:MM:SS, not \"00:61:00\"",
            ),
            (
                FlashCall,
                r#"{"action":"allow","flashCall":{"dialTimeout":4}}"#,
                "flashCall.dialTimeout is 4, outside 5 to 120 seconds",
            ),
            (
                FlashCall,
                r#"{"action":"allow","flashCall":{"interceptionTimeout":121}}"#,
                "flashCall.interceptionTimeout is 121, outside 5 to 120 seconds",
            ),
        ];
        for (method, body, expected) in cases {
            assert_eq!(
                validate(method, body.as_bytes()).unwrap_err(),
                expected,
                "{body}"
            );
        }
        let hex = validate(Sms, br#"{"action":"allow","sms":{"codeType":"Hex"}}"#).unwrap_err();
        assert!(
            hex.contains("codeType must be Numeric, Alpha or Alphanumeric"),
            "{hex}"
        );
        let maybe = validate(Sms, br#"{"action":"maybe"}"#).unwrap_err();
        assert!(maybe.contains("action must be allow or deny"), "{maybe}");
        assert!(
            validate(Sms, br#"{"sms":{}}"#)
                .unwrap_err()
                .contains("missing field `action`")
        );
        assert!(validate(Sms, b"allow").is_err());
    }

    #[test]
    fn names_in_another_case_are_accepted_and_written_as_the_spec_spells_them() {
        let body = br#"{"action":"ALLOW","flashcall":{"cli":"+1"},"sms":null}"#;
        let answer = validate(VerificationMethod::FlashCall, body).unwrap();
        assert_eq!(answer, json!({"action":"allow","flashCall":{"cli":"+1"}}));
        let body = br#"{"action":"allow","sms":{"code":3688,"codeType":"numeric"}}"#;
        let answer = validate(VerificationMethod::Sms, body).unwrap();
        assert_eq!(
            answer,
            json!({"action":"allow","sms":{"code":"3688","codeType":"Numeric"}})
        );
    }

    #[test]
    fn a_deny_is_honoured_whatever_else_it_carries() {
        let body = br#"{"action":"Deny","flashCall":{"dialTimeout":1},"sms":{"expiry":"soon"}}"#;
        assert_eq!(
            validate(VerificationMethod::Sms, body),
            Ok(json!({"action":"deny"}))
        );
    }

    #[test]
    fn without_an_answer_the_verification_is_denied() {
        let default = serde_json::to_string(&default_verification_answer()).unwrap();
        assert_eq!(default, r#"{"action":"deny"}"#);
        assert_eq!(
            check_verification_answer(
                Some(&VerificationMethod::Sms),
                &default_verification_answer()
            ),
            Ok(())
        );
        let allow = serde_json::to_string(&VerificationAnswer::allow()).unwrap();
        assert_eq!(allow, r#"{"action":"allow"}"#);
    }
}
