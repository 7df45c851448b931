//! The webhook body: its types, strict validation that reports every field error at once,
//! and a lenient [`peek`] for the event log.
//!
//! [`parse_webhook`] accepts the workflow document's full example body and also the shorter
//! payloads its own CI templates and curl test send, which have no `timestamp` and no
//! `repository.name`: the timestamp then comes from the verified signature header, the name
//! from the repository URL's last segment. Unknown fields are ignored.
//!
//! ```
//! use compliance_core::payload::{parse_webhook, ScanStatus};
//!
//! let body = br#"{"event":"fossa.scan.completed",
//!     "repository":{"url":"https://github.com/acme/payment-service"},
//!     "scan":{"revision":"abc123","branch":"main","status":"passed"}}"#;
//! let signed_at = chrono::DateTime::from_timestamp(1_736_937_300, 0);
//!
//! let webhook = parse_webhook(body, signed_at)?;
//! assert_eq!(webhook.repository.name, "payment-service");
//! assert_eq!(webhook.repository.url.key(), "github.com/acme/payment-service");
//! assert_eq!(webhook.scan.status, ScanStatus::Passed);
//! # Ok::<(), compliance_core::payload::PayloadError>(())
//! ```
//!
//! | field | required | rule |
//! | --- | --- | --- |
//! | `event` | yes | exactly `fossa.scan.completed` |
//! | `timestamp` | when the caller has no header timestamp | ISO 8601 date-time with offset |
//! | `repository.url` | yes | a repository URL ([`RepoUrl`]), at most 2048 characters |
//! | `repository.name` | no (taken from the URL) | at most 255 characters |
//! | `scan.revision` | yes | a commit id: 6 to 64 hexadecimal characters |
//! | `scan.branch` | yes | at most 255 characters |
//! | `scan.status` | yes | `passed` or `failed` |
//! | `scan.issues_found` | no | boolean |
//! | `pipeline.url` | no | an http or https URL, at most 2048 characters |
//! | other strings | no | at most 255 characters |
//!
//! Every string must be a JSON string (a number where a string belongs is an error), not
//! empty or blank, and free of control characters.

mod peek;
mod validate;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::repo_url::RepoUrl;

pub use peek::{peek, PayloadPeek};

/// The only event this receiver handles.
pub const SCAN_COMPLETED_EVENT: &str = "fossa.scan.completed";

/// One problem with one field of the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Dotted path of the field, for example `scan.revision`; `body` for the whole body.
    pub field: String,
    /// What is wrong, for the sender to read.
    pub message: String,
}

impl FieldError {
    /// An error on `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a body is not an acceptable webhook.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body is not UTF-8.
    #[error("body is not valid UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 {
        /// Bytes before the first invalid one.
        valid_up_to: usize,
    },
    /// The body is not JSON.
    #[error("body is not valid JSON at line {line}, column {column}: {message}")]
    NotJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error (0 at the very start of an empty body).
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The body is JSON but fields are missing or wrong; every field error is listed.
    #[error("invalid payload: {}", summary(.0))]
    Invalid(Vec<FieldError>),
}

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl PayloadError {
    /// The field-level details for a `400` answer; a body that is not UTF-8 or not JSON gives
    /// one detail on the field `body`.
    #[must_use]
    pub fn details(&self) -> Vec<FieldError> {
        match self {
            Self::NotUtf8 { valid_up_to } => vec![FieldError::new(
                "body",
                format!("is not valid UTF-8: invalid byte at offset {valid_up_to}"),
            )],
            Self::NotJson {
                line,
                column,
                message,
            } => vec![FieldError::new(
                "body",
                format!("is not valid JSON: {message} at line {line}, column {column}"),
            )],
            Self::Invalid(errors) => errors.clone(),
        }
    }
}

/// The scan's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanStatus {
    /// No policy violation.
    Passed,
    /// At least one policy violation.
    Failed,
}

impl ScanStatus {
    /// The wire spelling: `passed` or `failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
        }
    }
}

