//! The conformance suite of [`JobQueue`].
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use compliance_core::memory::InMemoryQueue;
//! use compliance_core::ports::JobQueue;
//! compliance_core::testing::queue::run_all(|| async {
//!     Arc::new(InMemoryQueue::new()) as Arc<dyn JobQueue>
//! })
//! .await;
//! # }
//! ```
//!
//! The checks enqueue fresh [`SyncJobId`]s that no store knows. A queue that can only hold
//! jobs its store has (a queue living in the jobs table) passes a [`QueueUnderTest`] with a
//! job maker to [`run_all_with`] instead: the maker must create a job the queue does not hold
//! yet (for example with [`QueuePlacement::External`](crate::ports::QueuePlacement), or on a
//! component of its own so that coalescing leaves it alone).
//!
//! The checks run on real time, with leases of 500 ms and sleeps of 750 ms where a lease must
//! have run out; the whole suite takes about four seconds.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::id::SyncJobId;
use crate::ports::{JobQueue, Reservation};
use crate::testing::within;

/// Makes a job id the queue under test may hold.
pub type JobMaker = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = SyncJobId> + Send>> + Send + Sync>;

/// A queue and the way to make jobs for it.
#[derive(Clone)]
pub struct QueueUnderTest {
    /// The queue.
    pub queue: Arc<dyn JobQueue>,
    new_job: Option<JobMaker>,
}

impl QueueUnderTest {
    /// A queue that accepts any job id.
    #[must_use]
    pub fn new(queue: Arc<dyn JobQueue>) -> Self {
        Self {
            queue,
            new_job: None,
        }
    }

    /// A queue whose jobs must be made by `maker` (for example written to a store first).
    #[must_use]
    pub fn with_job_maker(queue: Arc<dyn JobQueue>, maker: JobMaker) -> Self {
        Self {
            queue,
            new_job: Some(maker),
        }
    }

    /// A job id the queue does not hold yet.
    pub async fn new_job(&self) -> SyncJobId {
        match &self.new_job {
            Some(make) => make().await,
            None => SyncJobId::new(),
        }
    }

    async fn reserve(&self, lease: Duration) -> Option<Reservation> {
        self.queue.reserve("conformance", lease).await.unwrap()
    }

    async fn enqueue(&self, job: SyncJobId, delay: Duration) {
        self.queue.enqueue(job, delay).await.unwrap();
    }
}

impl std::fmt::Debug for QueueUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueUnderTest").finish_non_exhaustive()
    }
}

/// Runs every queue check, each against a fresh queue from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn JobQueue>>,
{
    run_all_with(|| {
        let fut = make();
        async move { QueueUnderTest::new(fut.await) }
    })
    .await;
}

/// Runs every queue check, each against a fresh [`QueueUnderTest`] from `make`.
pub async fn run_all_with<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = QueueUnderTest>,
{
    macro_rules! checks {
        ($($check:ident),* $(,)?) => {
            $( $check(&make().await).await; )*
        };
    }
    checks!(
        fifo_order,
        reserve_on_empty_queue,
        lease_expiry_redelivers,
        stale_reservation_is_lease_lost,
        extend_keeps_entry_invisible,
        retry_with_delay,
        dead_letter_and_redrive,
        stats_figures,
        idempotent_enqueue,
        concurrent_reservations,
        wait_for_work_is_bounded,
    );
}

const SHORT_LEASE: Duration = Duration::from_millis(500);
const LONG_LEASE: Duration = Duration::from_secs(30);
/// Slightly longer than [`SHORT_LEASE`], so that a short lease has surely run out.
const PAST_SHORT_LEASE: Duration = Duration::from_millis(750);
/// A pause that moves any clock with millisecond resolution.
const TICK: Duration = Duration::from_millis(5);

/// Entries come out in the order they were enqueued.
pub async fn fifo_order(q: &QueueUnderTest) {
    let mut jobs = Vec::new();
    for _ in 0..5 {
        let job = q.new_job().await;
        q.enqueue(job, Duration::ZERO).await;
        jobs.push(job);
        tokio::time::sleep(TICK).await;
    }
    let mut order = Vec::new();
    while let Some(reservation) = q.reserve(LONG_LEASE).await {
        assert_eq!(reservation.deliveries, 1, "first delivery");
        order.push(reservation.job_id);
        q.queue.ack(&reservation).await.unwrap();
    }
    assert_eq!(order, jobs, "first in, first out");
}

