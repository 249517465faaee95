//! Classification of a verified body: which API and trigger it is, and the key that makes a
//! redelivery recognisable. Total by construction: any JSON object classifies (as `UNKNOWN`
//! at worst); only bodies that are not JSON objects are refused.
//!
//! This runs on every request, so it reads the top level into borrowed raw values and only
//! parses the few inner fields a dedupe key needs.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::trigger::{Api, CONVERSATION_KEYS, Trigger};

/// What the receiver needs to know about a callback before it journals it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub api: Api,
    pub trigger: Trigger,
    /// Unique per business event: equal keys mean "the same callback delivered again".
    pub dedupe_key: String,
    pub app_id: Option<String>,
    pub project_id: Option<String>,
    pub message_id: Option<String>,
    /// The status a delivery report reports (Conversation or SMS), as sent.
    pub status: Option<String>,
}

/// Why a body cannot be a Sinch callback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    #[error("body is not UTF-8 (byte {valid_up_to} starts an invalid sequence)")]
    NotUtf8 { valid_up_to: usize },
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("body is JSON but not an object")]
    NotAnObject,
}

/// Classifies a raw (already verified) body.
pub fn classify(body: &[u8]) -> Result<Classification, ClassifyError> {
    let text = std::str::from_utf8(body).map_err(|e| ClassifyError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let top: TopLevel<'_> = match serde_json::from_str(text) {
        Ok(top) => top,
        Err(error) => return classify_unreadable(body, text, error),
    };
    let (api, trigger, payload) = identify(&top);
    let inner: Option<Inner<'_>> = payload.and_then(|raw| serde_json::from_str(raw.get()).ok());
    let status = match trigger {
        Trigger::MessageDelivery | Trigger::EventDelivery => inner
            .as_ref()
            .and_then(|inner| inner.status.as_ref())
            .map(|status| status.0.to_string()),
        Trigger::SmsRecipientDeliveryReport
        | Trigger::MmsRecipientDeliveryReport
        | Trigger::NumbersEvent => top.text("status"),
        _ => None,
    };
    let natural = match (payload, inner) {
        (Some(_), Some(inner)) => natural_key(trigger, inner, &top),
        (Some(_), None) => None,
        (None, _) => sms_natural_key(trigger, &top),
    };
    let dedupe_key = match natural {
        Some(parts) => format!("{}:{}", trigger.as_str(), json_array(&parts)),
        None => body_hash_key(body),
    };
    Ok(Classification {
        api,
        trigger,
        dedupe_key,
        app_id: top.text("app_id"),
        project_id: top.text("project_id").or_else(|| top.text("projectId")),
        message_id: message_id(trigger, payload, &top),
        status,
    })
}

/// The body did not read as a map of members. Tell apart "not JSON" from "JSON, but not an
/// object"; an object that is valid JSON but has a member name this reader cannot hold (a
/// lone surrogate escape) is still a callback: `UNKNOWN`, keyed by its hash.
fn classify_unreadable(
    body: &[u8],
    text: &str,
    error: serde_json::Error,
) -> Result<Classification, ClassifyError> {
    if serde_json::from_str::<de::IgnoredAny>(text).is_err() {
        return Err(ClassifyError::NotJson(error.to_string()));
    }
    if !text.trim_start().starts_with('{') {
        return Err(ClassifyError::NotAnObject);
    }
    Ok(Classification {
        api: Api::Conversation,
        trigger: Trigger::Unknown,
        dedupe_key: body_hash_key(body),
        app_id: None,
        project_id: None,
        message_id: None,
        status: None,
    })
}

fn body_hash_key(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// Finds the trigger and the raw value its fields live in (the trigger's key for
/// Conversation callbacks, the whole body for SMS ones, which are flat).
fn identify<'a>(top: &TopLevel<'a>) -> (Api, Trigger, Option<&'a RawValue>) {
    for (key, trigger) in CONVERSATION_KEYS {
        if let Some(raw) = top.get(key) {
            return (Api::Conversation, *trigger, Some(raw));
        }
    }
    match top.text("type") {
        Some(kind) => match Trigger::from_sms_type(&kind) {
            Some(trigger) => (Api::Sms, trigger, None),
            None => (Api::Sms, Trigger::Unknown, None),
        },
        // Numbers events are flat and camelCase: an event id and what it is about.
        None if top.get("eventId").is_some()
            && (top.get("resourceType").is_some() || top.get("eventType").is_some()) =>
        {
            (Api::Numbers, Trigger::NumbersEvent, None)
        }
        None => (Api::Conversation, Trigger::Unknown, None),
    }
}

