//! The Standard Webhooks scheme (<https://www.standardwebhooks.com/>): `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64>` over `"{id}.{timestamp}.{body}"`.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{
    check_window, find_match, malformed, parse_unix_seconds, sha256_hex, single_header, Key,
    WebhookSecret, DEFAULT_TOLERANCE, MAX_SIGNATURES,
};
use crate::clock::Timestamp;
use crate::ports::{RequestHeaders, SignatureError, SignatureVerifier, VerifiedSignature};

/// The message id header; the same for every retry of one message.
pub const STANDARD_ID_HEADER: &str = "webhook-id";
/// The Unix-seconds timestamp header.
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The signature header: space-separated `v1,<base64>` entries.
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";

const SECRET_PREFIX: &str = "whsec_";

/// A configured secret that is not `whsec_<base64>` (or plain base64).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("webhook secret {id:?} is not whsec_<base64>")]
pub struct InvalidSecret {
    /// The id of the offending secret (never the secret).
    pub id: String,
}

/// Verifies Standard Webhooks signatures, with several secrets for rotation.
///
/// Secrets are given as `whsec_<base64>` (the prefix may be left out); the MAC key is the
/// decoded bytes. Entries of other versions than `v1` (such as `v1a`, asymmetric) are ignored;
/// any `v1` entry matching an active secret verifies.
///
/// [`VerifiedSignature::delivery_key`] is the lowercase hex SHA-256 of the `webhook-id`: the
/// standard makes the id the idempotency key, the same for every retry of one message.
#[derive(Clone, Debug)]
pub struct StandardWebhooksVerifier {
    keys: Vec<Key>,
    tolerance: Duration,
}

impl StandardWebhooksVerifier {
    /// A verifier accepting any of `secrets` that has not expired, with the default
    /// 300-second window.
    ///
    /// # Errors
    ///
    /// [`InvalidSecret`] naming the first secret that is not base64.
    pub fn new(secrets: Vec<WebhookSecret>) -> Result<Self, InvalidSecret> {
        let mut keys = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let text = secret.secret.expose();
            let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
            let bytes = match STANDARD.decode(encoded) {
                Ok(bytes) if !bytes.is_empty() => bytes,
                _ => return Err(InvalidSecret { id: secret.id }),
            };
            keys.push(Key {
                id: secret.id,
                bytes,
                not_after: secret.not_after,
            });
        }
        Ok(Self {
            keys,
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// The same verifier with another timestamp window (applied in both directions).
    #[must_use]
    pub fn with_tolerance(mut self, d: Duration) -> Self {
        self.tolerance = d;
        self
    }
}

impl SignatureVerifier for StandardWebhooksVerifier {
    fn verify(
        &self,
        body: &[u8],
        headers: &RequestHeaders,
        now: Timestamp,
    ) -> Result<VerifiedSignature, SignatureError> {
        let signature = single_header(headers, STANDARD_SIGNATURE_HEADER)?;
        let id = single_header(headers, STANDARD_ID_HEADER)?;
        let timestamp_text = single_header(headers, STANDARD_TIMESTAMP_HEADER)?;
        if !self.keys.iter().any(|k| k.active(now)) {
            return Err(SignatureError::NoActiveSecret);
        }

        let candidates = parse_v1_entries(signature)?;
        let timestamp = parse_unix_seconds(STANDARD_TIMESTAMP_HEADER, timestamp_text)?;
        check_window(timestamp, now, self.tolerance)?;

        let parts: [&[u8]; 5] = [id.as_bytes(), b".", timestamp_text.as_bytes(), b".", body];
        let active = self.keys.iter().filter(|k| k.active(now));
        let secret_id = find_match(active, &parts, &candidates).ok_or(SignatureError::Mismatch)?;

        Ok(VerifiedSignature {
            timestamp,
            secret_id: secret_id.to_owned(),
            delivery_key: sha256_hex(id),
        })
    }
}

fn parse_v1_entries(value: &str) -> Result<Vec<[u8; 32]>, SignatureError> {
    let header = STANDARD_SIGNATURE_HEADER;
    let mut signatures = Vec::new();
    for (index, entry) in value.split_ascii_whitespace().enumerate() {
        if index == MAX_SIGNATURES {
            return Err(malformed(header, "too many signatures"));
        }
        let Some((version, encoded)) = entry.split_once(',') else {
            return Err(malformed(header, "expected v1,<base64>"));
        };
        if version != "v1" {
            continue;
        }
        let Ok(bytes) = STANDARD.decode(encoded) else {
            return Err(malformed(header, "signature is not base64"));
        };
        let Ok(bytes) = <[u8; 32]>::try_from(bytes) else {
            return Err(malformed(header, "signature is not 32 bytes"));
        };
        signatures.push(bytes);
    }
    if signatures.is_empty() {
        return Err(malformed(header, "no v1 signature"));
    }
    Ok(signatures)
}
