//! Client settings: where FOSSA is, the API token, timeouts, concurrency and page sizes.

use std::fmt;
use std::time::Duration;

use url::Url;

/// FOSSA's public endpoint; on-premises installs have their own.
pub const DEFAULT_BASE_URL: &str = "https://app.fossa.com";
/// The environment variable [`FossaConfig::from_env`] reads the API token from.
pub const TOKEN_ENV: &str = "FOSSA_API_KEY";
/// The environment variable [`FossaConfig::from_env`] reads the base URL from.
pub const BASE_URL_ENV: &str = "FOSSA_BASE_URL";

/// The page size range FOSSA accepts for `GET /api/v2/issues` (`count`).
pub const ISSUES_PAGE_SIZE_RANGE: (u32, u32) = (1, 1000);
/// The page size range FOSSA clamps `limit` to on the v1 dependencies endpoint.
pub const DEPENDENCIES_PAGE_SIZE_RANGE: (u32, u32) = (25, 100);

/// A FOSSA API token.
///
/// Its `Debug` output is redacted, it has no `Display`, and it is only readable through
/// [`expose`](Self::expose), so it cannot reach a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the `Authorization` header.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

impl From<String> for ApiToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl From<&str> for ApiToken {
    fn from(token: &str) -> Self {
        Self(token.to_owned())
    }
}

