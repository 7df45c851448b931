//! [`InMemoryQueue`]: a job queue with leases, delays and dead letters, in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::StoreError;
use crate::id::SyncJobId;
use crate::memory::{add, lock};
use crate::ports::{DeadLetter, JobQueue, QueuePlacement, QueueStats, Reservation};

/// A [`JobQueue`] in memory ([`QueuePlacement::External`]).
///
/// Each entry has a time from which it is visible. Reserving an entry moves that time to the
/// end of the lease, so an entry whose lease runs out becomes ready again on its own; the
/// reservation's token is what `ack`, `retry`, `extend` and `dead_letter` check. Entries come
/// out by the time they became ready, then by the order they were enqueued.
///
/// Time comes from a [`Clock`]: with a [`ManualClock`](crate::clock::ManualClock), leases
/// and retry delays pass only when the test moves the clock. [`JobQueue::wait_for_work`]
/// returns as soon as an entry is enqueued, retried or redriven, and otherwise sleeps at most
/// until the earliest entry becomes visible (in real time, which only matches the queue's time
/// on the system clock).
///
/// A dead-lettered job stays dead until [`JobQueue::redrive`]: `enqueue` leaves it alone.
pub struct InMemoryQueue {
    state: Mutex<QueueState>,
    clock: Arc<dyn Clock>,
    work: Notify,
}

#[derive(Default)]
struct QueueState {
    entries: HashMap<SyncJobId, Entry>,
    dead: HashMap<SyncJobId, Dead>,
    /// Order of enqueueing, the tie-break between entries ready at the same time.
    next_seq: u64,
}

struct Entry {
    seq: u64,
    visible_at: Timestamp,
    deliveries: u32,
    /// The token of the latest reservation; `None` while the entry waits (never reserved, or
    /// released by `retry`).
    lease_token: Option<String>,
}

struct Dead {
    seq: u64,
    letter: DeadLetter,
}

impl InMemoryQueue {
    /// An empty queue on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty queue measuring leases and delays on `clock`.
    #[must_use]
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            clock,
            work: Notify::new(),
        }
    }
}

impl Default for InMemoryQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for InMemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("InMemoryQueue")
            .field("entries", &state.entries.len())
            .field("dead", &state.dead.len())
            .finish_non_exhaustive()
    }
}

impl QueueState {
    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// The entry `reservation` holds, or `LeaseLost` when it is gone or handed to someone
    /// else since.
    fn held(&mut self, reservation: &Reservation) -> Result<&mut Entry, StoreError> {
        self.entries
            .get_mut(&reservation.job_id)
            .filter(|e| e.lease_token.as_deref() == Some(reservation.lease_token.as_str()))
            .ok_or(StoreError::LeaseLost {
                job_id: reservation.job_id,
            })
    }
}

fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[async_trait]
impl JobQueue for InMemoryQueue {
    fn placement(&self) -> QueuePlacement {
        QueuePlacement::External
    }

    async fn enqueue(&self, job: SyncJobId, delay: Duration) -> Result<(), StoreError> {
        let now = self.clock.now();
        {
            let mut state = lock(&self.state);
            if state.entries.contains_key(&job) || state.dead.contains_key(&job) {
                return Ok(());
            }
            let seq = state.next_seq();
            state.entries.insert(
                job,
                Entry {
                    seq,
                    visible_at: add(now, delay),
                    deliveries: 0,
                    lease_token: None,
                },
            );
        }
        self.work.notify_waiters();
        Ok(())
    }

    async fn reserve(
        &self,
        _worker: &str,
        lease: Duration,
    ) -> Result<Option<Reservation>, StoreError> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        let next = state
            .entries
            .iter_mut()
            .filter(|(_, e)| e.visible_at <= now)
            .min_by(|(_, a), (_, b)| a.visible_at.cmp(&b.visible_at).then(a.seq.cmp(&b.seq)));
        let Some((&job_id, entry)) = next else {
            return Ok(None);
        };

