//! Realistic callbacks for `sinch-webhooks send`, shaped like the ones Sinch sends, with
//! fresh ids and current times so each one is a new callback (not a duplicate).

mod numbers;
mod verification;
mod voice;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use ulid::Ulid;

/// Choices a user can make about a sample.
#[derive(Debug, Clone, Default)]
pub struct SampleOptions {
    /// Reuse this message id (to send several reports for one message).
    pub message_id: Option<String>,
    /// The delivery status, for delivery reports.
    pub status: Option<String>,
}

/// Sample names with what each one is.
pub const SAMPLES: &[(&str, &str)] = &[
    (
        "message_delivery",
        "MESSAGE_DELIVERY report (default status DELIVERED)",
    ),
    (
        "message_inbound",
        "MESSAGE_INBOUND text message from a contact",
    ),
    (
        "message_submit",
        "MESSAGE_SUBMIT: a message handed to the channel",
    ),
    ("event_inbound", "EVENT_INBOUND composing event"),
    ("event_delivery", "EVENT_DELIVERY report"),
    ("opt_in", "OPT_IN notification"),
    ("opt_out", "OPT_OUT notification"),
    ("capability", "CAPABILITY notification"),
    ("contact_create", "CONTACT_CREATE notification"),
    ("conversation_start", "CONVERSATION_START notification"),
    ("channel_event", "CHANNEL_EVENT (WhatsApp quality rating)"),
    ("unsupported", "UNSUPPORTED channel callback"),
    (
        "batch_status",
        "BATCH_STATUS_UPDATE (Batch API; --status COMPLETED, PARTIAL, FAILED)",
    ),
    (
        "sms_delivery_report",
        "SMS recipient_delivery_report_sms (default status Delivered)",
    ),
    ("sms_batch_report", "SMS delivery_report_sms batch summary"),
    ("sms_inbound", "SMS mo_text inbound message"),
];

/// Which API a sample belongs to, so `send` knows where it goes and how it is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Conversation API and SMS API: the HMAC-signed webhook.
    Conversation,
    /// Voice and Verification are signed with the application key.
    Voice,
    Verification,
    Numbers,
}

impl Family {
    /// The route the environment's source for this family listens on.
    pub fn path(self) -> &'static str {
        match self {
            Family::Conversation => crate::auth::DEFAULT_PATH,
            Family::Voice => crate::auth::VOICE_PATH,
            Family::Verification => crate::auth::VERIFICATION_PATH,
            Family::Numbers => crate::auth::NUMBERS_PATH,
        }
    }

    /// The bodies of the sources that take this family's callbacks.
    pub fn body_shape(self) -> crate::callback::BodyShape {
        use crate::callback::BodyShape;
        match self {
            Family::Conversation => BodyShape::Messaging,
            Family::Voice | Family::Verification => BodyShape::Application,
            Family::Numbers => BodyShape::Numbers,
        }
    }

    /// As `GET /api/samples` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Conversation => "conversation",
            Family::Voice => "voice",
            Family::Verification => "verification",
            Family::Numbers => "numbers",
        }
    }
}

/// The Voice, Verification and Numbers samples, with their family. They are kept apart from
/// [`SAMPLES`] because each only makes sense on a source of its own family's kind (an
/// application or a Numbers source), where Sinch signs it its own way.
pub const OTHER_API_SAMPLES: &[(&str, &str, Family)] = &[
    (
        "voice_ice",
        "Voice ICE: an incoming call (answered with SVAML)",
        Family::Voice,
    ),
    (
        "voice_ace",
        "Voice ACE: the callee answered (answered with SVAML)",
        Family::Voice,
    ),
    (
        "voice_pie",
        "Voice PIE: a menu input (answered with SVAML)",
        Family::Voice,
    ),
    (
        "voice_dice",
        "Voice DiCE: the call ended (--status: its result, default ANSWERED)",
        Family::Voice,
    ),
    (
        "voice_notify",
        "Voice notification: a recording finished",
        Family::Voice,
    ),
    (
        "verification_request",
        "VerificationRequestEvent (answered with allow or deny)",
        Family::Verification,
    ),
    (
        "verification_result",
        "VerificationResultEvent (--status, default SUCCESSFUL)",
        Family::Verification,
    ),
    (
        "verification_sms_delivered",
        "VerificationSmsDeliveredEvent (--status: the SMS result, default Successful)",
        Family::Verification,
    ),
    (
        "numbers_event",
        "Numbers event: a number provisioned to Voice (--status, default SUCCEEDED; \
         --message-id: the number)",
        Family::Numbers,
    ),
];

const APP_ID: &str = "01HAPPAAAAAAAAAAAAAAAAAAA1";
const PROJECT_ID: &str = "9d1f6a52-0000-4000-8000-00000000c0de";
const PHONE: &str = "46701234567";

