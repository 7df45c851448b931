//! Connection options shared by the queue and the notifier.

use std::fmt;
use std::time::Duration;

/// The key prefix used when none is given.
pub const DEFAULT_KEY_PREFIX: &str = "compliance:";

/// A Redis URL that could not be used.
///
/// The message never contains the URL itself, so a password in it cannot leak through logs.
#[derive(Debug, thiserror::Error)]
#[error("invalid redis url: {reason}")]
pub struct ConfigError {
    reason: String,
}

/// Where Redis is and how patiently to talk to it.
///
/// Built from a `redis://[user][:password@]host[:port][/db]` URL (also `rediss://` and
/// `redis+unix://`). The URL's password is kept inside the client and never shown: `Debug`
/// prints the URL with the password replaced by `***`.
#[derive(Clone)]
pub struct RedisOptions {
    pub(crate) client: redis::Client,
    redacted_url: String,
    pub(crate) key_prefix: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
}

impl RedisOptions {
    /// Options for the server at `url`, with the default prefix and timeouts (2 s to connect,
    /// 5 s per command).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `url` is not a Redis URL. Nothing is connected yet: a server that
    /// is down is not an error here.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let client = redis::Client::open(url).map_err(|e| ConfigError {
            // The library's messages name the part that failed, never the URL's text.
            reason: e.to_string(),
        })?;
        Ok(Self {
            client,
            redacted_url: redact_url(url),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
        })
    }

    /// Puts every key and channel under `prefix` (default `compliance:`), so several
    /// deployments or tests can share one database.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long to wait for a connection before answering `Unavailable`.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one operation may take before answering `Unavailable`.
    #[must_use]
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The URL with its password replaced by `***`, safe to log.
    #[must_use]
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// The configured key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.key_prefix
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.redacted_url)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

/// `url` with any password (userinfo or the unix-socket `pass` query) replaced by `***`.
fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Unparseable here but accepted by the client: show nothing that could be a secret.
        return "<redis url>".to_owned();
    };
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return "<redis url>".to_owned();
    }
    if parsed.query_pairs().any(|(k, _)| k == "pass") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "pass" {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted_everywhere_it_shows() {
        let options = RedisOptions::from_url("redis://app:s3cr3t-pw@127.0.0.1:6380/4").unwrap();

        assert_eq!(options.redacted_url(), "redis://app:***@127.0.0.1:6380/4");
        assert!(!format!("{options:?}").contains("s3cr3t-pw"));
    }

    #[test]
    fn password_only_url_with_a_database_number_is_understood() {
        let options = RedisOptions::from_url("redis://:pa55-word@cache.internal:6390/7").unwrap();
        let info = options.client.get_connection_info();

        assert_eq!(info.redis.password.as_deref(), Some("pa55-word"));
        assert_eq!(info.redis.username, None);
        assert_eq!(info.redis.db, 7);
        assert_eq!(info.addr.to_string(), "cache.internal:6390");
        assert_eq!(options.redacted_url(), "redis://:***@cache.internal:6390/7");
        assert!(!format!("{options:?}").contains("pa55-word"));
    }

    #[test]
    fn refused_urls_never_echo_their_password() {
        for url in [
            "redis://:leaky-pw@host:notaport/3",
            "redis://:leaky-pw@host:6379/notadb",
            "redis://user:leaky-pw@/0",
            "rediss-typo://:leaky-pw@host/1",
        ] {
            let Err(err) = RedisOptions::from_url(url) else {
                panic!("{url} was accepted");
            };
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("leaky-pw"), "{shown}");
        }
    }

    #[test]
    fn unix_socket_password_is_redacted() {
        let redacted = redact_url("redis+unix:///run/redis.sock?db=2&pass=hunter2");

        assert!(!redacted.contains("hunter2"), "{redacted}");
        assert!(redacted.contains("db=2"), "{redacted}");
    }

    #[test]
    fn url_without_password_is_shown_as_is() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
    }

    #[test]
    fn bad_url_is_refused_without_echoing_it() {
        let err = RedisOptions::from_url("http://user:topsecret@host/").unwrap_err();

        assert!(!err.to_string().contains("topsecret"), "{err}");
        assert!(RedisOptions::from_url("redis://:pw@host:6379/notanumber").is_err());
    }
}
