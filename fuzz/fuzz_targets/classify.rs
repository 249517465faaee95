//! Classification and payload parsing of arbitrary bodies.
//!
//! The input is the raw request body. Checks:
//! * `callback::classify` never panics, and refuses only what is not a UTF-8 JSON object.
//! * Its result is coherent: a known trigger comes with its own API, and the dedupe key
//!   is either `<TRIGGER>:<JSON array>` or `sha256:<64 hex digits>`.
//! * For every body that classifies, `handlers::plan` (the payload parsers) never panics,
//!   neither for the trigger `classify` found (the path every real callback takes) nor for
//!   any other trigger (a journaled row replayed under another trigger, or a future
//!   reclassification, must not crash the worker either).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sinch_webhooks::callback::{Trigger, classify};
use sinch_webhooks::handlers::plan;
use sinch_webhooks::store::PendingCallback;

fuzz_target!(|data: &[u8]| {
    let Ok(c) = classify(data) else {
        return;
    };
    let body = std::str::from_utf8(data)
        .expect("classify accepted a body that is not UTF-8")
        .to_owned();

    if c.trigger != Trigger::Unknown {
        assert_eq!(c.trigger.api(), Some(c.api), "{c:?}");
    }
    match c.dedupe_key.strip_prefix("sha256:") {
        Some(hex) => assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{c:?}"
        ),
        None => {
            let array = c
                .dedupe_key
                .strip_prefix(c.trigger.as_str())
                .and_then(|rest| rest.strip_prefix(':'))
                .unwrap_or_else(|| panic!("key without its trigger: {c:?}"));
            let parts: Vec<String> = serde_json::from_str(array)
                .unwrap_or_else(|e| panic!("key is not TRIGGER:[strings]: {e}: {c:?}"));
            assert!(
                !parts.is_empty() && parts.iter().all(|p| !p.is_empty()),
                "{c:?}"
            );
        }
    }

    let mut callback = PendingCallback {
        id: 1,
        received_at: chrono::Utc::now(),
        trigger: c.trigger,
        body,
        attempts: 0,
    };
    let _ = plan(&callback);
    for &trigger in Trigger::ALL {
        if trigger != c.trigger {
            callback.trigger = trigger;
            let _ = plan(&callback);
        }
    }
});
