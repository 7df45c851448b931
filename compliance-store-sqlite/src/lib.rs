//! The embedded default of compliance-core: every store port and a durable job queue on one
//! SQLite file, so the whole product runs with nothing but a file on disk and loses nothing
//! it answered `202` for when killed.
//!
//! | type | ports | notes |
//! | --- | --- | --- |
//! | [`SqliteStore`] | `ComponentDirectory`, `WebhookEventLog`, `SyncJobStore`, `ComplianceStore` | one writer connection with group commit, a pool of readers |
//! | [`SqliteQueue`] | `JobQueue` (`QueuePlacement::InStore`) | entries written with their jobs; leases, delays, dead letters; in-process wake-ups |
//! | [`SqliteConfig`] | — | file or private in-memory database, [`Durability`], pool size, retention, payload bound |
//!
//! # Durability and throughput
//!
//! The database runs in WAL mode. With [`Durability::Normal`] (the default,
//! `synchronous=NORMAL`) a call that returned survives the process being killed; with
//! [`Durability::Full`] (`synchronous=FULL`) it also survives power loss. Every write goes
//! through one writer task that commits whatever is queued in one transaction (each request
//! in its own savepoint) and answers callers only after that commit, so one commit serves
//! many concurrent webhooks and our own writers never meet "database is locked". Accepted
//! webhooks are planned and written a whole group at a time with multi-row statements. See
//! `BENCHMARKS.md` for measured figures.
//!
//! # Schema
//!
//! The schema is a set of sqlx migrations embedded in the crate and applied by
//! [`SqliteStore::open`]. A database written by a newer version of this crate (one with
//! migrations this build does not know) is refused with a clear error instead of being used
//! with a schema the code does not understand.
//!
//! # Retention
//!
//! [`SqliteStore::prune`] deletes webhook events and finished jobs older than the configured
//! retention (`prune_events` / `prune_jobs` take any cut-off), in slices so that ingest keeps
//! flowing meanwhile. Payloads of rejected requests are cut at write time to
//! [`SqliteConfig::rejected_payload_limit`].
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use compliance_core::ports::{JobQueue, Stores};
//! use compliance_store_sqlite::{SqliteConfig, SqliteStore};
//!
//! # async fn run() -> Result<(), compliance_core::StoreError> {
//! let store = SqliteStore::open(SqliteConfig::file("compliance.db")).await?;
//! let stores: Stores = store.stores();
//! let queue: Arc<dyn JobQueue> = Arc::new(store.queue());
//! // Hand `stores` and `queue` to the ingest service and the workers.
//! # let _ = (stores, queue);
//! store.close().await;
//! # Ok(())
//! # }
//! ```

mod apply;
mod checkpoint;
mod compliance;
mod components;
mod config;
mod error;
mod events;
mod group;
mod ingest;
mod jobs;
mod queue;
mod rows;
mod sql;
mod store;
mod writer;

pub use config::{Durability, Location, SqliteConfig};
pub use queue::SqliteQueue;
pub use store::{schema_versions, PruneReport, SqliteStore};
