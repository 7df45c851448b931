//! 2 000 webhooks through ingest, `RedisQueue`, workers and the sweeper while Redis drops
//! every client connection of the test and once loses all the queue's keys: every accepted
//! webhook must end with a completed job, fetched exactly once.
//!
//! The test connects as a Redis user of its own and drops connections with
//! `CLIENT KILL USER`, which is `CLIENT KILL TYPE normal` narrowed to this test, so tests
//! running beside it on the same Redis keep their connections.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pipeline::Pipeline;
use common::TestRedis;
use compliance_core::domain::JobStatus;
use compliance_core::ports::JobQueue;
use compliance_core::testing::fixtures::revision;
use compliance_core::worker::{Sweeper, SweeperConfig};
use compliance_queue_redis::{RedisOptions, RedisQueue};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

const WEBHOOKS: usize = 2_000;
const WORKERS: usize = 6;
/// Dropped connections after this many answered webhooks; the queue's keys vanish at the
/// middle one.
const FAULTS_AT: [usize; 5] = [300, 700, 1_000, 1_400, 1_800];
const WIPE_AT: usize = 1_000;

async fn eventually(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_webhook_completes_exactly_once_while_redis_drops_clients() {
    let Some(redis) =
        TestRedis::start("every_accepted_webhook_completes_exactly_once_while_redis_drops_clients")
            .await
    else {
        return;
    };
    // A password and a database number in the URL, as production uses them.
    let user = Arc::new(redis.user(Some(3)).await);
    let options = RedisOptions::from_url(&user.url)
        .unwrap()
        .key_prefix(redis.prefix.clone())
        .connect_timeout(Duration::from_secs(1))
        .command_timeout(Duration::from_secs(2));
    let redis_queue = Arc::new(RedisQueue::new(options));
    let queue: Arc<dyn JobQueue> = redis_queue.clone();
    let pipeline = Arc::new(Pipeline::new(queue.clone()));
    for i in 0..WEBHOOKS {
        pipeline.register(i).await;
    }

    let shutdown = CancellationToken::new();
    let mut loops = Vec::new();
    for w in 0..WORKERS {
        let worker = pipeline.worker(&format!("worker-{w}"), Duration::from_secs(5));
        loops.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    let sweeper = Sweeper::new(
        pipeline.stores.jobs.clone(),
        queue.clone(),
        pipeline.clock.clone(),
        SweeperConfig {
            grace: Duration::from_secs(2),
            every: Duration::from_millis(500),
            batch: 500,
        },
    );
    loops.push(tokio::spawn(sweeper.run(shutdown.clone())));

    let answered = Arc::new(AtomicUsize::new(0));
    let faults = {
        let (answered, user) = (answered.clone(), user.clone());
        tokio::spawn(async move {
            let mut killed = 0;
            for at in FAULTS_AT {
                while answered.load(Ordering::SeqCst) < at {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                if at == WIPE_AT {
                    user.delete_keys().await;
                }
                killed += user.kill_connections().await;
            }
            killed
        })
    };

    let outcomes: Vec<_> = futures::stream::iter(0..WEBHOOKS)
        .map(|i| {
            let (pipeline, answered) = (pipeline.clone(), answered.clone());
            async move {
                let outcome = pipeline.send(i, &revision(i as u64)).await;
                answered.fetch_add(1, Ordering::SeqCst);
                (i, outcome)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let killed = faults.await.unwrap();
    assert!(
        killed >= FAULTS_AT.len() as i64,
        "connections were dropped ({killed})"
    );

    let accepted: HashMap<_, _> = outcomes
        .iter()
        .filter_map(|(i, outcome)| outcome.accepted().map(|a| (a.sync_id, *i)))
        .collect();
    assert_eq!(
        accepted.len(),
        WEBHOOKS,
        "the store never failed, so all were accepted"
    );

    eventually(
        "every accepted job completed",
        Duration::from_secs(120),
        async || {
            for job in accepted.keys() {
                let stored = pipeline.stores.jobs.get_job(*job).await.unwrap().unwrap();
                if stored.status != JobStatus::Completed {
                    return false;
                }
            }
            true
        },
    )
    .await;
    // Duplicates the faults caused (a lost ack, a sweep of a job in flight) are drained.
    eventually("the queue drained", Duration::from_secs(30), async || {
        queue.stats().await.is_ok_and(|s| s.depth() == 0)
    })
    .await;
    shutdown.cancel();
    for handle in loops {
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("loops stop on shutdown")
            .unwrap();
    }

    let mut fetches: HashMap<String, usize> = HashMap::new();
    for request in pipeline.source.requests() {
        *fetches
            .entry(request.revision.unwrap_or_default())
            .or_default() += 1;
    }
    for i in accepted.values() {
        let n = fetches.get(&revision(*i as u64)).copied().unwrap_or(0);
        assert_eq!(n, 1, "webhook {i} was fetched {n} times");
    }
    assert_eq!(pipeline.source.calls(), WEBHOOKS);
    assert!(redis_queue.ready().await);
}
