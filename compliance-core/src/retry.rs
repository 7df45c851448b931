//! When a failed sync is tried again, and when it is given up.
//!
//! The scan source classifies each failure ([`ScanSourceError::retry_class`]); the policy turns
//! the class, the attempt number and the time since the first attempt into a decision:
//!
//! | class | retried | delay | gives up |
//! | --- | --- | --- | --- |
//! | `NotReady` | yes, on its own schedule | the source's hint, else `not_ready_delay` | once `not_ready_max_wait` has passed since the first attempt |
//! | `After(d)` | yes | exactly `d` (at most `retry_after_cap`) | after `max_attempts` |
//! | `Backoff` | yes | full jitter over `base_delay · 2^(attempt-1)`, at most `max_delay` | after `max_attempts` |
//! | `Never` | no | — | at once |
//!
//! A give-up message names the attempt count and the time spent, so the job's error and the
//! dead letter say how hard the worker tried.

use std::time::Duration;

use crate::error::{RetryClass, ScanSourceError};

/// How failed syncs are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts a job may make for failures other than "not ready" (the first one included).
    pub max_attempts: u32,
    /// First backoff delay; it doubles with each attempt.
    pub base_delay: Duration,
    /// Largest backoff delay.
    pub max_delay: Duration,
    /// Delay between checks while FOSSA is still analysing, when the source gives no hint.
    pub not_ready_delay: Duration,
    /// How long to wait for FOSSA to finish analysing, counted from the first attempt.
    pub not_ready_max_wait: Duration,
    /// Largest delay a source's `Retry-After` may impose.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(5 * 60),
            not_ready_delay: Duration::from_secs(15),
            not_ready_max_wait: Duration::from_secs(15 * 60),
            retry_after_cap: Duration::from_secs(60 * 60),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Stop; the text says why, with the attempt count and the time spent.
    GiveUp(String),
}

impl RetryPolicy {
    /// Decides what follows a failure of `class` on attempt `attempt` (1 for the first),
    /// `waited` after the first attempt started.
    #[must_use]
    pub fn decide(&self, class: RetryClass, attempt: u32, waited: Duration) -> RetryDecision {
        let attempt = attempt.max(1);
        match class {
            RetryClass::NotReady { after } => {
                if waited >= self.not_ready_max_wait {
                    return RetryDecision::GiveUp(format!(
                        "FOSSA had not finished analysing the scan after {} \
                         ({attempt} {})",
                        human_duration(waited),
                        plural(attempt, "attempt", "attempts"),
                    ));
                }
                let delay = after
                    .unwrap_or(self.not_ready_delay)
                    .min(self.retry_after_cap);
                RetryDecision::RetryAfter(delay)
            }
            RetryClass::Never => RetryDecision::GiveUp(format!(
                "not retried: the error is permanent ({attempt} {} in {})",
                plural(attempt, "attempt", "attempts"),
                human_duration(waited),
            )),
            RetryClass::After(_) | RetryClass::Backoff if attempt >= self.max_attempts => {
                RetryDecision::GiveUp(format!(
                    "gave up after {attempt} {} in {}",
                    plural(attempt, "attempt", "attempts"),
                    human_duration(waited),
                ))
            }
            RetryClass::After(delay) => RetryDecision::RetryAfter(delay.min(self.retry_after_cap)),
            RetryClass::Backoff => RetryDecision::RetryAfter(self.backoff(attempt)),
        }
    }

    /// Decides what follows `error`, and when giving up, words the final error: the source's
    /// message followed by the policy's reason.
    #[must_use]
    pub fn decide_for(
        &self,
        error: &ScanSourceError,
        attempt: u32,
        waited: Duration,
    ) -> RetryDecision {
        match self.decide(error.retry_class(), attempt, waited) {
            RetryDecision::GiveUp(reason) => RetryDecision::GiveUp(format!("{error}; {reason}")),
            retry @ RetryDecision::RetryAfter(_) => retry,
        }
    }

    /// The ceiling of the backoff delay after attempt `attempt`: `base_delay` doubled per
    /// attempt, at most `max_delay`.
    #[must_use]
    pub fn backoff_ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base_delay
            .checked_mul(1_u32 << doublings)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// A delay drawn uniformly from zero to [`backoff_ceiling`](Self::backoff_ceiling): "full
    /// jitter", so that many jobs failing together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = u64::try_from(self.backoff_ceiling(attempt).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=ceiling))
    }
}

