//! Conformance suites every adapter runs against itself, and test doubles (feature `testing`).
//!
//! Each check is a plain `pub async fn` over the port traits, so an adapter crate runs the
//! whole suite from one test, or one check per test for sharper failure reports. `run_all`
//! takes a factory and gives every check a fresh adapter (a new database schema, key prefix
//! or in-memory value): checks assume they start from empty.
//!
//! | module | ports | entry points |
//! | --- | --- | --- |
//! | [`store`] | the four store ports | [`store::run_all`] (one adapter value), [`store::run_all_stores`] (a [`Stores`](crate::ports::Stores)) |
//! | [`queue`] | [`JobQueue`](crate::ports::JobQueue) | [`queue::run_all`], [`queue::run_all_with`] (for queues that need real jobs) |
//! | [`notifier`] | [`Notifier`](crate::ports::Notifier) | [`notifier::run_all`], plus [`notifier::lagging_subscriber_gets_gap`] for bounded buffers |
//! | [`fixtures`] | — | builders for components, jobs, events and snapshots |
//! | [`scripted`] | [`ScanSource`](crate::ports::ScanSource) | [`ScriptedScanSource`] |
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use compliance_core::memory::{InMemoryNotifier, InMemoryQueue, InMemoryStore};
//! use compliance_core::ports::{JobQueue, Notifier};
//! use compliance_core::testing;
//!
//! testing::store::run_all(|| async { InMemoryStore::new() }).await;
//! testing::queue::run_all(|| async { Arc::new(InMemoryQueue::new()) as Arc<dyn JobQueue> }).await;
//! testing::notifier::run_all(|| async { Arc::new(InMemoryNotifier::new()) as Arc<dyn Notifier> })
//!     .await;
//! # }
//! ```
//!
//! # What the suites assume of an adapter
//!
//! - Timestamps round-trip at least to the millisecond. Store checks use whole seconds
//!   ([`fixtures::at`]) and pass times explicitly, so store checks never sleep.
//! - Queue and notifier checks use real time: leases of 500 ms and sleeps of 750 ms, so the
//!   queue's clock must be the wall clock (or the database's).
//! - Checks spawn tasks: run them inside a multi-threaded tokio runtime
//!   (`#[tokio::test(flavor = "multi_thread")]`).
//! - A failing check panics with a message naming what broke, like any test assertion.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod fixtures;
pub mod notifier;
pub mod queue;
pub mod scripted;
pub mod store;

pub use scripted::{ScriptedScanSource, Step};

use std::future::Future;
use std::time::Duration;

/// Awaits `fut`, failing the check with `what` when it takes longer than `limit`.
async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no answer within {limit:?}"),
    }
}
