//! The alert rules and the Grafana dashboard use only metric names the server exports.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

/// Metric names referenced in a PromQL-bearing text: identifiers that look like ours.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if (word.starts_with("webhook_")
                || word.starts_with("sync_")
                || word.starts_with("http_"))
                && word.contains('_')
            {
                names.insert(word.clone());
            }
            word.clear();
        }
    }
    names
}

fn exported() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for name in compliance_core::metrics::ALL.iter().chain(
        [
            compliance_axum::metrics::HTTP_REQUESTS,
            compliance_axum::metrics::HTTP_REQUEST_DURATION,
        ]
        .iter(),
    ) {
        names.insert((*name).to_owned());
        // Histograms are exported as _bucket, _sum and _count series.
        if name.ends_with("_seconds") {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

fn check(file: &str) {
    let path = format!("{}/monitoring/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let used = referenced(&text);
    assert!(!used.is_empty(), "{file} references no metric");
    let known = exported();
    let unknown: Vec<_> = used.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "{file} uses metrics the server does not export: {unknown:?}"
    );
}

#[test]
fn alert_rules_use_exported_metrics() {
    check("alerts.yml");
    let text = std::fs::read_to_string(format!(
        "{}/monitoring/alerts.yml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for alert in [
        "WebhookFailureRateHigh",
        "SyncFailureRateHigh",
        "FossaApiLatencyHigh",
    ] {
        assert!(text.contains(alert), "missing alert {alert}");
    }
    assert!(text.contains("> 0.10") && text.contains("> 0.05") && text.contains("> 5"));
}

#[test]
fn grafana_dashboard_uses_exported_metrics() {
    check("grafana-dashboard.json");
    let text = std::fs::read_to_string(format!(
        "{}/monitoring/grafana-dashboard.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 5));
}

#[test]
fn the_checker_catches_an_unknown_name() {
    let used = referenced("rate(webhook_recieved_total[5m])");
    assert!(used.difference(&exported()).next().is_some());
}
