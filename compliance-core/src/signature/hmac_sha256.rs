//! The workflow document's scheme: `X-Webhook-Signature: sha256=<hex>` over
//! `"{timestamp}.{body}"`, with the timestamp in `X-Webhook-Timestamp`.

use std::time::Duration;

use super::{
    check_window, find_match, hmac_sha256, parse_sha256_hex, parse_unix_seconds, sha256_hex,
    single_header, text_keys, Key, WebhookSecret, DEFAULT_TOLERANCE, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};
use crate::clock::Timestamp;
use crate::ports::{RequestHeaders, SignatureError, SignatureVerifier, VerifiedSignature};

/// Verifies the document's scheme, with several secrets for rotation.
///
/// The signature header may carry several `sha256=<hex>` values separated by commas or
/// spaces (a sender rotating its secret can sign with both); any one matching an active
/// secret verifies. Hex is accepted in either case.
///
/// The MAC covers the timestamp header's text exactly as sent, so a sender must sign the same
/// digits it puts in the header.
///
/// [`VerifiedSignature::delivery_key`] is the lowercase hex SHA-256 of
/// `"{timestamp header}.{signature header}"`.
///
/// # Order of checks
///
/// Signature header present, timestamp header present, an active secret exists, both headers
/// well formed, timestamp inside the window, MAC matches. The first failure is reported.
#[derive(Clone, Debug)]
pub struct HmacSha256Verifier {
    keys: Vec<Key>,
    tolerance: Duration,
}

impl HmacSha256Verifier {
    /// A verifier accepting any of `secrets` that has not expired, with the default
    /// 300-second window.
    #[must_use]
    pub fn new(secrets: Vec<WebhookSecret>) -> Self {
        Self {
            keys: text_keys(secrets),
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// The same verifier with another timestamp window (applied in both directions).
    #[must_use]
    pub fn with_tolerance(mut self, d: Duration) -> Self {
        self.tolerance = d;
        self
    }
}

impl SignatureVerifier for HmacSha256Verifier {
    fn verify(
        &self,
        body: &[u8],
        headers: &RequestHeaders,
        now: Timestamp,
    ) -> Result<VerifiedSignature, SignatureError> {
        let signature = single_header(headers, SIGNATURE_HEADER)?;
        let timestamp_text = single_header(headers, TIMESTAMP_HEADER)?;
        if !self.keys.iter().any(|k| k.active(now)) {
            return Err(SignatureError::NoActiveSecret);
        }

        let candidates = parse_sha256_hex(SIGNATURE_HEADER, signature)?;
        let timestamp = parse_unix_seconds(TIMESTAMP_HEADER, timestamp_text)?;
        check_window(timestamp, now, self.tolerance)?;

        let parts: [&[u8]; 3] = [timestamp_text.as_bytes(), b".", body];
        let active = self.keys.iter().filter(|k| k.active(now));
        let secret_id = find_match(active, &parts, &candidates).ok_or(SignatureError::Mismatch)?;

        Ok(VerifiedSignature {
            timestamp,
            secret_id: secret_id.to_owned(),
            delivery_key: sha256_hex(&format!("{timestamp_text}.{signature}")),
        })
    }
}

/// The `X-Webhook-Signature` value a sender puts on `body` signed at `timestamp`:
/// `sha256=<lowercase hex>` of HMAC-SHA256 over `"{timestamp}.{body}"`.
///
/// `X-Webhook-Timestamp` must carry `timestamp` in decimal, as `timestamp.to_string()` writes it.
#[must_use]
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let mac = hmac_sha256(secret, &[timestamp.as_bytes(), b".", body]);
    format!("sha256={}", hex::encode(mac))
}
