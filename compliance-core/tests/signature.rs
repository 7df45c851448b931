#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Signature schemes: rotation, expiry, windows, delivery keys, and the scheme dispatcher.

use std::sync::Arc;
use std::time::Duration;

use compliance_core::ports::{RequestHeaders, SignatureError, SignatureVerifier};
use compliance_core::signature::{
    sign, AnyVerifier, GithubVerifier, HmacSha256Verifier, Secret, StandardWebhooksVerifier,
    WebhookSecret, GITHUB_DELIVERY_HEADER, GITHUB_SIGNATURE_HEADER, SIGNATURE_HEADER,
    STANDARD_ID_HEADER, STANDARD_SIGNATURE_HEADER, STANDARD_TIMESTAMP_HEADER, TIMESTAMP_HEADER,
};
use compliance_core::Timestamp;

const BODY: &[u8] = br#"{"event":"fossa.scan.completed"}"#;
const TS: i64 = 1_736_937_300;

fn at(seconds: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(seconds, 0).unwrap()
}

fn signed(secret: &str, ts: i64, body: &[u8]) -> RequestHeaders {
    RequestHeaders::new()
        .with(SIGNATURE_HEADER, sign(secret.as_bytes(), ts, body))
        .with(TIMESTAMP_HEADER, ts.to_string())
}

fn verifier(secrets: &[(&str, &str)]) -> HmacSha256Verifier {
    HmacSha256Verifier::new(
        secrets
            .iter()
            .map(|(id, s)| WebhookSecret::new(*id, *s))
            .collect(),
    )
}

#[test]
fn rotation_accepts_old_and_new_secret_and_reports_which() {
    let v = verifier(&[("old", "old-secret"), ("new", "new-secret")]);
    let old = v
        .verify(BODY, &signed("old-secret", TS, BODY), at(TS))
        .unwrap();
    let new = v
        .verify(BODY, &signed("new-secret", TS, BODY), at(TS))
        .unwrap();
    assert_eq!(old.secret_id, "old");
    assert_eq!(new.secret_id, "new");
    assert_eq!(new.timestamp, at(TS));
}

#[test]
fn an_expired_secret_is_no_longer_accepted() {
    let v = HmacSha256Verifier::new(vec![
        WebhookSecret::new("old", "old-secret").expires_at(at(TS)),
        WebhookSecret::new("new", "new-secret"),
    ]);
    assert!(v
        .verify(BODY, &signed("old-secret", TS, BODY), at(TS))
        .is_ok());
    let later = TS + 10;
    assert_eq!(
        v.verify(BODY, &signed("old-secret", later, BODY), at(later)),
        Err(SignatureError::Mismatch)
    );
    assert!(v
        .verify(BODY, &signed("new-secret", later, BODY), at(later))
        .is_ok());
}

#[test]
fn no_configured_or_unexpired_secret_is_its_own_error() {
    let headers = signed("s", TS, BODY);
    assert_eq!(
        HmacSha256Verifier::new(vec![]).verify(BODY, &headers, at(TS)),
        Err(SignatureError::NoActiveSecret)
    );
    let expired =
        HmacSha256Verifier::new(vec![WebhookSecret::new("a", "s").expires_at(at(TS - 1))]);
    assert_eq!(
        expired.verify(BODY, &headers, at(TS)),
        Err(SignatureError::NoActiveSecret)
    );
}

#[test]
fn tolerance_is_configurable_in_both_directions() {
    let v = verifier(&[("k", "s")]).with_tolerance(Duration::from_secs(30));
    let headers = signed("s", TS, BODY);
    assert!(v.verify(BODY, &headers, at(TS + 30)).is_ok());
    assert!(v.verify(BODY, &headers, at(TS - 30)).is_ok());
    assert_eq!(
        v.verify(BODY, &headers, at(TS + 45)),
        Err(SignatureError::Stale { seconds: 15 })
    );
    assert_eq!(
        v.verify(BODY, &headers, at(TS - 31)),
        Err(SignatureError::Future { seconds: 1 })
    );
}

#[test]
fn a_replay_after_the_window_is_refused_even_with_a_valid_mac() {
    let v = verifier(&[("k", "s")]);
    let headers = signed("s", TS, BODY);
    assert!(v.verify(BODY, &headers, at(TS + 299)).is_ok());
    assert!(matches!(
        v.verify(BODY, &headers, at(TS + 3600)),
        Err(SignatureError::Stale { .. })
    ));
}

#[test]
fn header_names_are_case_insensitive() {
    let v = verifier(&[("k", "s")]);
    let headers = RequestHeaders::new()
        .with("x-webhook-signature", sign(b"s", TS, BODY))
        .with("X-WEBHOOK-TIMESTAMP", TS.to_string());
    assert!(v.verify(BODY, &headers, at(TS)).is_ok());
}

