//! Webhook signature schemes: the workflow document's own, Standard Webhooks and GitHub.
//!
//! | verifier | signature header | signed message |
//! | --- | --- | --- |
//! | [`HmacSha256Verifier`] (the document's) | `X-Webhook-Signature: sha256=<hex>` | `"{timestamp}.{body}"` |
//! | [`StandardWebhooksVerifier`] | `webhook-signature: v1,<base64>` | `"{id}.{timestamp}.{body}"` |
//! | [`GithubVerifier`] | `X-Hub-Signature-256: sha256=<hex>` | the body |
//! | [`AnyVerifier`] | whichever of the above is present | |
//!
//! The document's scheme takes its timestamp from `X-Webhook-Timestamp` (Unix seconds) and
//! any string as secret; Standard Webhooks adds `webhook-id` and `webhook-timestamp` and
//! takes `whsec_<base64>` secrets; GitHub sends no timestamp, only `X-GitHub-Delivery`.
//!
//! Every scheme takes several secrets at once so a secret can be rotated without downtime:
//! add the new one, move senders over, then let the old one expire
//! ([`WebhookSecret::expires_at`]). MACs are compared in constant time, the timestamp window
//! applies in both directions, and no secret ever reaches an error, a log line or `Debug`.
//!
//! ```
//! use compliance_core::ports::{RequestHeaders, SignatureVerifier};
//! use compliance_core::signature::{sign, HmacSha256Verifier, WebhookSecret};
//! use compliance_core::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
//!
//! let body = br#"{"event":"fossa.scan.completed"}"#;
//! let now = chrono::DateTime::from_timestamp(1_736_937_300, 0).unwrap_or_default();
//! let headers = RequestHeaders::new()
//!     .with(SIGNATURE_HEADER, sign(b"new-secret", now.timestamp(), body))
//!     .with(TIMESTAMP_HEADER, now.timestamp().to_string());
//!
//! let verifier = HmacSha256Verifier::new(vec![
//!     WebhookSecret::new("2024", "old-secret"),
//!     WebhookSecret::new("2025", "new-secret"),
//! ]);
//! let verified = verifier.verify(body, &headers, now);
//! assert_eq!(verified.map(|v| v.secret_id).as_deref(), Ok("2025"));
//! ```

mod any;
mod github;
mod hmac_sha256;
mod standard;

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::ports::{RequestHeaders, SignatureError};

pub use any::AnyVerifier;
pub use github::{GithubVerifier, GITHUB_DELIVERY_HEADER, GITHUB_SIGNATURE_HEADER};
pub use hmac_sha256::{sign, HmacSha256Verifier};
pub use standard::{
    InvalidSecret, StandardWebhooksVerifier, STANDARD_ID_HEADER, STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
};

/// The document's signature header: `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Webhook-Signature";
/// The document's timestamp header: Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Webhook-Timestamp";
/// The optional header naming the CI system that sent the webhook.
pub const SOURCE_HEADER: &str = "X-Webhook-Source";
/// How far a signed timestamp may be from the receiver's clock, in either direction.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// At most this many signatures in one header; more is refused before any MAC is computed.
const MAX_SIGNATURES: usize = 8;

/// A shared secret. Its `Debug` is redacted, and it has no `Display` and no `Serialize`, so it
/// cannot reach a log line or a response by accident.
// Limitation: the bytes are not wiped from memory on drop; that would take a crate such as
// `zeroize`, and the MAC keys derived from a secret live in `Key` (and inside `Hmac`) anyway.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; call this only where the bytes are fed to a MAC.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One configured secret: an id to report which secret matched, and an optional expiry for
/// rotation.
#[derive(Clone, Debug)]
pub struct WebhookSecret {
    /// A name for this secret, reported in [`VerifiedSignature::secret_id`]; never secret.
    ///
    /// [`VerifiedSignature::secret_id`]: crate::ports::VerifiedSignature::secret_id
    pub id: String,
    /// The secret.
    pub secret: Secret,
    /// The last instant at which the secret is accepted; `None` for no expiry.
    pub not_after: Option<Timestamp>,
}

impl WebhookSecret {
    /// A secret without expiry.
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            secret: Secret::new(secret),
            not_after: None,
        }
    }

    /// The same secret, accepted until `t` (inclusive) and refused after.
    #[must_use]
    pub fn expires_at(mut self, t: Timestamp) -> Self {
        self.not_after = Some(t);
        self
    }

    /// Whether the secret is accepted at `now`.
    #[must_use]
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.not_after.is_none_or(|t| now <= t)
    }
}

/// A MAC key ready for use, with the id and expiry of the secret it came from.
#[derive(Clone)]
struct Key {
    id: String,
    bytes: Vec<u8>,
    not_after: Option<Timestamp>,
}

impl Key {
    fn active(&self, now: Timestamp) -> bool {
        self.not_after.is_none_or(|t| now <= t)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("bytes", &"***")
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// The single value of header `name`, trimmed. Absent is `MissingHeader`; the same header sent
/// several times is accepted only when every copy says the same.
fn single_header<'h>(
    headers: &'h RequestHeaders,
    name: &'static str,
) -> Result<&'h str, SignatureError> {
    let mut values = headers.get_all(name);
    let Some(first) = values.next() else {
        return Err(SignatureError::MissingHeader(name));
    };
    if values.any(|other| other.trim() != first.trim()) {
        return Err(malformed(name, "sent several times with different values"));
    }
    let value = first.trim();
    if value.is_empty() {
        return Err(malformed(name, "empty"));
    }
    Ok(value)
}

