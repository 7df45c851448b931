//! [`PgStore`]: the pool, the migrations and the background tasks every port shares.

use std::sync::Arc;

use compliance_core::{Clock, StoreError, SystemClock};
use sqlx::postgres::PgPool;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use crate::config::PgConfig;
use crate::error::PgStoreError;
use crate::ingest::IngestWriter;
use crate::listen::ListenerHub;
use crate::notifier::PgNotifier;
use crate::queue::PgQueue;

/// The embedded migrations (`migrations/` of this crate).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every store port of compliance-core on PostgreSQL.
///
/// One value serves [`ComponentDirectory`], [`WebhookEventLog`], [`SyncJobStore`] and
/// [`ComplianceStore`]; [`PgStore::queue`] and [`PgStore::notifier`] hand out the job queue
/// and the notifier on the same pool. Clones share everything.
///
/// Accepted webhooks are written by group commit: concurrent
/// [`record_accepted`](compliance_core::ports::WebhookEventLog::record_accepted) calls are gathered into one
/// transaction of set-based statements, and each caller is answered once the commit that
/// holds its rows has returned (PostgreSQL's `synchronous_commit` decides how durable that
/// is; the default survives a crash of the server).
///
/// [`ComponentDirectory`]: compliance_core::ports::ComponentDirectory
/// [`WebhookEventLog`]: compliance_core::ports::WebhookEventLog
/// [`SyncJobStore`]: compliance_core::ports::SyncJobStore
/// [`ComplianceStore`]: compliance_core::ports::ComplianceStore
#[derive(Clone)]
pub struct PgStore {
    pub(crate) shared: Arc<Shared>,
}

/// What every port of one store shares.
pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    /// Hashed into advisory lock keys, so that schemas sharing a database do not contend.
    pub(crate) lock_namespace: String,
    pub(crate) queue_channel: String,
    pub(crate) events_channel: String,
    pub(crate) ingest: IngestWriter,
    pub(crate) listener: ListenerHub,
    pub(crate) shutdown: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl PgStore {
    /// Connects, applies the embedded migrations (under an advisory lock, so instances starting
    /// together do not race) and starts the group-commit writers.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when PostgreSQL cannot be reached within the connect
    /// timeout; [`StoreError::Backend`] for invalid settings or migrations that cannot apply
    /// (for example a database migrated by a newer version of this crate).
    pub async fn connect(config: PgConfig) -> Result<Self, StoreError> {
        Self::connect_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`connect`](Self::connect), reading the times that port calls do not carry (when a
    /// pending job is superseded, for example) from `clock`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn connect_with_clock(
        config: PgConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let options = config.connect_options()?;
        let pool = tokio::time::timeout(
            config.connect_timeout,
            config.pool_options().connect_with(options.clone()),
        )
        .await
        .map_err(|_| PgStoreError::Timeout("connecting to PostgreSQL"))?
        .map_err(PgStoreError::sqlx("connecting to PostgreSQL"))?;

        if config.run_migrations {
            tokio::time::timeout(config.connect_timeout, migrate(&pool, &config))
                .await
                .map_err(|_| PgStoreError::Timeout("applying migrations"))??;
        }

        let suffix = config.channel_suffix();
        let shutdown = CancellationToken::new();
        let lock_namespace = format!("compliance-store-postgres/{suffix}");
        let ingest = IngestWriter::start(
            pool.clone(),
            clock.clone(),
            &config,
            lock_namespace.clone(),
            format!("compliance_queue_{suffix}"),
            shutdown.clone(),
        );
        let listener = ListenerHub::new(
            pool.clone(),
            config.pool_options().max_connections(1).min_connections(0),
            options,
            format!("compliance_queue_{suffix}"),
            format!("compliance_events_{suffix}"),
            config.notifier_capacity,
            shutdown.clone(),
        );
        tracing::debug!(schema = config.schema_name(), "postgres store connected");
        Ok(Self {
            shared: Arc::new(Shared {
                pool,
                lock_namespace,
                queue_channel: format!("compliance_queue_{suffix}"),
                events_channel: format!("compliance_events_{suffix}"),
                ingest,
                listener,
                shutdown,
            }),
        })
    }

    /// The job queue on this store's pool ([`QueuePlacement::InStore`]: accepted webhooks get
    /// their queue entry in the same transaction as their job).
    ///
    /// [`QueuePlacement::InStore`]: compliance_core::ports::QueuePlacement::InStore
    #[must_use]
    pub fn queue(&self) -> PgQueue {
        PgQueue::new(self.clone())
    }

    /// The `LISTEN/NOTIFY` notifier on this store's database.
    #[must_use]
    pub fn notifier(&self) -> PgNotifier {
        PgNotifier::new(self.clone())
    }

    /// The connection pool, for health checks and for callers that keep tables of their own
    /// next to these.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    /// Checks that PostgreSQL answers (for readiness probes).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.shared.pool)
            .await
            .map_err(PgStoreError::sqlx("checking the connection"))?;
        Ok(())
    }

    /// Stops the background tasks and closes the pool; calls made afterwards fail as
    /// unavailable.
    pub async fn close(&self) {
        self.shared.shutdown.cancel();
        self.shared.pool.close().await;
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool_size", &self.shared.pool.size())
            .field("queue_channel", &self.shared.queue_channel)
            .finish_non_exhaustive()
    }
}

/// Creates the schema and applies the migrations while holding a session advisory lock on the
/// schema, so that several instances starting at once apply them exactly once.
async fn migrate(pool: &PgPool, config: &PgConfig) -> Result<(), PgStoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(PgStoreError::sqlx("connecting for migrations"))?;
    let lock_name = format!(
        "compliance-store-postgres/migrate/{}",
        config.channel_suffix()
    );
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind(&lock_name)
        .execute(&mut *conn)
        .await
        .map_err(PgStoreError::sqlx("taking the migration lock"))?;

    let result = async {
        if let Some(schema) = config.schema_name() {
            // The name was checked to be a plain identifier by `connect_options`.
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&mut *conn)
                .await
                .map_err(PgStoreError::sqlx("creating the schema"))?;
        }
        MIGRATOR
            .run_direct(&mut *conn)
            .await
            .map_err(PgStoreError::Migrate)
    }
    .await;

    match result {
        Ok(()) => {
            sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(&lock_name)
                .execute(&mut *conn)
                .await
                .map_err(PgStoreError::sqlx("releasing the migration lock"))?;
            Ok(())
        }
        Err(err) => {
            // Closing the session releases the lock even when the connection is unusable.
            let _ = conn.detach().close().await;
            Err(err)
        }
    }
}
