//! Errors that cross a port.
//!
//! Adapters keep their own error enums and map them into these semantic kinds, so that a
//! caller can decide what to do (retry, answer 404, answer 503) without knowing which database
//! or service sits behind the port. The original error stays reachable through `source()`.

use std::time::Duration;

use crate::id::SyncJobId;

/// A boxed error from an adapter's own library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error of every store, queue and notifier port.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, for example `component 0191…`.
        what: String,
    },
    /// The write conflicts with existing data (for example a repository already registered).
    #[error("conflict: {what}")]
    Conflict {
        /// What conflicted.
        what: String,
    },
    /// The request was refused as invalid by the adapter.
    #[error("invalid: {what}")]
    Invalid {
        /// What was wrong.
        what: String,
    },
    /// The caller no longer holds the job's lease: another worker owns it now.
    #[error("lease lost on job {job_id}")]
    LeaseLost {
        /// The job whose lease was lost.
        job_id: SyncJobId,
    },
    /// The backend cannot be reached right now; retrying later can help.
    #[error("unavailable: {context}")]
    Unavailable {
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend failed in a way retrying will not fix (corrupt data, schema mismatch, bug).
    #[error("backend error: {context}")]
    Backend {
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// Whether retrying the same call later can succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// A `NotFound` for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// A `Conflict` for `what`.
    pub fn conflict(what: impl Into<String>) -> Self {
        Self::Conflict { what: what.into() }
    }

    /// An `Unavailable` with its cause.
    pub fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A `Backend` error with its cause.
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            context: context.into(),
            source: Some(source.into()),
        }
    }
}

/// How the retry policy should treat a [`ScanSourceError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryClass {
    /// The scan is still being analysed: retry on the not-ready schedule.
    NotReady {
        /// A delay the source suggested, if any.
        after: Option<Duration>,
    },
    /// Retry after exactly this delay (a `Retry-After` the source sent).
    After(Duration),
    /// Transient: retry with exponential backoff and jitter.
    Backoff,
    /// Permanent: fail now.
    Never,
}

/// The error of the scan-source port (the FOSSA client).
///
/// # Retries
///
/// | kind | retried | delay |
/// | --- | --- | --- |
/// | `NotReady` | yes, on the not-ready schedule | the source's hint or the schedule |
/// | `RateLimited` | yes | `retry_after` when given, else backoff |
/// | `Transient` | yes | exponential backoff with jitter |
/// | `Decode` | yes (a truncated or broken body is usually transient) | backoff |
/// | `Unauthorized`, `NotFound`, `Rejected` | no | — |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanSourceError {
    /// FOSSA has not finished analysing the revision (issues call answered 202).
    #[error("FOSSA has not finished analysing: {message}")]
    NotReady {
        /// What the source said.
        message: String,
        /// A delay the source suggested.
        retry_after: Option<Duration>,
    },
    /// The source rate-limited us (HTTP 429).
    #[error("rate limited by FOSSA{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The `Retry-After` delay, when the source sent one.
        retry_after: Option<Duration>,
    },
    /// A failure that usually passes: 5xx, timeout, connection reset.
    #[error("transient failure talking to FOSSA: {context}")]
    Transient {
        /// What failed, for example `GET /api/v2/issues: 503`.
        context: String,
        /// A delay the source suggested (`Retry-After` on a 503).
        retry_after: Option<Duration>,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The token is missing, invalid or lacks rights (401/403). Never contains the token.
    #[error("FOSSA refused the API token: {context}")]
    Unauthorized {
        /// What was refused and why.
        context: String,
    },
    /// The project or revision is not known to FOSSA (404).
    #[error("not found in FOSSA: {context}")]
    NotFound {
        /// What was not found.
        context: String,
    },
    /// A response did not have the expected shape.
    #[error("unexpected response from {endpoint}: {detail}")]
    Decode {
        /// The endpoint, as a path template.
        endpoint: String,
        /// The field or position that did not match.
        detail: String,
    },
    /// Any other client error (4xx): retrying the same request will not help.
    #[error("FOSSA rejected the request ({status}): {context}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// What was rejected.
        context: String,
    },
}

impl ScanSourceError {
    /// How the retry policy should treat this error.
    #[must_use]
    pub fn retry_class(&self) -> RetryClass {
        match self {
            Self::NotReady { retry_after, .. } => RetryClass::NotReady {
                after: *retry_after,
            },
            Self::RateLimited {
                retry_after: Some(after),
            }
            | Self::Transient {
                retry_after: Some(after),
                ..
            } => RetryClass::After(*after),
            Self::RateLimited { retry_after: None }
            | Self::Transient { .. }
            | Self::Decode { .. } => RetryClass::Backoff,
            Self::Unauthorized { .. } | Self::NotFound { .. } | Self::Rejected { .. } => {
                RetryClass::Never
            }
        }
    }

    /// A short stable label for metrics and logs.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotReady { .. } => "not_ready",
            Self::RateLimited { .. } => "rate_limited",
            Self::Transient { .. } => "transient",
            Self::Unauthorized { .. } => "unauthorized",
            Self::NotFound { .. } => "not_found",
            Self::Decode { .. } => "decode",
            Self::Rejected { .. } => "rejected",
        }
    }
}
