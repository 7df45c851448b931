//! The signature header parsers and verifiers on fuzzed headers and bodies: no panic, a
//! request is accepted only inside the window with a MAC of a configured secret, and a
//! request signed the documented way always verifies.
//!
//! Input: `Name: value` header lines, a blank line, then the body (seeds are readable).
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use compliance_core::ports::{RequestHeaders, SignatureError, SignatureVerifier};
use compliance_core::signature::{
    sign, AnyVerifier, GithubVerifier, HmacSha256Verifier, StandardWebhooksVerifier, WebhookSecret,
    SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use compliance_core::Timestamp;
use libfuzzer_sys::fuzz_target;

const TOLERANCE: i64 = 300;
const SECRET: &str = "fuzz-webhook-secret";
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The receiver's clock: the seeds' timestamps sit around it.
const NOW: i64 = 1_736_937_300;

/// Splits an HTTP-like input: `Name: value` lines, a blank line, then the body.
fn split(data: &[u8]) -> (RequestHeaders, &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &data[data.len()..]),
    };
    let head = String::from_utf8_lossy(head);
    let headers = head
        .lines()
        .map(|line| match line.split_once(':') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => (line.to_owned(), String::new()),
        })
        .collect();
    (headers, body)
}

fn at(secs: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let (headers, body) = split(data);
    let now_secs = NOW;
    let now = at(now_secs);
    let document = HmacSha256Verifier::new(vec![WebhookSecret::new("primary", SECRET)])
        .with_tolerance(Duration::from_secs(TOLERANCE as u64));
    let standard = StandardWebhooksVerifier::new(vec![WebhookSecret::new("std", STANDARD_SECRET)])
        .expect("a valid Standard Webhooks secret");
    let github = GithubVerifier::new(vec![WebhookSecret::new("gh", SECRET)]);
    let any = AnyVerifier::new(vec![
        Arc::new(document.clone()),
        Arc::new(standard.clone()),
        Arc::new(github.clone()),
    ]);

    // Fuzzed headers: never a panic; an acceptance names a configured secret and a time in
    // the window.
    for verifier in [
        &document as &dyn SignatureVerifier,
        &standard,
        &github,
        &any,
    ] {
        match verifier.verify(&body, &headers, now) {
            Ok(verified) => {
                assert!(["primary", "std", "gh"].contains(&verified.secret_id.as_str()));
                assert_eq!(verified.delivery_key.len(), 64);
                if verified.secret_id != "gh" {
                    let age = (now_secs - verified.timestamp.timestamp()).abs();
                    assert!(age <= TOLERANCE, "accepted a timestamp {age}s away");
                }
            }
            Err(error) => {
                let text = error.to_string();
                assert!(!text.contains(SECRET), "secret in error: {text}");
                let _ = error.reason();
            }
        }
    }

    // The documented way of signing always verifies inside the window, never outside it,
    // and never once a byte of the body changed.
    // A skew from -500 to +499 s that moves with the input, so both sides of the window
    // are tried.
    let skew =
        (body.len() as i64 * 37 + i64::from(data.first().copied().unwrap_or(0))) % 1000 - 500;
    let signed_at = now_secs + skew;
    let signed = RequestHeaders::new()
        .with(SIGNATURE_HEADER, sign(SECRET.as_bytes(), signed_at, &body))
        .with(TIMESTAMP_HEADER, signed_at.to_string());
    let result = document.verify(&body, &signed, now);
    if skew.abs() <= TOLERANCE {
        let verified = result.expect("a correctly signed request inside the window");
        assert_eq!(verified.timestamp.timestamp(), signed_at);
        assert_eq!(verified.secret_id, "primary");
    } else if skew > 0 {
        assert!(
            matches!(result, Err(SignatureError::Future { .. })),
            "{result:?}"
        );
    } else {
        assert!(
            matches!(result, Err(SignatureError::Stale { .. })),
            "{result:?}"
        );
    }

    if !body.is_empty() && skew.abs() <= TOLERANCE {
        let mut tampered = body.to_vec();
        let i = data.len() % tampered.len();
        tampered[i] ^= 0x01;
        assert_eq!(
            document.verify(&tampered, &signed, now),
            Err(SignatureError::Mismatch)
        );
    }
});