/// Why a configuration could not be built or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No API token was given.
    #[error("no FOSSA API token: set {TOKEN_ENV} to a Full API token")]
    MissingToken,
    /// The token cannot go into an HTTP header (control characters or non-ASCII).
    #[error("the FOSSA API token in {TOKEN_ENV} contains characters an HTTP header cannot carry")]
    InvalidToken,
    /// The base URL does not parse or is not http(s).
    #[error("invalid FOSSA base URL {value:?}: {reason}")]
    InvalidBaseUrl {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (for example no TLS roots).
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// Settings of a [`FossaClient`](crate::FossaClient).
///
/// Build one with [`FossaConfig::new`] or [`FossaConfig::from_env`] and adjust it with the
/// `with_*` methods; every field has a sensible default.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FossaConfig {
    /// Where FOSSA is; [`DEFAULT_BASE_URL`] unless on-premises or a simulator.
    pub base_url: Url,
    /// The API token; FOSSA needs a Full token (Push-Only tokens cannot read).
    pub token: Option<ApiToken>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, body included.
    pub request_timeout: Duration,
    /// Time allowed between two reads of a response body (a stalled stream).
    pub read_timeout: Duration,
    /// Requests in flight at once, across every fetch made with this client.
    pub max_concurrency: usize,
    /// `count` per issues page, kept within [`ISSUES_PAGE_SIZE_RANGE`].
    pub issues_page_size: u32,
    /// `limit` per dependencies page, kept within [`DEPENDENCIES_PAGE_SIZE_RANGE`].
    pub dependencies_page_size: u32,
    /// How often one request is retried inside the client on 429, 5xx or a connection
    /// failure before the error goes to the caller's retry policy.
    pub request_retries: u32,
    /// First delay of the client's own backoff (doubled per attempt, with jitter).
    pub retry_base_delay: Duration,
    /// A `Retry-After` longer than this is not waited out inside the client: the error goes
    /// to the caller, whose retry policy schedules the job.
    pub max_inline_retry_wait: Duration,
    /// Upper bound applied to every `Retry-After` FOSSA sends.
    pub retry_after_cap: Duration,
    /// Largest response body accepted for one page.
    pub max_page_bytes: usize,
    /// Pages fetched per endpoint before paging is declared endless.
    pub max_pages: u32,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl FossaConfig {
    /// Defaults for the public FOSSA endpoint with `token`.
    pub fn new(token: impl Into<ApiToken>) -> Self {
        Self {
            token: Some(token.into()),
            ..Self::without_token()
        }
    }

    /// Defaults with no token; every call will fail with an auth error until one is set.
    #[must_use]
    pub fn without_token() -> Self {
        Self {
            base_url: default_base_url(),
            token: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            read_timeout: Duration::from_secs(30),
            max_concurrency: 4,
            issues_page_size: 200,
            dependencies_page_size: 100,
            request_retries: 2,
            retry_base_delay: Duration::from_millis(250),
            max_inline_retry_wait: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(3600),
            max_page_bytes: 64 * 1024 * 1024,
            max_pages: 10_000,
            user_agent: format!(
                "compliance-fossa/{} (+{})",
                env!("CARGO_PKG_VERSION"),
                env!("CARGO_PKG_REPOSITORY")
            ),
        }
    }

    /// Reads [`TOKEN_ENV`] (required) and [`BASE_URL_ENV`] (optional) from the process
    /// environment.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingToken`] when the token is unset or blank, and
    /// [`ConfigError::InvalidBaseUrl`] when the base URL is set but unusable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup` (for tests and
    /// for configuration systems other than the process environment).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let token = lookup(TOKEN_ENV)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or(ConfigError::MissingToken)?;
        let mut config = Self::new(token);
        if let Some(base) = lookup(BASE_URL_ENV).filter(|b| !b.trim().is_empty()) {
            config = config.with_base_url(base.trim())?;
        }
        Ok(config)
    }

    /// Points the client at another FOSSA (on-premises, or the simulator on loopback).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidBaseUrl`] unless `base_url` is an absolute http(s) URL.
    pub fn with_base_url(mut self, base_url: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidBaseUrl {
            value: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let url = Url::parse(base_url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.cannot_be_a_base() || url.host_str().is_none() {
            return Err(invalid("it must name a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not carry a query or fragment"));
        }
        self.base_url = url;
        Ok(self)
    }

    /// Sets the token.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<ApiToken>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sets the connect, whole-request and between-reads timeouts.
    #[must_use]
    pub fn with_timeouts(mut self, connect: Duration, request: Duration, read: Duration) -> Self {
        self.connect_timeout = connect;
        self.request_timeout = request;
        self.read_timeout = read;
        self
    }

    /// Sets how many requests may be in flight at once (at least one).
    #[must_use]
    pub fn with_max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Sets the issues page size (kept within [`ISSUES_PAGE_SIZE_RANGE`]).
    #[must_use]
    pub fn with_issues_page_size(mut self, count: u32) -> Self {
        self.issues_page_size = count;
        self
    }

    /// Sets the dependencies page size (kept within [`DEPENDENCIES_PAGE_SIZE_RANGE`]).
    #[must_use]
    pub fn with_dependencies_page_size(mut self, limit: u32) -> Self {
        self.dependencies_page_size = limit;
        self
    }

    /// Sets how often the client retries one request itself (0: every failure goes
    /// straight to the caller's retry policy).
    #[must_use]
    pub fn with_request_retries(mut self, retries: u32) -> Self {
        self.request_retries = retries;
        self
    }

    /// The base URL without a trailing slash, so paths can be appended.
    pub(crate) fn base(&self) -> String {
        self.base_url.as_str().trim_end_matches('/').to_owned()
    }

    pub(crate) fn issues_count(&self) -> u32 {
        let (lo, hi) = ISSUES_PAGE_SIZE_RANGE;
        self.issues_page_size.clamp(lo, hi)
    }

    pub(crate) fn dependencies_limit(&self) -> u32 {
        let (lo, hi) = DEPENDENCIES_PAGE_SIZE_RANGE;
        self.dependencies_page_size.clamp(lo, hi)
    }
}

#[allow(clippy::expect_used)] // A constant that parses; `default_base_url_parses` checks it.
fn default_base_url() -> Url {
    Url::parse(DEFAULT_BASE_URL).expect("DEFAULT_BASE_URL is a valid URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_base_url_parses() {
        assert_eq!(default_base_url().as_str(), "https://app.fossa.com/");
    }

    #[test]
    fn token_debug_is_redacted() {
        let config = FossaConfig::new("s3cr3t-token-value");
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("ApiToken(***)"));
    }

    #[test]
    fn from_lookup_reads_token_and_base_url() {
        let config = FossaConfig::from_lookup(|name| match name {
            TOKEN_ENV => Some(" tok ".to_owned()),
            BASE_URL_ENV => Some("http://127.0.0.1:8080/".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.token.as_ref().map(ApiToken::expose), Some("tok"));
        assert_eq!(config.base(), "http://127.0.0.1:8080");
    }

    #[test]
    fn from_lookup_without_token_names_the_variable() {
        let err = FossaConfig::from_lookup(|_| None).unwrap_err();
        assert!(matches!(err, ConfigError::MissingToken));
        assert!(err.to_string().contains(TOKEN_ENV));
        let blank = FossaConfig::from_lookup(|n| (n == TOKEN_ENV).then(|| "  ".to_owned()));
        assert!(matches!(blank, Err(ConfigError::MissingToken)));
    }

    #[test]
    fn from_lookup_defaults_to_public_fossa() {
        let config =
            FossaConfig::from_lookup(|n| (n == TOKEN_ENV).then(|| "t".to_owned())).unwrap();
        assert_eq!(config.base(), "https://app.fossa.com");
    }

    #[test]
    fn base_url_must_be_http() {
        for bad in [
            "ftp://example.com",
            "not a url",
            "mailto:x@example.com",
            "http://h/?q=1",
        ] {
            let err = FossaConfig::new("t").with_base_url(bad).unwrap_err();
            assert!(matches!(err, ConfigError::InvalidBaseUrl { .. }), "{bad}");
        }
        let on_prem = FossaConfig::new("t")
            .with_base_url("https://fossa.corp.example/")
            .unwrap();
        assert_eq!(on_prem.base(), "https://fossa.corp.example");
    }

    #[test]
    fn page_sizes_are_kept_in_fossas_ranges() {
        let config = FossaConfig::new("t")
            .with_issues_page_size(0)
            .with_dependencies_page_size(1000);
        assert_eq!(config.issues_count(), 1);
        assert_eq!(config.dependencies_limit(), 100);
        let config = config
            .with_issues_page_size(5000)
            .with_dependencies_page_size(3);
        assert_eq!(config.issues_count(), 1000);
        assert_eq!(config.dependencies_limit(), 25);
    }
}
