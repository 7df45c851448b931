//! The sync worker, and the two background loops that keep the queue honest.
//!
//! | loop | what it does | when it matters |
//! | --- | --- | --- |
//! | [`SyncWorker`] | reserves a job, fetches the scan, applies it, publishes events | always |
//! | [`Sweeper`] | re-enqueues jobs still `QUEUED` after a grace period | queues outside the store (Redis, memory), where an enqueue can fail after the job was committed |
//! | [`Scheduler`] | queues a `SCHEDULED` sync for components not synced for a while | a missed webhook must not leave a component stale forever |
//!
//! Each loop has a `run(shutdown)` that stops promptly when the token is cancelled and
//! survives the failure of any single job or store call.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use compliance_core::clock::SystemClock;
//! use compliance_core::domain::ScanSnapshot;
//! use compliance_core::memory::{InMemoryNotifier, InMemoryQueue, InMemoryStore};
//! use compliance_core::ports::{FetchRequest, ScanSource, Stores};
//! use compliance_core::worker::{SyncWorker, WorkerConfig};
//! use compliance_core::ScanSourceError;
//! use tokio_util::sync::CancellationToken;
//!
//! /// Stands in for the FOSSA client.
//! struct NoIssues;
//!
//! #[async_trait]
//! impl ScanSource for NoIssues {
//!     async fn fetch(&self, request: &FetchRequest) -> Result<ScanSnapshot, ScanSourceError> {
//!         Ok(ScanSnapshot { revision: request.revision.clone().unwrap_or_default(), ..Default::default() })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let worker = SyncWorker::new(
//!     Stores::from_adapter(Arc::new(InMemoryStore::new())),
//!     Arc::new(InMemoryQueue::new()),
//!     Arc::new(NoIssues),
//!     Arc::new(InMemoryNotifier::new()),
//!     Arc::new(SystemClock),
//!     WorkerConfig::default(),
//! );
//!
//! let shutdown = CancellationToken::new();
//! let running = tokio::spawn(worker.run(shutdown.clone()));
//! // … the application runs; on SIGTERM:
//! shutdown.cancel();
//! running.await.ok();
//! # }
//! ```

mod scheduler;
mod sweeper;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use scheduler::{Scheduler, SchedulerConfig};
pub use sweeper::{Sweeper, SweeperConfig};

use crate::clock::Clock;
use crate::domain::JobStatus;
use crate::error::StoreError;
use crate::id::{ComponentId, SyncJobId};
use crate::ingest::SyncDurationTracker;
use crate::ports::{ApplySummary, JobQueue, Notifier, ScanSource, Stores};
use crate::retry::RetryPolicy;

/// Settings of a sync worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Names this worker in queue reservations and logs.
    pub worker_id: String,
    /// How long a reservation (and a running job's heartbeat) stays valid without renewal.
    pub lease: Duration,
    /// How often a running sync renews its lease; well under `lease`.
    pub heartbeat_every: Duration,
    /// How long to wait for work when the queue is empty.
    pub idle_wait: Duration,
    /// How long to put a job back when another sync of its component and branch is running.
    pub busy_delay: Duration,
    /// When to retry failed fetches.
    pub retry: RetryPolicy,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            lease: Duration::from_secs(30),
            heartbeat_every: Duration::from_secs(10),
            idle_wait: Duration::from_secs(1),
            busy_delay: Duration::from_secs(1),
            retry: RetryPolicy::default(),
        }
    }
}

/// What happened to one reserved job.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum JobReport {
    /// The snapshot was applied and `sync.completed` published.
    Completed {
        /// The job.
        job_id: SyncJobId,
        /// The component.
        component_id: ComponentId,
        /// What the apply changed.
        summary: ApplySummary,
    },
    /// The component already held data from a newer scan; the job is now `SUPERSEDED`.
    Stale {
        /// The job.
        job_id: SyncJobId,
        /// The job whose data is newer.
        covered_by: Option<SyncJobId>,
    },
    /// The fetch failed and will be tried again.
    Retrying {
        /// The job.
        job_id: SyncJobId,
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// When the next attempt is due.
        delay: Duration,
        /// The failure.
        error: String,
    },
    /// The job gave up: `FAILED`, dead-lettered, `sync.failed` published.
    Failed {
        /// The job.
        job_id: SyncJobId,
        /// The attempt that failed.
        attempt: u32,
        /// The final error.
        error: String,
    },
    /// Nothing was run.
    Skipped {
        /// The job.
        job_id: SyncJobId,
        /// Why.
        reason: SkipReason,
    },
    /// Another sync of the same component and branch is running; the job was put back.
    Busy {
        /// The job.
        job_id: SyncJobId,
        /// The sync that is running.
        running: SyncJobId,
    },
}