/// Builds one of [`SAMPLES`] (Conversation API and SMS) as compact JSON, or `None` for
/// another name.
pub fn build(name: &str, options: &SampleOptions) -> Option<String> {
    let sample = Sample::new(options);
    let body = sample
        .message(name)
        .or_else(|| sample.event(name))
        .or_else(|| sample.notification(name))
        .or_else(|| sample.sms(name))?;
    Some(body.to_string())
}

/// Builds any sample, of [`SAMPLES`] or [`OTHER_API_SAMPLES`], with its family.
pub fn build_any(name: &str, options: &SampleOptions) -> Option<(Family, String)> {
    if let Some(body) = build(name, options) {
        return Some((Family::Conversation, body));
    }
    let sample = Sample::new(options);
    let body = voice::build(&sample, name)
        .or_else(|| verification::build(&sample, name))
        .or_else(|| numbers::build(&sample, name))?;
    let family = OTHER_API_SAMPLES
        .iter()
        .find(|(known, _, _)| *known == name)
        .map_or(Family::Conversation, |(_, _, family)| *family);
    Some((family, body.to_string()))
}

/// Every sample with what it is and its family, the Conversation and SMS ones first.
pub fn all() -> impl Iterator<Item = (&'static str, &'static str, Family)> {
    let conversation = SAMPLES
        .iter()
        .map(|&(name, description)| (name, description, Family::Conversation));
    conversation.chain(OTHER_API_SAMPLES.iter().copied())
}

/// Every sample's name, for messages that list them.
pub fn names() -> impl Iterator<Item = &'static str> {
    all().map(|(name, _, _)| name)
}

/// A fresh id shaped like a UUID, as Voice call ids and Verification ids are.
fn uuid_like() -> String {
    let hex = format!("{:032x}", u128::from(Ulid::new()));
    let parts = [
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..],
    ];
    parts.join("-")
}

/// Adds the members of `extra` (an object) to `body`.
fn merge(body: &mut Value, extra: Value) {
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
}

fn identity(channel: &str) -> Value {
    json!({"channel": channel, "identity": PHONE, "app_id": ""})
}

/// What the samples of one call to [`build`] share: the user's choices and one time.
struct Sample<'a> {
    options: &'a SampleOptions,
    now: String,
}

