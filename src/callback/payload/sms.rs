//! SMS API callbacks: delivery reports (per recipient and per batch) and inbound messages.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{PayloadError, invalid, non_empty, parse_time, raw_json, required};

/// `recipient_delivery_report_sms|mms`: one recipient of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsDeliveryReport {
    pub batch_id: String,
    pub recipient: String,
    /// `Delivered`, `Failed`, `Dispatched`, ... as Sinch sends it.
    pub status: String,
    pub code: Option<i64>,
    /// When the operator reported the status, if it did.
    pub operator_status_at: Option<DateTime<Utc>>,
    /// When Sinch produced the report.
    pub at: Option<DateTime<Utc>>,
    pub client_reference: Option<String>,
    pub operator: Option<String>,
}

/// `delivery_report_sms|mms`: a summary of a whole batch at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsBatchReport {
    pub batch_id: String,
    pub kind: String,
    pub total_message_count: Option<i64>,
    /// `statuses` as JSON: `[{code, count, recipients, status}]`.
    pub statuses: String,
    pub client_reference: Option<String>,
}

/// `mo_text|mo_binary|mo_media`: a message sent to one of your numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsInbound {
    pub id: String,
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The text of `mo_text`; binary and media bodies are in `payload`.
    pub text: Option<String>,
    /// The whole callback body as JSON.
    pub payload: String,
    pub received_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub operator_id: Option<String>,
    pub client_reference: Option<String>,
}

#[derive(Deserialize)]
struct RecipientFields {
    batch_id: Option<String>,
    recipient: Option<String>,
    status: Option<String>,
    code: Option<i64>,
    at: Option<String>,
    operator_status_at: Option<String>,
    client_reference: Option<String>,
    operator: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct BatchFields {
    batch_id: Option<String>,
    total_message_count: Option<i64>,
    statuses: Option<Box<RawValue>>,
    client_reference: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct InboundFields {
    id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    body: Option<Box<RawValue>>,
    received_at: Option<String>,
    sent_at: Option<String>,
    operator_id: Option<String>,
    client_reference: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub fn parse_sms_delivery_report(body: &str) -> Result<SmsDeliveryReport, PayloadError> {
    const TRIGGER: &str = "recipient_delivery_report";
    let fields: RecipientFields = serde_json::from_str(body).map_err(|e| invalid(TRIGGER, e))?;
    let _ = fields.kind;
    Ok(SmsDeliveryReport {
        batch_id: required(fields.batch_id, TRIGGER, "batch_id")?,
        recipient: required(fields.recipient, TRIGGER, "recipient")?,
        status: required(fields.status, TRIGGER, "status")?,
        code: fields.code,
        operator_status_at: parse_time(fields.operator_status_at),
        at: parse_time(fields.at),
        client_reference: non_empty(fields.client_reference),
        operator: non_empty(fields.operator),
    })
}

pub fn parse_sms_batch_report(body: &str) -> Result<SmsBatchReport, PayloadError> {
    const TRIGGER: &str = "delivery_report";
    let fields: BatchFields = serde_json::from_str(body).map_err(|e| invalid(TRIGGER, e))?;
    Ok(SmsBatchReport {
        batch_id: required(fields.batch_id, TRIGGER, "batch_id")?,
        kind: non_empty(fields.kind).unwrap_or_else(|| "delivery_report_sms".to_owned()),
        total_message_count: fields.total_message_count,
        statuses: raw_json(fields.statuses).unwrap_or_else(|| "[]".to_owned()),
        client_reference: non_empty(fields.client_reference),
    })
}

pub fn parse_sms_inbound(body: &str) -> Result<SmsInbound, PayloadError> {
    const TRIGGER: &str = "mo";
    let fields: InboundFields = serde_json::from_str(body).map_err(|e| invalid(TRIGGER, e))?;
    let kind = non_empty(fields.kind).unwrap_or_else(|| "mo_text".to_owned());
    let text = match (&fields.body, kind.as_str()) {
        (Some(raw), "mo_text") => serde_json::from_str::<String>(raw.get()).ok(),
        _ => None,
    };
    Ok(SmsInbound {
        id: required(fields.id, TRIGGER, "id")?,
        kind,
        from: non_empty(fields.from),
        to: non_empty(fields.to),
        text,
        payload: body.to_owned(),
        received_at: parse_time(fields.received_at),
        sent_at: parse_time(fields.sent_at),
        operator_id: non_empty(fields.operator_id),
        client_reference: non_empty(fields.client_reference),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn reads_a_recipient_delivery_report() {
        let report =
            parse_sms_delivery_report(&fixture("sms_recipient_delivery_report.json")).unwrap();
        assert_eq!(report.batch_id, "01JHFFHQ0P99JPPNQPJDV7JTBP");
        assert_eq!(report.recipient, "33662162466");
        assert_eq!(
            (report.status.as_str(), report.code),
            ("Delivered", Some(0))
        );
        assert_eq!(
            report.operator_status_at,
            parse_time(Some("2025-01-13T09:22:00Z".into()))
        );
    }

    #[test]
    fn reads_a_batch_report_and_an_inbound_text() {
        let batch = parse_sms_batch_report(
            r#"{"batch_id":"b1","statuses":[{"code":0,"count":2,"status":"Delivered"}],"total_message_count":2,"type":"delivery_report_sms"}"#,
        )
        .unwrap();
        assert_eq!(
            (batch.batch_id.as_str(), batch.total_message_count),
            ("b1", Some(2))
        );
        assert!(batch.statuses.contains("Delivered"));
        let inbound = parse_sms_inbound(
            r#"{"id":"mo1","from":"4670","to":"12345","body":"Hi","received_at":"2025-01-13T09:22:40Z","type":"mo_text"}"#,
        )
        .unwrap();
        assert_eq!(
            (inbound.text.as_deref(), inbound.from.as_deref()),
            (Some("Hi"), Some("4670"))
        );
    }
}
