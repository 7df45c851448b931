//! compliance-core's conformance suites against real PostgreSQL.
//!
//! Needs `COMPLIANCE_TEST_POSTGRES_URL`; skips with a message when it is unset.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use compliance_core::ports::{JobQueue, Notifier};
use compliance_core::testing;
use compliance_store_postgres::PgStore;

use common::TestDb;

#[tokio::test(flavor = "multi_thread")]
async fn store_suite() {
    let Some(db) = TestDb::from_env("store_suite").await else {
        return;
    };
    testing::store::run_all(|| db.store()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_suite() {
    let Some(db) = TestDb::from_env("queue_suite").await else {
        return;
    };
    testing::queue::run_all(|| async { Arc::new(db.store().await.queue()) as Arc<dyn JobQueue> })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn notifier_suite() {
    let Some(db) = TestDb::from_env("notifier_suite").await else {
        return;
    };
    testing::notifier::run_all(|| async {
        Arc::new(db.store().await.notifier()) as Arc<dyn Notifier>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn notifier_lagging_subscriber_gets_gap() {
    let Some(db) = TestDb::from_env("notifier_lagging_subscriber_gets_gap").await else {
        return;
    };
    let schema = db.schema();
    let store = PgStore::connect(db.config(&schema).notifier_capacity(16))
        .await
        .unwrap();
    let notifier: Arc<dyn Notifier> = Arc::new(store.notifier());
    testing::notifier::lagging_subscriber_gets_gap(&notifier, 100).await;
}
