//! The names of the open enums of Voice and Verification callbacks (documented values plus
//! `Other`): each reads any case and keeps an undocumented value, through `OpenName`'s
//! default methods over its table; the `String` conversions are what its
//! `#[serde(from, into)]` uses.

use super::family::OpenName;
use super::verification::*;
use super::voice::*;

impl OpenName for VoiceEvent {
    const NAMES: &'static [(Self, &'static str)] = VOICE_EVENTS;
    fn other(text: String) -> Self {
        VoiceEvent::Other(text)
    }
    fn other_text(&self) -> Option<&str> {
        match self {
            VoiceEvent::Other(text) => Some(text),
            _ => None,
        }
    }
}

impl From<String> for VoiceEvent {
    fn from(text: String) -> Self {
        VoiceEvent::parse(&text)
    }
}

impl From<VoiceEvent> for String {
    fn from(value: VoiceEvent) -> String {
        value.as_str().to_owned()
    }
}

impl OpenName for CallDomain {
    const NAMES: &'static [(Self, &'static str)] = CALL_DOMAINS;
    fn other(text: String) -> Self {
        CallDomain::Other(text)
    }
    fn other_text(&self) -> Option<&str> {
        match self {
            CallDomain::Other(text) => Some(text),
            _ => None,
        }
    }
}

impl From<String> for CallDomain {
    fn from(text: String) -> Self {
        CallDomain::parse(&text)
    }
}

impl From<CallDomain> for String {
    fn from(value: CallDomain) -> String {
        value.as_str().to_owned()
    }
}

impl OpenName for DestinationType {
    const NAMES: &'static [(Self, &'static str)] = DESTINATION_TYPES;
    fn other(text: String) -> Self {
        DestinationType::Other(text)
    }
    fn other_text(&self) -> Option<&str> {
        match self {
            DestinationType::Other(text) => Some(text),
            _ => None,
        }
    }
}

impl From<String> for DestinationType {
    fn from(text: String) -> Self {
        DestinationType::parse(&text)
    }
}

impl From<DestinationType> for String {
    fn from(value: DestinationType) -> String {
        value.as_str().to_owned()
    }
}

impl OpenName for MenuResultType {
    const NAMES: &'static [(Self, &'static str)] = MENU_RESULT_TYPES;
    fn other(text: String) -> Self {
        MenuResultType::Other(text)
    }
    fn other_text(&self) -> Option<&str> {
        match self {
            MenuResultType::Other(text) => Some(text),
            _ => None,
        }
    }
}

impl From<String> for MenuResultType {
    fn from(text: String) -> Self {
        MenuResultType::parse(&text)
    }
}

impl From<MenuResultType> for String {
    fn from(value: MenuResultType) -> String {
        value.as_str().to_owned()
    }
}

impl OpenName for CallResult {
    const NAMES: &'static [(Self, &'static str)] = CALL_RESULTS;
    fn other(text: String) -> Self {
        CallResult::Other(text)
    }
    fn other_text(&self) -> Option<&str> {
        match self {
            CallResult::Other(text) => Some(text),
            _ => None,
        }
    }
}

impl From<String> for CallResult {
    fn from(text: String) -> Self {
        CallResult::parse(&text)
    }
}

impl From<CallResult> for String {
    fn from(value: CallResult) -> String {
        value.as_str().to_owned()
    }
}

impl OpenName for VerificationEvent {
    const NAMES: &'static [(Self, &'static str)] = VERIFICATION_EVENTS;
    fn other(text: String) -> Self {
        VerificationEvent::Other(text)
    }
    fn other_text(&self) -> Option<&str> {
        match self {
            VerificationEvent::Other(text) => Some(text),
            _ => None,
        }
    }
}

impl From<String> for VerificationEvent {
    fn from(text: String) -> Self {
        VerificationEvent::parse(&text)
    }
}

impl From<VerificationEvent> for String {
    fn from(value: VerificationEvent) -> String {
        value.as_str().to_owned()
    }
}

impl OpenName for VerificationMethod {
    const NAMES: &'static [(Self, &'static str)] = VERIFICATION_METHODS;
    fn other(text: String) -> Self {
        VerificationMethod::Other(text)
    }
    fn other_text(&self) -> Option<&str> {
        match self {
            VerificationMethod::Other(text) => Some(text),
            _ => None,
        }
    }
}

impl From<String> for VerificationMethod {
    fn from(text: String) -> Self {
        VerificationMethod::parse(&text)
    }
}

impl From<VerificationMethod> for String {
    fn from(value: VerificationMethod) -> String {
        value.as_str().to_owned()
    }
}

impl OpenName for VerificationStatus {
    const NAMES: &'static [(Self, &'static str)] = VERIFICATION_STATUSES;
    fn other(text: String) -> Self {
        VerificationStatus::Other(text)
    }
    fn other_text(&self) -> Option<&str> {
        match self {
            VerificationStatus::Other(text) => Some(text),
            _ => None,
        }
    }
}

impl From<String> for VerificationStatus {
    fn from(text: String) -> Self {
        VerificationStatus::parse(&text)
    }
}

impl From<VerificationStatus> for String {
    fn from(value: VerificationStatus) -> String {
        value.as_str().to_owned()
    }
}