/// A body that passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedWebhook {
    /// Always [`SCAN_COMPLETED_EVENT`].
    pub event: String,
    /// When the scan completed: the body's `timestamp`, or the signed header timestamp when
    /// the body has none.
    pub timestamp: Timestamp,
    /// The repository scanned.
    pub repository: Repository,
    /// The scan.
    pub scan: Scan,
    /// The CI run that sent the webhook, when given.
    pub pipeline: Option<Pipeline>,
    /// Who or what triggered the run, when given.
    pub metadata: Option<Metadata>,
}

/// `repository` of the body.
#[derive(Clone, Debug, PartialEq)]
pub struct Repository {
    /// The name as sent, or the URL's last segment when absent.
    pub name: String,
    /// The URL, parsed and normalized for matching.
    pub url: RepoUrl,
    /// `github`, `gitlab`, `bitbucket`, `azure` or another hosting service, as sent.
    pub provider: Option<String>,
}

/// `scan` of the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// The commit id, lower-cased.
    pub revision: String,
    /// The branch scanned.
    pub branch: String,
    /// The verdict.
    pub status: ScanStatus,
    /// Whether policy violations exist, when the sender says.
    pub issues_found: Option<bool>,
}

/// `pipeline` of the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pipeline {
    /// The CI run's id.
    pub id: Option<String>,
    /// A link to the CI run (http or https), with any user info removed.
    pub url: Option<String>,
    /// The CI system, for example `github-actions`.
    pub provider: Option<String>,
}

/// `metadata` of the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// What triggered the run, for example `push`.
    pub triggered_by: Option<String>,
    /// Who triggered the run.
    pub actor: Option<String>,
}

/// Parses and validates a webhook body, reporting every field error at once.
///
/// `header_timestamp` is the verified signature timestamp, used when the body has no
/// `timestamp`. A leading UTF-8 byte order mark is ignored.
///
/// # Errors
///
/// [`PayloadError::NotUtf8`] and [`PayloadError::NotJson`] with the position of the first
/// bad byte or token; [`PayloadError::Invalid`] listing every field error, with a top-level
/// value that is not an object reported on the field `body`.
pub fn parse_webhook(
    body: &[u8],
    header_timestamp: Option<Timestamp>,
) -> Result<ValidatedWebhook, PayloadError> {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            return Err(PayloadError::NotUtf8 {
                valid_up_to: e.valid_up_to(),
            })
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| not_json(&e))?;
    validate::webhook(&value, header_timestamp)
}

fn not_json(e: &serde_json::Error) -> PayloadError {
    let full = e.to_string();
    // serde_json appends " at line L column C"; the position has fields of its own.
    let message = match full.rfind(" at line ") {
        Some(at) => full.get(..at).unwrap_or(&full).to_owned(),
        None => full,
    };
    PayloadError::NotJson {
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// `text` with the user info of a `scheme://user:password@host` URL removed, so that a token
/// a CI system put in a URL never reaches the event log or the dashboard.
fn without_user_info(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = text.get(authority_start..).unwrap_or("");
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..authority_len).unwrap_or(rest);
    match authority.rfind('@') {
        Some(at) => format!(
            "{}{}",
            text.get(..authority_start).unwrap_or(""),
            rest.get(at + 1..).unwrap_or("")
        ),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_user_info;

    #[test]
    fn user_info_is_removed_from_urls_only() {
        assert_eq!(
            without_user_info("https://x:tok@ci.example.com/run/1?a=b@c"),
            "https://ci.example.com/run/1?a=b@c"
        );
        assert_eq!(
            without_user_info("https://tok@a@ci.example.com"),
            "https://ci.example.com"
        );
        assert_eq!(
            without_user_info("https://ci.example.com/u@x"),
            "https://ci.example.com/u@x"
        );
        assert_eq!(
            without_user_info("git@github.com:a/b"),
            "git@github.com:a/b"
        );
        assert_eq!(without_user_info("plain"), "plain");
    }
}
