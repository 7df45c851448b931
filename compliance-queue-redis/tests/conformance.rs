//! Core's conformance suites against `RedisQueue` and `RedisNotifier` on a real Redis.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use std::sync::Arc;

use common::TestRedis;
use compliance_core::ports::{JobQueue, Notifier};
use compliance_core::testing;
use compliance_queue_redis::{RedisNotifier, RedisQueue};

#[tokio::test(flavor = "multi_thread")]
async fn queue_conformance() {
    let Some(redis) = TestRedis::start("queue_conformance").await else {
        return;
    };
    testing::queue::run_all(|| async {
        Arc::new(RedisQueue::new(redis.fresh_options())) as Arc<dyn JobQueue>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn notifier_conformance() {
    let Some(redis) = TestRedis::start("notifier_conformance").await else {
        return;
    };
    testing::notifier::run_all(|| async {
        Arc::new(RedisNotifier::new(redis.fresh_options())) as Arc<dyn Notifier>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn notifier_gap_for_a_subscriber_past_its_buffer() {
    let Some(redis) = TestRedis::start("notifier_gap_for_a_subscriber_past_its_buffer").await
    else {
        return;
    };
    let notifier: Arc<dyn Notifier> = Arc::new(RedisNotifier::with_capacity(redis.options(), 16));
    testing::notifier::lagging_subscriber_gets_gap(&notifier, 500).await;
}
