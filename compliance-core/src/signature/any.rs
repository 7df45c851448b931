//! Several schemes side by side: the first whose signature header is present decides.

use std::sync::Arc;

use super::{
    GITHUB_DELIVERY_HEADER, SIGNATURE_HEADER, STANDARD_ID_HEADER, STANDARD_TIMESTAMP_HEADER,
    TIMESTAMP_HEADER,
};
use crate::clock::Timestamp;
use crate::ports::{RequestHeaders, SignatureError, SignatureVerifier, VerifiedSignature};

/// Headers that a built-in verifier asks for only once its signature header is present, so a
/// request missing one of them belongs to that verifier's scheme.
const COMPANION_HEADERS: [&str; 4] = [
    TIMESTAMP_HEADER,
    STANDARD_ID_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    GITHUB_DELIVERY_HEADER,
];

/// Tries verifiers in order; the first whose signature header is present decides.
///
/// A verifier answering [`SignatureError::MissingHeader`] for its signature header means "not
/// my scheme", and the next one is tried. Every built-in verifier checks its signature header
/// before anything else, so any other answer (a missing timestamp, id or delivery header
/// included) decides. When no scheme's header is present the answer is `MissingHeader` for
/// the document's [`SIGNATURE_HEADER`]; with no verifier at all it is
/// [`SignatureError::NoActiveSecret`].
///
/// A verifier from outside this module takes part as long as it, too, reports a missing
/// signature header before anything else.
#[derive(Clone)]
pub struct AnyVerifier(pub Vec<Arc<dyn SignatureVerifier>>);

impl AnyVerifier {
    /// Tries `verifiers` in the given order.
    #[must_use]
    pub fn new(verifiers: Vec<Arc<dyn SignatureVerifier>>) -> Self {
        Self(verifiers)
    }
}

impl std::fmt::Debug for AnyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnyVerifier")
            .field("schemes", &self.0.len())
            .finish()
    }
}

impl SignatureVerifier for AnyVerifier {
    fn verify(
        &self,
        body: &[u8],
        headers: &RequestHeaders,
        now: Timestamp,
    ) -> Result<VerifiedSignature, SignatureError> {
        if self.0.is_empty() {
            return Err(SignatureError::NoActiveSecret);
        }
        for verifier in &self.0 {
            match verifier.verify(body, headers, now) {
                Err(SignatureError::MissingHeader(header))
                    if !COMPANION_HEADERS
                        .iter()
                        .any(|h| h.eq_ignore_ascii_case(header)) => {}
                decided => return decided,
            }
        }
        Err(SignatureError::MissingHeader(SIGNATURE_HEADER))
    }
}
