//! In-memory adapters for every port: for tests, examples and single-process trials.
//!
//! | adapter | ports | notes |
//! | --- | --- | --- |
//! | [`InMemoryStore`] | [`ComponentDirectory`], [`WebhookEventLog`], [`SyncJobStore`], [`ComplianceStore`] | one mutex over all state, so every write is atomic |
//! | [`InMemoryQueue`] | [`JobQueue`] ([`QueuePlacement::External`]) | leases and delays measured on a [`Clock`] |
//! | [`InMemoryNotifier`] | [`Notifier`] | a tokio broadcast channel; lagging subscribers get a gap |
//!
//! Nothing here survives the process: "durable" in the port contracts means "visible to every
//! later call on the same value". Each adapter passes the conformance suites of
//! `compliance_core::testing` (feature `testing`).
//!
//! ```
//! use std::sync::Arc;
//! use compliance_core::memory::{InMemoryNotifier, InMemoryQueue, InMemoryStore};
//! use compliance_core::ports::{JobQueue, Notifier, Stores};
//!
//! let stores = Stores::from_adapter(Arc::new(InMemoryStore::new()));
//! let queue: Arc<dyn JobQueue> = Arc::new(InMemoryQueue::new());
//! let notifier: Arc<dyn Notifier> = Arc::new(InMemoryNotifier::new());
//! # let _ = (stores, queue, notifier);
//! ```
//!
//! [`ComponentDirectory`]: crate::ports::ComponentDirectory
//! [`WebhookEventLog`]: crate::ports::WebhookEventLog
//! [`SyncJobStore`]: crate::ports::SyncJobStore
//! [`ComplianceStore`]: crate::ports::ComplianceStore
//! [`JobQueue`]: crate::ports::JobQueue
//! [`QueuePlacement::External`]: crate::ports::QueuePlacement::External
//! [`Notifier`]: crate::ports::Notifier
//! [`Clock`]: crate::clock::Clock

mod notifier;
mod queue;
mod store;

pub use notifier::InMemoryNotifier;
pub use queue::InMemoryQueue;
pub use store::InMemoryStore;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, ignoring poisoning.
///
/// No code path of these adapters panics while holding a lock, and every update is written so
/// that the state is consistent between statements, so a poisoned lock still guards valid state.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Converts a std duration for timestamp arithmetic, saturating on absurd values.
fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// `at + d`, saturating at the far future.
fn add(at: crate::Timestamp, d: std::time::Duration) -> crate::Timestamp {
    at.checked_add_signed(chrono_duration(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}
