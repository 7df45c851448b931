//! This crate's errors and their mapping into core's [`StoreError`] kinds.

use compliance_core::StoreError;

/// What can go wrong inside this adapter.
///
/// Every port method maps it into [`StoreError`] with [`PgStoreError::into_store_error`]:
/// a lost connection, a server restarting, a full pool or a statement timeout become
/// [`StoreError::Unavailable`] (the HTTP layer answers 503, workers retry); broken data and
/// bugs become [`StoreError::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// The settings cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// sqlx failed while doing `context`.
    #[error("{context}")]
    Sqlx {
        /// What was being done.
        context: &'static str,
        /// sqlx's error.
        #[source]
        source: sqlx::Error,
    },
    /// The embedded migrations could not be applied.
    #[error("applying migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A stored value does not decode into the domain (written by something else, or a bug).
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// The database did not answer within the configured time.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The ingest writer stopped (the store is shutting down).
    #[error("the ingest writer has stopped")]
    WriterGone,
}

impl PgStoreError {
    /// A sqlx error with what was being done.
    pub(crate) fn sqlx(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Sqlx { context, source }
    }

    /// Whether retrying later can succeed: the server or the connection is the problem, not
    /// the request.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Sqlx { source, .. } => is_transient(source),
            Self::Migrate(sqlx::migrate::MigrateError::Execute(source)) => is_transient(source),
            Self::Timeout(_) | Self::WriterGone => true,
            Self::Config(_) | Self::Migrate(_) | Self::Corrupt(_) => false,
        }
    }

    /// The unique constraint a write violated, if that is what failed.
    pub(crate) fn unique_violation(&self) -> Option<String> {
        match self {
            Self::Sqlx {
                source: sqlx::Error::Database(db),
                ..
            } if db.code().as_deref() == Some("23505") => {
                Some(db.constraint().unwrap_or_default().to_owned())
            }
            _ => None,
        }
    }

    /// Maps into the port's error kinds.
    #[must_use]
    pub fn into_store_error(self) -> StoreError {
        let context = self.to_string();
        if let Some(constraint) = self.unique_violation() {
            return StoreError::conflict(format!("{context}: unique constraint {constraint}"));
        }
        if self.is_transient() {
            StoreError::unavailable(context, self)
        } else {
            StoreError::backend(context, self)
        }
    }
}

impl From<PgStoreError> for StoreError {
    fn from(err: PgStoreError) -> Self {
        err.into_store_error()
    }
}

/// A row that does not decode: the data, not the connection, is wrong.
pub(crate) fn corrupt(err: sqlx::Error) -> PgStoreError {
    PgStoreError::Corrupt(err.to_string())
}

/// Whether a sqlx error comes from the server or the network being unavailable.
fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_transient_code(&code)),
        _ => false,
    }
}

/// SQLSTATEs that say "try again": connection exceptions (08), insufficient resources (53),
/// operator intervention such as a shutdown or a cancelled statement (57), transaction
/// rollbacks from serialization failures and deadlocks (40), and lock timeouts (55P03).
fn is_transient_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57")
        || code.starts_with("40")
        || code == "55P03"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_and_io_failures_are_unavailable() {
        let err = PgStoreError::sqlx("reserving a job")(sqlx::Error::PoolTimedOut);
        assert!(matches!(
            err.into_store_error(),
            StoreError::Unavailable { .. }
        ));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let err = PgStoreError::sqlx("reserving a job")(sqlx::Error::Io(io));
        assert!(err.into_store_error().is_retryable());
    }

    #[test]
    fn corrupt_data_is_a_backend_error() {
        let err = PgStoreError::Corrupt("job status \"NOPE\"".to_owned());
        assert!(matches!(err.into_store_error(), StoreError::Backend { .. }));
    }

    #[test]
    fn sqlstate_classes() {
        for code in [
            "08006", "57P01", "57014", "53300", "40001", "40P01", "55P03",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!is_transient_code(code), "{code}");
        }
    }
}
