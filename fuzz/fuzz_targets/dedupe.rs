//! Dedupe-key derivation (`callback::classify`'s `dedupe_key`).
//!
//! The input is the raw request body. Checks, for every body that classifies:
//! * Determinism: classifying the same bytes again gives an identical `Classification`.
//! * Natural keys survive re-serialisation: when the key is a natural one (it does not
//!   start with `sha256:`), the same JSON written differently (compact, pretty, members in
//!   reverse order with odd whitespace, every string character `\u`-escaped) classifies to
//!   the same trigger, key, API and ids. That is the point of natural keys: Sinch may
//!   redeliver a callback with another serialisation and it must still be recognised.
//!
//! Hash keys (`sha256:`) are keyed by the exact bytes on purpose, so they are only checked
//! for determinism.

#![no_main]

use std::fmt::{self, Write as _};

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use sinch_webhooks::callback::{Trigger, classify};

fuzz_target!(|data: &[u8]| {
    let Ok(first) = classify(data) else {
        return;
    };
    let again = classify(data).expect("classify is not deterministic: Ok, then Err");
    assert_eq!(first, again, "classify is not deterministic");
    if first.dedupe_key.starts_with("sha256:") {
        return;
    }
    let text = std::str::from_utf8(data).expect("classify accepted a body that is not UTF-8");

    // Bodies that serde_json::Value cannot hold (a lone surrogate escape, nesting deeper
    // than its recursion limit of 128, a number out of f64 range) cannot be re-serialised
    // through it: there is nothing to compare, so they are skipped.
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Ok(Members(members)) = serde_json::from_str::<Members<'_>>(text) else {
        return;
    };

    // Exclusion 1: duplicate top-level member names. `classify` reads the first member of
    // a name (documented in classify.rs: duplicates are not valid Sinch bodies, the first
    // wins for determinism) while `Value` keeps the last, so re-serialising through Value
    // really changes the body's meaning. Only the top level matters: below it, classify
    // reads fields with serde-derived structs, which refuse a duplicated field they know
    // (the key then falls back to the body hash, so a natural key cannot come from such a
    // body) and ignore duplicated fields they do not know (which cannot affect the key).
    if has_duplicate_names(&members) {
        return;
    }

    // Exclusion 2: SMS delivery reports key on the *raw text* of a numeric `code` (it is a
    // number in Sinch's payloads, and keeping its text avoids float rounding). Value
    // re-serialises numbers in its own canonical form: `0.0` and `1e2` become `0.0` and
    // `100.0`, `-0` becomes `-0.0`, integers past u64/i64 become floats. When the number
    // text changes the key legitimately changes with it. Integers written canonically
    // (`0`, `401`, `-3`) are unchanged by Value and still checked.
    let keys_on_raw_code = matches!(
        first.trigger,
        Trigger::SmsRecipientDeliveryReport | Trigger::MmsRecipientDeliveryReport
    );
    if keys_on_raw_code && let Some((_, raw)) = members.iter().find(|(name, _)| name == "code") {
        let raw = raw.get();
        let is_number =
            raw.starts_with('-') || raw.bytes().next().is_some_and(|b| b.is_ascii_digit());
        let rewritten = value.get("code").map(Value::to_string);
        if is_number && rewritten.as_deref() != Some(raw) {
            return;
        }
    }

    let mut reordered = String::new();
    write_reordered(&value, &mut reordered);
    reordered.push_str(" \r\n");
    let mut escaped = String::new();
    write_escaped(&value, &mut escaped);
    let variants = [
        serde_json::to_string(&value).expect("Value serialises"),
        serde_json::to_string_pretty(&value).expect("Value serialises"),
        reordered,
        escaped,
    ];
    for variant in variants {
        let c = classify(variant.as_bytes())
            .unwrap_or_else(|e| panic!("re-serialised body no longer classifies: {e}\n{variant}"));
        assert_eq!(c.trigger, first.trigger, "trigger changed\n{variant}");
        assert_eq!(
            c.dedupe_key, first.dedupe_key,
            "natural key changed\n{variant}"
        );
        assert_eq!(c, first, "classification changed\n{variant}");
    }
});

/// The top-level members, names decoded, values raw and in order (duplicates kept).
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    members.push((name, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

fn has_duplicate_names(members: &[(String, &RawValue)]) -> bool {
    let mut names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.windows(2).any(|w| w[0] == w[1])
}

/// Members in reverse order, with unusual (but valid) whitespace.
fn write_reordered(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push_str("{\t");
            for (i, (name, v)) in map.iter().rev().enumerate() {
                if i > 0 {
                    out.push_str(" ,\r\n ");
                }
                out.push_str(&Value::from(name.as_str()).to_string());
                out.push_str("\n:  ");
                write_reordered(v, out);
            }
            out.push_str("\n}");
        }
        Value::Array(items) => {
            out.push_str("[ ");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(" , ");
                }
                write_reordered(v, out);
            }
            out.push_str(" ]");
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Compact, but every character of every string (names included) written as `\uXXXX`
/// (surrogate pairs past the BMP), so every string is decoded rather than borrowed.
fn write_escaped(value: &Value, out: &mut String) {
    fn string(s: &str, out: &mut String) {
        out.push('"');
        let mut units = [0u16; 2];
        for ch in s.chars() {
            for unit in ch.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
        out.push('"');
    }
    match value {
        Value::Object(map) => {
            out.push('{');
            for (i, (name, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(name, out);
                out.push(':');
                write_escaped(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_escaped(v, out);
            }
            out.push(']');
        }
        Value::String(s) => string(s, out),
        scalar => out.push_str(&scalar.to_string()),
    }
}
