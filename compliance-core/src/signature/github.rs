//! GitHub's scheme: `X-Hub-Signature-256: sha256=<hex>` over the raw body.

use super::{
    find_match, parse_sha256_hex, sha256_hex, single_header, text_keys, Key, WebhookSecret,
};
use crate::clock::Timestamp;
use crate::ports::{RequestHeaders, SignatureError, SignatureVerifier, VerifiedSignature};

/// GitHub's signature header.
pub const GITHUB_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// GitHub's delivery id header, the same for a redelivery of one event.
pub const GITHUB_DELIVERY_HEADER: &str = "X-GitHub-Delivery";

/// Verifies GitHub webhook signatures, with several secrets for rotation.
///
/// GitHub signs the body only and sends no timestamp, so there is no window to check: the
/// verified timestamp is `now`, and replays are caught by the delivery key instead, the
/// lowercase hex SHA-256 of `"{X-GitHub-Delivery}.{X-Hub-Signature-256}"`.
#[derive(Clone, Debug)]
pub struct GithubVerifier {
    keys: Vec<Key>,
}

impl GithubVerifier {
    /// A verifier accepting any of `secrets` that has not expired.
    #[must_use]
    pub fn new(secrets: Vec<WebhookSecret>) -> Self {
        Self {
            keys: text_keys(secrets),
        }
    }
}

impl SignatureVerifier for GithubVerifier {
    fn verify(
        &self,
        body: &[u8],
        headers: &RequestHeaders,
        now: Timestamp,
    ) -> Result<VerifiedSignature, SignatureError> {
        let signature = single_header(headers, GITHUB_SIGNATURE_HEADER)?;
        let delivery = single_header(headers, GITHUB_DELIVERY_HEADER)?;
        if !self.keys.iter().any(|k| k.active(now)) {
            return Err(SignatureError::NoActiveSecret);
        }

        let candidates = parse_sha256_hex(GITHUB_SIGNATURE_HEADER, signature)?;
        let active = self.keys.iter().filter(|k| k.active(now));
        let secret_id = find_match(active, &[body], &candidates).ok_or(SignatureError::Mismatch)?;

        Ok(VerifiedSignature {
            timestamp: now,
            secret_id: secret_id.to_owned(),
            delivery_key: sha256_hex(&format!("{delivery}.{signature}")),
        })
    }
}
