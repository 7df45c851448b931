//! Re-enqueues jobs the queue lost track of.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ingest::before;
use crate::ports::{JobQueue, QueuePlacement, SyncJobStore};

/// Settings of the [`Sweeper`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweeperConfig {
    /// How long a job may stay `QUEUED` (past its retry time), or `RUNNING` without a
    /// heartbeat, before it is re-enqueued. Keep it longer than the worker's lease.
    pub grace: Duration,
    /// How often to sweep.
    pub every: Duration,
    /// The most jobs one sweep re-enqueues.
    pub batch: u32,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(60),
            every: Duration::from_secs(30),
            batch: 500,
        }
    }
}

/// Puts jobs the store still holds open back on an external queue.
///
/// With a queue outside the store (Redis, memory), the ingest service enqueues after the
/// store has committed the job, so a crash or a queue outage in between leaves a job that no
/// worker will see. Likewise a job whose worker died while the queue lost its data (a Redis
/// that came back empty) stays `RUNNING` with no entry left to expire and be redelivered.
/// The sweeper re-enqueues both: jobs `QUEUED` past the grace period, and jobs `RUNNING`
/// whose last heartbeat is older than it (`start` hands those to the next worker).
/// Enqueueing is idempotent per job, so re-enqueueing a job that is in fact waiting or leased
/// changes nothing. With a queue inside the store there is nothing to do.
#[derive(Clone)]
pub struct Sweeper {
    jobs: Arc<dyn SyncJobStore>,
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
    config: SweeperConfig,
}

impl std::fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweeper")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Sweeper {
    /// A sweeper over `jobs` and `queue`.
    #[must_use]
    pub fn new(
        jobs: Arc<dyn SyncJobStore>,
        queue: Arc<dyn JobQueue>,
        clock: Arc<dyn Clock>,
        config: SweeperConfig,
    ) -> Self {
        Self {
            jobs,
            queue,
            clock,
            config,
        }
    }

    /// Re-enqueues the jobs queued (or due for retry) more than `grace` ago, and the running
    /// jobs whose last heartbeat is older than `grace`; returns how many.
    ///
    /// # Errors
    ///
    /// The store's error when the jobs cannot be listed. A failed enqueue is logged and the
    /// job is tried again on the next sweep.
    pub async fn sweep_once(&self) -> Result<u32, StoreError> {
        if self.queue.placement() == QueuePlacement::InStore {
            return Ok(0);
        }
        let now = self.clock.now();
        // Limitation: one batch per sweep, oldest first; a backlog larger than `batch` is
        // worked through as workers drain the oldest jobs.
        let cut = before(now, self.config.grace);
        let mut stuck = self.jobs.queued_before(cut, self.config.batch).await?;
        let stalled = self.jobs.stalled_before(cut, self.config.batch).await?;
        if !stalled.is_empty() {
            warn!(
                jobs = stalled.len(),
                "running jobs without a heartbeat; handing them to another worker"
            );
        }
        stuck.extend(stalled);

        let mut enqueued = 0;
        for job in stuck {
            let delay = job
                .next_attempt_at
                .and_then(|at| (at - now).to_std().ok())
                .unwrap_or(Duration::ZERO);
            match self.queue.enqueue(job.id, delay).await {
                Ok(()) => enqueued += 1,
                Err(error) => warn!(sync_job_id = %job.id, %error, "re-enqueue failed"),
            }
        }
        if enqueued > 0 {
            info!(jobs = enqueued, "sweeper re-enqueued queued jobs");
        }
        Ok(enqueued)
    }

    /// Sweeps every `every` until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        if self.queue.placement() == QueuePlacement::InStore {
            debug!("queue lives in the store; sweeper not needed");
            return;
        }
        loop {
            if let Err(error) = self.sweep_once().await {
                warn!(%error, "sweep failed; will try again");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.config.every) => {}
            }
        }
    }
}
