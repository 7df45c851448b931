//! The sync pipeline over `RedisQueue`: a worker that hangs holding a job, another that
//! finishes it after the lease; jobs Redis lost, waiting or running; duplicate deliveries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pipeline::Pipeline;
use common::TestRedis;
use compliance_core::domain::JobStatus;
use compliance_core::ports::{JobQueue, StartOutcome};
use compliance_core::testing::fixtures::{self, revision};
use compliance_core::testing::Step;
use compliance_core::worker::{JobReport, SkipReason};
use compliance_core::StoreError;
use compliance_queue_redis::RedisQueue;

const LEASE: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread")]
async fn a_job_held_by_a_hung_worker_is_completed_by_another_after_the_lease() {
    let Some(redis) =
        TestRedis::start("a_job_held_by_a_hung_worker_is_completed_by_another_after_the_lease")
            .await
    else {
        return;
    };
    let queue: Arc<dyn JobQueue> = Arc::new(RedisQueue::new(redis.options()));
    let pipeline = Pipeline::new(queue.clone());
    pipeline.register(1).await;
    let accepted = pipeline.send(1, &revision(1)).await;
    let job = accepted
        .accepted()
        .unwrap_or_else(|| panic!("{accepted:?}"))
        .sync_id;

    // The hung worker: it took the job and marked it running, then stopped responding
    // (a frozen process: no heartbeat, no ack).
    let hung = queue
        .reserve("hung", LEASE)
        .await
        .unwrap()
        .expect("the job is queued");
    assert_eq!(hung.job_id, job);
    let started = pipeline
        .stores
        .jobs
        .start(job, pipeline.clock.now(), LEASE)
        .await
        .unwrap();
    assert!(matches!(started, StartOutcome::Started(_)));

    let rescuer = pipeline.worker("rescuer", LEASE);
    assert_eq!(rescuer.run_once().await.unwrap(), None, "still leased");
    tokio::time::sleep(LEASE + Duration::from_millis(300)).await;
    let report = rescuer
        .run_once()
        .await
        .unwrap()
        .expect("the lease ran out");

    assert!(
        matches!(report, JobReport::Completed { job_id, .. } if job_id == job),
        "{report:?}"
    );
    let stored = pipeline.stores.jobs.get_job(job).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Completed);
    assert_eq!(
        pipeline.source.calls(),
        1,
        "one fetch: the hung worker never fetched"
    );
    assert!(matches!(
        queue.ack(&hung).await,
        Err(StoreError::LeaseLost { job_id }) if job_id == job
    ));
    assert_eq!(queue.stats().await.unwrap().depth(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_redis_never_received_is_swept_back_and_completed_once() {
    let Some(redis) =
        TestRedis::start("a_job_redis_never_received_is_swept_back_and_completed_once").await
    else {
        return;
    };
    let redis_queue = Arc::new(RedisQueue::new(redis.options()));
    let queue: Arc<dyn JobQueue> = redis_queue.clone();
    let pipeline = Pipeline::new(queue.clone());
    pipeline.register(1).await;
    let outcome = pipeline.send(1, &revision(1)).await;
    let job = outcome
        .accepted()
        .unwrap_or_else(|| panic!("{outcome:?}"))
        .sync_id;

    // Redis comes back empty after the commit and the enqueue.
    redis.delete_keys(&redis.prefix).await;
    let worker = pipeline.worker("w", Duration::from_secs(30));
    assert_eq!(
        worker.run_once().await.unwrap(),
        None,
        "the queue lost the job"
    );

    let sweeper = compliance_core::worker::Sweeper::new(
        pipeline.stores.jobs.clone(),
        queue.clone(),
        pipeline.clock.clone(),
        compliance_core::worker::SweeperConfig {
            grace: Duration::ZERO,
            ..Default::default()
        },
    );
    assert_eq!(sweeper.sweep_once().await.unwrap(), 1);
    assert_eq!(
        sweeper.sweep_once().await.unwrap(),
        1,
        "re-enqueueing again is harmless"
    );
    assert_eq!(queue.stats().await.unwrap().ready, 1);

    let report = worker.run_once().await.unwrap().expect("swept back");
    assert!(matches!(report, JobReport::Completed { job_id, .. } if job_id == job));
    assert_eq!(worker.run_once().await.unwrap(), None);
    assert_eq!(pipeline.source.calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_running_when_redis_loses_its_data_is_finished_by_its_worker() {
    let Some(redis) =
        TestRedis::start("a_job_running_when_redis_loses_its_data_is_finished_by_its_worker").await
    else {
        return;
    };
    let queue: Arc<dyn JobQueue> = Arc::new(RedisQueue::new(redis.options()));
    let pipeline = Pipeline::new(queue.clone());
    pipeline.register(1).await;
    // A fetch that outlasts several heartbeats (lease 900 ms, a heartbeat every 300 ms).
    pipeline
        .source
        .push(Step::ok(fixtures::snapshot(2, 3, 7)).delayed(Duration::from_millis(1_500)));
    let outcome = pipeline.send(1, &revision(1)).await;
    let job = outcome
        .accepted()
        .unwrap_or_else(|| panic!("{outcome:?}"))
        .sync_id;

    let worker = pipeline.worker("w", Duration::from_millis(900));
    let running = tokio::spawn(async move { worker.run_once().await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        queue.stats().await.unwrap().leased,
        1,
        "the fetch is under way"
    );
    redis.delete_keys(&redis.prefix).await;
    let report = running
        .await
        .unwrap()
        .unwrap()
        .expect("the worker had a job");

    assert!(
        matches!(report, JobReport::Completed { job_id, .. } if job_id == job),
        "{report:?}"
    );
    let stored = pipeline.stores.jobs.get_job(job).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Completed);
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        (stats.depth(), stats.leased),
        (0, 0),
        "the worker's ack went through: {stats:?}"
    );
    assert_eq!(pipeline.source.calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_delivery_of_a_finished_job_is_acknowledged_without_running_it() {
    let Some(redis) =
        TestRedis::start("a_second_delivery_of_a_finished_job_is_acknowledged_without_running_it")
            .await
    else {
        return;
    };
    let queue: Arc<dyn JobQueue> = Arc::new(RedisQueue::new(redis.options()));
    let pipeline = Pipeline::new(queue.clone());
    pipeline.register(1).await;
    let outcome = pipeline.send(1, &revision(1)).await;
    let job = outcome
        .accepted()
        .unwrap_or_else(|| panic!("{outcome:?}"))
        .sync_id;
    let worker = pipeline.worker("w", Duration::from_secs(30));
    let first = worker.run_once().await.unwrap().expect("queued");
    assert!(matches!(first, JobReport::Completed { .. }), "{first:?}");

    // A sweeper that listed the job while it was still QUEUED enqueues it after it finished.
    queue.enqueue(job, Duration::ZERO).await.unwrap();
    let second = worker.run_once().await.unwrap().expect("delivered again");

    assert_eq!(
        second,
        JobReport::Skipped {
            job_id: job,
            reason: SkipReason::Finished(JobStatus::Completed)
        }
    );
    assert_eq!(pipeline.source.calls(), 1, "fetched once");
    assert_eq!(
        queue.stats().await.unwrap().depth(),
        0,
        "the duplicate was acked"
    );
    assert_eq!(worker.run_once().await.unwrap(), None);
}
