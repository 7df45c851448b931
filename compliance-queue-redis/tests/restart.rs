//! Against a Redis server of the test's own (password, database number): starting before
//! Redis does, real restarts that lose every key under a load of 2 000 webhooks, and the
//! notifier across both. The shared Redis is never touched.
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

use chrono::Utc;
use common::pipeline::Pipeline;
use common::server::PrivateRedis;
use compliance_core::domain::JobStatus;
use compliance_core::ports::{ChannelEvent, JobQueue, Notification, NotificationStream, Notifier};
use compliance_core::testing::fixtures::revision;
use compliance_core::worker::{JobReport, Sweeper, SweeperConfig};
use compliance_queue_redis::{RedisNotifier, RedisOptions, RedisQueue};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

const PREFIX: &str = "restart-test:";

fn options(server: &PrivateRedis, db: u32) -> RedisOptions {
    RedisOptions::from_url(&server.url(db))
        .unwrap()
        .key_prefix(PREFIX)
        .connect_timeout(Duration::from_millis(500))
        .command_timeout(Duration::from_secs(1))
}

async fn eventually(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_started_before_redis_is_not_ready_and_is_filled_by_the_sweeper_once_redis_answers()
{
    let Some(mut server) = PrivateRedis::reserve("a_queue_started_before_redis") else {
        return;
    };
    let queue = Arc::new(RedisQueue::new(options(&server, 5)));
    let pipeline = Pipeline::new(queue.clone());
    pipeline.register(1).await;

    // Redis is down: the queue exists, says it is not ready, and fails with a typed,
    // retryable error that does not show the password.
    assert!(!queue.ready().await);
    let err = queue.stats().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let shown = format!(
        "{err} {err:?} {queue:?} {:?}",
        std::error::Error::source(&err)
    );
    assert!(!shown.contains(&server.password), "{shown}");

    // The webhook is accepted all the same: the store committed the job before the enqueue
    // failed.
    let outcome = pipeline.send(1, &revision(1)).await;
    let job = outcome
        .accepted()
        .unwrap_or_else(|| panic!("{outcome:?}"))
        .sync_id;
    let stored = pipeline.stores.jobs.get_job(job).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Queued);

    server.start().await;
    eventually(
        "ready once redis answers",
        Duration::from_secs(10),
        async || queue.ready().await,
    )
    .await;
    let worker = pipeline.worker("w", Duration::from_secs(30));
    assert_eq!(
        worker.run_once().await.unwrap(),
        None,
        "redis never got the job"
    );
    let sweeper = Sweeper::new(
        pipeline.stores.jobs.clone(),
        queue.clone(),
        pipeline.clock.clone(),
        SweeperConfig {
            grace: Duration::ZERO,
            ..Default::default()
        },
    );
    assert_eq!(sweeper.sweep_once().await.unwrap(), 1);
    let report = worker.run_once().await.unwrap().expect("swept in");
    assert!(
        matches!(report, JobReport::Completed { job_id, .. } if job_id == job),
        "{report:?}"
    );
    assert_eq!(pipeline.source.calls(), 1);

    // The URL's database number is used: the keys are in database 5, not 0.
    queue
        .enqueue(compliance_core::SyncJobId::new(), Duration::ZERO)
        .await
        .unwrap();
    let in_db5: i64 = redis::cmd("EXISTS")
        .arg(format!("{PREFIX}queue:stream"))
        .query_async(&mut server.connection(5).await)
        .await
        .unwrap();
    let in_db0: i64 = redis::cmd("DBSIZE")
        .query_async(&mut server.connection(0).await)
        .await
        .unwrap();
    assert_eq!((in_db5, in_db0), (1, 0));
}

const WEBHOOKS: usize = 2_000;
const WORKERS: usize = 6;
/// Redis is killed and started again, empty, after this many answered webhooks.
const RESTART_AT: [usize; 2] = [600, 1_300];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_webhook_completes_exactly_once_across_redis_restarts() {
    let Some(mut server) = PrivateRedis::reserve("across_redis_restarts") else {
        return;
    };
    server.start().await;
    let redis_queue = Arc::new(RedisQueue::new(options(&server, 2)));
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
    let restarts = {
        let answered = answered.clone();
        tokio::spawn(async move {
            for at in RESTART_AT {
                while answered.load(Ordering::SeqCst) < at {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                server.kill();
                tokio::time::sleep(Duration::from_millis(300)).await;
                server.start().await;
            }
            server
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
    let server = restarts.await.unwrap();

    let accepted: HashMap<_, _> = outcomes
        .iter()
        .filter_map(|(i, outcome)| outcome.accepted().map(|a| (a.sync_id, *i)))
        .collect();
    assert_eq!(accepted.len(), WEBHOOKS, "every webhook got its own job");

    eventually(
        "every accepted job completed",
        Duration::from_secs(60),
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
    drop(server);
}

fn event(n: u32) -> ChannelEvent {
    ChannelEvent {
        channel: "components".to_owned(),
        event: "sync.completed".to_owned(),
        data: serde_json::json!({ "n": n }),
        timestamp: Utc::now(),
    }
}

async fn next(stream: &mut NotificationStream) -> Notification {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a notification within 10 s")
        .expect("the stream goes on")
}

/// Publishes `n` until it comes back on `stream` (the publisher or the listener may still be
/// reconnecting); gaps on the way are skipped.
async fn publish_until_heard(notifier: &RedisNotifier, stream: &mut NotificationStream, n: u32) {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "event {n} never heard"
        );
        if notifier.publish(event(n)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let heard = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match stream.next().await {
                    Some(Notification::Event(got)) if got.data["n"] == n => return true,
                    Some(_) => {}
                    None => return false,
                }
            }
        })
        .await;
        if heard == Ok(true) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notifier_reports_a_gap_when_redis_comes_up_and_after_each_restart() {
    let Some(mut server) = PrivateRedis::reserve("a_notifier_reports_a_gap") else {
        return;
    };
    let notifier = RedisNotifier::new(options(&server, 1));
    let mut stream = notifier.subscribe().await.expect("subscribing while down");
    assert!(!notifier.ready().await);
    assert!(!notifier.listening());
    let err = notifier.publish(event(0)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!format!("{err} {err:?} {notifier:?}").contains(&server.password));

    server.start().await;
    let Notification::Gap { .. } = next(&mut stream).await else {
        panic!("the first notification once redis is up is a gap");
    };
    publish_until_heard(&notifier, &mut stream, 1).await;

    for round in 2..4 {
        server.restart().await;
        // Copies of the last event a retried publish sent may come first.
        let reason = loop {
            match next(&mut stream).await {
                Notification::Gap { reason } => break reason,
                Notification::Event(got) => assert_eq!(got.data["n"], round - 1),
            }
        };
        assert!(reason.contains("interrupted"), "{reason}");
        publish_until_heard(&notifier, &mut stream, round).await;
    }
    assert!(notifier.listening());
}