/// An empty queue answers `None`; an acknowledged entry is gone.
pub async fn reserve_on_empty_queue(q: &QueueUnderTest) {
    assert_eq!(q.reserve(LONG_LEASE).await, None);
    let job = q.new_job().await;
    q.enqueue(job, Duration::ZERO).await;
    let reservation = q.reserve(LONG_LEASE).await.expect("the entry is ready");
    assert_eq!(reservation.job_id, job);
    assert!(
        !reservation.lease_token.is_empty(),
        "a reservation carries a token"
    );
    q.queue.ack(&reservation).await.unwrap();
    assert_eq!(
        q.reserve(LONG_LEASE).await,
        None,
        "an acknowledged entry is gone"
    );
    assert_eq!(q.queue.stats().await.unwrap().depth(), 0);
}

/// A reserved entry is invisible until its lease runs out, then handed out again with one
/// more delivery.
pub async fn lease_expiry_redelivers(q: &QueueUnderTest) {
    let job = q.new_job().await;
    q.enqueue(job, Duration::ZERO).await;
    let first = q.reserve(SHORT_LEASE).await.expect("ready");
    assert_eq!((first.job_id, first.deliveries), (job, 1));
    assert_eq!(
        q.reserve(SHORT_LEASE).await,
        None,
        "a leased entry is invisible"
    );

    tokio::time::sleep(PAST_SHORT_LEASE).await;
    let second = q.reserve(LONG_LEASE).await.expect("the lease ran out");
    assert_eq!((second.job_id, second.deliveries), (job, 2));
    assert_ne!(
        second.lease_token, first.lease_token,
        "each delivery has its own token"
    );
    q.queue.ack(&second).await.unwrap();
}

fn assert_lease_lost(result: Result<impl std::fmt::Debug, StoreError>, what: &str, job: SyncJobId) {
    assert!(
        matches!(&result, Err(StoreError::LeaseLost { job_id }) if *job_id == job),
        "{what} with a stale reservation: expected LeaseLost, got {result:?}"
    );
}

/// Once an expired entry is handed to someone else, the old reservation can do nothing.
pub async fn stale_reservation_is_lease_lost(q: &QueueUnderTest) {
    let job = q.new_job().await;
    q.enqueue(job, Duration::ZERO).await;
    let stale = q.reserve(SHORT_LEASE).await.expect("ready");
    tokio::time::sleep(PAST_SHORT_LEASE).await;
    let current = q.reserve(LONG_LEASE).await.expect("redelivered");

    assert_lease_lost(q.queue.ack(&stale).await, "ack", job);
    assert_lease_lost(q.queue.retry(&stale, Duration::ZERO).await, "retry", job);
    assert_lease_lost(q.queue.extend(&stale, LONG_LEASE).await, "extend", job);
    assert_lease_lost(
        q.queue.dead_letter(&stale, "stale").await,
        "dead_letter",
        job,
    );

    assert_eq!(
        q.reserve(LONG_LEASE).await,
        None,
        "the stale calls released nothing"
    );
    q.queue.ack(&current).await.unwrap();
    assert_lease_lost(q.queue.ack(&current).await, "a second ack", job);
    let stats = q.queue.stats().await.unwrap();
    assert_eq!((stats.depth(), stats.dead), (0, 0));
}

/// Extending a lease keeps the entry invisible past the original lease.
pub async fn extend_keeps_entry_invisible(q: &QueueUnderTest) {
    let job = q.new_job().await;
    q.enqueue(job, Duration::ZERO).await;
    let reservation = q.reserve(SHORT_LEASE).await.expect("ready");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let extended = q
        .queue
        .extend(&reservation, Duration::from_millis(1_500))
        .await
        .unwrap();
    assert_eq!(extended.job_id, job);
    assert!(
        extended.lease_until > reservation.lease_until,
        "the lease moved on"
    );
    // Past the first lease (500 ms), well inside the extended one (1.7 s).
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        q.reserve(LONG_LEASE).await,
        None,
        "still leased after the first lease ended"
    );

    q.queue.ack(&extended).await.unwrap();
    assert_eq!(q.queue.stats().await.unwrap().depth(), 0);
}

