//! The sweeper and the scheduler.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod pipeline_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use compliance_core::domain::{JobStatus, Trigger};
use compliance_core::ports::{JobQueue, StartOutcome};
use compliance_core::testing::fixtures;
use compliance_core::testing::ScriptedScanSource;
use compliance_core::worker::{JobReport, Scheduler, SchedulerConfig, Sweeper, SweeperConfig};
use tokio_util::sync::CancellationToken;

use pipeline_support::{rev, Harness};

fn source() -> ScriptedScanSource {
    ScriptedScanSource::always(fixtures::snapshot(1, 1, 1))
}

fn sweeper(h: &Harness) -> Sweeper {
    Sweeper::new(
        h.stores.jobs.clone(),
        h.queue.clone() as Arc<dyn JobQueue>,
        h.clock.clone(),
        SweeperConfig {
            grace: Duration::from_secs(60),
            every: Duration::from_millis(20),
            batch: 100,
        },
    )
}

fn scheduler(h: &Harness) -> Scheduler {
    Scheduler::new(
        h.ingest.clone(),
        h.stores.clone(),
        h.clock.clone(),
        SchedulerConfig {
            max_age: Duration::from_secs(3600),
            every: Duration::from_millis(20),
            batch: 10,
        },
    )
}

#[tokio::test]
async fn the_sweeper_re_enqueues_a_job_the_queue_never_got() {
    let h = Harness::new(source()).await;
    h.queue.enqueue_down.store(true, Ordering::SeqCst);
    let job_id = h
        .send(&h.body(&rev(1), "main", None))
        .await
        .accepted()
        .unwrap()
        .sync_id;
    h.queue.enqueue_down.store(false, Ordering::SeqCst);
    let sweeper = sweeper(&h);

    assert_eq!(
        sweeper.sweep_once().await.unwrap(),
        0,
        "still inside the grace period"
    );
    h.advance(Duration::from_secs(61));
    assert_eq!(sweeper.sweep_once().await.unwrap(), 1);

    let report = h.worker().run_once().await.unwrap().unwrap();
    assert!(matches!(report, JobReport::Completed { job_id: id, .. } if id == job_id));
}

#[tokio::test]
async fn sweeping_twice_queues_a_job_once() {
    let h = Harness::new(source()).await;
    h.send(&h.body(&rev(1), "main", None)).await;
    h.advance(Duration::from_secs(120));
    let sweeper = sweeper(&h);

    sweeper.sweep_once().await.unwrap();
    sweeper.sweep_once().await.unwrap();

    assert_eq!(h.queue.stats().await.unwrap().depth(), 1);
    let worker = h.worker();
    assert!(worker.run_once().await.unwrap().is_some());
    assert_eq!(worker.run_once().await.unwrap(), None);
    assert_eq!(h.source.calls(), 1);
}

#[tokio::test]
async fn a_job_waiting_for_its_retry_is_swept_only_once_it_is_due() {
    let h = Harness::new(ScriptedScanSource::new(
        compliance_core::testing::Step::err(|| compliance_core::ScanSourceError::RateLimited {
            retry_after: Some(Duration::from_secs(600)),
        }),
    ))
    .await;
    h.send(&h.body(&rev(1), "main", None)).await;
    h.worker().run_once().await.unwrap().unwrap();

    // Due after 600 s, swept once a further grace period has passed.
    h.advance(Duration::from_secs(650));
    assert_eq!(
        sweeper(&h).sweep_once().await.unwrap(),
        0,
        "inside the grace period"
    );
    h.advance(Duration::from_secs(11));
    assert_eq!(sweeper(&h).sweep_once().await.unwrap(), 1);
}

