//! How long a sync takes, as recently measured, for the `estimated_completion` of a 202.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How many recent syncs the moving average covers.
const WINDOW: usize = 32;

/// Recent sync durations and the number of workers running in this process, shared by the
/// workers (which report) and the ingest service (which estimates).
///
/// Cloning shares the same figures.
///
/// Limitation: both figures are per process. An instance that only takes webhooks while
/// workers run elsewhere sees no durations and no workers, so it estimates with
/// `IngestConfig::default_sync_estimate` and one worker.
#[derive(Clone, Debug, Default)]
pub struct SyncDurationTracker {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    recent: VecDeque<Duration>,
    workers: usize,
}

impl SyncDurationTracker {
    /// A tracker with no figures yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports how long one sync took (fetch and apply).
    pub fn record(&self, took: Duration) {
        let mut state = self.lock();
        if state.recent.len() == WINDOW {
            state.recent.pop_front();
        }
        state.recent.push_back(took);
    }

    /// The mean of the recent syncs, or `None` before the first one.
    #[must_use]
    pub fn average(&self) -> Option<Duration> {
        let state = self.lock();
        let count = u32::try_from(state.recent.len()).ok().filter(|n| *n > 0)?;
        let total: Duration = state.recent.iter().sum();
        Some(total / count)
    }

    /// Workers running in this process now.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.lock().workers
    }

    /// Counts a running worker until the guard is dropped.
    #[must_use]
    pub fn worker_running(&self) -> WorkerGuard {
        self.lock().workers += 1;
        WorkerGuard {
            tracker: self.clone(),
        }
    }

    /// How long until a job with `jobs_ahead` jobs queued or running (itself included) is
    /// done: one average sync per round of work over the running workers.
    #[must_use]
    pub fn estimate(&self, jobs_ahead: u64, fallback: Duration) -> Duration {
        let per_sync = self.average().unwrap_or(fallback);
        let workers = u64::try_from(self.workers()).unwrap_or(u64::MAX).max(1);
        let rounds = jobs_ahead.max(1).div_ceil(workers);
        per_sync
            .checked_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
            .unwrap_or(Duration::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The figures stay meaningful even if a holder panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps a worker counted in a [`SyncDurationTracker`] while it lives.
#[derive(Debug)]
pub struct WorkerGuard {
    tracker: SyncDurationTracker,
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        let mut state = self.tracker.lock();
        state.workers = state.workers.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn without_measurements_the_fallback_is_used_per_job() {
        let tracker = SyncDurationTracker::new();

        assert_eq!(tracker.average(), None);
        assert_eq!(tracker.estimate(0, secs(30)), secs(30));
        assert_eq!(tracker.estimate(3, secs(30)), secs(90));
    }

    #[test]
    fn the_average_moves_with_recent_syncs() {
        let tracker = SyncDurationTracker::new();
        tracker.record(secs(2));
        tracker.record(secs(4));

        assert_eq!(tracker.average(), Some(secs(3)));
        assert_eq!(tracker.estimate(2, secs(30)), secs(6));

        for _ in 0..WINDOW {
            tracker.record(secs(10));
        }
        assert_eq!(tracker.average(), Some(secs(10)));
    }

    #[test]
    fn running_workers_share_the_queue() {
        let tracker = SyncDurationTracker::new();
        tracker.record(secs(5));

        let first = tracker.worker_running();
        let second = tracker.worker_running();
        assert_eq!(tracker.workers(), 2);
        assert_eq!(tracker.estimate(4, secs(30)), secs(10));
        assert_eq!(tracker.estimate(5, secs(30)), secs(15));

        drop(first);
        drop(second);
        assert_eq!(tracker.workers(), 0);
        assert_eq!(tracker.estimate(4, secs(30)), secs(20));
    }

    #[test]
    fn huge_queues_saturate_instead_of_overflowing() {
        let tracker = SyncDurationTracker::new();

        assert_eq!(tracker.estimate(u64::MAX, Duration::MAX), Duration::MAX);
    }
}
