//! The client's own errors, and how they map into core's [`ScanSourceError`] kinds.

use std::fmt;
use std::time::Duration;

use compliance_core::ScanSourceError;

use crate::config::TOKEN_ENV;

/// What a call to FOSSA ran into. Never contains the API token.
///
/// | variant | [`ScanSourceError`] kind | retried by the worker |
/// | --- | --- | --- |
/// | `NotReady` (202) | `NotReady` | on the not-ready schedule |
/// | `RateLimited` (429) | `RateLimited` | after `Retry-After`, else backoff |
/// | `Server` (5xx, 408) | `Transient` (with a 503's `Retry-After`) | yes |
/// | `Transport` (timeout, connection) | `Transient` | yes |
/// | `InStream` (error appended to a 200 body) | `Transient` | yes |
/// | `Decode`, `TooLarge`, `EndlessPaging` | `Decode` | yes, with backoff |
/// | `Unauthorized` (401, 403) | `Unauthorized` | no |
/// | `NotFound` (404, or no such project) | `NotFound` | no |
/// | `Rejected` (other 4xx) | `Rejected` | no |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FossaError {
    /// FOSSA refused the token (401) or its rights (403).
    #[error("{problem} ({status} on GET {endpoint}{})", detail_suffix(.detail))]
    Unauthorized {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// 401 or 403.
        status: u16,
        /// What is wrong with the token, naming the environment variable.
        problem: TokenProblem,
        /// FOSSA's own message, when it sent one.
        detail: Option<String>,
    },
    /// The project or revision is unknown to FOSSA.
    #[error("project or revision not found in FOSSA: {what} (GET {endpoint}{})", detail_suffix(.detail))]
    NotFound {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// What was looked for.
        what: String,
        /// FOSSA's own message, when it sent one.
        detail: Option<String>,
    },
    /// FOSSA is still analysing (HTTP 202).
    #[error("FOSSA has not finished analysing {what}: {message}")]
    NotReady {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// What is being analysed.
        what: String,
        /// FOSSA's message (`analysis in-progress`).
        message: String,
        /// A `Retry-After` FOSSA sent with it.
        retry_after: Option<Duration>,
    },
    /// HTTP 429.
    #[error("rate limited by FOSSA on GET {endpoint}{}", retry_suffix(*.retry_after))]
    RateLimited {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// The `Retry-After` delay, clamped.
        retry_after: Option<Duration>,
    },
    /// A 5xx or 408: FOSSA or something in front of it failed.
    #[error("GET {endpoint} answered {status}{}{}", detail_suffix(.detail), retry_suffix(*.retry_after))]
    Server {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// The status.
        status: u16,
        /// FOSSA's message or a summary of the body.
        detail: Option<String>,
        /// The `Retry-After` delay (503), clamped.
        retry_after: Option<Duration>,
    },
    /// Another 4xx: the request itself is wrong; retrying will not help.
    #[error("GET {endpoint} rejected the request ({status}){}", detail_suffix(.detail))]
    Rejected {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// The status.
        status: u16,
        /// FOSSA's message or a summary of the body.
        detail: Option<String>,
    },
    /// No usable HTTP exchange: timeout, refused or reset connection, broken body.
    #[error("GET {endpoint}: {kind}")]
    Transport {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// What went wrong.
        kind: TransportKind,
        /// reqwest's error, without the URL.
        #[source]
        source: reqwest::Error,
    },
    /// A 200 body whose stream ended with FOSSA's in-stream `{"error": …}` object.
    #[error("GET {endpoint} failed while streaming its body: {message}")]
    InStream {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// The error FOSSA appended.
        message: String,
    },
    /// The body does not have the documented shape.
    #[error("unexpected response from GET {endpoint}: {detail}")]
    Decode {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// The field path and what was wrong there.
        detail: String,
    },
    /// One page was larger than [`FossaConfig::max_page_bytes`](crate::FossaConfig).
    #[error("GET {endpoint} sent more than {limit} bytes in one page")]
    TooLarge {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// The limit.
        limit: usize,
    },
    /// Paging did not end after [`FossaConfig::max_pages`](crate::FossaConfig) pages.
    #[error("GET {endpoint} was still returning full pages after {pages} pages")]
    EndlessPaging {
        /// Path template of the endpoint.
        endpoint: &'static str,
        /// Pages fetched.
        pages: u32,
    },
}

/// Why FOSSA refused the token. Its text names [`TOKEN_ENV`] and never holds the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    /// No token is configured.
    Missing,
    /// FOSSA does not accept the token (401): wrong, revoked or expired.
    Invalid,
    /// The token is valid but may not read this (403): a Push-Only token, a project outside
    /// the token's teams, or a proxy refusing the call.
    Forbidden,
}

impl fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(
                f,
                "no FOSSA API token is configured: set {TOKEN_ENV} to a Full API token"
            ),
            Self::Invalid => write!(
                f,
                "FOSSA does not accept the API token (missing, wrong, revoked or expired): \
                 check that {TOKEN_ENV} holds a current Full API token"
            ),
            Self::Forbidden => write!(
                f,
                "the API token in {TOKEN_ENV} may not read this project: FOSSA needs a Full \
                 token (not Push-Only) with access to it; a proxy in the way can also answer 403"
            ),
        }
    }
}

