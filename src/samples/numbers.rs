//! A Numbers event: a number provisioned to the Voice platform, with a fresh event id.

use chrono::Utc;
use serde_json::{Value, json};
use ulid::Ulid;

use super::{PROJECT_ID, Sample};

const NUMBER: &str = "+12025550123";

pub(super) fn build(sample: &Sample<'_>, name: &str) -> Option<Value> {
    if name != "numbers_event" {
        return None;
    }
    // Numbers writes lower-case ULIDs and local times without a zone, in nanoseconds.
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    Some(json!({
        "eventId": Ulid::new().to_string().to_lowercase(), "timestamp": now,
        "projectId": PROJECT_ID, "resourceId": sample.given_id_or(|| NUMBER.to_owned()),
        "resourceType": "ACTIVE_NUMBER", "eventType": "PROVISIONING_TO_VOICE_PLATFORM",
        "status": sample.status("SUCCEEDED"), "failureCode": null
    }))
}
