//! `RedisQueue` against a real Redis: leases, delays, dead letters, figures and recovery from
//! a Redis that lost its keys.
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

use chrono::TimeZone;
use common::TestRedis;
use compliance_core::ports::JobQueue;
use compliance_core::{ManualClock, StoreError, SyncJobId};
use compliance_queue_redis::{RedisOptions, RedisQueue};

const LEASE: Duration = Duration::from_secs(30);

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        chrono::Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
    ))
}

fn queue_on(redis: &TestRedis, clock: &Arc<ManualClock>) -> RedisQueue {
    RedisQueue::new(redis.fresh_options()).with_clock(clock.clone())
}

#[tokio::test]
async fn jobs_come_out_in_order_and_leave_when_acked() {
    let Some(redis) = TestRedis::start("jobs_come_out_in_order_and_leave_when_acked").await else {
        return;
    };
    let clock = manual_clock();
    let queue = queue_on(&redis, &clock);
    let (a, b) = (SyncJobId::new(), SyncJobId::new());

    queue.enqueue(a, Duration::ZERO).await.unwrap();
    clock.advance(Duration::from_millis(5));
    queue.enqueue(b, Duration::ZERO).await.unwrap();
    let first = queue.reserve("w1", LEASE).await.unwrap().unwrap();
    let second = queue.reserve("w2", LEASE).await.unwrap().unwrap();

    assert_eq!((first.job_id, second.job_id), (a, b));
    assert_eq!(first.deliveries, 1);
    assert_eq!(first.lease_until, clock.now_plus(LEASE));
    assert!(queue.reserve("w3", LEASE).await.unwrap().is_none());
    queue.ack(&first).await.unwrap();
    queue.ack(&second).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().depth(), 0);
}

trait NowPlus {
    fn now_plus(&self, d: Duration) -> compliance_core::Timestamp;
}

impl NowPlus for ManualClock {
    fn now_plus(&self, d: Duration) -> compliance_core::Timestamp {
        use compliance_core::Clock;
        self.now() + chrono::Duration::from_std(d).unwrap()
    }
}

#[tokio::test]
async fn enqueue_is_a_no_op_while_the_job_waits_or_is_leased() {
    let Some(redis) = TestRedis::start("enqueue_is_a_no_op_while_the_job_waits_or_is_leased").await
    else {
        return;
    };
    let clock = manual_clock();
    let queue = queue_on(&redis, &clock);
    let job = SyncJobId::new();

    queue.enqueue(job, Duration::ZERO).await.unwrap();
    queue.enqueue(job, Duration::ZERO).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().ready, 1);

    let held = queue.reserve("w1", LEASE).await.unwrap().unwrap();
    queue.enqueue(job, Duration::ZERO).await.unwrap();
    assert!(queue.reserve("w2", LEASE).await.unwrap().is_none());

    queue.ack(&held).await.unwrap();
    queue.enqueue(job, Duration::ZERO).await.unwrap();
    let again = queue.reserve("w2", LEASE).await.unwrap().unwrap();
    assert_eq!(again.job_id, job);
    assert_eq!(again.deliveries, 1, "an acked job starts counting afresh");
}

#[tokio::test]
async fn an_expired_lease_goes_to_the_next_worker_and_the_stale_one_loses_it() {
    let Some(redis) =
        TestRedis::start("an_expired_lease_goes_to_the_next_worker_and_the_stale_one_loses_it")
            .await
    else {
        return;
    };
    let clock = manual_clock();
    let queue = queue_on(&redis, &clock);
    let job = SyncJobId::new();
    queue.enqueue(job, Duration::ZERO).await.unwrap();

    let stale = queue
        .reserve("hung", Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    clock.advance(Duration::from_secs(9));
    assert!(queue.reserve("other", LEASE).await.unwrap().is_none());
    clock.advance(Duration::from_secs(2));
    let fresh = queue.reserve("other", LEASE).await.unwrap().unwrap();

    assert_eq!(fresh.job_id, job);
    assert_eq!(fresh.deliveries, 2);
    for result in [
        queue.ack(&stale).await,
        queue.retry(&stale, Duration::ZERO).await,
        queue.dead_letter(&stale, "x").await,
        queue.extend(&stale, LEASE).await.map(|_| ()),
    ] {
        assert!(matches!(result, Err(StoreError::LeaseLost { job_id }) if job_id == job));
    }
    queue.ack(&fresh).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().depth(), 0);
}

