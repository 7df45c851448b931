#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Runs every vector of `tests/vectors/signature.json` through the document's verifier, and
//! checks that `sign` produces the expected header for the valid ones.

use compliance_core::ports::{RequestHeaders, SignatureVerifier};
use compliance_core::signature::{
    sign, HmacSha256Verifier, WebhookSecret, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HeaderValue {
    One(String),
    Several(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    secret: String,
    timestamp: Option<String>,
    now: i64,
    body: String,
    header: Option<HeaderValue>,
    expected: String,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("vectors/signature.json");
    serde_json::from_str(text).expect("signature.json parses")
}

fn headers_of(v: &Vector) -> RequestHeaders {
    let mut headers = RequestHeaders::new();
    match &v.header {
        Some(HeaderValue::One(value)) => headers.push(SIGNATURE_HEADER, value.clone()),
        Some(HeaderValue::Several(values)) => {
            for value in values {
                headers.push(SIGNATURE_HEADER, value.clone());
            }
        }
        None => {}
    }
    if let Some(ts) = &v.timestamp {
        headers.push(TIMESTAMP_HEADER, ts.clone());
    }
    headers
}

#[test]
fn the_vector_file_covers_every_verdict() {
    let vectors = vectors();
    assert!(vectors.len() >= 15, "only {} vectors", vectors.len());
    for label in [
        "valid",
        "missing_header",
        "malformed_header",
        "stale_timestamp",
        "future_timestamp",
        "mismatch",
    ] {
        assert!(
            vectors.iter().any(|v| v.expected == label),
            "no vector expects {label}"
        );
    }
}

#[test]
fn every_vector_gets_its_expected_verdict() {
    let mut failures = Vec::new();
    for v in vectors() {
        let verifier =
            HmacSha256Verifier::new(vec![WebhookSecret::new("vector", v.secret.clone())]);
        let now = chrono::DateTime::from_timestamp(v.now, 0).unwrap();
        let verdict = match verifier.verify(v.body.as_bytes(), &headers_of(&v), now) {
            Ok(verified) => {
                assert_eq!(verified.secret_id, "vector");
                "valid"
            }
            Err(e) => e.reason(),
        };
        if verdict != v.expected {
            failures.push(format!(
                "{}: expected {}, got {verdict}",
                v.name, v.expected
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn sign_reproduces_every_plain_valid_header() {
    let mut checked = 0;
    for v in vectors() {
        let (Some(HeaderValue::One(header)), Some(ts)) = (&v.header, &v.timestamp) else {
            continue;
        };
        let plain = header.starts_with("sha256=")
            && !header.contains([',', ' '])
            && *header == header.to_lowercase();
        let Ok(seconds) = ts.parse::<i64>() else {
            continue;
        };
        if v.expected != "valid" || !plain || seconds.to_string() != *ts {
            continue;
        }
        assert_eq!(
            sign(v.secret.as_bytes(), seconds, v.body.as_bytes()),
            *header,
            "{}",
            v.name
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} vectors checked");
}
