//! The dashboard and the alert rules in `deploy/` query only metrics the service exports
//! (`metrics::ALL`), so a renamed metric fails here rather than in an operator's empty panel
//! or an alert that can never fire.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use sinch_webhooks::metrics::{self, ALL};

const DASHBOARD: &str = "deploy/grafana/sinch-webhooks.json";
const ALERTS: &str = "deploy/prometheus/alerts.yaml";
/// What Prometheus adds to a histogram's name for its series.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

#[test]
fn every_metric_the_dashboard_queries_is_one_the_service_exports() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut texts = Vec::new();
    strings(&dashboard, &mut texts);
    assert_only_exported(&texts, DASHBOARD);
}

#[test]
fn every_metric_the_alert_rules_query_is_one_the_service_exports() {
    let exprs = yaml_exprs(&read(ALERTS));
    assert!(exprs.len() >= 10, "{ALERTS}: only {exprs:?}");
    assert_only_exported(&exprs, ALERTS);
}

#[test]
fn every_dashboard_query_reads_the_prometheus_datasource_input() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    let mut targets = Vec::new();
    objects_with_key(&dashboard, "expr", &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        assert_eq!(
            target["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{DASHBOARD}: {}",
            target["expr"]
        );
    }
}

#[test]
fn every_metric_name_in_the_metrics_module_is_listed_in_all() {
    let declared = constants();
    let missing: Vec<_> = declared
        .values()
        .filter(|name| name.starts_with("sinch_webhooks_") && !ALL.contains(&name.as_str()))
        .collect();
    assert!(missing.is_empty(), "add to metrics::ALL: {missing:?}");
    assert_eq!(
        ALL.iter().collect::<BTreeSet<_>>().len(),
        ALL.len(),
        "metrics::ALL lists a name twice"
    );
}

#[test]
fn a_name_the_service_does_not_export_is_reported() {
    let rules = r#"
      - alert: Example
        expr: |
          rate(sinch_webhooks_callbacks_total[5m])
            / sinch_webhooks_no_such_metric
        for: 5m
      - record: sinch_webhooks:latency:p99
        expr: histogram_quantile(0.99, rate(sinch_webhooks_ack_seconds_bucket[5m]))
      - expr: 'sinch_webhooks_callbacks_total_count'
"#;
    let exprs = yaml_exprs(rules);
    assert_eq!(exprs.len(), 3, "{exprs:?}");
    // A counter has no _count series: only histograms get the suffixes.
    assert_eq!(
        unknown(&exprs),
        BTreeSet::from([
            "sinch_webhooks_callbacks_total_count".to_owned(),
            "sinch_webhooks_no_such_metric".to_owned(),
        ])
    );
    assert!(histograms().contains(metrics::ACK_SECONDS));
}

fn assert_only_exported(texts: &[String], file: &str) {
    let found: BTreeSet<String> = texts.iter().flat_map(|text| names_in(text)).collect();
    assert!(found.len() >= 5, "{file}: found only {found:?}");
    let unknown = unknown(texts);
    assert!(
        unknown.is_empty(),
        "{file} queries metrics the service does not export (see src/metrics.rs): {unknown:?}"
    );
}

/// Names in `texts` that are neither in `ALL` nor a histogram's series.
fn unknown(texts: &[String]) -> BTreeSet<String> {
    let histograms = histograms();
    let exported = |name: &str| {
        ALL.contains(&name)
            || HISTOGRAM_SUFFIXES.iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|base| histograms.contains(base))
            })
    };
    texts
        .iter()
        .flat_map(|text| names_in(text))
        .filter(|name| !exported(name))
        .collect()
}

/// Every `sinch_webhooks_…` metric name in a query. Recording rules (`sinch_webhooks:…`,
/// `job:sinch_webhooks_…:rate5m`) are Prometheus' own names, not the service's.
fn names_in(text: &str) -> Vec<String> {
    let is_name_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    text.match_indices("sinch_webhooks_")
        .filter(|(start, _)| {
            !text[..*start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        })
        .filter_map(|(start, _)| {
            let rest = &text[start..];
            let end = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
            (!rest[end..].starts_with(':')).then(|| rest[..end].to_owned())
        })
        .collect()
}

/// The `expr:` values of a rule file, read as text (plain and block scalars).
fn yaml_exprs(yaml: &str) -> Vec<String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let key = line.trim_start().trim_start_matches("- ");
        let Some(value) = key.strip_prefix("expr:").map(str::trim) else {
            continue;
        };
        if value.starts_with('|') || value.starts_with('>') {
            let mut block = Vec::new();
            while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > indent(line))
            {
                block.push(lines[i].trim());
                i += 1;
            }
            exprs.push(block.join("\n"));
        } else {
            exprs.push(value.trim_matches(['"', '\'']).to_owned());
        }
    }
    exprs
}

/// `pub const NAME: &str = "value";` in src/metrics.rs, by name.
fn constants() -> BTreeMap<String, String> {
    read("src/metrics.rs")
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": &str = \"")?;
            Some((name.to_owned(), value.strip_suffix("\";")?.to_owned()))
        })
        .collect()
}

/// The metrics src/metrics.rs describes as histograms.
fn histograms() -> BTreeSet<String> {
    let constants = constants();
    read("src/metrics.rs")
        .split("describe_histogram!(")
        .skip(1)
        .filter_map(|after| constants.get(after.split(',').next()?.trim()).cloned())
        .collect()
}

/// Every string in a JSON document (keys aside).
fn strings(value: &Value, out: &mut Vec<String>) {
    if let Value::String(text) = value {
        out.push(text.clone());
    }
    for child in children(value) {
        strings(child, out);
    }
}

/// Every object in a JSON document that has `key`.
fn objects_with_key<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    if value.get(key).is_some() {
        out.push(value);
    }
    for child in children(value) {
        objects_with_key(child, key, out);
    }
}

fn children(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(fields) => fields.values().collect(),
        _ => Vec::new(),
    }
}

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
