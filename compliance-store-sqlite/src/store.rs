//! [`SqliteStore`]: opening the database, its connections, and retention.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, Transaction};
use tokio::sync::Notify;
use tracing::info;

use compliance_core::ports::Stores;
use compliance_core::{Clock, StoreError, SystemClock, Timestamp};

use crate::checkpoint::Checkpointer;
use crate::config::{Durability, Location, SqliteConfig};
use crate::error::store_error;
use crate::queue::SqliteQueue;
use crate::writer::Writer;

/// Rows deleted per group commit by the prune calls.
pub(crate) const PRUNE_SLICE: i64 = 5_000;

/// The schema migrations embedded in this build.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Every store port of compliance-core on one SQLite database, plus its in-store job queue
/// ([`SqliteStore::queue`]).
///
/// Cloning is cheap: clones share the writer, the read pool and the queue's wake-ups.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) writer: Writer,
    /// Checkpoints the WAL of a database file (none in memory).
    checkpointer: Option<Checkpointer>,
    pub(crate) readers: SqlitePool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: SqliteConfig,
    /// Signalled after a commit that made queue entries ready.
    pub(crate) work: Arc<Notify>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.inner.config.location)
            .field("durability", &self.inner.config.durability)
            .finish_non_exhaustive()
    }
}

/// What [`SqliteStore::prune`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Webhook events older than the event retention.
    pub events: u64,
    /// Finished jobs older than the job retention.
    pub jobs: u64,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and applies the embedded migrations.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the file cannot be opened; `Backend` when the database was written
    /// by a newer version of this crate (its schema has migrations this build does not know)
    /// or a migration fails.
    pub async fn open(config: SqliteConfig) -> Result<Self, StoreError> {
        Self::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`open`](Self::open), reading time from `clock` (queue leases and delays, supersession
    /// times).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_with_clock(
        config: SqliteConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let options = connect_options(&config);
        let (writer_options, reader_options) = (options.writer, options.reader);

        let mut conn = SqliteConnection::connect_with(&writer_options)
            .await
            .map_err(|e| store_error("open the sqlite database", e))?;
        migrate(&mut conn).await?;

        let readers = SqlitePoolOptions::new()
            .max_connections(config.readers.max(1))
            .min_connections(1)
            // A local file connection does not go stale: pinging it before every read (sqlx's
            // default) cost a round trip to its thread, two context switches per read.
            .test_before_acquire(false)
            .acquire_timeout(config.busy_timeout.max(Duration::from_secs(1)))
            .connect_with(reader_options)
            .await
            .map_err(|e| store_error("open the sqlite read pool", e))?;

        let work = Arc::new(Notify::new());
        let writer = Writer::start(conn, writer_options, config.max_batch, Arc::clone(&work));
        let checkpointer = options.checkpointer.map(Checkpointer::start);
        info!(
            location = ?config.location,
            durability = ?config.durability,
            readers = config.readers,
            "sqlite store opened"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                checkpointer,
                readers,
                clock,
                config,
                work,
            }),
        })
    }

    /// The job queue stored in this database ([`QueuePlacement::InStore`]): the store writes
    /// queue entries in the same transaction as the jobs.
    ///
    /// [`QueuePlacement::InStore`]: compliance_core::ports::QueuePlacement::InStore
    #[must_use]
    pub fn queue(&self) -> SqliteQueue {
        SqliteQueue::new(self.clone())
    }

    /// The four store ports, all served by this store.
    #[must_use]
    pub fn stores(&self) -> Stores {
        Stores::from_adapter(Arc::new(self.clone()))
    }

    /// The settings the store was opened with.
    #[must_use]
    pub fn config(&self) -> &SqliteConfig {
        &self.inner.config
    }

    /// Applies the configured retention: deletes webhook events and finished jobs older than
    /// their retention period.
    ///
    /// # Errors
    ///
    /// As the underlying deletes.
    pub async fn prune(&self) -> Result<PruneReport, StoreError> {
        use compliance_core::ports::{SyncJobStore, WebhookEventLog};

        let now = self.now();
        let mut report = PruneReport::default();
        if let Some(keep) = self.inner.config.event_retention {
            report.events = self.prune_events(before(now, keep)).await?;
        }
        if let Some(keep) = self.inner.config.job_retention {
            report.jobs = self.prune_jobs(before(now, keep)).await?;
        }
        Ok(report)
    }

    /// Finishes queued writes, then closes the writer and the read pool. Later calls fail
    /// with `Unavailable`.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        self.inner.readers.close().await;
        // Last, so that the connection closing last is one that may checkpoint the WAL
        // away.
        if let Some(checkpointer) = &self.inner.checkpointer {
            checkpointer.close().await;
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// A read connection.
    pub(crate) async fn reader(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        self.inner
            .readers
            .acquire()
            .await
            .map_err(|e| store_error("take a read connection", e))
    }

    /// A read connection whose statements all see one snapshot, for reads of several
    /// statements.
    pub(crate) async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        match self.inner.config.location {
            Location::File(_) => self
                .inner
                .readers
                .begin()
                .await
                .map(Snapshot::Transaction)
                .map_err(|e| store_error("begin a read", e)),
            // Limitation: in memory (shared cache) a read transaction would hold table locks
            // across statements and could deadlock against the writer, so multi-statement
            // reads there are not isolated from a commit landing between two statements.
            Location::Memory => self.reader().await.map(Snapshot::Plain),
        }
    }
}