/// What kind of transport failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// The connect, read or whole-request timeout passed.
    Timeout,
    /// No connection could be opened.
    Connect,
    /// The connection broke while the response was being read (reset, closed early).
    Body,
    /// The request failed before a response arrived (for example the server closed the
    /// connection without answering).
    Request,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::Connect => "could not connect",
            Self::Body => "connection broke while reading the response body",
            Self::Request => "request failed without a response",
        })
    }
}

impl TransportKind {
    pub(crate) fn of(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::Timeout
        } else if error.is_connect() {
            Self::Connect
        } else if error.is_body() || error.is_decode() {
            Self::Body
        } else {
            Self::Request
        }
    }
}

impl FossaError {
    /// Whether the client may try the same request again itself.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Server { .. } | Self::Transport { .. }
        )
    }

    /// Names what a 404 or 202 was about (`project …`, `revision …`).
    pub(crate) fn about(mut self, subject: &str) -> Self {
        if let Self::NotFound { what, .. } | Self::NotReady { what, .. } = &mut self {
            if what.is_empty() {
                subject.clone_into(what);
            }
        }
        self
    }

    /// The delay FOSSA asked for, when it asked.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. }
            | Self::Server { retry_after, .. }
            | Self::NotReady { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<FossaError> for ScanSourceError {
    fn from(error: FossaError) -> Self {
        match error {
            FossaError::NotReady {
                ref message,
                retry_after,
                ref what,
                ..
            } => ScanSourceError::NotReady {
                message: format!("{what}: {message}"),
                retry_after,
            },
            FossaError::RateLimited { retry_after, .. } => {
                ScanSourceError::RateLimited { retry_after }
            }
            FossaError::Server { retry_after, .. } => ScanSourceError::Transient {
                context: error.to_string(),
                retry_after,
                source: Some(Box::new(error)),
            },
            FossaError::Transport { .. } | FossaError::InStream { .. } => {
                ScanSourceError::Transient {
                    context: error.to_string(),
                    retry_after: None,
                    source: Some(Box::new(error)),
                }
            }
            FossaError::Unauthorized { .. } => ScanSourceError::Unauthorized {
                context: error.to_string(),
            },
            FossaError::NotFound { .. } => ScanSourceError::NotFound {
                context: error.to_string(),
            },
            FossaError::Rejected { status, .. } => ScanSourceError::Rejected {
                status,
                context: error.to_string(),
            },
            FossaError::Decode { endpoint, detail } => ScanSourceError::Decode {
                endpoint: endpoint.to_owned(),
                detail,
            },
            FossaError::TooLarge { endpoint, .. } | FossaError::EndlessPaging { endpoint, .. } => {
                ScanSourceError::Decode {
                    endpoint: endpoint.to_owned(),
                    detail: error.to_string(),
                }
            }
        }
    }
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

fn retry_suffix(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!(" (retry after {}s)", d.as_secs()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use compliance_core::RetryClass;

    use super::*;

    #[test]
    fn kinds_map_to_the_documented_retry_classes() {
        let e = "/api/v2/issues";
        let secs = Duration::from_secs;
        let cases: Vec<(FossaError, &str, RetryClass)> = vec![
            (
                FossaError::NotReady {
                    endpoint: e,
                    what: "rev".into(),
                    message: "analysis in-progress".into(),
                    retry_after: None,
                },
                "not_ready",
                RetryClass::NotReady { after: None },
            ),
            (
                FossaError::RateLimited {
                    endpoint: e,
                    retry_after: Some(secs(7)),
                },
                "rate_limited",
                RetryClass::After(secs(7)),
            ),
            (
                FossaError::Server {
                    endpoint: e,
                    status: 503,
                    detail: None,
                    retry_after: Some(secs(3)),
                },
                "transient",
                RetryClass::After(secs(3)),
            ),
            (
                FossaError::Server {
                    endpoint: e,
                    status: 500,
                    detail: None,
                    retry_after: None,
                },
                "transient",
                RetryClass::Backoff,
            ),
            (
                FossaError::InStream {
                    endpoint: e,
                    message: "x".into(),
                },
                "transient",
                RetryClass::Backoff,
            ),
            (
                FossaError::Decode {
                    endpoint: e,
                    detail: "x".into(),
                },
                "decode",
                RetryClass::Backoff,
            ),
            (
                FossaError::Unauthorized {
                    endpoint: e,
                    status: 401,
                    problem: TokenProblem::Invalid,
                    detail: None,
                },
                "unauthorized",
                RetryClass::Never,
            ),
            (
                FossaError::NotFound {
                    endpoint: e,
                    what: "x".into(),
                    detail: None,
                },
                "not_found",
                RetryClass::Never,
            ),
            (
                FossaError::Rejected {
                    endpoint: e,
                    status: 400,
                    detail: None,
                },
                "rejected",
                RetryClass::Never,
            ),
        ];
        for (fossa, kind, class) in cases {
            let text = fossa.to_string();
            let core = ScanSourceError::from(fossa);
            assert_eq!(core.kind(), kind, "{text}");
            assert_eq!(core.retry_class(), class, "{text}");
        }
    }

    #[test]
    fn token_problems_name_the_variable() {
        for problem in [
            TokenProblem::Missing,
            TokenProblem::Invalid,
            TokenProblem::Forbidden,
        ] {
            assert!(problem.to_string().contains(TOKEN_ENV), "{problem}");
        }
    }
}