/// A retried entry is invisible until its delay passes, then delivered again.
pub async fn retry_with_delay(q: &QueueUnderTest) {
    let job = q.new_job().await;
    q.enqueue(job, Duration::ZERO).await;
    let first = q.reserve(LONG_LEASE).await.expect("ready");
    q.queue.retry(&first, SHORT_LEASE).await.unwrap();

    assert_eq!(
        q.reserve(LONG_LEASE).await,
        None,
        "a delayed entry is invisible"
    );
    let stats = q.queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.delayed, stats.leased), (0, 1, 0));
    assert_lease_lost(q.queue.ack(&first).await, "ack after retry", job);

    tokio::time::sleep(PAST_SHORT_LEASE).await;
    let second = q.reserve(LONG_LEASE).await.expect("the delay passed");
    assert_eq!((second.job_id, second.deliveries), (job, 2));
    q.queue.retry(&second, Duration::ZERO).await.unwrap();
    let third = q
        .reserve(LONG_LEASE)
        .await
        .expect("a zero delay is ready at once");
    assert_eq!(third.deliveries, 3);
    q.queue.ack(&third).await.unwrap();
}

/// A dead-lettered entry is listed with its reason until redriven, then ready again.
pub async fn dead_letter_and_redrive(q: &QueueUnderTest) {
    let first = q.new_job().await;
    let second = q.new_job().await;
    for job in [first, second] {
        q.enqueue(job, Duration::ZERO).await;
        tokio::time::sleep(TICK).await;
    }
    let r1 = q.reserve(LONG_LEASE).await.expect("ready");
    q.queue.dead_letter(&r1, "permanent: 404").await.unwrap();
    tokio::time::sleep(TICK).await;
    let r2 = q.reserve(LONG_LEASE).await.expect("ready");
    q.queue.retry(&r2, Duration::ZERO).await.unwrap();
    let r2 = q.reserve(LONG_LEASE).await.expect("ready again");
    q.queue
        .dead_letter(&r2, "gave up after 2 attempts")
        .await
        .unwrap();

    assert_eq!(
        q.reserve(LONG_LEASE).await,
        None,
        "dead letters are not handed out"
    );
    let dead = q.queue.dead_letters(10).await.unwrap();
    let summary: Vec<(SyncJobId, &str, u32)> = dead
        .iter()
        .map(|d| (d.job_id, d.reason.as_str(), d.deliveries))
        .collect();
    assert_eq!(
        summary,
        [
            (second, "gave up after 2 attempts", 2),
            (first, "permanent: 404", 1)
        ],
        "newest first"
    );
    assert_eq!(
        q.queue.dead_letters(1).await.unwrap().len(),
        1,
        "the limit applies"
    );
    let stats = q.queue.stats().await.unwrap();
    assert_eq!((stats.dead, stats.depth()), (2, 0));

    assert!(
        q.queue.redrive(first).await.unwrap(),
        "a dead letter is redriven"
    );
    assert!(!q.queue.redrive(first).await.unwrap(), "only once");
    assert!(
        !q.queue.redrive(SyncJobId::new()).await.unwrap(),
        "unknown job"
    );
    let again = q
        .reserve(LONG_LEASE)
        .await
        .expect("redriven entries are ready");
    assert_eq!(again.job_id, first);
    q.queue.ack(&again).await.unwrap();
    let left: Vec<SyncJobId> = q
        .queue
        .dead_letters(10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.job_id)
        .collect();
    assert_eq!(left, [second]);
}

