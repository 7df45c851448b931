//! Domain, ports and services for webhook-driven FOSSA compliance sync.
//!
//! A CI pipeline finishes a FOSSA scan and sends a signed webhook. [`ingest`] verifies it,
//! logs it, matches it to a component and queues a sync job, all before answering `202`. A
//! [`worker`] takes the job, fetches project, issues and dependencies through the
//! [`ScanSource`](ports::ScanSource) port, applies the snapshot atomically and publishes
//! `sync.started` / `sync.completed` / `sync.failed` for live dashboards.
//!
//! This crate holds no I/O of its own: every side effect goes through a [port](ports), and
//! each port has an in-memory adapter in [`memory`].
//!
//! | port | in-memory | other adapters |
//! | --- | --- | --- |
//! | store ports | `memory::InMemoryStore` | `compliance-store-sqlite`, `compliance-store-postgres` |
//! | job queue | `memory::InMemoryQueue` | SQLite, PostgreSQL, `compliance-queue-redis` |
//! | notifier | `memory::InMemoryNotifier` | PostgreSQL, Redis |
//! | scan source | scripted in tests | `compliance-fossa` |
//!
//! Feature `testing` adds conformance suites that every adapter crate runs against itself.

pub mod clock;
pub mod domain;
pub mod error;
pub mod events;
pub mod id;
pub mod ingest;
pub mod memory;
pub mod metrics;
pub mod payload;
pub mod ports;
pub mod repo_url;
pub mod retry;
pub mod signature;
#[cfg(feature = "testing")]
pub mod testing;
pub mod worker;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{BoxError, RetryClass, ScanSourceError, StoreError};
pub use id::{ComponentId, ScanResultId, SyncJobId, WebhookEventId};
pub use repo_url::{RepoUrl, RepoUrlError};
