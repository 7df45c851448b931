//! sqlx and SQLite errors, mapped onto the semantic kinds of [`StoreError`].
//!
//! | SQLite / sqlx | `StoreError` |
//! | --- | --- |
//! | `SQLITE_BUSY`, `SQLITE_LOCKED`, I/O errors, disk full, cannot open, interrupted, out of memory | `Unavailable` |
//! | pool timed out or closed, connection worker gone, socket/file I/O | `Unavailable` |
//! | unique or primary-key constraint | `Conflict` |
//! | foreign-key, not-null or check constraint | `Invalid` |
//! | corrupt file, not a database, decode errors, anything else | `Backend` |

use std::sync::Arc;

use compliance_core::StoreError;
use sqlx::error::ErrorKind;

// Primary result codes (https://www.sqlite.org/rescode.html); the extended code's low byte.
const SQLITE_NOMEM: i64 = 7;
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_INTERRUPT: i64 = 9;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_PROTOCOL: i64 = 15;

/// The semantic kind an sqlx error maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Unavailable,
    Conflict,
    Invalid,
    Backend,
}

/// Classifies `err`.
pub(crate) fn kind(err: &sqlx::Error) -> Kind {
    match err {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => Kind::Conflict,
            ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation => Kind::Invalid,
            _ => {
                let primary = db
                    .code()
                    .and_then(|c| c.parse::<i64>().ok())
                    .map(|c| c & 0xff);
                match primary {
                    Some(
                        SQLITE_BUSY | SQLITE_LOCKED | SQLITE_NOMEM | SQLITE_INTERRUPT
                        | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN | SQLITE_PROTOCOL,
                    ) => Kind::Unavailable,
                    _ => Kind::Backend,
                }
            }
        },
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Kind::Unavailable,
        _ => Kind::Backend,
    }
}

/// Maps `err`, raised while doing `context`, to a [`StoreError`].
pub(crate) fn store_error(context: impl Into<String>, err: sqlx::Error) -> StoreError {
    let context = context.into();
    match kind(&err) {
        Kind::Unavailable => StoreError::unavailable(context, err),
        Kind::Conflict => StoreError::conflict(format!("{context}: {}", message(&err))),
        Kind::Invalid => StoreError::Invalid {
            what: format!("{context}: {}", message(&err)),
        },
        Kind::Backend => StoreError::backend(context, err),
    }
}

/// Maps an error shared by several callers (a failed group commit) for one of them.
pub(crate) fn shared_error(context: &str, err: &Arc<sqlx::Error>) -> StoreError {
    let source = Box::new(Arc::clone(err));
    match kind(err) {
        Kind::Backend | Kind::Conflict | Kind::Invalid => StoreError::Backend {
            context: context.to_owned(),
            source: Some(source),
        },
        Kind::Unavailable => StoreError::Unavailable {
            context: context.to_owned(),
            source: Some(source),
        },
    }
}

/// The database's own words for `err` (constraint names, never bound values).
fn message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

/// The store's writer has stopped (the store was closed).
pub(crate) fn closed() -> StoreError {
    StoreError::Unavailable {
        context: "the sqlite store is closed".to_owned(),
        source: None,
    }
}

/// A value the caller passed cannot be stored.
pub(crate) fn invalid(what: impl Into<String>) -> StoreError {
    StoreError::Invalid { what: what.into() }
}

/// A stored value cannot be read back (corrupt row, or written by something else).
pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Backend {
        context: format!("unreadable row: {}", what.into()),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_pool_errors_are_retryable() {
        let io = sqlx::Error::Io(std::io::Error::other("disk gone"));
        assert!(store_error("write", io).is_retryable());
        assert!(store_error("read", sqlx::Error::PoolTimedOut).is_retryable());
        assert!(!store_error("read", sqlx::Error::RowNotFound).is_retryable());
    }
}