impl JobReport {
    /// The job this report is about.
    #[must_use]
    pub fn job_id(&self) -> SyncJobId {
        match self {
            Self::Completed { job_id, .. }
            | Self::Stale { job_id, .. }
            | Self::Retrying { job_id, .. }
            | Self::Failed { job_id, .. }
            | Self::Skipped { job_id, .. }
            | Self::Busy { job_id, .. } => *job_id,
        }
    }
}

/// Why a reserved job was not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The job had already ended (completed, failed, or superseded while it waited).
    Finished(JobStatus),
    /// The job no longer exists (pruned).
    Missing,
    /// Another worker took the job over; this one stopped without applying anything.
    LeaseLost,
    /// The worker was shutting down; the job was put back on the queue.
    Released,
}

/// Takes sync jobs from the queue and runs them.
///
/// Cloning is cheap; clones share the ports, so several clones may [`run`](Self::run) at once
/// as separate workers only if each gets its own `worker_id` (use
/// [`with_worker_id`](Self::with_worker_id)).
#[derive(Clone)]
pub struct SyncWorker {
    stores: Stores,
    queue: Arc<dyn JobQueue>,
    source: Arc<dyn ScanSource>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    config: Arc<WorkerConfig>,
    durations: SyncDurationTracker,
}

impl std::fmt::Debug for SyncWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncWorker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SyncWorker {
    /// A worker over these ports.
    #[must_use]
    pub fn new(
        stores: Stores,
        queue: Arc<dyn JobQueue>,
        source: Arc<dyn ScanSource>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
    ) -> Self {
        if config.heartbeat_every >= config.lease {
            warn!(
                heartbeat_ms =
                    u64::try_from(config.heartbeat_every.as_millis()).unwrap_or(u64::MAX),
                lease_ms = u64::try_from(config.lease.as_millis()).unwrap_or(u64::MAX),
                "heartbeat not shorter than the lease: long syncs may be handed to a second worker"
            );
        }
        Self {
            stores,
            queue,
            source,
            notifier,
            clock,
            config: Arc::new(config),
            durations: SyncDurationTracker::new(),
        }
    }

    /// Reports sync durations (and counts this worker while it runs) in `tracker`; give the
    /// ingest service of this process the same tracker.
    #[must_use]
    pub fn with_durations(mut self, tracker: SyncDurationTracker) -> Self {
        self.durations = tracker;
        self
    }

    /// The same worker under another id, for running several in one process.
    #[must_use]
    pub fn with_worker_id(mut self, id: impl Into<String>) -> Self {
        let mut config = (*self.config).clone();
        config.worker_id = id.into();
        self.config = Arc::new(config);
        self
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Reserves one job and handles it; `None` when no job was ready.
    ///
    /// # Errors
    ///
    /// A store or queue error that stopped the job from being handled; the job is put back
    /// (or its lease left to expire) so that it runs later.
    pub async fn run_once(&self) -> Result<Option<JobReport>, StoreError> {
        self.run_once_until(&CancellationToken::new()).await
    }

    async fn run_once_until(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<Option<JobReport>, StoreError> {
        let reservation = self
            .queue
            .reserve(&self.config.worker_id, self.config.lease)
            .await?;
        let Some(reservation) = reservation else {
            return Ok(None);
        };
        self.handle(reservation, shutdown).await.map(Some)
    }

    /// Runs jobs until `shutdown` is cancelled. A job in flight when it is cancelled is put
    /// back on the queue (or finished, if its data is already fetched).
    pub async fn run(self, shutdown: CancellationToken) {
        let _counted = self.durations.worker_running();
        info!(worker_id = %self.config.worker_id, "sync worker started");

        while !shutdown.is_cancelled() {
            let pause = match self.run_once_until(&shutdown).await {
                Ok(Some(report)) => {
                    debug!(job_id = %report.job_id(), "job handled");
                    continue;
                }
                Ok(None) => None,
                Err(error) => {
                    warn!(%error, "sync worker could not handle a job; will retry");
                    Some(self.config.idle_wait)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wait(pause) => {}
            }
        }

        info!(worker_id = %self.config.worker_id, "sync worker stopped");
    }

    async fn wait(&self, pause: Option<Duration>) {
        match pause {
            Some(pause) => tokio::time::sleep(pause).await,
            None => self.queue.wait_for_work(self.config.idle_wait).await,
        }
    }
}
