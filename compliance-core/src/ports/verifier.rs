use crate::clock::Timestamp;

/// Request headers as the verifier sees them: names compared case-insensitively.
///
/// The HTTP layer copies the few headers it has into this type; core never sees an HTTP
/// library's types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHeaders {
    entries: Vec<(String, String)>,
}

impl RequestHeaders {
    /// No headers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header; a name may appear several times.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let mut name = name.into();
        name.make_ascii_lowercase();
        self.entries.push((name, value.into()));
    }

    /// Adds a header, builder style.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.push(name, value);
        self
    }

    /// The first value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in the order they were added.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for RequestHeaders {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut headers = Self::new();
        for (k, v) in iter {
            headers.push(k, v);
        }
        headers
    }
}

/// What a successful verification proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The signed timestamp.
    pub timestamp: Timestamp,
    /// The id of the secret that matched (never the secret itself).
    pub secret_id: String,
    /// A digest that identifies this signed delivery (same body, timestamp and signature give
    /// the same key); used to answer redeliveries with the original outcome.
    pub delivery_key: String,
}

/// Why a signature was refused. The HTTP answer is a uniform 401; the kind goes to the event
/// log and to metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but not in the expected form.
    #[error("malformed header {header}: {reason}")]
    Malformed {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The timestamp is older than the tolerance.
    #[error("timestamp too old by {seconds}s")]
    Stale {
        /// How far outside the window, in seconds.
        seconds: i64,
    },
    /// The timestamp is further in the future than the tolerance.
    #[error("timestamp too far in the future by {seconds}s")]
    Future {
        /// How far outside the window, in seconds.
        seconds: i64,
    },
    /// No active secret produced the signature.
    #[error("signature mismatch")]
    Mismatch,
    /// No secret is configured or every secret has expired.
    #[error("no active webhook secret")]
    NoActiveSecret,
}

impl SignatureError {
    /// A short stable label for metrics and the event log.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::Malformed { .. } => "malformed_header",
            Self::Stale { .. } => "stale_timestamp",
            Self::Future { .. } => "future_timestamp",
            Self::Mismatch => "mismatch",
            Self::NoActiveSecret => "no_active_secret",
        }
    }
}

/// Checks that a webhook request was signed by someone holding a shared secret.
///
/// # Contract
///
/// - `body` is the raw body, byte for byte as received.
/// - Comparison of MACs is constant-time.
/// - The timestamp window applies in both directions.
/// - Errors never contain a secret.
pub trait SignatureVerifier: Send + Sync + 'static {
    /// Verifies `body` and `headers` as of `now`.
    ///
    /// # Errors
    ///
    /// A [`SignatureError`] saying why the request is not authentic.
    fn verify(
        &self,
        body: &[u8],
        headers: &RequestHeaders,
        now: Timestamp,
    ) -> Result<VerifiedSignature, SignatureError>;
}
