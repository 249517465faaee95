//! Verification callbacks: the request event (Sinch waits for allow or deny), the result and
//! the SMS-delivered events. Shaped like Sinch's Java SDK fixtures, with a fresh id each time.

use serde_json::{Value, json};

use super::{PHONE, Sample, merge, uuid_like};

pub(super) fn build(sample: &Sample<'_>, name: &str) -> Option<Value> {
    let (event, details) = match name {
        "verification_request" => (
            "VerificationRequestEvent",
            json!({"price": {"amount": 0.0508, "currencyId": "EUR"}, "acceptLanguage": ["en-US"]}),
        ),
        "verification_result" => (
            "VerificationResultEvent",
            json!({"status": sample.status("SUCCESSFUL"), "source": "intercepted"}),
        ),
        "verification_sms_delivered" => (
            "VerificationSmsDeliveredEvent",
            json!({"smsResult": sample.status("Successful")}),
        ),
        _ => return None,
    };
    let mut body = json!({
        "id": sample.given_id_or(uuid_like), "event": event, "method": "sms",
        "identity": {"type": "number", "endpoint": format!("+{PHONE}")},
        "reference": "sinch-webhooks send", "custom": "sinch-webhooks send"
    });
    merge(&mut body, details);
    Some(body)
}
