//! The state changes each effect reports, as the `events` table (the outbox) and the live
//! stream carry them.

use chrono::{DateTime, Utc};

use super::status::StatusReport;
use super::{NewEvent, call, number, verification};
use crate::callback::payload::{
    Analysis, BatchStatus, CapabilityReport, ChannelEvent, ConsentReport, ContactChange,
    ContactEvent, ContactState, ConversationChange, ConversationState, DeliveryReport,
    IdentityDuplication, InboundMessage, RecordNotification, SmsBatchReport, SmsDeliveryReport,
    SmsInbound, SubmittedMessage,
};

/// A delivery report that became the current status of `key` (`message_id` or `event_id`).
pub fn status(
    kind: &'static str,
    key: &str,
    report: &DeliveryReport,
    incoming: &StatusReport,
    previous_status: Option<String>,
) -> NewEvent {
    let mut payload = serde_json::json!({
        "status": report.status.as_str(),
        "previous_status": previous_status,
        "status_at": incoming.time.at,
        "channel": report.channel,
        "identity": report.identity,
        "reason_code": report.reason_code,
        "reason_description": report.reason_description,
    });
    payload[key] = serde_json::json!(report.id);
    NewEvent { kind, payload }
}

pub fn inbound_message(message: &InboundMessage, at: Option<DateTime<Utc>>) -> NewEvent {
    NewEvent {
        kind: "message.inbound",
        payload: serde_json::json!({
            "message_id": message.message_id,
            "channel": message.channel,
            "identity": message.identity,
            "conversation_id": message.conversation_id,
            "contact_id": message.contact_id,
            "text": message.text,
            "at": at,
        }),
    }
}

pub fn analysis(analysis: &Analysis, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: "message.analysis",
        payload: serde_json::json!({
            "message_id": analysis.message_id,
            "conversation_id": analysis.conversation_id,
            "contact_id": analysis.contact_id,
            "channel": analysis.channel,
            "results": analysis.results.as_deref()
                .and_then(|results| serde_json::from_str::<serde_json::Value>(results).ok()),
            "at": at,
        }),
    }
}

pub fn record(record: &RecordNotification, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: "record",
        payload: serde_json::json!({
            "entity_id": record.entity_id,
            "record_status": record.record_status,
            "at": at,
        }),
    }
}

pub fn batch_status(batch: &BatchStatus, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: "batch.status",
        payload: serde_json::json!({
            "batch_id": batch.batch_id,
            "app_id": batch.app_id,
            "status": batch.status,
            "total_messages": batch.total_messages,
            "successful_messages": batch.successful_messages,
            "failed_messages": batch.failed_messages,
            "processing_time_ms": batch.processing_time_ms,
            "at": at,
        }),
    }
}

pub fn channel_event(event: &ChannelEvent, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: "channel.event",
        payload: serde_json::json!({
            "app_id": event.app_id,
            "channel": event.channel,
            "event_type": event.event_type,
            "additional_data": event.additional_data.as_deref()
                .and_then(|data| serde_json::from_str::<serde_json::Value>(data).ok()),
            "at": at,
        }),
    }
}

pub fn redacted(message: &InboundMessage, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: "message.redacted",
        payload: serde_json::json!({
            "message_id": message.message_id,
            "channel": message.channel,
            "identity": message.identity,
            "conversation_id": message.conversation_id,
            "contact_id": message.contact_id,
            "text": message.text,
            "at": at,
        }),
    }
}

pub fn submitted(submitted: &SubmittedMessage, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: "message.submitted",
        payload: serde_json::json!({
            "message_id": submitted.message_id,
            "channel": submitted.channel,
            "identity": submitted.identity,
            "submitted_at": at,
        }),
    }
}

pub fn contact_event(event: &ContactEvent, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: "event.inbound",
        payload: serde_json::json!({
            "event_id": event.event_id,
            "kind": event.kind,
            "channel": event.channel,
            "identity": event.identity,
            "conversation_id": event.conversation_id,
            "contact_id": event.contact_id,
            "at": at,
        }),
    }
}

pub fn consent(consent: &ConsentReport, consented: Option<bool>, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: "consent",
        payload: serde_json::json!({
            "channel": consent.channel,
            "identity": consent.identity,
            "contact_id": consent.contact_id,
            "consented": consented,
            "kind": consent.kind.as_str(),
            "status": consent.status,
            "request_id": consent.request_id,
            "error": consent.error,
            "at": at,
        }),
    }
}

pub fn capability(capability: &CapabilityReport, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: "capability",
        payload: serde_json::json!({
            "channel": capability.channel,
            "identity": capability.identity,
            "contact_id": capability.contact_id,
            "status": capability.status,
            "at": at,
        }),
    }
}

pub fn contact(
    change: &ContactChange,
    contact: &ContactState,
    merged: Option<&String>,
    at: DateTime<Utc>,
) -> NewEvent {
    NewEvent {
        kind: "contact",
        payload: serde_json::json!({
            "contact_id": contact.contact_id,
            "change": change.name(),
            "merged_contact_id": merged,
            "display_name": contact.display_name,
            "identities": contact.identities.iter()
                .map(|(channel, identity)| serde_json::json!({"channel": channel, "identity": identity}))
                .collect::<Vec<_>>(),
            "at": at,
        }),
    }
}