#[test]
fn delivery_key_is_sha256_of_timestamp_and_signature_header() {
    let v = verifier(&[("k", "s")]);
    let signature = sign(b"s", TS, BODY);
    let headers = signed("s", TS, BODY);
    let first = v.verify(BODY, &headers, at(TS)).unwrap();
    let again = v.verify(BODY, &headers, at(TS + 60)).unwrap();
    assert_eq!(first.delivery_key, again.delivery_key);

    use sha2::Digest;
    let expected = hex::encode(sha2::Sha256::digest(format!("{TS}.{signature}")));
    assert_eq!(first.delivery_key, expected);

    let other = v.verify(BODY, &signed("s", TS + 1, BODY), at(TS)).unwrap();
    assert_ne!(first.delivery_key, other.delivery_key);
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let secret = "sup3r-s3cret-value";
    let v = verifier(&[("primary", secret)]);
    let mut texts = vec![format!("{v:?}"), format!("{:?}", Secret::new(secret))];
    for now in [TS, TS + 1000, TS - 1000] {
        let forged = signed("wrong", TS, BODY);
        if let Err(e) = v.verify(BODY, &forged, at(now)) {
            texts.push(format!("{e} {e:?}"));
        }
    }
    let bad = RequestHeaders::new()
        .with(SIGNATURE_HEADER, secret)
        .with(TIMESTAMP_HEADER, "1");
    if let Err(e) = v.verify(BODY, &bad, at(TS)) {
        texts.push(format!("{e} {e:?}"));
    }
    assert!(texts.len() >= 5);
    for text in texts {
        assert!(!text.contains(secret), "{text}");
    }
}

#[test]
fn malformed_kinds_are_reported_before_the_window_and_mac() {
    let v = verifier(&[("k", "s")]);
    let stale_and_malformed = RequestHeaders::new()
        .with(SIGNATURE_HEADER, "sha256=zz")
        .with(TIMESTAMP_HEADER, "1");
    assert!(matches!(
        v.verify(BODY, &stale_and_malformed, at(TS)),
        Err(SignatureError::Malformed {
            header: SIGNATURE_HEADER,
            ..
        })
    ));
    let many = (0..9)
        .map(|_| sign(b"s", TS, BODY))
        .collect::<Vec<_>>()
        .join(",");
    let too_many = RequestHeaders::new()
        .with(SIGNATURE_HEADER, many)
        .with(TIMESTAMP_HEADER, TS.to_string());
    assert!(matches!(
        v.verify(BODY, &too_many, at(TS)),
        Err(SignatureError::Malformed { .. })
    ));
}

// Standard Webhooks: the example from the specification
// (github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md).
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_TS: i64 = 1_614_265_330;
const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn standard_headers(signature: &str) -> RequestHeaders {
    RequestHeaders::new()
        .with(STANDARD_ID_HEADER, SW_ID)
        .with(STANDARD_TIMESTAMP_HEADER, SW_TS.to_string())
        .with(STANDARD_SIGNATURE_HEADER, signature)
}

#[test]
fn standard_webhooks_specification_example_verifies() {
    let v = StandardWebhooksVerifier::new(vec![WebhookSecret::new("sw", SW_SECRET)]).unwrap();
    let verified = v
        .verify(SW_BODY, &standard_headers(SW_SIG), at(SW_TS))
        .unwrap();
    assert_eq!(verified.secret_id, "sw");
    assert_eq!(verified.timestamp, at(SW_TS));

    // Other versions are skipped; a second v1 entry for another secret does not hurt.
    let rotating = format!("v1a,AAAA v1,{} {SW_SIG}", "A".repeat(43) + "=");
    assert!(v
        .verify(SW_BODY, &standard_headers(&rotating), at(SW_TS))
        .is_ok());

    // The prefix is optional.
    let bare = StandardWebhooksVerifier::new(vec![WebhookSecret::new(
        "sw",
        SW_SECRET.trim_start_matches("whsec_"),
    )])
    .unwrap();
    assert!(bare
        .verify(SW_BODY, &standard_headers(SW_SIG), at(SW_TS))
        .is_ok());
}

#[test]
fn standard_webhooks_refusals() {
    let v = StandardWebhooksVerifier::new(vec![WebhookSecret::new("sw", SW_SECRET)]).unwrap();
    assert_eq!(
        v.verify(b"{}", &standard_headers(SW_SIG), at(SW_TS)),
        Err(SignatureError::Mismatch)
    );
    assert!(matches!(
        v.verify(SW_BODY, &standard_headers(SW_SIG), at(SW_TS + 301)),
        Err(SignatureError::Stale { .. })
    ));
    assert!(matches!(
        v.verify(SW_BODY, &standard_headers("v1a,abc"), at(SW_TS)),
        Err(SignatureError::Malformed { .. })
    ));
    assert!(matches!(
        v.verify(SW_BODY, &standard_headers("v1,not*base64"), at(SW_TS)),
        Err(SignatureError::Malformed { .. })
    ));
    let no_id = RequestHeaders::new()
        .with(STANDARD_TIMESTAMP_HEADER, SW_TS.to_string())
        .with(STANDARD_SIGNATURE_HEADER, SW_SIG);
    assert_eq!(
        v.verify(SW_BODY, &no_id, at(SW_TS)),
        Err(SignatureError::MissingHeader(STANDARD_ID_HEADER))
    );
}