/// A worker died holding a job while the external queue lost its data (a Redis that came
/// back empty): the store still says RUNNING and no entry is left to expire. Once the job's
/// heartbeat is older than the grace period the sweeper hands it to another worker.
#[tokio::test]
async fn a_running_job_whose_worker_and_queue_entry_are_gone_is_swept_back() {
    let h = Harness::new(source()).await;
    let job_id = h
        .send(&h.body(&rev(1), "main", None))
        .await
        .accepted()
        .unwrap()
        .sync_id;
    // The dead worker: it reserved and started the job, then vanished with its entry.
    let entry = h
        .queue
        .reserve("dead-worker", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let started = h
        .stores
        .jobs
        .start(job_id, h.clock.now(), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(matches!(started, StartOutcome::Started(_)));
    h.queue.ack(&entry).await.unwrap();
    assert_eq!(h.queue.stats().await.unwrap().depth(), 0);
    let sweeper = sweeper(&h);

    h.advance(Duration::from_secs(30));
    assert_eq!(
        sweeper.sweep_once().await.unwrap(),
        0,
        "its heartbeat is inside the grace period"
    );
    h.advance(Duration::from_secs(31));
    assert_eq!(sweeper.sweep_once().await.unwrap(), 1);

    let report = h.worker().run_once().await.unwrap().unwrap();
    assert!(
        matches!(report, JobReport::Completed { job_id: id, .. } if id == job_id),
        "{report:?}"
    );
    let job = h.stores.jobs.get_job(job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(
        job.attempts, 2,
        "the dead worker's attempt and the one that finished"
    );
}

#[tokio::test]
async fn the_sweeper_leaves_queues_inside_the_store_alone() {
    let h = Harness::new(source()).await;
    h.queue.enqueue_down.store(true, Ordering::SeqCst);
    h.send(&h.body(&rev(1), "main", None)).await;
    h.queue.enqueue_down.store(false, Ordering::SeqCst);
    h.queue.in_store.store(true, Ordering::SeqCst);
    h.advance(Duration::from_secs(600));

    assert_eq!(sweeper(&h).sweep_once().await.unwrap(), 0);
    assert_eq!(h.queue.stats().await.unwrap().depth(), 0);
}

#[tokio::test]
async fn the_scheduler_syncs_stale_components_once_per_max_age() {
    let h = Harness::new(source()).await;
    let scheduler = scheduler(&h);

    // Never synced: stale at once.
    assert_eq!(scheduler.schedule_once().await.unwrap(), 1);
    let jobs = h.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].trigger, Trigger::Scheduled);
    assert_eq!(jobs[0].branch, "main");

    // A job exists since it went stale: nothing more, whatever becomes of that job.
    assert_eq!(scheduler.schedule_once().await.unwrap(), 0);
    h.worker().run_once().await.unwrap().unwrap();
    h.advance(Duration::from_secs(1800));
    assert_eq!(
        scheduler.schedule_once().await.unwrap(),
        0,
        "synced half an hour ago"
    );

    h.advance(Duration::from_secs(1801));
    assert_eq!(scheduler.schedule_once().await.unwrap(), 1);
    let fresh = h
        .register("billing", "https://github.com/acme/billing")
        .await;
    assert_eq!(
        scheduler.schedule_once().await.unwrap(),
        1,
        "only the new component"
    );
    let jobs = h.jobs().await;
    assert!(jobs
        .iter()
        .any(|j| j.component_id == fresh.id && j.status == JobStatus::Queued));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loops_run_until_shutdown() {
    let h = Harness::new(source()).await;
    h.queue.enqueue_down.store(true, Ordering::SeqCst);
    h.send(&h.body(&rev(1), "main", None)).await;
    h.queue.enqueue_down.store(false, Ordering::SeqCst);
    h.advance(Duration::from_secs(120));

    let shutdown = CancellationToken::new();
    let sweeping = tokio::spawn(sweeper(&h).run(shutdown.clone()));
    let scheduling = tokio::spawn(scheduler(&h).run(shutdown.clone()));
    pipeline_support::eventually(Duration::from_secs(2), "re-enqueued", || async {
        h.queue.stats().await.unwrap().ready >= 1
    })
    .await;

    shutdown.cancel();
    for task in [sweeping, scheduling] {
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .unwrap()
            .unwrap();
    }
}