        let token = new_token();
        let lease_until = add(now, lease);
        entry.visible_at = lease_until;
        entry.deliveries = entry.deliveries.saturating_add(1);
        entry.lease_token = Some(token.clone());
        Ok(Some(Reservation {
            job_id,
            deliveries: entry.deliveries,
            lease_token: token,
            lease_until,
        }))
    }

    async fn extend(
        &self,
        reservation: &Reservation,
        lease: Duration,
    ) -> Result<Reservation, StoreError> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        let entry = state.held(reservation)?;
        let lease_until = add(now, lease);
        entry.visible_at = lease_until;
        Ok(Reservation {
            lease_until,
            ..reservation.clone()
        })
    }

    async fn ack(&self, reservation: &Reservation) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.held(reservation)?;
        state.entries.remove(&reservation.job_id);
        Ok(())
    }

    async fn retry(&self, reservation: &Reservation, delay: Duration) -> Result<(), StoreError> {
        let now = self.clock.now();
        {
            let mut state = lock(&self.state);
            let entry = state.held(reservation)?;
            entry.visible_at = add(now, delay);
            entry.lease_token = None;
        }
        self.work.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, reservation: &Reservation, reason: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        let deliveries = state.held(reservation)?.deliveries;
        state.entries.remove(&reservation.job_id);
        let seq = state.next_seq();
        state.dead.insert(
            reservation.job_id,
            Dead {
                seq,
                letter: DeadLetter {
                    job_id: reservation.job_id,
                    reason: reason.to_owned(),
                    deliveries,
                    dead_at: now,
                },
            },
        );
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, StoreError> {
        let now = self.clock.now();
        let state = lock(&self.state);
        let mut stats = QueueStats {
            dead: state.dead.len() as u64,
            ..QueueStats::default()
        };
        let mut oldest_ready: Option<Timestamp> = None;
        for entry in state.entries.values() {
            if entry.visible_at <= now {
                stats.ready += 1;
                oldest_ready =
                    Some(oldest_ready.map_or(entry.visible_at, |o| o.min(entry.visible_at)));
            } else if entry.lease_token.is_some() {
                stats.leased += 1;
            } else {
                stats.delayed += 1;
            }
        }
        stats.oldest_ready_ms =
            oldest_ready.map(|at| u64::try_from((now - at).num_milliseconds()).unwrap_or(0));
        Ok(stats)
    }

    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let state = lock(&self.state);
        let mut dead: Vec<&Dead> = state.dead.values().collect();
        dead.sort_by(|a, b| {
            b.letter
                .dead_at
                .cmp(&a.letter.dead_at)
                .then(b.seq.cmp(&a.seq))
        });
        Ok(dead
            .into_iter()
            .take(limit as usize)
            .map(|d| d.letter.clone())
            .collect())
    }

    async fn redrive(&self, job: SyncJobId) -> Result<bool, StoreError> {
        let now = self.clock.now();
        {
            let mut state = lock(&self.state);
            if state.dead.remove(&job).is_none() {
                return Ok(false);
            }
            // A redriven entry starts afresh: it counts deliveries from zero again.
            let seq = state.next_seq();
            state.entries.insert(
                job,
                Entry {
                    seq,
                    visible_at: now,
                    deliveries: 0,
                    lease_token: None,
                },
            );
        }
        self.work.notify_waiters();
        Ok(true)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let notified = self.work.notified();
        tokio::pin!(notified);
        // Registered before looking at the state, so a wake-up between the look and the wait
        // is not lost.
        notified.as_mut().enable();

        // Limitation: the wait until the earliest entry is due is slept in real time; on a
        // manual clock that only moves when a test says so, waiters rely on the timeout.
        let now = self.clock.now();
        let earliest = lock(&self.state)
            .entries
            .values()
            .map(|e| e.visible_at)
            .min();
        let wait = match earliest {
            Some(at) if at <= now => return,
            Some(at) => (at - now)
                .to_std()
                .map_or(timeout, |until| until.min(timeout)),
            None => timeout,
        };
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::clock::ManualClock;

    fn manual() -> (Arc<ManualClock>, InMemoryQueue) {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let queue = InMemoryQueue::with_clock(clock.clone());
        (clock, queue)
    }

    #[tokio::test]
    async fn leases_and_delays_follow_the_clock() {
        let (clock, queue) = manual();
        let job = SyncJobId::new();
        queue.enqueue(job, Duration::ZERO).await.unwrap();
        let first = queue
            .reserve("w", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();

        clock.advance(Duration::from_secs(29));
        assert_eq!(
            queue.reserve("w", Duration::from_secs(30)).await.unwrap(),
            None
        );
        clock.advance(Duration::from_secs(1));
        let second = queue
            .reserve("w", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.deliveries, 2);
        assert!(matches!(
            queue.ack(&first).await,
            Err(StoreError::LeaseLost { .. })
        ));

        queue.retry(&second, Duration::from_secs(60)).await.unwrap();
        clock.advance(Duration::from_secs(59));
        assert_eq!(
            queue.reserve("w", Duration::from_secs(30)).await.unwrap(),
            None
        );
        clock.advance(Duration::from_secs(1));
        let third = queue
            .reserve("w", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(third.deliveries, 3);
    }

    #[tokio::test]
    async fn expired_lease_can_still_ack_until_someone_else_reserves() {
        let (clock, queue) = manual();
        let job = SyncJobId::new();
        queue.enqueue(job, Duration::ZERO).await.unwrap();
        let held = queue
            .reserve("w", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        clock.advance(Duration::from_secs(31));
        queue.ack(&held).await.unwrap();
        assert_eq!(
            queue.reserve("w", Duration::from_secs(30)).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn entries_ready_at_the_same_time_leave_in_enqueue_order() {
        let (_clock, queue) = manual();
        let jobs: Vec<SyncJobId> = (0..10).map(|_| SyncJobId::new()).collect();
        for job in &jobs {
            queue.enqueue(*job, Duration::ZERO).await.unwrap();
        }
        let mut order = Vec::new();
        while let Some(r) = queue.reserve("w", Duration::from_secs(30)).await.unwrap() {
            order.push(r.job_id);
        }
        assert_eq!(order, jobs);
    }

    #[tokio::test]
    async fn dead_lettered_job_is_not_revived_by_enqueue() {
        let (_clock, queue) = manual();
        let job = SyncJobId::new();
        queue.enqueue(job, Duration::ZERO).await.unwrap();
        let r = queue
            .reserve("w", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        queue.dead_letter(&r, "gave up").await.unwrap();
        queue.enqueue(job, Duration::ZERO).await.unwrap();
        assert_eq!(
            queue.reserve("w", Duration::from_secs(30)).await.unwrap(),
            None
        );
        assert!(queue.redrive(job).await.unwrap());
        let again = queue
            .reserve("w", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.deliveries, 1, "a redriven entry counts afresh");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_worker_wakes_on_enqueue() {
        let queue = Arc::new(InMemoryQueue::new());
        let waiter = {
            let queue = queue.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                queue.wait_for_work(Duration::from_secs(10)).await;
                started.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        queue
            .enqueue(SyncJobId::new(), Duration::ZERO)
            .await
            .unwrap();
        let waited = waiter.await.unwrap();
        assert!(waited < Duration::from_secs(2), "woke after {waited:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_worker_wakes_when_a_delayed_entry_is_due() {
        let queue = InMemoryQueue::new();
        queue
            .enqueue(SyncJobId::new(), Duration::from_millis(100))
            .await
            .unwrap();
        let started = Instant::now();
        queue.wait_for_work(Duration::from_secs(10)).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(90),
            "woke early, after {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(2),
            "woke late, after {waited:?}"
        );
        assert!(queue
            .reserve("w", Duration::from_secs(30))
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_worker_wakes_on_retry() {
        let queue = Arc::new(InMemoryQueue::new());
        queue
            .enqueue(SyncJobId::new(), Duration::ZERO)
            .await
            .unwrap();
        let held = queue
            .reserve("w", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        let waiter = {
            let queue = queue.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                queue.wait_for_work(Duration::from_secs(10)).await;
                started.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        queue.retry(&held, Duration::ZERO).await.unwrap();
        let waited = waiter.await.unwrap();
        assert!(waited < Duration::from_secs(2), "woke after {waited:?}");
    }
}
