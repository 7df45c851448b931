//! How a [`SqliteStore`](crate::SqliteStore) opens its database.

use std::path::PathBuf;
use std::time::Duration;

/// Where the database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A database file, created when missing (with its `-wal` and `-shm` companions).
    File(PathBuf),
    /// A private in-memory database, gone when the store closes; for tests and trials.
    ///
    /// Every connection of the store shares it through SQLite's shared cache, under a name
    /// unique to the store, so two stores never see each other's data.
    Memory,
}

/// How far a commit is durable when a call returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: a commit survives the process being killed; the last
    /// commits before a power loss or OS crash may be lost (the database stays consistent).
    #[default]
    Normal,
    /// `synchronous=FULL`: every group commit is synced to disk before callers are answered,
    /// so it also survives power loss.
    Full,
}

/// Settings of a [`SqliteStore`](crate::SqliteStore).
///
/// ```
/// use std::time::Duration;
/// use compliance_store_sqlite::{Durability, SqliteConfig};
///
/// let config = SqliteConfig::file("/var/lib/compliance/compliance.db")
///     .durability(Durability::Full)
///     .readers(8)
///     .event_retention(Duration::from_secs(30 * 24 * 3600));
/// # let _ = config;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteConfig {
    /// Where the database lives.
    pub location: Location,
    /// How durable a commit is.
    pub durability: Durability,
    /// Connections in the read pool (the writer has its own single connection).
    pub readers: u32,
    /// How long a connection waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// Most writes the writer commits in one transaction (group commit).
    pub max_batch: usize,
    /// Longest stored payload of a rejected request, in bytes; longer ones are cut and
    /// marked truncated, so a flood of junk cannot fill the disk.
    pub rejected_payload_limit: usize,
    /// How long webhook events are kept; [`SqliteStore::prune`](crate::SqliteStore::prune)
    /// deletes older ones. `None` keeps them forever.
    pub event_retention: Option<Duration>,
    /// How long finished jobs are kept; `None` keeps them forever.
    pub job_retention: Option<Duration>,
}

impl SqliteConfig {
    /// Defaults for the database file at `path`.
    #[must_use]
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::at(Location::File(path.into()))
    }

    /// Defaults for a private in-memory database.
    #[must_use]
    pub fn memory() -> Self {
        Self::at(Location::Memory)
    }

    fn at(location: Location) -> Self {
        Self {
            location,
            durability: Durability::Normal,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            max_batch: 256,
            rejected_payload_limit: 8 * 1024,
            event_retention: Some(Duration::from_secs(30 * 24 * 3600)),
            job_retention: Some(Duration::from_secs(90 * 24 * 3600)),
        }
    }

    /// Sets the durability.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the size of the read pool (at least one).
    #[must_use]
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// Sets how long a connection waits for another process's lock.
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets the largest group commit (at least one).
    #[must_use]
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Sets the bound on stored payloads of rejected requests.
    #[must_use]
    pub fn rejected_payload_limit(mut self, bytes: usize) -> Self {
        self.rejected_payload_limit = bytes;
        self
    }

    /// Sets how long webhook events are kept.
    #[must_use]
    pub fn event_retention(mut self, keep: impl Into<Option<Duration>>) -> Self {
        self.event_retention = keep.into();
        self
    }

    /// Sets how long finished jobs are kept.
    #[must_use]
    pub fn job_retention(mut self, keep: impl Into<Option<Duration>>) -> Self {
        self.job_retention = keep.into();
        self
    }
}