fn plural(n: u32, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A duration for people: `45s`, `2m 03s`, `1h 05m`.
#[must_use]
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else if secs > 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn not_ready_uses_its_own_delay_and_ignores_the_attempt_limit() {
        let policy = RetryPolicy::default();
        let class = RetryClass::NotReady { after: None };

        for attempt in [1, 5, 40] {
            assert_eq!(
                policy.decide(class, attempt, secs(60)),
                RetryDecision::RetryAfter(policy.not_ready_delay)
            );
        }
    }

    #[test]
    fn not_ready_follows_the_source_hint() {
        let policy = RetryPolicy::default();
        let class = RetryClass::NotReady {
            after: Some(secs(42)),
        };

        assert_eq!(
            policy.decide(class, 1, secs(0)),
            RetryDecision::RetryAfter(secs(42))
        );
    }

    #[test]
    fn not_ready_gives_up_once_the_wait_is_over_and_says_fossa_was_still_analysing() {
        let policy = RetryPolicy::default();
        let class = RetryClass::NotReady { after: None };

        let just_before = policy.not_ready_max_wait - secs(1);
        assert!(matches!(
            policy.decide(class, 60, just_before),
            RetryDecision::RetryAfter(_)
        ));

        let RetryDecision::GiveUp(message) = policy.decide(class, 61, policy.not_ready_max_wait)
        else {
            panic!("expected give-up");
        };
        assert!(
            message.contains("FOSSA had not finished analysing"),
            "{message}"
        );
        assert!(message.contains("61 attempts"), "{message}");
        assert!(message.contains("15m 00s"), "{message}");
    }

    #[test]
    fn retry_after_is_honoured_exactly_and_capped() {
        let policy = RetryPolicy::default();

        assert_eq!(
            policy.decide(RetryClass::After(secs(37)), 1, secs(0)),
            RetryDecision::RetryAfter(secs(37))
        );
        assert_eq!(
            policy.decide(RetryClass::After(secs(10 * 3600)), 2, secs(0)),
            RetryDecision::RetryAfter(policy.retry_after_cap)
        );
    }

    #[test]
    fn retry_after_gives_up_after_the_last_attempt() {
        let policy = RetryPolicy::default();

        assert!(matches!(
            policy.decide(RetryClass::After(secs(1)), policy.max_attempts, secs(9)),
            RetryDecision::GiveUp(_)
        ));
    }

    #[test]
    fn backoff_ceiling_doubles_per_attempt_up_to_the_maximum() {
        let policy = RetryPolicy::default();

        assert_eq!(policy.backoff_ceiling(1), secs(2));
        assert_eq!(policy.backoff_ceiling(2), secs(4));
        assert_eq!(policy.backoff_ceiling(4), secs(16));
        assert_eq!(policy.backoff_ceiling(20), policy.max_delay);
        assert_eq!(policy.backoff_ceiling(u32::MAX), policy.max_delay);
    }

    #[test]
    fn backoff_delays_are_jittered_within_the_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 10,
            ..RetryPolicy::default()
        };

        let delays: Vec<Duration> = (0..300)
            .map(|_| match policy.decide(RetryClass::Backoff, 3, secs(0)) {
                RetryDecision::RetryAfter(d) => d,
                RetryDecision::GiveUp(m) => panic!("gave up: {m}"),
            })
            .collect();

        assert!(delays.iter().all(|d| *d <= secs(8)));
        // Full jitter spreads over the whole range; the chance that 300 uniform draws all
        // land in one half is 2^-299.
        assert!(delays.iter().any(|d| *d < secs(4)));
        assert!(delays.iter().any(|d| *d > secs(4)));
    }

    #[test]
    fn backoff_gives_up_after_max_attempts_with_count_and_time() {
        let policy = RetryPolicy::default();

        assert!(matches!(
            policy.decide(RetryClass::Backoff, 4, secs(30)),
            RetryDecision::RetryAfter(_)
        ));
        let RetryDecision::GiveUp(message) = policy.decide(RetryClass::Backoff, 5, secs(125))
        else {
            panic!("expected give-up");
        };
        assert_eq!(message, "gave up after 5 attempts in 2m 05s");
    }

    #[test]
    fn permanent_errors_give_up_at_once() {
        let policy = RetryPolicy::default();

        let RetryDecision::GiveUp(message) = policy.decide(RetryClass::Never, 1, secs(0)) else {
            panic!("expected give-up");
        };
        assert!(message.contains("1 attempt "), "{message}");
    }

    #[test]
    fn decide_for_puts_the_source_error_first() {
        let policy = RetryPolicy::default();
        let error = ScanSourceError::NotFound {
            context: "project custom+1/x".into(),
        };

        let RetryDecision::GiveUp(message) = policy.decide_for(&error, 1, secs(0)) else {
            panic!("expected give-up");
        };
        assert!(
            message.starts_with("not found in FOSSA: project custom+1/x; "),
            "{message}"
        );
    }

    #[test]
    fn human_durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(secs(45)), "45s");
        assert_eq!(human_duration(secs(125)), "2m 05s");
        assert_eq!(human_duration(secs(3900)), "1h 05m");
    }
}
