#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Property tests for the document's signature scheme: signing round-trips, and any change
//! to body, timestamp or secret fails verification.

use compliance_core::ports::{RequestHeaders, SignatureError, SignatureVerifier};
use compliance_core::signature::{
    sign, HmacSha256Verifier, WebhookSecret, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use proptest::prelude::*;

const TOLERANCE: i64 = 300;

fn headers(signature: String, timestamp: i64) -> RequestHeaders {
    RequestHeaders::new()
        .with(SIGNATURE_HEADER, signature)
        .with(TIMESTAMP_HEADER, timestamp.to_string())
}

fn verifier(secret: &str) -> HmacSha256Verifier {
    HmacSha256Verifier::new(vec![WebhookSecret::new("k", secret)])
}

fn at(seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(seconds, 0).unwrap()
}

#[derive(Clone, Debug)]
enum Edit {
    Flip { index: usize, bit: u8 },
    Append(u8),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0_u8..8).prop_map(|(index, bit)| Edit::Flip { index, bit }),
        any::<u8>().prop_map(Edit::Append),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Applies `edit` to `body`; always returns different bytes.
fn apply(body: &[u8], edit: &Edit) -> Vec<u8> {
    let mut out = body.to_vec();
    match *edit {
        Edit::Flip { index, bit } if !out.is_empty() => {
            let i = index % out.len();
            out[i] ^= 1 << bit;
        }
        Edit::Truncate(n) if !out.is_empty() => out.truncate(n % out.len()),
        Edit::Append(byte) => out.push(byte),
        // Nothing to flip or cut in an empty body: grow it instead.
        Edit::Flip { .. } | Edit::Truncate(_) => out.push(0),
    }
    out
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(
        secret in "\\PC{1,80}",
        body in proptest::collection::vec(any::<u8>(), 0..512),
        timestamp in 0_i64..4_000_000_000,
        skew in -TOLERANCE..=TOLERANCE,
    ) {
        let signature = sign(secret.as_bytes(), timestamp, &body);
        prop_assert!(signature.starts_with("sha256="));
        prop_assert_eq!(signature.len(), 7 + 64);
        let verified = verifier(&secret)
            .verify(&body, &headers(signature, timestamp), at(timestamp + skew))
            .unwrap();
        prop_assert_eq!(verified.timestamp, at(timestamp));
    }

    #[test]
    fn any_change_to_the_body_fails(
        secret in "\\PC{1,40}",
        body in proptest::collection::vec(any::<u8>(), 0..256),
        edit in edit(),
        timestamp in 0_i64..4_000_000_000,
    ) {
        let changed = apply(&body, &edit);
        prop_assume!(changed != body);
        let signature = sign(secret.as_bytes(), timestamp, &body);
        let result = verifier(&secret).verify(&changed, &headers(signature, timestamp), at(timestamp));
        prop_assert_eq!(result, Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_change_to_the_timestamp_fails(
        secret in "\\PC{1,40}",
        body in proptest::collection::vec(any::<u8>(), 0..256),
        timestamp in 1_000_i64..4_000_000_000,
        delta in prop_oneof![-1_000_000_i64..0, 1_i64..1_000_000],
    ) {
        let signature = sign(secret.as_bytes(), timestamp, &body);
        let sent = timestamp + delta;
        let result = verifier(&secret).verify(&body, &headers(signature, sent), at(sent));
        prop_assert_eq!(result, Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_other_secret_fails(
        secret in "\\PC{1,40}",
        other in "\\PC{1,40}",
        body in proptest::collection::vec(any::<u8>(), 0..256),
        timestamp in 0_i64..4_000_000_000,
    ) {
        prop_assume!(secret != other);
        let signature = sign(other.as_bytes(), timestamp, &body);
        let result = verifier(&secret).verify(&body, &headers(signature, timestamp), at(timestamp));
        prop_assert_eq!(result, Err(SignatureError::Mismatch));
    }

    #[test]
    fn outside_the_window_fails_whatever_the_mac(
        body in proptest::collection::vec(any::<u8>(), 0..64),
        timestamp in 1_000_000_i64..4_000_000_000,
        off in (TOLERANCE + 1)..1_000_000,
        ahead in any::<bool>(),
    ) {
        let signature = sign(b"s", timestamp, &body);
        let now = if ahead { timestamp - off } else { timestamp + off };
        let result = verifier("s").verify(&body, &headers(signature, timestamp), at(now));
        let expected = if ahead {
            SignatureError::Future { seconds: off - TOLERANCE }
        } else {
            SignatureError::Stale { seconds: off - TOLERANCE }
        };
        prop_assert_eq!(result, Err(expected));
    }
}