#[test]
fn standard_webhooks_delivery_key_follows_the_message_id() {
    let v = StandardWebhooksVerifier::new(vec![WebhookSecret::new("sw", SW_SECRET)]).unwrap();
    let a = v
        .verify(SW_BODY, &standard_headers(SW_SIG), at(SW_TS))
        .unwrap();
    let b = v
        .verify(SW_BODY, &standard_headers(SW_SIG), at(SW_TS + 5))
        .unwrap();
    assert_eq!(a.delivery_key, b.delivery_key);
    assert_eq!(a.delivery_key.len(), 64);
}

#[test]
fn standard_webhooks_secret_must_be_base64_and_error_names_only_the_id() {
    let err =
        StandardWebhooksVerifier::new(vec![WebhookSecret::new("bad", "whsec_!!not-base64!!")])
            .unwrap_err();
    assert_eq!(err.id, "bad");
    assert!(!err.to_string().contains("not-base64"));
}

// GitHub: the example from GitHub's "Validating webhook deliveries" documentation.
const GH_SECRET: &str = "It's a Secret to Everybody";
const GH_BODY: &[u8] = b"Hello, World!";
const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn github_headers(delivery: &str, signature: &str) -> RequestHeaders {
    RequestHeaders::new()
        .with(GITHUB_SIGNATURE_HEADER, signature)
        .with(GITHUB_DELIVERY_HEADER, delivery)
}

#[test]
fn github_documentation_example_verifies_with_now_as_timestamp() {
    let v = GithubVerifier::new(vec![WebhookSecret::new("gh", GH_SECRET)]);
    let now = at(TS);
    let verified = v
        .verify(GH_BODY, &github_headers("d-1", GH_SIG), now)
        .unwrap();
    assert_eq!(verified.timestamp, now);
    assert_eq!(verified.secret_id, "gh");

    let redelivered = v
        .verify(GH_BODY, &github_headers("d-1", GH_SIG), at(TS + 99))
        .unwrap();
    let other = v
        .verify(GH_BODY, &github_headers("d-2", GH_SIG), now)
        .unwrap();
    assert_eq!(verified.delivery_key, redelivered.delivery_key);
    assert_ne!(verified.delivery_key, other.delivery_key);
}

#[test]
fn github_refusals() {
    let v = GithubVerifier::new(vec![WebhookSecret::new("gh", GH_SECRET)]);
    assert_eq!(
        v.verify(b"Hello, World?", &github_headers("d", GH_SIG), at(TS)),
        Err(SignatureError::Mismatch)
    );
    let no_delivery = RequestHeaders::new().with(GITHUB_SIGNATURE_HEADER, GH_SIG);
    assert_eq!(
        v.verify(GH_BODY, &no_delivery, at(TS)),
        Err(SignatureError::MissingHeader(GITHUB_DELIVERY_HEADER))
    );
}

fn any_verifier() -> AnyVerifier {
    AnyVerifier::new(vec![
        Arc::new(verifier(&[("doc", "s")])),
        Arc::new(StandardWebhooksVerifier::new(vec![WebhookSecret::new("sw", SW_SECRET)]).unwrap()),
        Arc::new(GithubVerifier::new(vec![WebhookSecret::new(
            "gh", GH_SECRET,
        )])),
    ])
}

#[test]
fn any_verifier_lets_the_scheme_whose_header_is_present_decide() {
    let any = any_verifier();
    assert_eq!(
        any.verify(BODY, &signed("s", TS, BODY), at(TS))
            .unwrap()
            .secret_id,
        "doc"
    );
    assert_eq!(
        any.verify(SW_BODY, &standard_headers(SW_SIG), at(SW_TS))
            .unwrap()
            .secret_id,
        "sw"
    );
    assert_eq!(
        any.verify(GH_BODY, &github_headers("d", GH_SIG), at(TS))
            .unwrap()
            .secret_id,
        "gh"
    );
    // A present scheme that fails decides; later schemes are not consulted.
    assert_eq!(
        any.verify(BODY, &signed("wrong", TS, BODY), at(TS)),
        Err(SignatureError::Mismatch)
    );
    // A scheme's own companion header missing decides too.
    let no_ts = RequestHeaders::new().with(SIGNATURE_HEADER, sign(b"s", TS, BODY));
    assert_eq!(
        any.verify(BODY, &no_ts, at(TS)),
        Err(SignatureError::MissingHeader(TIMESTAMP_HEADER))
    );
}

#[test]
fn any_verifier_without_any_signature_header_names_the_documents_header() {
    assert_eq!(
        any_verifier().verify(BODY, &RequestHeaders::new(), at(TS)),
        Err(SignatureError::MissingHeader(SIGNATURE_HEADER))
    );
    assert_eq!(
        AnyVerifier::new(vec![]).verify(BODY, &RequestHeaders::new(), at(TS)),
        Err(SignatureError::NoActiveSecret)
    );
}