/// Stats count ready, delayed, leased and dead entries and the age of the oldest ready one.
pub async fn stats_figures(q: &QueueUnderTest) {
    assert_eq!(
        q.queue.stats().await.unwrap(),
        crate::ports::QueueStats::default()
    );
    for _ in 0..3 {
        let job = q.new_job().await;
        q.enqueue(job, Duration::ZERO).await;
    }
    let delayed = q.new_job().await;
    q.enqueue(delayed, Duration::from_secs(60)).await;
    let leased = q.reserve(LONG_LEASE).await.expect("ready");
    let dead_job = q.new_job().await;
    q.enqueue(dead_job, Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let stats = q.queue.stats().await.unwrap();
    assert_eq!(
        stats.ready, 3,
        "two left of the first three, and the last one"
    );
    assert_eq!(stats.delayed, 1);
    assert_eq!(stats.leased, 1);
    assert_eq!(stats.dead, 0);
    assert_eq!(stats.depth(), 5);
    let oldest = stats.oldest_ready_ms.expect("an entry is ready");
    assert!(
        (40..60_000).contains(&oldest),
        "oldest ready entry waited {oldest} ms"
    );

    q.queue.dead_letter(&leased, "boom").await.unwrap();
    let stats = q.queue.stats().await.unwrap();
    assert_eq!(
        (stats.ready, stats.delayed, stats.leased, stats.dead),
        (3, 1, 0, 1)
    );
}

/// Enqueuing a job the queue already holds changes nothing.
pub async fn idempotent_enqueue(q: &QueueUnderTest) {
    let job = q.new_job().await;
    q.enqueue(job, Duration::ZERO).await;
    q.enqueue(job, Duration::ZERO).await;
    q.enqueue(job, Duration::from_secs(60)).await;
    let stats = q.queue.stats().await.unwrap();
    assert_eq!(
        (stats.ready, stats.delayed),
        (1, 0),
        "one ready entry; a delay never postpones"
    );

    let reservation = q.reserve(LONG_LEASE).await.expect("ready");
    q.enqueue(job, Duration::ZERO).await;
    assert_eq!(
        q.reserve(LONG_LEASE).await,
        None,
        "a leased job is not enqueued again"
    );
    let stats = q.queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.leased), (0, 1));
    q.queue.ack(&reservation).await.unwrap();

    let delayed = q.new_job().await;
    q.enqueue(delayed, Duration::from_secs(60)).await;
    q.enqueue(delayed, Duration::from_secs(60)).await;
    assert_eq!(q.queue.stats().await.unwrap().delayed, 1);
}

/// Eight workers reserving 200 entries at once get each entry exactly once.
pub async fn concurrent_reservations(q: &QueueUnderTest) {
    const ENTRIES: usize = 200;
    const WORKERS: usize = 8;
    let mut jobs = HashSet::new();
    for _ in 0..ENTRIES {
        let job = q.new_job().await;
        q.enqueue(job, Duration::ZERO).await;
        jobs.insert(job);
    }

    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let queue = q.queue.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("worker-{worker}");
            let mut got = Vec::new();
            while let Some(reservation) = queue.reserve(&name, LONG_LEASE).await.unwrap() {
                got.push(reservation.job_id);
                queue.ack(&reservation).await.unwrap();
            }
            got
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        let got = within(Duration::from_secs(30), "a reserving worker", task).await;
        seen.extend(got.expect("worker panicked"));
    }
    let distinct: HashSet<SyncJobId> = seen.iter().copied().collect();
    assert_eq!(seen.len(), ENTRIES, "each entry is handed out exactly once");
    assert_eq!(distinct, jobs);
    assert_eq!(q.queue.stats().await.unwrap().depth(), 0);
}

/// `wait_for_work` returns by its timeout on an idle queue and promptly when work is ready.
pub async fn wait_for_work_is_bounded(q: &QueueUnderTest) {
    let started = Instant::now();
    within(
        Duration::from_secs(5),
        "wait_for_work on an idle queue",
        async {
            q.queue.wait_for_work(Duration::from_millis(200)).await;
        },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));

    let job = q.new_job().await;
    q.enqueue(job, Duration::ZERO).await;
    within(
        Duration::from_secs(5),
        "wait_for_work with a ready entry",
        async {
            q.queue.wait_for_work(Duration::from_millis(500)).await;
        },
    )
    .await;
    let reservation = q.reserve(LONG_LEASE).await.expect("ready");
    q.queue.ack(&reservation).await.unwrap();
}
