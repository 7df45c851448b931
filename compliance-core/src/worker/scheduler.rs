//! The safety net: a sync for every component that has not been synced for a while.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::domain::{JobQuery, PageRequest, Trigger};
use crate::error::StoreError;
use crate::ingest::{before, IngestService, RequestSyncError};
use crate::ports::Stores;

/// Settings of the [`Scheduler`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// A component whose last sync is older than this gets a scheduled sync.
    pub max_age: Duration,
    /// How often to look.
    pub every: Duration,
    /// The most components one pass queues.
    pub batch: u32,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 60 * 60),
            every: Duration::from_secs(5 * 60),
            batch: 100,
        }
    }
}

/// Queues `SCHEDULED` syncs for components whose data is older than `max_age`, so that a
/// lost webhook never leaves a component stale for good.
#[derive(Clone)]
pub struct Scheduler {
    ingest: IngestService,
    stores: Stores,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler that queues through `ingest`.
    #[must_use]
    pub fn new(
        ingest: IngestService,
        stores: Stores,
        clock: Arc<dyn Clock>,
        config: SchedulerConfig,
    ) -> Self {
        Self {
            ingest,
            stores,
            clock,
            config,
        }
    }

    /// Queues a sync for each stale component that has had no job since it became stale;
    /// returns how many were queued.
    ///
    /// A component whose latest job is younger than `max_age` is left alone whatever that
    /// job's outcome, so a component that keeps failing is retried once per `max_age`, not
    /// once per pass.
    ///
    /// # Errors
    ///
    /// The store's error when components or jobs cannot be read or a job cannot be created.
    pub async fn schedule_once(&self) -> Result<u32, StoreError> {
        let cutoff = before(self.clock.now(), self.config.max_age);
        let stale = self
            .stores
            .components
            .stale(cutoff, self.config.batch)
            .await?;

        let mut queued = 0;
        for component in stale {
            let latest = self
                .stores
                .jobs
                .list_jobs(&JobQuery {
                    component_id: Some(component.id),
                    status: None,
                    page: PageRequest::new(0, 1),
                })
                .await?;
            if latest.items.iter().any(|job| job.queued_at >= cutoff) {
                continue;
            }
            match self
                .ingest
                .request_sync(component.id, Trigger::Scheduled)
                .await
            {
                Ok(accepted) => {
                    queued += 1;
                    info!(component_id = %component.id, sync_job_id = %accepted.sync_id,
                        "scheduled sync queued");
                }
                // Removed since it was listed: nothing to sync.
                Err(RequestSyncError::ComponentNotFound(_)) => {}
                Err(RequestSyncError::Unavailable(error)) => return Err(error),
            }
        }
        Ok(queued)
    }

    /// Looks every `every` until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.schedule_once().await {
                warn!(%error, "scheduling pass failed; will try again");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.config.every) => {}
            }
        }
    }
}
