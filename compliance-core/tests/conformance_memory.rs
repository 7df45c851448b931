//! The conformance suites, run against the in-memory adapters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use compliance_core::memory::{InMemoryNotifier, InMemoryQueue, InMemoryStore};
use compliance_core::ports::{JobQueue, Notifier, QueuePlacement};
use compliance_core::testing;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_suite() {
    testing::store::run_all(|| async { InMemoryStore::new() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_suite() {
    testing::queue::run_all(|| async { Arc::new(InMemoryQueue::new()) as Arc<dyn JobQueue> }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifier_suite() {
    testing::notifier::run_all(|| async { Arc::new(InMemoryNotifier::new()) as Arc<dyn Notifier> })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_notifier_reports_gap() {
    let notifier: Arc<dyn Notifier> = Arc::new(InMemoryNotifier::with_capacity(16));
    testing::notifier::lagging_subscriber_gets_gap(&notifier, 100).await;
}

#[test]
fn in_memory_queue_is_external() {
    assert_eq!(InMemoryQueue::new().placement(), QueuePlacement::External);
}
