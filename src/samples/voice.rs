//! Voice (Calling API) callbacks: ICE, ACE and PIE, which wait for SVAML, then DiCE and a
//! notification. Shaped like Sinch's Java SDK fixtures, with a fresh call id each time.

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{PHONE, Sample, merge, uuid_like};

/// The application key in the body; the one that counts is in `Authorization`.
const APPLICATION_KEY: &str = "669e367e-6bba-48ab-af15-266871c28135";
const NUMBER: &str = "+46201000188";

pub(super) fn build(sample: &Sample<'_>, name: &str) -> Option<Value> {
    let event = match name {
        "voice_ice" => "ice",
        "voice_ace" => "ace",
        "voice_pie" => "pie",
        "voice_dice" => "dice",
        "voice_notify" => "notify",
        _ => return None,
    };
    let call_id = sample.given_id_or(uuid_like);
    // Voice writes whole seconds, unlike the Conversation API's milliseconds.
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut body = json!({"event": event, "callid": call_id, "version": 1,
                          "custom": "sinch-webhooks send"});
    if event != "notify" {
        body["timestamp"] = json!(now);
        body["applicationKey"] = json!(APPLICATION_KEY);
    }
    let details = match event {
        "ice" => ice(&call_id),
        "ace" => json!({"amd": {"status": "human", "reason": "longgreeting", "duration": 3}}),
        "pie" => json!({"menuResult": {"menuId": "main", "type": "sequence", "value": "1",
                                       "inputMethod": "dtmf"}}),
        "dice" => dice(sample),
        _ => json!({"type": "recording_finished", "destination": "recordings/sinch-webhooks.mp3"}),
    };
    merge(&mut body, details);
    Some(body)
}

fn ice(call_id: &str) -> Value {
    json!({
        "callResourceUrl": format!("https://calling-euc1.api.sinch.com/calling/v1/calls/id/{call_id}"),
        "userRate": {"currencyId": "USD", "amount": 0.0}, "cli": PHONE,
        "to": {"type": "did", "endpoint": NUMBER}, "domain": "pstn", "originationType": "pstn"
    })
}

fn dice(sample: &Sample<'_>) -> Value {
    json!({
        "reason": "CALLERHANGUP", "result": sample.status("ANSWERED"), "duration": 12,
        "debit": {"currencyId": "EUR", "amount": 0.0176}, "userRate": {"currencyId": "EUR", "amount": 0.088},
        "to": {"type": "did", "endpoint": NUMBER}, "from": PHONE
    })
}
