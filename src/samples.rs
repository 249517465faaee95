//! Realistic callbacks for `sinch-webhooks send`, shaped like the ones Sinch sends, with
//! fresh ids and current times so each one is a new callback (not a duplicate).

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

const APP_ID: &str = "01HAPPAAAAAAAAAAAAAAAAAAA1";
const PROJECT_ID: &str = "9d1f6a52-0000-4000-8000-00000000c0de";
const PHONE: &str = "46701234567";

/// Builds the named sample as compact JSON, or `None` for an unknown name.
pub fn build(name: &str, options: &SampleOptions) -> Option<String> {
    let sample = Sample {
        options,
        now: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    };
    let body = sample
        .message(name)
        .or_else(|| sample.event(name))
        .or_else(|| sample.notification(name))
        .or_else(|| sample.sms(name))?;
    Some(body.to_string())
}

fn identity(channel: &str) -> Value {
    json!({"channel": channel, "identity": PHONE, "app_id": ""})
}

/// What the samples of one call to [`build`] share: the user's choices and one time.
struct Sample<'a> {
    options: &'a SampleOptions,
    now: String,
}

impl Sample<'_> {
    fn id(&self) -> String {
        self.options
            .message_id
            .clone()
            .unwrap_or_else(|| Ulid::new().to_string())
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
