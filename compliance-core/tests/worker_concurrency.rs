//! Several workers, leases and heartbeats, store failures and shutdown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod pipeline_support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use compliance_core::domain::JobStatus;
use compliance_core::ports::JobQueue;
use compliance_core::testing::fixtures;
use compliance_core::testing::{ScriptedScanSource, Step};
use compliance_core::worker::{JobReport, SkipReason, WorkerConfig};
use tokio_util::sync::CancellationToken;

use compliance_core::ComponentId;

use pipeline_support::{eventually, rev, scan_body, worker_config, Harness, Setup};

fn real_time() -> Setup {
    Setup {
        real_time: true,
        start: chrono::Utc::now(),
        ..Setup::default()
    }
}

/// Short leases in real time, so that a sync without heartbeat would lose its job.
fn short_lease(id: &str) -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_millis(600),
        heartbeat_every: Duration::from_millis(50),
        idle_wait: Duration::from_millis(10),
        busy_delay: Duration::from_millis(50),
        ..worker_config(id)
    }
}

async fn all_completed(h: &Harness, n: usize) -> bool {
    let jobs = h.jobs().await;
    jobs.len() == n && jobs.iter().all(|j| j.status == JobStatus::Completed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_never_run_one_job_twice() {
    let source = ScriptedScanSource::new(
        Step::ok(fixtures::snapshot(2, 2, 1)).delayed(Duration::from_millis(40)),
    );
    let h = Harness::with(source, real_time()).await;
    // One component per job, so that no two jobs coalesce or cover each other and every
    // fetch names its job.
    let mut components = Vec::new();
    for n in 0..24 {
        let url = format!("https://github.com/acme/service-{n}");
        components.push(h.register(&format!("service-{n}"), &url).await.id);
        let outcome = h.send(&scan_body(&url, &rev(n), "main", None)).await;
        assert_eq!(outcome.http_status(), 202);
    }

    let shutdown = CancellationToken::new();
    let workers: Vec<_> = (0..4)
        .map(|i| {
            tokio::spawn(
                h.worker_with(short_lease(&format!("w{i}")))
                    .run(shutdown.clone()),
            )
        })
        .collect();
    eventually(Duration::from_secs(20), "every job completed", || {
        all_completed(&h, 24)
    })
    .await;
    shutdown.cancel();
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(2), worker)
            .await
            .unwrap()
            .unwrap();
    }

    let mut fetches: HashMap<ComponentId, usize> = HashMap::new();
    for request in h.source.requests() {
        *fetches.entry(request.component_id).or_default() += 1;
    }
    assert_eq!(fetches.len(), 24);
    assert!(
        components.iter().all(|c| fetches.get(c) == Some(&1)),
        "{fetches:?}"
    );
    assert!(h.jobs().await.iter().all(|j| j.attempts == 1));
    assert!(
        h.source.max_in_flight() > 1,
        "the workers did run side by side"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_keeps_a_long_sync_from_a_second_worker() {
    let source = ScriptedScanSource::new(
        Step::ok(fixtures::snapshot(1, 1, 1)).delayed(Duration::from_millis(1_800)),
    );
    let h = Harness::with(source, real_time()).await;
    h.send(&h.body(&rev(1), "main", None)).await;

    let shutdown = CancellationToken::new();
    let first = tokio::spawn(h.worker_with(short_lease("w1")).run(shutdown.clone()));
    eventually(Duration::from_secs(2), "first fetch", || async {
        h.source.calls() == 1
    })
    .await;
    let second = tokio::spawn(h.worker_with(short_lease("w2")).run(shutdown.clone()));
    eventually(Duration::from_secs(5), "job completed", || {
        all_completed(&h, 1)
    })
    .await;
    shutdown.cancel();
    first.await.unwrap();
    second.await.unwrap();

    assert_eq!(h.source.calls(), 1, "the second worker never took the job");
    assert_eq!(h.jobs().await[0].attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_heartbeat_the_lease_runs_out_and_the_first_worker_applies_nothing() {
    // The counterpart of the test above: the lease is what protects a long sync.
    let source = ScriptedScanSource::new(
        Step::ok(fixtures::snapshot(1, 1, 1)).delayed(Duration::from_millis(1_800)),
    );
    let h = Harness::with(source, real_time()).await;
    h.send(&h.body(&rev(1), "main", None)).await;
    let no_heartbeat = |id: &str| WorkerConfig {
        heartbeat_every: Duration::from_secs(60),
        ..short_lease(id)
    };

    let slow = h.worker_with(no_heartbeat("w1"));
    let first = tokio::spawn(async move { slow.run_once().await });
    eventually(Duration::from_secs(2), "first fetch", || async {
        h.source.calls() == 1
    })
    .await;
    let shutdown = CancellationToken::new();
    let second = tokio::spawn(h.worker_with(no_heartbeat("w2")).run(shutdown.clone()));

    let first = first.await.unwrap().unwrap().unwrap();
    eventually(Duration::from_secs(5), "job completed", || {
        all_completed(&h, 1)
    })
    .await;
    shutdown.cancel();
    second.await.unwrap();

    assert_eq!(
        first,
        JobReport::Skipped {
            job_id: h.jobs().await[0].id,
            reason: SkipReason::LeaseLost
        }
    );
    assert_eq!(h.source.calls(), 2);
    assert_eq!(h.jobs().await[0].attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sync_per_component_and_branch_runs_at_a_time() {
    let source = ScriptedScanSource::new(
        Step::ok(fixtures::snapshot(1, 1, 1)).delayed(Duration::from_millis(300)),
    );
    let h = Harness::with(source, real_time()).await;
    let shutdown = CancellationToken::new();
    let workers: Vec<_> = (0..2)
        .map(|i| {
            tokio::spawn(
                h.worker_with(short_lease(&format!("w{i}")))
                    .run(shutdown.clone()),
            )
        })
        .collect();

    h.send(&h.body(&rev(1), "main", None)).await;
    eventually(Duration::from_secs(2), "first fetch", || async {
        h.source.calls() == 1
    })
    .await;
    // Arrives while the first sync runs: it must wait, not run beside it.
    h.send(&h.body(&rev(2), "main", None)).await;
    eventually(Duration::from_secs(5), "both completed", || {
        all_completed(&h, 2)
    })
    .await;
    shutdown.cancel();
    for worker in workers {
        worker.await.unwrap();
    }

    assert_eq!(h.source.calls(), 2);
    assert_eq!(h.source.max_in_flight(), 1);
}

#[tokio::test]
async fn the_worker_survives_a_store_outage() {
    let h = Harness::new(ScriptedScanSource::always(fixtures::snapshot(1, 1, 1))).await;
    let job_id = h
        .send(&h.body(&rev(1), "main", None))
        .await
        .accepted()
        .unwrap()
        .sync_id;
    let worker = h.worker();

    h.store.outages.apply.store(true, Ordering::SeqCst);
    let failed = worker.run_once().await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        h.job(job_id).await.status,
        JobStatus::Queued,
        "put back for later"
    );

    h.store.outages.apply.store(false, Ordering::SeqCst);
    h.advance(worker.config().busy_delay);
    let report = worker.run_once().await.unwrap().unwrap();
    assert!(matches!(report, JobReport::Completed { .. }), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_loop_keeps_going_through_store_errors_and_stops_on_shutdown() {
    let h = Harness::with(
        ScriptedScanSource::always(fixtures::snapshot(1, 1, 1)),
        real_time(),
    )
    .await;
    h.send(&h.body(&rev(1), "main", None)).await;
    h.store.outages.jobs.store(true, Ordering::SeqCst);

    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(h.worker_with(short_lease("w1")).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !worker.is_finished(),
        "a store outage must not end the loop"
    );

    h.store.outages.jobs.store(false, Ordering::SeqCst);
    eventually(Duration::from_secs(5), "job completed", || {
        all_completed(&h, 1)
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), worker)
        .await
        .expect("the worker stops promptly")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_fetch_puts_the_job_back() {
    let source = ScriptedScanSource::new(
        Step::ok(fixtures::snapshot(1, 1, 1)).delayed(Duration::from_secs(30)),
    );
    let h = Harness::with(source, real_time()).await;
    let job_id = h
        .send(&h.body(&rev(1), "main", None))
        .await
        .accepted()
        .unwrap()
        .sync_id;

    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(h.worker_with(short_lease("w1")).run(shutdown.clone()));
    eventually(Duration::from_secs(2), "fetch started", || async {
        h.source.calls() == 1
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), worker)
        .await
        .expect("the worker stops without waiting for the fetch")
        .unwrap();

    let job = h.job(job_id).await;
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(
        h.queue.stats().await.unwrap().ready,
        1,
        "ready for another worker"
    );
}

#[tokio::test]
async fn an_idle_worker_stops_at_once() {
    let h = Harness::new(ScriptedScanSource::always(fixtures::snapshot(1, 1, 1))).await;
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(
        h.worker_with(WorkerConfig {
            idle_wait: Duration::from_secs(3600),
            ..worker_config("w1")
        })
        .run(shutdown.clone()),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), worker)
        .await
        .expect("stopped")
        .unwrap();
}