fn malformed(header: &'static str, reason: &'static str) -> SignatureError {
    SignatureError::Malformed { header, reason }
}

/// Parses Unix seconds as senders write them: ASCII digits only.
fn parse_unix_seconds(header: &'static str, text: &str) -> Result<Timestamp, SignatureError> {
    if text.starts_with('-') {
        return Err(malformed(header, "negative timestamp"));
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(header, "timestamp is not whole Unix seconds"));
    }
    text.parse::<i64>()
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| malformed(header, "timestamp out of range"))
}

/// Refuses a timestamp further than `tolerance` from `now`, in either direction.
fn check_window(
    signed: Timestamp,
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let age = now.timestamp().saturating_sub(signed.timestamp());
    if age > tolerance {
        return Err(SignatureError::Stale {
            seconds: age.saturating_sub(tolerance),
        });
    }
    let ahead = 0_i64.saturating_sub(age);
    if ahead > tolerance {
        return Err(SignatureError::Future {
            seconds: ahead.saturating_sub(tolerance),
        });
    }
    Ok(())
}

/// Decodes every `sha256=<hex>` entry of a header value. Entries are separated by commas or
/// whitespace, so a sender in the middle of a rotation can send one per secret.
fn parse_sha256_hex(header: &'static str, value: &str) -> Result<Vec<[u8; 32]>, SignatureError> {
    let mut signatures = Vec::new();
    for entry in value
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|e| !e.is_empty())
    {
        if signatures.len() == MAX_SIGNATURES {
            return Err(malformed(header, "too many signatures"));
        }
        let Some(hex) = entry.strip_prefix("sha256=") else {
            return Err(malformed(header, "expected sha256=<hex>"));
        };
        if hex.len() != 64 {
            return Err(malformed(header, "signature is not 64 hex digits"));
        }
        let mut bytes = [0_u8; 32];
        if hex::decode_to_slice(hex, &mut bytes).is_err() {
            return Err(malformed(header, "signature is not hex"));
        }
        signatures.push(bytes);
    }
    if signatures.is_empty() {
        return Err(malformed(header, "empty"));
    }
    Ok(signatures)
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new(&block_key(key).into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The key as HMAC uses it: hashed when longer than a block, zero-padded to a block (RFC 2104,
/// section 2). Preparing it here makes building the MAC infallible for any key length.
fn block_key(key: &[u8]) -> [u8; 64] {
    let mut block = [0_u8; 64];
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block.iter_mut().zip(digest).for_each(|(b, d)| *b = d);
    } else {
        block.iter_mut().zip(key).for_each(|(b, k)| *b = *k);
    }
    block
}

/// The id of the first active key whose MAC over `parts` equals one of `candidates`.
///
/// Each comparison is constant-time; which key matched is not secret.
fn find_match<'k>(
    keys: impl Iterator<Item = &'k Key>,
    parts: &[&[u8]],
    candidates: &[[u8; 32]],
) -> Option<&'k str> {
    for key in keys {
        let expected = hmac_sha256(&key.bytes, parts);
        let mut matched = subtle::Choice::from(0);
        for candidate in candidates {
            matched |= expected.ct_eq(candidate);
        }
        if bool::from(matched) {
            return Some(&key.id);
        }
    }
    None
}

/// Lowercase hex SHA-256 of `text`, for delivery keys.
fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The keys of `secrets`, as raw bytes of the secret text.
fn text_keys(secrets: Vec<WebhookSecret>) -> Vec<Key> {
    secrets
        .into_iter()
        .map(|s| Key {
            id: s.id,
            bytes: s.secret.0.into_bytes(),
            not_after: s.not_after,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let secret = WebhookSecret::new("primary", "hunter2");
        let text = format!("{secret:?} {:?}", secret.secret);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("primary"));
    }

    #[test]
    fn secret_is_active_until_its_expiry_inclusive() {
        let t = chrono::DateTime::from_timestamp(1_000, 0).unwrap();
        let secret = WebhookSecret::new("old", "s").expires_at(t);
        assert!(secret.is_active(t));
        assert!(!secret.is_active(t + chrono::Duration::seconds(1)));
        assert!(WebhookSecret::new("new", "s").is_active(t));
    }

    #[test]
    fn long_keys_are_hashed_like_hmac_does() {
        let long = [7_u8; 100];
        let hashed = Sha256::digest(long);
        assert_eq!(hmac_sha256(&long, &[b"x"]), hmac_sha256(&hashed, &[b"x"]));
        assert_ne!(
            hmac_sha256(&long, &[b"x"]),
            hmac_sha256(&long[..99], &[b"x"])
        );
    }

    #[test]
    fn window_applies_in_both_directions() {
        let now = chrono::DateTime::from_timestamp(10_000, 0).unwrap();
        let tol = Duration::from_secs(300);
        let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
        assert!(check_window(at(10_000 - 300), now, tol).is_ok());
        assert!(check_window(at(10_000 + 300), now, tol).is_ok());
        assert_eq!(
            check_window(at(10_000 - 301), now, tol),
            Err(SignatureError::Stale { seconds: 1 })
        );
        assert_eq!(
            check_window(at(10_000 + 310), now, tol),
            Err(SignatureError::Future { seconds: 10 })
        );
    }
}
