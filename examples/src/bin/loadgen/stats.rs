//! Latency percentiles, status counts and the server's memory.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Latency figures of one distribution, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) count: usize,
    pub(crate) mean_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (microseconds).
    pub(crate) fn of(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let rank = |q: f64| {
            // Nearest rank: the smallest value with at least q of the samples at or below it.
            let n = samples.len();
            let index = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            ms(samples.get(index).copied().unwrap_or(0))
        };
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Self {
            count: samples.len(),
            mean_ms: round(sum as f64 / samples.len() as f64 / 1000.0),
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: ms(samples.last().copied().unwrap_or(0)),
        }
    }

    /// One line: `p50 1.23 ms  p90 …`.
    pub(crate) fn line(&self) -> String {
        if self.count == 0 {
            return "no samples".to_owned();
        }
        format!(
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n = {})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

fn ms(micros: u64) -> f64 {
    round(micros as f64 / 1000.0)
}

/// Three decimals, so that JSON output stays readable.
pub(crate) fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A duration in whole microseconds.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// What a batch of requests got back.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    /// Responses by status code.
    pub(crate) statuses: BTreeMap<u16, u64>,
    /// Requests that got no response (connection refused, reset, …).
    pub(crate) errors: u64,
    /// Latency of every request that got a response, in microseconds.
    pub(crate) latencies: Vec<u64>,
    /// Latency of the 202 answers only.
    pub(crate) accepted_latencies: Vec<u64>,
}

impl Tally {
    pub(crate) fn merge(&mut self, other: Tally) {
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        self.accepted_latencies.extend(other.accepted_latencies);
    }

    pub(crate) fn responses(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// `{"202": n, …}` for the report.
    pub(crate) fn status_map(&self) -> BTreeMap<String, u64> {
        self.statuses
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect()
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Memory {
    /// Resident set size now, KiB.
    pub(crate) rss_kib: u64,
    /// Peak resident set size since the process started, KiB.
    pub(crate) hwm_kib: u64,
}

impl Memory {
    /// `None` when the process is gone or `/proc` is not there.
    pub(crate) fn of(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        Some(Self {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
        })
    }

    pub(crate) fn mib(kib: u64) -> f64 {
        round(kib as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p90_ms, 90.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
        assert_eq!(p.mean_ms, 50.5);

        let one = Percentiles::of(vec![1500]);
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (1.5, 1.5, 1.5));
        assert_eq!(Percentiles::of(Vec::new()).count, 0);
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally::default();
        a.statuses.insert(202, 3);
        a.latencies = vec![1, 2, 3];
        let mut b = Tally::default();
        b.statuses.insert(202, 1);
        b.statuses.insert(401, 2);
        b.errors = 1;
        a.merge(b);
        assert_eq!(a.responses(), 6);
        assert_eq!(a.errors, 1);
        assert_eq!(a.status_map().get("401"), Some(&2));
    }

    #[test]
    fn memory_of_this_process_is_read() {
        let me = Memory::of(std::process::id()).unwrap();
        assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib);
        assert!(Memory::of(u32::MAX).is_none());
    }
}