/// The natural idempotency key of each trigger (protocol notes, section 2.5). `None` falls
/// back to the SHA-256 of the body, which still catches byte-identical redeliveries.
fn natural_key(trigger: Trigger, inner: Inner<'_>, top: &TopLevel<'_>) -> Option<Vec<String>> {
    use Trigger::*;
    let accepted = || top.text("accepted_time");
    let channel = inner.channel();
    match trigger {
        MessageDelivery => parts([inner.message_id, inner.status, channel]),
        EventDelivery => parts([inner.event_id, inner.status, channel]),
        MessageSubmit => parts([inner.message_id, channel]),
        MessageInbound | MessageInboundSmartConversationRedaction | EventInbound => {
            parts([inner.id])
        }
        Capability | OptIn | OptOut => parts([inner.request_id]),
        ContactCreate | ContactDelete | ContactUpdate => {
            parts([inner.contact.and_then(|c| c.id), accepted().map(Text::from)])
        }
        ContactMerge => parts([
            inner.preserved_contact.and_then(|c| c.id),
            inner.deleted_contact.and_then(|c| c.id),
            accepted().map(Text::from),
        ]),
        ConversationStart | ConversationStop | ConversationDelete => parts([
            inner.conversation.and_then(|c| c.id),
            accepted().map(Text::from),
        ]),
        // Progress reports of one status differ by when Sinch accepted them.
        BatchStatusUpdate => match accepted() {
            Some(accepted) => parts([inner.batch_id, inner.status, Some(Text::from(accepted))]),
            None => parts([inner.batch_id, inner.status]),
        },
        _ => None,
    }
}

fn sms_natural_key(trigger: Trigger, top: &TopLevel<'_>) -> Option<Vec<String>> {
    use Trigger::*;
    match trigger {
        SmsRecipientDeliveryReport | MmsRecipientDeliveryReport => parts([
            top.text("batch_id").map(Text::from),
            top.text("recipient").map(Text::from),
            top.text("status").map(Text::from),
            top.raw_scalar("code").map(Text::from),
        ]),
        SmsInboundText | SmsInboundBinary | SmsInboundMedia => {
            parts([top.text("id").map(Text::from)])
        }
        NumbersEvent => parts([top.text("eventId").map(Text::from)]),
        _ => None,
    }
}

fn message_id(trigger: Trigger, payload: Option<&RawValue>, top: &TopLevel<'_>) -> Option<String> {
    use Trigger::*;
    match trigger {
        SmsInboundText | SmsInboundBinary | SmsInboundMedia => top.text("id"),
        MessageDelivery
        | MessageSubmit
        | MessageInbound
        | MessageInboundSmartConversationRedaction => {
            let inner: Inner<'_> = serde_json::from_str(payload?.get()).ok()?;
            let id = if trigger == MessageDelivery || trigger == MessageSubmit {
                inner.message_id
            } else {
                inner.id
            };
            id.map(|t| t.0.into_owned()).filter(|s| !s.is_empty())
        }
        _ => None,
    }
}

/// All parts present and non-empty, or no natural key at all.
fn parts<const N: usize>(values: [Option<Text<'_>>; N]) -> Option<Vec<String>> {
    values
        .into_iter()
        .map(|v| v.map(|t| t.0.into_owned()).filter(|s| !s.is_empty()))
        .collect()
}

/// JSON-encoded so that ids containing separators cannot collide.
fn json_array(parts: &[String]) -> String {
    serde_json::to_string(parts).unwrap_or_default()
}

/// The fields used for dedupe keys, across all trigger payloads. Unknown fields are ignored;
/// a field of the wrong type makes the whole parse fail, which means "use the body hash".
#[derive(Deserialize, Default)]
struct Inner<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    message_id: Option<Text<'a>>,
    #[serde(borrow)]
    event_id: Option<Text<'a>>,
    #[serde(borrow)]
    request_id: Option<Text<'a>>,
    #[serde(borrow)]
    status: Option<Text<'a>>,
    #[serde(borrow)]
    channel_identity: Option<ChannelIdentity<'a>>,
    #[serde(borrow)]
    contact: Option<WithId<'a>>,
    #[serde(borrow)]
    preserved_contact: Option<WithId<'a>>,
    #[serde(borrow)]
    deleted_contact: Option<WithId<'a>>,
    #[serde(borrow)]
    conversation: Option<WithId<'a>>,
    #[serde(borrow)]
    batch_id: Option<Text<'a>>,
}

impl<'a> Inner<'a> {
    fn channel(&self) -> Option<Text<'a>> {
        self.channel_identity
            .as_ref()
            .and_then(|c| c.channel.clone())
    }
}

#[derive(Deserialize)]
struct ChannelIdentity<'a> {
    #[serde(borrow)]
    channel: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct WithId<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
}

/// A JSON string, borrowed from the body unless it contains escapes.
#[derive(Debug, Clone)]
struct Text<'a>(Cow<'a, str>);

impl From<String> for Text<'_> {
    fn from(s: String) -> Self {
        Text(Cow::Owned(s))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

/// The top-level members of the body, values kept raw.
pub(crate) struct TopLevel<'a> {
    members: Vec<(Text<'a>, &'a RawValue)>,
}

impl<'a> TopLevel<'a> {
    /// The first member with this name (duplicate names are not valid Sinch bodies; the first
    /// one wins so that classification stays deterministic).
    pub(crate) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(key, _)| key.0 == name)
            .map(|(_, raw)| *raw)
    }

    /// A top-level string member, `None` when absent, empty or not a string.
    fn text(&self, name: &str) -> Option<String> {
        let raw = self.get(name)?;
        let text: Text<'_> = serde_json::from_str(raw.get()).ok()?;
        Some(text.0.into_owned()).filter(|s| !s.is_empty())
    }

    /// A top-level string or number, as text (SMS `code` is a number).
    fn raw_scalar(&self, name: &str) -> Option<String> {
        let raw = self.get(name)?.get();
        if raw.starts_with('-') || raw.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            return Some(raw.to_owned());
        }
        self.text(name)
    }
}

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(8);
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(TopLevel { members })
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}