#[tokio::test]
async fn extending_a_lease_keeps_the_job_from_other_workers() {
    let Some(redis) = TestRedis::start("extending_a_lease_keeps_the_job_from_other_workers").await
    else {
        return;
    };
    let clock = manual_clock();
    let queue = queue_on(&redis, &clock);
    queue
        .enqueue(SyncJobId::new(), Duration::ZERO)
        .await
        .unwrap();
    let held = queue
        .reserve("w1", Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();

    clock.advance(Duration::from_secs(8));
    let extended = queue.extend(&held, Duration::from_secs(10)).await.unwrap();
    clock.advance(Duration::from_secs(8));

    assert_eq!(extended.lease_until, clock.now_plus(Duration::from_secs(2)));
    assert!(queue.reserve("w2", LEASE).await.unwrap().is_none());
    assert_eq!(queue.stats().await.unwrap().leased, 1);
    queue.ack(&extended).await.unwrap();
}

#[tokio::test]
async fn a_retried_job_waits_out_its_delay_and_keeps_its_delivery_count() {
    let Some(redis) =
        TestRedis::start("a_retried_job_waits_out_its_delay_and_keeps_its_delivery_count").await
    else {
        return;
    };
    let clock = manual_clock();
    let queue = queue_on(&redis, &clock);
    let job = SyncJobId::new();
    queue.enqueue(job, Duration::ZERO).await.unwrap();
    let first = queue.reserve("w1", LEASE).await.unwrap().unwrap();

    queue.retry(&first, Duration::from_secs(60)).await.unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.delayed, stats.leased), (0, 1, 0));
    clock.advance(Duration::from_secs(59));
    assert!(queue.reserve("w1", LEASE).await.unwrap().is_none());
    clock.advance(Duration::from_secs(3));
    assert_eq!(queue.stats().await.unwrap().oldest_ready_ms, Some(2_000));
    let second = queue.reserve("w1", LEASE).await.unwrap().unwrap();

    assert_eq!((second.job_id, second.deliveries), (job, 2));
    assert!(matches!(
        queue.ack(&first).await,
        Err(StoreError::LeaseLost { .. })
    ));
    queue.ack(&second).await.unwrap();
}

#[tokio::test]
async fn an_entry_that_fell_due_earlier_goes_before_one_enqueued_later() {
    let Some(redis) =
        TestRedis::start("an_entry_that_fell_due_earlier_goes_before_one_enqueued_later").await
    else {
        return;
    };
    let clock = manual_clock();
    let queue = queue_on(&redis, &clock);
    let (delayed, later) = (SyncJobId::new(), SyncJobId::new());

    queue
        .enqueue(delayed, Duration::from_secs(5))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(10));
    queue.enqueue(later, Duration::ZERO).await.unwrap();

    let first = queue.reserve("w", LEASE).await.unwrap().unwrap();
    let second = queue.reserve("w", LEASE).await.unwrap().unwrap();
    assert_eq!((first.job_id, second.job_id), (delayed, later));
}

