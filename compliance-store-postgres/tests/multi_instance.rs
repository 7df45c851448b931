//! Two instances (ingest and workers, each on its own pool) and a listener on a third pool,
//! sharing one PostgreSQL schema: 5 000 signed webhooks spread over both instances; every job
//! completes exactly once and the listener hears every `sync.completed`.
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
use std::time::Duration;

use compliance_core::testing::{fixtures, ScriptedScanSource};
use compliance_store_postgres::PgStore;
use tokio_util::sync::CancellationToken;

use common::load::{self, CompletedLog, Instance};
use common::TestDb;

const WEBHOOKS: usize = 5_000;
const COMPONENTS: usize = 250;
const BRANCHES: usize = 4;
const SENDERS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_complete_every_job_once() {
    let Some(db) = TestDb::from_env("two_instances_complete_every_job_once").await else {
        return;
    };
    let schema = db.schema();
    let connect = |name: &str| {
        PgStore::connect(
            db.config(&schema)
                .max_connections(8)
                .notifier_capacity(100_000)
                .application_name(name),
        )
    };
    let a = connect("instance-a").await.unwrap();
    let b = connect("instance-b").await.unwrap();
    let listener = connect("listener").await.unwrap();
    let components = load::register(&a, COMPONENTS).await;
    let completions = CompletedLog::start(&listener.notifier()).await;

    let source = Arc::new(ScriptedScanSource::always(fixtures::snapshot(4, 6, 1)));
    let shutdown = CancellationToken::new();
    let instances = [
        Instance::start(a, "a", 3, source.clone(), &shutdown),
        Instance::start(b, "b", 3, source.clone(), &shutdown),
    ];

    // Each sender takes every SENDERS-th webhook and alternates between the instances.
    // Webhooks for one component and branch repeat, so bursts also coalesce across instances.
    let components = Arc::new(components);
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let ingest = [instances[0].ingest.clone(), instances[1].ingest.clone()];
            let components = components.clone();
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for n in (s..WEBHOOKS).step_by(SENDERS) {
                    let component = &components[n % COMPONENTS];
                    let branch = format!("branch-{}", (n / COMPONENTS) % BRANCHES);
                    let webhook = load::webhook(component, &branch, n as u64);
                    let (job, _) = load::deliver(&ingest[n % 2], webhook).await;
                    accepted.push(job);
                }
                accepted
            })
        })
        .collect();
    let mut accepted = Vec::with_capacity(WEBHOOKS);
    for sender in senders {
        accepted.extend(sender.await.unwrap());
    }
    assert_eq!(accepted.len(), WEBHOOKS, "every webhook answered 202");

    load::drain(&instances[0].store, Duration::from_secs(240)).await;
    // The last completions are published after their jobs ended; give them time to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    shutdown.cancel();
    let store = instances[0].store.clone();
    for instance in instances {
        instance.stop().await;
    }
    let (completions, gaps) = completions.finish().await;
    assert_eq!(gaps, 0, "the listener missed nothing");

    let statuses = load::job_statuses(&store).await;
    assert_eq!(statuses.len(), WEBHOOKS, "one job per accepted webhook");
    load::assert_all_completed_once(&accepted, &statuses, &completions);
    // Exactly once: no job was started twice (by two workers, or again after finishing).
    let started_twice: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sync_jobs WHERE attempts > 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(started_twice, 0, "jobs started more than once");
    let completed_unstarted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_jobs WHERE status = 'COMPLETED' AND attempts <> 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(completed_unstarted, 0);
    let completed = statuses.values().filter(|(s, _)| s == "COMPLETED").count();
    assert!(
        completed >= COMPONENTS * BRANCHES,
        "at least the newest webhook of each component and branch was synced ({completed})"
    );
    // Acknowledged entries are gone: nothing is left in the queue.
    let stats = compliance_core::ports::JobQueue::stats(&store.queue())
        .await
        .unwrap();
    assert_eq!((stats.depth(), stats.dead), (0, 0));
}
