//! How often the queue-depth limit asks the queue for its depth.
//!
//! Reading the depth is a database or Redis round trip, and the limit is checked before every
//! webhook. But after one reading `depth <= limit`, the `limit - depth` webhooks that follow
//! can add at most one job each, so the first half of them cannot push the depth over the
//! limit: they skip the reading. Workers only ever lower the depth. Other instances and the
//! scheduler also add jobs, which this process does not count, so a reading is never reused
//! for longer than [`MAX_AGE`] either.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a depth reading is reused.
pub(crate) const MAX_AGE: Duration = Duration::from_millis(500);

/// The last depth reading and how many checks have used it since.
#[derive(Debug, Default)]
pub(crate) struct DepthGate {
    /// When the depth was read, and how many checks may skip a reading after it.
    reading: Mutex<Option<(Instant, u64)>>,
    /// Checks that skipped a reading since the last one.
    skipped: AtomicU64,
}

impl DepthGate {
    /// Whether this check may skip reading the depth.
    pub(crate) fn may_skip(&self, now: Instant) -> bool {
        let reading = *self
            .reading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((at, allowance)) = reading else {
            return false;
        };
        if now.saturating_duration_since(at) >= MAX_AGE {
            return false;
        }
        // Each skipping check takes one unit of the allowance; once it is used up, read.
        self.skipped.fetch_add(1, Ordering::Relaxed) < allowance
    }

    /// Records a reading of `depth` against `limit` taken at `now`.
    pub(crate) fn record(&self, now: Instant, depth: u64, limit: u64) {
        let allowance = limit.saturating_sub(depth) / 2;
        let mut reading = self
            .reading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *reading = Some((now, allowance));
        self.skipped.store(0, Ordering::Relaxed);
    }

    /// Forgets the reading (the queue could not be read).
    pub(crate) fn forget(&self) {
        *self
            .reading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_the_headroom_skips_then_the_depth_is_read_again() {
        let gate = DepthGate::default();
        let t0 = Instant::now();
        assert!(!gate.may_skip(t0), "no reading yet");

        gate.record(t0, 90, 100);
        let skipped = (0..10).filter(|_| gate.may_skip(t0)).count();
        assert_eq!(skipped, 5, "half of the 10 free places");
        assert!(!gate.may_skip(t0));

        gate.record(t0, 0, 1_000);
        assert!(gate.may_skip(t0 + Duration::from_millis(100)));
        assert!(
            !gate.may_skip(t0 + MAX_AGE),
            "a reading is reused for MAX_AGE at most"
        );

        gate.record(t0, 100, 100);
        assert!(!gate.may_skip(t0), "at the limit every check reads");
        gate.record(t0, 150, 100);
        assert!(!gate.may_skip(t0), "over the limit every check reads");

        gate.record(t0, 0, 1_000);
        gate.forget();
        assert!(!gate.may_skip(t0));
    }
}