#[tokio::test]
async fn dead_letters_are_listed_newest_first_and_can_be_redriven() {
    let Some(redis) =
        TestRedis::start("dead_letters_are_listed_newest_first_and_can_be_redriven").await
    else {
        return;
    };
    let clock = manual_clock();
    let queue = queue_on(&redis, &clock);
    let (a, b) = (SyncJobId::new(), SyncJobId::new());
    for job in [a, b] {
        queue.enqueue(job, Duration::ZERO).await.unwrap();
        let held = queue.reserve("w", LEASE).await.unwrap().unwrap();
        clock.advance(Duration::from_secs(1));
        queue
            .dead_letter(&held, &format!("gave up on {job}"))
            .await
            .unwrap();
    }

    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(
        dead.iter().map(|d| d.job_id).collect::<Vec<_>>(),
        vec![b, a]
    );
    assert_eq!(dead[0].reason, format!("gave up on {b}"));
    assert_eq!(dead[0].deliveries, 1);
    assert_eq!(dead[0].dead_at, clock.now_plus(Duration::ZERO));
    assert_eq!(queue.dead_letters(1).await.unwrap().len(), 1);
    queue.enqueue(a, Duration::ZERO).await.unwrap();
    assert_eq!(
        queue.stats().await.unwrap().ready,
        0,
        "a dead letter stays dead"
    );

    assert!(queue.redrive(a).await.unwrap());
    assert!(!queue.redrive(a).await.unwrap());
    let back = queue.reserve("w", LEASE).await.unwrap().unwrap();
    assert_eq!((back.job_id, back.deliveries), (a, 1));
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.dead, stats.leased), (1, 1));
}

#[tokio::test]
async fn figures_count_each_state_and_the_oldest_ready_age() {
    let Some(redis) = TestRedis::start("figures_count_each_state_and_the_oldest_ready_age").await
    else {
        return;
    };
    let clock = manual_clock();
    let queue = queue_on(&redis, &clock);
    assert_eq!(queue.stats().await.unwrap(), Default::default());

    let jobs = [SyncJobId::new(), SyncJobId::new(), SyncJobId::new()];
    for job in jobs {
        queue.enqueue(job, Duration::ZERO).await.unwrap();
        clock.advance(Duration::from_secs(1));
    }
    queue
        .enqueue(SyncJobId::new(), Duration::from_secs(100))
        .await
        .unwrap();
    let held = queue
        .reserve("w", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    clock.advance(Duration::from_secs(2));

    let stats = queue.stats().await.unwrap();
    assert_eq!(
        (stats.ready, stats.delayed, stats.leased, stats.dead),
        (2, 1, 1, 0)
    );
    assert_eq!(
        stats.oldest_ready_ms,
        Some(4_000),
        "second job, enqueued 4 s ago"
    );

    clock.advance(Duration::from_secs(10));
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        (stats.ready, stats.leased),
        (3, 0),
        "an expired lease counts as ready"
    );
    assert_eq!(stats.oldest_ready_ms, Some(14_000));

    // The second job has been ready longer than the expired lease: it goes first.
    let next = queue.reserve("w", LEASE).await.unwrap().unwrap();
    assert_eq!(next.job_id, jobs[1]);
    queue.dead_letter(&next, "x").await.unwrap();
    queue.ack(&held).await.unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        (stats.ready, stats.delayed, stats.leased, stats.dead),
        (1, 1, 0, 1)
    );
}

#[tokio::test]
async fn a_deleted_stream_and_group_are_recreated_and_lost_jobs_can_be_re_enqueued() {
    let Some(redis) = TestRedis::start(
        "a_deleted_stream_and_group_are_recreated_and_lost_jobs_can_be_re_enqueued",
    )
    .await
    else {
        return;
    };
    let options = redis.fresh_options();
    let prefix = options.prefix().to_owned();
    let queue = RedisQueue::new(options);
    let (leased, waiting) = (SyncJobId::new(), SyncJobId::new());
    queue.enqueue(leased, Duration::ZERO).await.unwrap();
    queue.enqueue(waiting, Duration::ZERO).await.unwrap();
    let held = queue.reserve("w", LEASE).await.unwrap().unwrap();

    // Only the stream goes: its group with it, the indexes stay behind and point at nothing.
    let mut conn = redis.connection().await;
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}queue:stream"))
        .query_async(&mut conn)
        .await
        .unwrap();

    assert!(
        queue.reserve("w", LEASE).await.unwrap().is_none(),
        "no NOGROUP error"
    );
    queue.enqueue(waiting, Duration::ZERO).await.unwrap();
    let refilled = queue.reserve("w", LEASE).await.unwrap().unwrap();
    assert_eq!(refilled.job_id, waiting);
    queue.ack(&refilled).await.unwrap();
    queue.ack(&held).await.unwrap();

    // Everything goes, mid-lease: the worker's lease is gone, the queue works on.
    let held = {
        queue.enqueue(leased, Duration::ZERO).await.unwrap();
        queue.reserve("w", LEASE).await.unwrap().unwrap()
    };
    redis.delete_keys(&prefix).await;
    assert!(matches!(
        queue.ack(&held).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(queue.stats().await.unwrap(), Default::default());
    queue.enqueue(leased, Duration::ZERO).await.unwrap();
    assert_eq!(
        queue.reserve("w", LEASE).await.unwrap().unwrap().job_id,
        leased
    );
}

#[tokio::test]
async fn a_destroyed_group_is_recreated_without_skipping_entries() {
    let Some(redis) =
        TestRedis::start("a_destroyed_group_is_recreated_without_skipping_entries").await
    else {
        return;
    };
    let options = redis.fresh_options();
    let stream = format!("{}queue:stream", options.prefix());
    let queue = RedisQueue::new(options);
    let jobs = [SyncJobId::new(), SyncJobId::new()];
    for job in jobs {
        queue.enqueue(job, Duration::ZERO).await.unwrap();
    }
    let mut conn = redis.connection().await;
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&stream)
        .arg("workers")
        .query_async(&mut conn)
        .await
        .unwrap();

    let first = queue.reserve("w", LEASE).await.unwrap().unwrap();
    let second = queue.reserve("w", LEASE).await.unwrap().unwrap();
    assert_eq!([first.job_id, second.job_id], jobs);
}