pub fn conversation(
    change: ConversationChange,
    state: &ConversationState,
    active: Option<bool>,
    at: DateTime<Utc>,
) -> NewEvent {
    NewEvent {
        kind: "conversation",
        payload: serde_json::json!({
            "conversation_id": state.conversation_id,
            "change": change.name(),
            "active": active,
            "contact_id": state.contact_id,
            "active_channel": state.active_channel,
            "at": at,
        }),
    }
}

pub fn duplication(duplication: &IdentityDuplication, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: "contact.duplicates",
        payload: serde_json::json!({
            "channel": duplication.channel,
            "contact_ids": duplication.contact_ids,
            "at": at,
        }),
    }
}

pub fn sms_delivery(
    report: &SmsDeliveryReport,
    previous_status: Option<String>,
    at: DateTime<Utc>,
) -> NewEvent {
    NewEvent {
        kind: "sms.delivery",
        payload: serde_json::json!({
            "batch_id": report.batch_id,
            "recipient": report.recipient,
            "status": report.status,
            "previous_status": previous_status,
            "code": report.code,
            "status_at": at,
        }),
    }
}

pub fn sms_batch(batch: &SmsBatchReport) -> NewEvent {
    NewEvent {
        kind: "sms.batch",
        payload: serde_json::json!({
            "batch_id": batch.batch_id,
            "total_message_count": batch.total_message_count,
            "statuses": serde_json::from_str::<serde_json::Value>(&batch.statuses).unwrap_or_default(),
        }),
    }
}

pub fn sms_inbound(message: &SmsInbound) -> NewEvent {
    NewEvent {
        kind: "sms.inbound",
        payload: serde_json::json!({
            "id": message.id,
            "kind": message.kind,
            "from": message.from,
            "to": message.to,
            "text": message.text,
            "received_at": message.received_at,
        }),
    }
}

/// A call's timeline or progress changed: what the event was, and the call's summary.
pub fn call(decision: &call::Decision, entry: &call::CallEntry) -> NewEvent {
    let c = &decision.call;
    NewEvent {
        kind: "call",
        payload: serde_json::json!({
            "call_id": c.call_id,
            "event": entry.event,
            "event_at": entry.at,
            "progress": c.progress,
            "previous_progress": decision.previous,
            "advanced": decision.advanced,
            "direction": c.direction,
            "from": c.from,
            "to": c.to,
            "result": c.result,
            "reason": c.reason,
            "duration": c.duration,
            "cost": c.cost,
        }),
    }
}

/// A verification's timeline or status changed.
pub fn verification(
    decision: &verification::Decision,
    entry: &verification::VerificationEntry,
) -> NewEvent {
    let v = &decision.verification;
    NewEvent {
        kind: "verification",
        payload: serde_json::json!({
            "id": v.id,
            "event": entry.event,
            "event_at": entry.at,
            "method": v.method,
            "identity": v.identity,
            "reference": v.reference,
            "status": v.status,
            "previous_status": decision.previous_status,
            "decided": decision.decided,
            "result": v.result,
            "sms_result": v.sms_result,
        }),
    }
}

/// A Numbers event was recorded for its resource; `became_latest` says whether it is now
/// the resource's latest state (an older event arriving late is history only).
pub fn number(decision: &number::Decision, state: &number::NumberState) -> NewEvent {
    let r = &decision.resource;
    NewEvent {
        kind: "number",
        payload: serde_json::json!({
            "resource_id": r.resource_id,
            "resource_type": r.resource_type,
            "project_id": r.project_id,
            "event": state,
            "became_latest": decision.latest,
            "latest": r.latest,
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A contact event with only an id, for tests elsewhere.
    pub(crate) fn contact_event() -> ContactEvent {
        ContactEvent {
            event_id: "e-1".into(),
            kind: "composing_event".into(),
            channel: None,
            identity: None,
            conversation_id: None,
            contact_id: None,
            payload: "{}".into(),
            event_time: None,
            accepted_time: None,
        }
    }

    #[test]
    fn a_status_event_names_its_row_by_the_tables_key() {
        let report = DeliveryReport {
            id: "m-1".into(),
            status: crate::callback::status::DeliveryStatus::Read,
            channel: Some("SMS".into()),
            identity: None,
            conversation_id: None,
            contact_id: None,
            reason_code: None,
            reason_description: None,
            event_time: None,
            accepted_time: None,
        };
        let incoming = super::super::status::incoming(&report, DateTime::UNIX_EPOCH);
        let event = status(
            "event.status",
            "event_id",
            &report,
            &incoming,
            Some("DELIVERED".into()),
        );
        assert_eq!(event.kind, "event.status");
        assert_eq!(event.payload["event_id"], "m-1");
        assert_eq!(event.payload["previous_status"], "DELIVERED");
        assert_eq!(event.payload["status"], "READ");
        assert!(event.payload.get("message_id").is_none());
    }
}
