//! When things happened: the payload's own times where it has them, else when the callback
//! was received.

use chrono::{DateTime, Utc};

use super::status::ReportTime;
use crate::callback::payload::{
    CapabilityReport, ConsentReport, ContactEvent, InboundMessage, SmsDeliveryReport,
    SubmittedMessage,
};

/// An inbound message's time, if Sinch gave one.
pub fn inbound_message(message: &InboundMessage) -> Option<DateTime<Utc>> {
    message.event_time.or(message.accepted_time)
}

pub fn submitted(submitted: &SubmittedMessage, received_at: DateTime<Utc>) -> DateTime<Utc> {
    submitted.submitted_at.unwrap_or(received_at)
}

pub fn contact_event(event: &ContactEvent, received_at: DateTime<Utc>) -> DateTime<Utc> {
    event
        .event_time
        .or(event.accepted_time)
        .unwrap_or(received_at)
}

pub fn consent(consent: &ConsentReport, received_at: DateTime<Utc>) -> DateTime<Utc> {
    ReportTime::new(consent.event_time, consent.accepted_time, received_at).at
}

pub fn capability(capability: &CapabilityReport, received_at: DateTime<Utc>) -> DateTime<Utc> {
    ReportTime::new(capability.event_time, capability.accepted_time, received_at).at
}

/// Smart Conversations and record notifications carry only the envelope's times.
pub fn envelope(
    event_time: Option<DateTime<Utc>>,
    accepted_time: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> DateTime<Utc> {
    ReportTime::new(event_time, accepted_time, received_at).at
}

/// The operator's time of the status when there is one: it is when the handset's state
/// changed, where Sinch's own time is when Sinch heard of it.
pub fn sms_delivery(report: &SmsDeliveryReport, received_at: DateTime<Utc>) -> DateTime<Utc> {
    report
        .operator_status_at
        .or(report.at)
        .unwrap_or(received_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 12, 0, second).unwrap()
    }

    #[test]
    fn a_contact_event_takes_its_event_time_then_accepted_time_then_arrival() {
        let event = |event_time, accepted_time| ContactEvent {
            event_time,
            accepted_time,
            ..crate::domain::events::tests::contact_event()
        };
        let cases = [
            (Some(at(1)), Some(at(2)), at(1)),
            (None, Some(at(2)), at(2)),
            (None, None, at(9)),
        ];
        for (event_time, accepted_time, expected) in cases {
            assert_eq!(
                contact_event(&event(event_time, accepted_time), at(9)),
                expected
            );
        }
    }

    #[test]
    fn an_sms_report_prefers_the_operators_time() {
        let report = |operator_status_at, sinch_at| SmsDeliveryReport {
            operator_status_at,
            at: sinch_at,
            ..crate::domain::sms::tests::report("Delivered")
        };
        let cases = [
            (Some(at(1)), Some(at(2)), at(1)),
            (None, Some(at(2)), at(2)),
            (None, None, at(9)),
        ];
        for (operator, sinch, expected) in cases {
            assert_eq!(sms_delivery(&report(operator, sinch), at(9)), expected);
        }
    }
}