#[tokio::test]
async fn a_queue_on_an_unreachable_redis_starts_and_answers_unavailable() {
    // Port 1 on localhost refuses connections; this needs no running Redis.
    let options = RedisOptions::from_url("redis://:hunter2@127.0.0.1:1/3")
        .unwrap()
        .connect_timeout(Duration::from_millis(300))
        .command_timeout(Duration::from_millis(300));
    let queue = RedisQueue::new(options);

    assert!(!queue.ready().await);
    let err = queue
        .enqueue(SyncJobId::new(), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let shown = format!(
        "{err} {err:?} {queue:?} {:?}",
        std::error::Error::source(&err)
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    let start = std::time::Instant::now();
    queue.wait_for_work(Duration::from_millis(200)).await;
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "no busy loop while down"
    );
}

#[tokio::test]
async fn a_wrong_password_is_a_backend_error_that_does_not_show_the_password() {
    let Some(redis) =
        TestRedis::start("a_wrong_password_is_a_backend_error_that_does_not_show_the_password")
            .await
    else {
        return;
    };
    let mut url = url::Url::parse(&redis.url).unwrap();
    url.set_username("nobody-here").unwrap();
    url.set_password(Some("wrong-pass-42")).unwrap();
    let queue = RedisQueue::new(RedisOptions::from_url(url.as_str()).unwrap());

    let err = queue.stats().await.unwrap_err();
    assert!(
        !err.is_retryable(),
        "refused credentials are not cured by waiting: {err} / {:?}",
        std::error::Error::source(&err)
    );
    let shown = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
    assert!(!shown.contains("wrong-pass-42"), "{shown}");
    assert!(!queue.ready().await);
}

#[tokio::test]
async fn a_waiting_worker_wakes_when_a_job_is_enqueued() {
    let Some(redis) = TestRedis::start("a_waiting_worker_wakes_when_a_job_is_enqueued").await
    else {
        return;
    };
    let queue = Arc::new(RedisQueue::new(redis.fresh_options()));
    let waiter = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let start = std::time::Instant::now();
            queue.wait_for_work(Duration::from_secs(10)).await;
            start.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    queue
        .enqueue(SyncJobId::new(), Duration::ZERO)
        .await
        .unwrap();

    let waited = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(5), "woke after {waited:?}");
    let start = std::time::Instant::now();
    queue.wait_for_work(Duration::from_secs(10)).await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "work is ready: no wait"
    );
}

