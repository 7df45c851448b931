//! The pure per-request work of webhook ingest: signature verification, body validation and
//! repository URL normalization.
//!
//! Run with `cargo bench -p compliance-core --bench webhook_checks`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use compliance_core::payload::parse_webhook;
use compliance_core::ports::{RequestHeaders, SignatureVerifier};
use compliance_core::signature::{
    sign, HmacSha256Verifier, WebhookSecret, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use compliance_core::RepoUrl;
use criterion::{criterion_group, criterion_main, Criterion};

const TS: i64 = 1_736_937_300;
const CURL_BODY: &[u8] = br#"{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/payment-service"},"scan":{"revision":"abc123","branch":"main","status":"passed"}}"#;
const FULL_BODY: &[u8] = br#"{"event":"fossa.scan.completed","timestamp":"2025-01-15T10:35:00Z",
"repository":{"name":"payment-service","url":"https://github.com/acme/payment-service","provider":"github"},
"scan":{"revision":"abc123def456789","branch":"main","status":"failed","issues_found":true},
"pipeline":{"id":"12345","url":"https://github.com/acme/payment-service/actions/runs/12345","provider":"github-actions"},
"metadata":{"triggered_by":"push","actor":"developer@acme.com"}}"#;

fn signature(c: &mut Criterion) {
    let now = chrono::DateTime::from_timestamp(TS, 0).unwrap();
    let headers = RequestHeaders::new()
        .with(SIGNATURE_HEADER, sign(b"current", TS, CURL_BODY))
        .with(TIMESTAMP_HEADER, TS.to_string());
    let one = HmacSha256Verifier::new(vec![WebhookSecret::new("current", "current")]);
    // The matching secret last: the worst case during a rotation.
    let three = HmacSha256Verifier::new(vec![
        WebhookSecret::new("a", "older"),
        WebhookSecret::new("b", "old"),
        WebhookSecret::new("current", "current"),
    ]);
    c.bench_function("verify/hmac_sha256/one_secret", |b| {
        b.iter(|| {
            one.verify(black_box(CURL_BODY), black_box(&headers), now)
                .unwrap()
        });
    });
    c.bench_function("verify/hmac_sha256/third_of_three_secrets", |b| {
        b.iter(|| {
            three
                .verify(black_box(CURL_BODY), black_box(&headers), now)
                .unwrap()
        });
    });
}

fn payload(c: &mut Criterion) {
    let header_ts = chrono::DateTime::from_timestamp(TS, 0);
    c.bench_function("parse_webhook/curl_payload", |b| {
        b.iter(|| parse_webhook(black_box(CURL_BODY), header_ts).unwrap());
    });
    c.bench_function("parse_webhook/full_example", |b| {
        b.iter(|| parse_webhook(black_box(FULL_BODY), header_ts).unwrap());
    });
}

fn repo_url(c: &mut Criterion) {
    c.bench_function("repo_url/scp_form", |b| {
        b.iter(|| RepoUrl::parse(black_box("git@github.com:Acme/Payment-Service.git")).unwrap());
    });
    c.bench_function("repo_url/azure_visualstudio", |b| {
        let url = "https://org.visualstudio.com/DefaultCollection/My%20Project/_git/repo";
        b.iter(|| RepoUrl::parse(black_box(url)).unwrap());
    });
}

criterion_group!(benches, signature, payload, repo_url);
criterion_main!(benches);
