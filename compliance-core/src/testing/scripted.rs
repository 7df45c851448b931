//! [`ScriptedScanSource`]: a scan source that plays back a script, for worker tests.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::ScanSnapshot;
use crate::error::ScanSourceError;
use crate::ports::{FetchRequest, ScanSource};

/// Makes a fresh error for each call ([`ScanSourceError`] is not `Clone`).
pub type ErrorFactory = Arc<dyn Fn() -> ScanSourceError + Send + Sync>;

/// What one call answers.
#[derive(Clone)]
enum Outcome {
    Snapshot(Box<ScanSnapshot>),
    Error(ErrorFactory),
}

/// One step of the script: an outcome and how long the call takes.
#[derive(Clone)]
pub struct Step {
    outcome: Outcome,
    delay: Option<Duration>,
}

impl Step {
    /// A call answering `snapshot`.
    #[must_use]
    pub fn ok(snapshot: ScanSnapshot) -> Self {
        Self {
            outcome: Outcome::Snapshot(Box::new(snapshot)),
            delay: None,
        }
    }

    /// A call failing with the error `make` builds.
    pub fn err(make: impl Fn() -> ScanSourceError + Send + Sync + 'static) -> Self {
        Self {
            outcome: Outcome::Error(Arc::new(make)),
            delay: None,
        }
    }

    /// The same step, taking `delay` before it answers.
    #[must_use]
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcome = match &self.outcome {
            Outcome::Snapshot(s) => format!("snapshot of {} issues", s.issues.len()),
            Outcome::Error(make) => format!("error {}", make().kind()),
        };
        f.debug_struct("Step")
            .field("outcome", &outcome)
            .field("delay", &self.delay)
            .finish()
    }
}

/// A [`ScanSource`] that answers from a script: the scripted steps in order, then the default
/// step for every further call.
///
/// It counts calls, remembers every [`FetchRequest`] and the highest number of calls in flight
/// at once (to check that two workers never fetch for one job at the same time).
///
/// ```
/// use std::time::Duration;
/// use compliance_core::ScanSourceError;
/// use compliance_core::testing::fixtures;
/// use compliance_core::testing::scripted::{ScriptedScanSource, Step};
///
/// let source = ScriptedScanSource::new(Step::ok(fixtures::snapshot(3, 5, 1)))
///     .then(Step::err(|| ScanSourceError::RateLimited { retry_after: Some(Duration::from_secs(2)) }))
///     .then(Step::err(|| ScanSourceError::Transient {
///         context: "GET /api/v2/issues: 503".into(),
///         retry_after: None,
///         source: None,
///     }));
/// assert_eq!(source.calls(), 0);
/// ```
#[derive(Debug)]
pub struct ScriptedScanSource {
    script: Mutex<VecDeque<Step>>,
    default: Step,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: Mutex<Vec<FetchRequest>>,
}

impl ScriptedScanSource {
    /// A source answering `default` to every call not covered by the script.
    #[must_use]
    pub fn new(default: Step) -> Self {
        Self {
            script: Mutex::new(VecDeque::new()),
            default,
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// A source that always answers `snapshot`.
    #[must_use]
    pub fn always(snapshot: ScanSnapshot) -> Self {
        Self::new(Step::ok(snapshot))
    }

    /// Appends `step` to the script.
    #[must_use]
    pub fn then(self, step: Step) -> Self {
        self.push(step);
        self
    }

    /// Appends `step` to the script of a source already in use.
    pub fn push(&self, step: Step) {
        self.script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(step);
    }

    /// How many times `fetch` was called.
    #[must_use]
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The most calls that were running at the same time.
    #[must_use]
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every request seen, in call order.
    #[must_use]
    pub fn requests(&self) -> Vec<FetchRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many scripted steps are still unplayed.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Decrements the in-flight count when a call ends, even if it is cancelled.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl ScanSource for ScriptedScanSource {
    async fn fetch(&self, request: &FetchRequest) -> Result<ScanSnapshot, ScanSourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.clone());
        let step = self
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
            .unwrap_or_else(|| self.default.clone());

        let now_in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = InFlight(&self.in_flight);
        self.max_in_flight
            .fetch_max(now_in_flight, Ordering::SeqCst);
        if let Some(delay) = step.delay {
            tokio::time::sleep(delay).await;
        }
        match step.outcome {
            Outcome::Snapshot(snapshot) => Ok(*snapshot),
            Outcome::Error(make) => Err(make()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::id::ComponentId;
    use crate::testing::fixtures;

    fn request(revision: &str) -> FetchRequest {
        FetchRequest {
            component_id: ComponentId::new(),
            locator: "custom+1/github.com/acme/app".to_owned(),
            revision: Some(revision.to_owned()),
            branch: "main".to_owned(),
        }
    }

    #[tokio::test]
    async fn plays_the_script_then_the_default() {
        let first = fixtures::snapshot(1, 1, 1);
        let default = fixtures::snapshot(2, 2, 2);
        let source = ScriptedScanSource::new(Step::ok(default.clone()))
            .then(Step::err(|| ScanSourceError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            }))
            .then(Step::ok(first.clone()));

        let err = source.fetch(&request("a")).await.unwrap_err();
        assert_eq!(err.kind(), "rate_limited");
        assert_eq!(source.fetch(&request("b")).await.unwrap(), first);
        assert_eq!(source.fetch(&request("c")).await.unwrap(), default);
        assert_eq!(source.fetch(&request("d")).await.unwrap(), default);

        assert_eq!(source.calls(), 4);
        assert_eq!(source.remaining(), 0);
        let revisions: Vec<_> = source
            .requests()
            .into_iter()
            .map(|r| r.revision.unwrap_or_default())
            .collect();
        assert_eq!(revisions, ["a", "b", "c", "d"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delayed_steps_overlap_and_are_counted_in_flight() {
        let slow = Step::ok(fixtures::snapshot(0, 0, 1)).delayed(Duration::from_millis(100));
        let source = std::sync::Arc::new(ScriptedScanSource::new(slow));
        let a = tokio::spawn({
            let source = source.clone();
            async move { source.fetch(&request("a")).await.is_ok() }
        });
        let b = tokio::spawn({
            let source = source.clone();
            async move { source.fetch(&request("b")).await.is_ok() }
        });
        assert!(a.await.unwrap() && b.await.unwrap());
        assert_eq!(source.max_in_flight(), 2);
        assert_eq!(source.calls(), 2);
    }
}
