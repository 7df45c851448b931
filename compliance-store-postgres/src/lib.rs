//! The store ports, job queue and notifier of `compliance-core` on PostgreSQL, for running
//! many stateless instances against one database.
//!
//! Any instance takes webhooks, any worker syncs, every dashboard sees every event: the
//! database is the only thing the instances share, and no broker or home-made consensus is
//! involved.
//!
//! ```no_run
//! use std::sync::Arc;
//! use compliance_core::ports::{JobQueue, Notifier, Stores};
//! use compliance_store_postgres::{PgConfig, PgStore};
//!
//! # async fn demo() -> Result<(), compliance_core::StoreError> {
//! let store = PgStore::connect(
//!     PgConfig::new("postgres://compliance@db.internal/compliance").max_connections(20),
//! )
//! .await?;
//! let queue: Arc<dyn JobQueue> = Arc::new(store.queue());
//! let notifier: Arc<dyn Notifier> = Arc::new(store.notifier());
//! let stores = Stores::from_adapter(Arc::new(store));
//! # let _ = (queue, notifier, stores);
//! # Ok(())
//! # }
//! ```
//!
//! | type | ports | how |
//! | --- | --- | --- |
//! | [`PgStore`] | `ComponentDirectory`, `WebhookEventLog`, `SyncJobStore`, `ComplianceStore` | sqlx; accepted webhooks by group commit (many per transaction, `UNNEST` inserts); snapshots applied in one transaction of set-based statements |
//! | [`PgQueue`] | `JobQueue` (`InStore`) | the `queue_entries` table; `reserve` with `FOR UPDATE SKIP LOCKED`, leases, delayed retries, dead letters; entries written in the transaction of their job; workers woken by `LISTEN` |
//! | [`PgNotifier`] | `Notifier` | `LISTEN/NOTIFY`; bodies over the payload limit go through a table; a dropped listener reconnects and reports a gap |
//! | [`PgConfig`] | — | pool size, acquire and statement timeouts, schema, group-commit sizes |
//!
//! # Schema and migrations
//!
//! The schema is embedded (`migrations/`) and applied by [`PgStore::connect`] under an
//! advisory lock, so instances that start at the same moment migrate once. A database
//! migrated by a newer version of this crate is refused. [`PgConfig::schema`] keeps every
//! table (and the NOTIFY channels) apart from other users of the database.
//!
//! # Failure
//!
//! While PostgreSQL is unreachable or restarting, calls fail within the pool's acquire
//! timeout with `StoreError::Unavailable` (the HTTP layer answers 503, workers retry); a
//! statement held up longer than [`PgConfig::statement_timeout`] fails the same way.
//! Nothing is acknowledged before it is committed, and the listener reconnects by itself and
//! reports a [`Notification::Gap`](compliance_core::ports::Notification::Gap) so that
//! dashboards catch up.

mod apply;
mod coalesce;
mod compliance;
mod components;
mod config;
mod error;
mod events;
mod ingest;
mod jobs;
mod listen;
mod notifier;
mod queue;
mod rows;
mod store;

pub use config::PgConfig;
pub use error::PgStoreError;
pub use notifier::PgNotifier;
pub use queue::PgQueue;
pub use store::PgStore;