/// A read connection, in a read transaction when the database supports it cheaply.
pub(crate) enum Snapshot {
    Transaction(Transaction<'static, Sqlite>),
    Plain(PoolConnection<Sqlite>),
}

impl Snapshot {
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        match self {
            Self::Transaction(tx) => tx,
            Self::Plain(conn) => conn,
        }
    }

    /// Ends the read (nothing was written, so there is nothing to keep).
    pub(crate) async fn finish(self) {
        if let Self::Transaction(tx) = self {
            // A failed rollback of a read-only transaction changes nothing; the connection
            // goes back to the pool either way.
            let _ = tx.rollback().await;
        }
    }
}

fn before(now: Timestamp, keep: Duration) -> Timestamp {
    chrono::Duration::from_std(keep)
        .ok()
        .and_then(|keep| now.checked_sub_signed(keep))
        .unwrap_or(Timestamp::MIN_UTC)
}

/// Connection options of each role.
struct Options {
    writer: SqliteConnectOptions,
    reader: SqliteConnectOptions,
    /// `None` in memory, where there is no WAL.
    checkpointer: Option<SqliteConnectOptions>,
}

fn connect_options(config: &SqliteConfig) -> Options {
    let base = SqliteConnectOptions::new()
        .foreign_keys(true)
        .busy_timeout(config.busy_timeout)
        .pragma("temp_store", "memory");
    let (base, checkpoints) = match &config.location {
        Location::File(path) => (
            base.filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(match config.durability {
                    Durability::Normal => SqliteSynchronous::Normal,
                    Durability::Full => SqliteSynchronous::Full,
                })
                // Keep a checkpointed WAL from staying at its high-water mark forever.
                .pragma("journal_size_limit", (64 * 1024 * 1024).to_string()),
            true,
        ),
        Location::Memory => (
            base.filename(format!("file:compliance-{}", uuid::Uuid::new_v4().simple()))
                .in_memory(true)
                .shared_cache(true),
            false,
        ),
    };
    let writer = base
        .clone()
        .statement_cache_capacity(512)
        .pragma("cache_size", "-32000")
        .optimize_on_close(true, None);
    // The checkpoint task does the writer's checkpoints (see `checkpoint`).
    let writer = if checkpoints {
        writer.pragma("wal_autocheckpoint", "0")
    } else {
        writer
    };
    let checkpointer = checkpoints.then(|| base.clone().pragma("cache_size", "-2000"));
    let reader = base
        .statement_cache_capacity(256)
        .pragma("cache_size", "-16000")
        .pragma("query_only", "ON");
    Options {
        writer,
        reader,
        checkpointer,
    }
}

/// Applies the embedded migrations, refusing a database that has migrations this build does
/// not know (it was written by a newer version).
async fn migrate(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let known: BTreeSet<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    let has_table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| store_error("read the schema version", e))?;
    if has_table.is_some() {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| store_error("read the schema version", e))?;
        if let Some(unknown) = applied.iter().find(|v| !known.contains(v)) {
            return Err(StoreError::Backend {
                context: format!(
                    "the database schema is newer than this build of compliance-store-sqlite: \
                     it has migration {unknown}, this build knows migrations up to {}; open it \
                     with the version that wrote it or a newer one",
                    known.last().copied().unwrap_or(0)
                ),
                source: None,
            });
        }
    }
    MIGRATOR
        .run(&mut *conn)
        .await
        .map_err(|e| StoreError::backend("apply the schema migrations", e))
}

/// The versions of the embedded migrations, oldest first (for tests and diagnostics).
#[must_use]
pub fn schema_versions() -> Vec<i64> {
    MIGRATOR.iter().map(|m| m.version).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::Wake;

    /// `(foreign_keys, journal_mode, synchronous, query_only)` as one connection sees them.
    type Pragmas = (i64, String, i64, i64);

    async fn pragmas(conn: &mut SqliteConnection) -> Pragmas {
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let query_only: i64 = sqlx::query_scalar("PRAGMA query_only")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        (fk, journal, synchronous, query_only)
    }

    async fn writer_and_reader(store: &SqliteStore) -> (Pragmas, Pragmas) {
        let writer = store
            .inner
            .writer
            .write(Wake::Nobody, |conn| {
                Box::pin(async move { Ok(pragmas(conn).await) })
            })
            .await
            .unwrap();
        let mut reader = store.reader().await.unwrap();
        let reader = pragmas(&mut reader).await;
        (writer, reader)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_connection_has_foreign_keys_wal_and_the_chosen_durability() {
        let dir = tempfile::TempDir::new().unwrap();
        // SQLite's numbering: 1 NORMAL, 2 FULL.
        for (durability, level) in [(Durability::Normal, 1), (Durability::Full, 2)] {
            let path = dir.path().join(format!("{durability:?}.db"));
            let store = SqliteStore::open(SqliteConfig::file(path).durability(durability))
                .await
                .unwrap();
            let (writer, reader) = writer_and_reader(&store).await;
            assert_eq!(
                writer,
                (1, "wal".to_owned(), level, 0),
                "{durability:?} writer"
            );
            assert_eq!(
                reader,
                (1, "wal".to_owned(), level, 1),
                "{durability:?} reader"
            );
            store.close().await;
        }

        let store = SqliteStore::open(SqliteConfig::memory()).await.unwrap();
        let (writer, reader) = writer_and_reader(&store).await;
        assert_eq!((writer.0, writer.3), (1, 0), "memory writer");
        assert_eq!((reader.0, reader.3), (1, 1), "memory reader");
        store.close().await;
    }
}