impl<'a> Sample<'a> {
    fn new(options: &'a SampleOptions) -> Self {
        Sample {
            options,
            now: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }

    fn id(&self) -> String {
        self.given_id_or(|| Ulid::new().to_string())
    }

    /// `--message-id` if given, else a fresh id of the family's own shape.
    fn given_id_or(&self, fresh: impl FnOnce() -> String) -> String {
        self.options.message_id.clone().unwrap_or_else(fresh)
    }

    fn status(&self, default: &str) -> String {
        self.options
            .status
            .clone()
            .unwrap_or_else(|| default.to_owned())
    }

    fn conversation(&self, key: &str, inner: Value) -> Value {
        let mut body =
            json!({"app_id": APP_ID, "accepted_time": self.now, "project_id": PROJECT_ID});
        body[key] = inner;
        body
    }

    /// Conversation API messages and their delivery reports.
    fn message(&self, name: &str) -> Option<Value> {
        let now = &self.now;
        Some(match name {
            "message_delivery" => {
                let mut body = self.conversation(
                    "message_delivery_report",
                    json!({"message_id": self.id(), "conversation_id": "", "status": self.status("DELIVERED"),
                           "channel_identity": identity("WHATSAPP"), "contact_id": "",
                           "metadata": "", "processing_mode": "DISPATCH"}),
                );
                body["event_time"] = json!(now);
                body
            }
            "message_inbound" => {
                let mut body = self.conversation(
                    "message",
                    json!({"id": self.id(), "direction": "TO_APP",
                           "contact_message": {"text_message": {"text": "Hello from sinch-webhooks send"}},
                           "channel_identity": identity("SMS"), "conversation_id": "", "contact_id": "",
                           "metadata": "", "accept_time": now, "sender_id": "46709876543",
                           "processing_mode": "DISPATCH", "injected": false}),
                );
                body["event_time"] = json!(now);
                body
            }
            "message_submit" => self.conversation(
                "message_submit_notification",
                json!({"message_id": self.id(), "conversation_id": "", "channel_identity": identity("SMS"),
                       "contact_id": "", "submitted_message": {"text_message": {"text": "Your code is 1234"}},
                       "metadata": "", "processing_mode": "DISPATCH"}),
            ),
            _ => return None,
        })
    }

    /// Conversation API events and their delivery reports.
    fn event(&self, name: &str) -> Option<Value> {
        let now = &self.now;
        Some(match name {
            "event_inbound" => self.conversation(
                "event",
                json!({"id": self.id(), "direction": "TO_APP", "contact_event": {"composing_event": {}},
                       "channel_identity": identity("RCS"), "conversation_id": Ulid::new().to_string(),
                       "contact_id": Ulid::new().to_string(), "accept_time": now,
                       "processing_mode": "CONVERSATION"}),
            ),
            "event_delivery" => self.conversation(
                "event_delivery_report",
                json!({"event_id": self.id(), "status": self.status("DELIVERED"), "channel_identity": identity("MESSENGER"),
                       "contact_id": Ulid::new().to_string(), "metadata": "", "processing_mode": "CONVERSATION"}),
            ),
            _ => return None,
        })
    }

    /// The Conversation API's other notifications.
    fn notification(&self, name: &str) -> Option<Value> {
        Some(match name {
            "opt_in" | "opt_out" => {
                let (key, status_name) = if name == "opt_in" {
                    ("opt_in_notification", "OPT_IN_SUCCEEDED")
                } else {
                    ("opt_out_notification", "OPT_OUT_SUCCEEDED")
                };
                self.conversation(
                    key,
                    json!({"request_id": Ulid::new().to_string(), "contact_id": Ulid::new().to_string(),
                           "channel": "WHATSAPP", "identity": PHONE, "status": self.status(status_name),
                           "processing_mode": "CONVERSATION"}),
                )
            }
            "capability" => self.conversation(
                "capability_notification",
                json!({"request_id": Ulid::new().to_string(), "contact_id": Ulid::new().to_string(),
                       "channel": "RCS", "identity": PHONE, "capability_status": "CAPABILITY_FULL"}),
            ),
            "contact_create" => self.conversation(
                "contact_create_notification",
                json!({"contact": {"id": Ulid::new().to_string(), "channel_identities": [identity("SMS")],
                       "channel_priority": ["SMS"], "display_name": "Test Contact", "email": "",
                       "external_id": "", "metadata": "", "language": "EN_US"}}),
            ),
            "conversation_start" => self.conversation(
                "conversation_start_notification",
                json!({"conversation": {"id": Ulid::new().to_string(), "app_id": APP_ID,
                       "contact_id": Ulid::new().to_string(), "active_channel": "RCS", "active": true,
                       "metadata": ""}}),
            ),
            "channel_event" => self.conversation(
                "channel_event_notification",
                json!({"channel_event": {"channel": "WHATSAPP", "event_type": "WHATS_APP_QUALITY_RATING_CHANGED",
                       "additional_data": {"quality_rating": "YELLOW", "sample_id": Ulid::new().to_string()}}}),
            ),
            "batch_status" => self.conversation(
                "batch_status_update",
                json!({"batch_id": self.id(), "status": self.status("COMPLETED"),
                       "total_messages": 10, "successful_messages": 10, "failed_messages": 0,
                       "processing_time_ms": 1200}),
            ),
            "unsupported" => self.conversation(
                "unsupported_callback",
                json!({"channel": "MESSENGER", "payload": format!("{{\"object\":\"page\",\"id\":\"{}\"}}", Ulid::new()),
                       "processing_mode": "DISPATCH"}),
            ),
            _ => return None,
        })
    }

    /// SMS API delivery reports and inbound messages.
    fn sms(&self, name: &str) -> Option<Value> {
        let now = &self.now;
        Some(match name {
            "sms_delivery_report" => json!({
                "at": now, "batch_id": self.id(), "client_reference": "sinch-webhooks send", "code": 0,
                "operator_status_at": now, "recipient": PHONE, "status": self.status("Delivered"),
                "type": "recipient_delivery_report_sms"
            }),
            "sms_batch_report" => json!({
                "batch_id": self.id(), "client_reference": "sinch-webhooks send", "total_message_count": 1,
                "statuses": [{"code": 0, "count": 1, "recipients": [PHONE], "status": self.status("Delivered")}],
                "type": "delivery_report_sms"
            }),
            "sms_inbound" => json!({
                "id": self.id(), "from": PHONE, "to": "12345", "body": "Hello from sinch-webhooks send",
                "received_at": now, "sent_at": now, "operator_id": "24001", "type": "mo_text"
            }),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::{Trigger, classify};

    #[test]
    fn every_sample_builds_and_classifies_to_a_known_trigger() {
        for (name, _) in SAMPLES {
            let body = build(name, &SampleOptions::default()).unwrap();
            let c = classify(body.as_bytes()).unwrap();
            assert_ne!(c.trigger, Trigger::Unknown, "{name}");
        }
        assert!(build("nope", &SampleOptions::default()).is_none());
    }

    #[test]
    fn samples_are_fresh_each_time_unless_ids_are_given() {
        let a = build("message_delivery", &SampleOptions::default()).unwrap();
        let b = build("message_delivery", &SampleOptions::default()).unwrap();
        assert_ne!(
            classify(a.as_bytes()).unwrap().dedupe_key,
            classify(b.as_bytes()).unwrap().dedupe_key
        );
        let fixed = SampleOptions {
            message_id: Some("m-1".into()),
            status: Some("READ".into()),
        };
        let c = classify(build("message_delivery", &fixed).unwrap().as_bytes()).unwrap();
        assert_eq!(
            c.dedupe_key,
            r#"MESSAGE_DELIVERY:["m-1","READ","WHATSAPP"]"#
        );
    }
}

#[cfg(test)]
#[path = "samples/other_api_tests.rs"]
mod other_api_tests;
