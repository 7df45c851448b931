//! Connection settings.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::error::PgStoreError;

/// The longest schema name accepted: NOTIFY channel names are derived from it and PostgreSQL
/// identifiers stop at 63 bytes.
const MAX_SCHEMA_LEN: usize = 48;

/// How to reach PostgreSQL and how to behave there.
///
/// The URL may carry a password; [`fmt::Debug`] never prints it.
///
/// ```
/// use std::time::Duration;
/// use compliance_store_postgres::PgConfig;
///
/// let config = PgConfig::new("postgres://app:secret@db.internal/compliance")
///     .schema("compliance")
///     .max_connections(20)
///     .statement_timeout(Some(Duration::from_secs(10)));
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct PgConfig {
    url: String,
    pub(crate) schema: Option<String>,
    pub(crate) max_connections: u32,
    pub(crate) min_connections: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) statement_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) application_name: String,
    pub(crate) ingest_max_batch: usize,
    pub(crate) ingest_writers: usize,
    pub(crate) ingest_backlog: usize,
    pub(crate) notifier_capacity: usize,
    pub(crate) run_migrations: bool,
}

impl PgConfig {
    /// Settings for the database at `url` (`postgres://user:password@host:port/db`), with
    /// defaults suited to a web service: 10 connections, requests that cannot get a connection
    /// within 3 s fail (the HTTP layer answers 503), statements cut after 30 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            application_name: "compliance-sync".to_owned(),
            ingest_max_batch: 512,
            ingest_writers: 2,
            ingest_backlog: 16_384,
            notifier_capacity: 1024,
            run_migrations: true,
        }
    }

    /// Keeps every table in `schema` (created when missing) instead of the connection's
    /// default search path. Letters, digits and `_` only, at most 48 characters.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The most connections the pool opens (at least 2: ingest batches hold one while
    /// committing).
    #[must_use]
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Connections kept open while idle.
    #[must_use]
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// How long a request waits for a free connection before failing as unavailable.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long [`PgStore::connect`](crate::PgStore::connect) waits for the first connection
    /// and the migrations.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// PostgreSQL's `statement_timeout` for every connection; `None` leaves the server's.
    #[must_use]
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// How long an idle connection is kept; `None` forever.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long any connection is kept; `None` forever.
    #[must_use]
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// The `application_name` the server shows in `pg_stat_activity`.
    #[must_use]
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// The most accepted webhooks written in one group-commit transaction.
    #[must_use]
    pub fn ingest_max_batch(mut self, n: usize) -> Self {
        self.ingest_max_batch = n.max(1);
        self
    }

    /// How many group-commit transactions may be in flight at once; two lets one batch be
    /// prepared while the previous one waits for its commit to reach disk.
    #[must_use]
    pub fn ingest_writers(mut self, n: usize) -> Self {
        self.ingest_writers = n.max(1);
        self
    }

    /// How many accepted webhooks may wait for a group commit before callers wait to enqueue.
    #[must_use]
    pub fn ingest_backlog(mut self, n: usize) -> Self {
        self.ingest_backlog = n.max(1);
        self
    }

    /// How many events a notifier subscriber may fall behind before it gets a
    /// [`Notification::Gap`](compliance_core::ports::Notification::Gap) instead.
    #[must_use]
    pub fn notifier_capacity(mut self, n: usize) -> Self {
        self.notifier_capacity = n.max(1);
        self
    }

    /// Whether `connect` applies the embedded migrations (default `true`). Turn it off when
    /// migrations run as a separate deployment step.
    #[must_use]
    pub fn run_migrations(mut self, run: bool) -> Self {
        self.run_migrations = run;
        self
    }

    /// The schema the tables live in, when one was set.
    #[must_use]
    pub fn schema_name(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Checks the settings and builds sqlx's connect options.
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions, PgStoreError> {
        if let Some(schema) = &self.schema {
            validate_schema(schema)?;
        }
        if self.max_connections < 2 {
            return Err(PgStoreError::Config(
                "max_connections must be at least 2".to_owned(),
            ));
        }

        // sqlx's parse errors can quote the URL; say what is wrong without it.
        let mut options = PgConnectOptions::from_str(&self.url)
            .map_err(|_| PgStoreError::Config("the database URL is not valid".to_owned()))?
            .application_name(&self.application_name);

        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(timeout) = self.statement_timeout {
            params.push(("statement_timeout", format!("{}", timeout.as_millis())));
        }
        if let Some(schema) = &self.schema {
            params.push(("search_path", schema.clone()));
        }
        // A crashed client must not hold row locks (and with them, jobs) for long.
        params.push(("idle_in_transaction_session_timeout", "60000".to_owned()));
        options = options.options(params);
        Ok(options)
    }

    /// The pool settings.
    pub(crate) fn pool_options(&self) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            .max_lifetime(self.max_lifetime)
            // A connection killed while idle is noticed before a request uses it.
            .test_before_acquire(true)
    }

    /// The suffix of the NOTIFY channels: channels are database-wide, so instances sharing a
    /// database but not a schema must not hear each other.
    pub(crate) fn channel_suffix(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("application_name", &self.application_name)
            .field("ingest_max_batch", &self.ingest_max_batch)
            .field("ingest_writers", &self.ingest_writers)
            .field("ingest_backlog", &self.ingest_backlog)
            .field("notifier_capacity", &self.notifier_capacity)
            .field("run_migrations", &self.run_migrations)
            .finish()
    }
}

/// The URL with any password replaced by `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        // Passwords can also travel as a query parameter.
        return if tail.contains("password") {
            format!("{scheme}://{authority}/***")
        } else {
            url.to_owned()
        };
    };
    let user = userinfo.split(':').next().unwrap_or_default();
    let tail = if tail.contains("password") {
        "/***"
    } else {
        tail
    };
    if userinfo.contains(':') {
        format!("{scheme}://{user}:***@{host}{tail}")
    } else {
        format!("{scheme}://{user}@{host}{tail}")
    }
}

fn validate_schema(schema: &str) -> Result<(), PgStoreError> {
    let valid = !schema.is_empty()
        && schema.len() <= MAX_SCHEMA_LEN
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(PgStoreError::Config(format!(
            "schema name {schema:?} must be 1 to {MAX_SCHEMA_LEN} lowercase letters, digits or \
             underscores, not starting with a digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let config = PgConfig::new("postgres://app:hunter2@db:5432/compliance");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@db:5432/compliance"),
            "{shown}"
        );

        let config = PgConfig::new("postgres://db/compliance?user=app&password=hunter2");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_bad_url_error_does_not_quote_it() {
        let err = PgConfig::new("postgres://app:hunter2@db:notaport/x")
            .connect_options()
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn schema_names_are_checked() {
        for bad in [
            "",
            "Public",
            "a-b",
            "1abc",
            "x; drop table y",
            &"a".repeat(49),
        ] {
            let result = PgConfig::new("postgres://db/x")
                .schema(bad)
                .connect_options();
            assert!(result.is_err(), "{bad:?} was accepted");
        }
        assert!(PgConfig::new("postgres://db/x")
            .schema("test_0191abc")
            .connect_options()
            .is_ok());
    }
}