#[tokio::test]
async fn a_lease_redis_forgot_is_granted_again_to_its_holder() {
    let Some(redis) = TestRedis::start("a_lease_redis_forgot_is_granted_again_to_its_holder").await
    else {
        return;
    };
    let clock = manual_clock();
    let options = redis.fresh_options();
    let prefix = options.prefix().to_owned();
    let queue = RedisQueue::new(options).with_clock(clock.clone());
    let (job, other) = (SyncJobId::new(), SyncJobId::new());
    queue.enqueue(job, Duration::ZERO).await.unwrap();
    let held = queue
        .reserve("w1", Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();

    // Redis restarts empty while w1 runs the job.
    redis.delete_keys(&prefix).await;
    queue.enqueue(other, Duration::ZERO).await.unwrap();
    let extended = queue.extend(&held, Duration::from_secs(10)).await.unwrap();

    assert_eq!(
        extended.lease_until,
        clock.now_plus(Duration::from_secs(10))
    );
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.leased), (1, 1));
    queue.enqueue(job, Duration::ZERO).await.unwrap();
    let next = queue.reserve("w2", LEASE).await.unwrap().unwrap();
    assert_eq!(next.job_id, other, "the job w1 holds is not handed out");
    assert!(queue.reserve("w2", LEASE).await.unwrap().is_none());
    let again = queue
        .extend(&extended, Duration::from_secs(10))
        .await
        .unwrap();
    queue.ack(&again).await.unwrap();
    queue.ack(&next).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().depth(), 0);

    // A holder that stops after the re-grant loses the job to the next worker as usual.
    queue.enqueue(job, Duration::ZERO).await.unwrap();
    let held = queue
        .reserve("w1", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    redis.delete_keys(&prefix).await;
    let regranted = queue.extend(&held, Duration::from_secs(5)).await.unwrap();
    clock.advance(Duration::from_secs(6));
    let taken = queue.reserve("w2", LEASE).await.unwrap().unwrap();
    assert_eq!(taken.job_id, job);
    assert!(matches!(
        queue.extend(&regranted, LEASE).await,
        Err(StoreError::LeaseLost { .. })
    ));
    queue.ack(&taken).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().depth(), 0);
}

#[tokio::test]
async fn a_stale_lease_whose_job_another_worker_finished_is_not_granted_again() {
    let Some(redis) =
        TestRedis::start("a_stale_lease_whose_job_another_worker_finished_is_not_granted_again")
            .await
    else {
        return;
    };
    let clock = manual_clock();
    let queue = queue_on(&redis, &clock);
    let job = SyncJobId::new();
    queue.enqueue(job, Duration::ZERO).await.unwrap();
    let stale = queue
        .reserve("hung", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    clock.advance(Duration::from_secs(6));
    let current = queue.reserve("other", LEASE).await.unwrap().unwrap();
    queue.ack(&current).await.unwrap();

    assert!(matches!(
        queue.extend(&stale, LEASE).await,
        Err(StoreError::LeaseLost { job_id }) if job_id == job
    ));
    assert_eq!(queue.stats().await.unwrap().depth(), 0);
}

#[tokio::test]
async fn a_key_of_the_wrong_type_is_a_backend_error_not_a_panic() {
    let Some(redis) =
        TestRedis::start("a_key_of_the_wrong_type_is_a_backend_error_not_a_panic").await
    else {
        return;
    };
    let options = redis.fresh_options();
    let stream = format!("{}queue:stream", options.prefix());
    let queue = RedisQueue::new(options);
    let mut conn = redis.connection().await;
    let _: () = redis::cmd("SET")
        .arg(&stream)
        .arg("not a stream")
        .query_async(&mut conn)
        .await
        .unwrap();

    let results = [
        queue.enqueue(SyncJobId::new(), Duration::ZERO).await.err(),
        queue.reserve("w", LEASE).await.err(),
        queue.stats().await.err(),
    ];
    for err in results {
        let err = err.expect("an operation on a mistyped key fails");
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
        assert!(!err.is_retryable(), "{err}");
    }
    assert!(queue.ready().await, "the connection itself is fine");

    let _: i64 = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    queue
        .enqueue(SyncJobId::new(), Duration::ZERO)
        .await
        .unwrap();
    assert!(queue.reserve("w", LEASE).await.unwrap().is_some());
}
