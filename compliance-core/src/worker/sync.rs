//! Handling one reserved job: start, fetch under a heartbeat, apply, publish.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde::Serialize;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{error, field, info, warn, Instrument};

use super::{JobReport, SkipReason, SyncWorker};
use crate::domain::{ScanSnapshot, SyncJob};
use crate::error::{RetryClass, ScanSourceError, StoreError};
use crate::events::{self, kind, SyncCompleted, SyncFailed, SyncPhase, SyncStarted};
use crate::id::ComponentId;
use crate::ingest::after;
use crate::metrics;
use crate::ports::{ApplyOutcome, FetchRequest, Reservation, SnapshotApply, StartOutcome};
use crate::retry::RetryDecision;

/// How a fetch under heartbeat ended.
enum Fetched {
    /// The source answered (or failed); the reservation is the latest extended one.
    Done(Box<Result<ScanSnapshot, ScanSourceError>>, Reservation),
    /// Another worker holds the job now.
    LeaseLost,
    /// Shutdown was requested while fetching.
    Cancelled(Reservation),
}

impl SyncWorker {
    /// Starts the reserved job and runs it, or puts it back.
    pub(super) async fn handle(
        &self,
        reservation: Reservation,
        shutdown: &CancellationToken,
    ) -> Result<JobReport, StoreError> {
        let job_id = reservation.job_id;
        let span = tracing::info_span!(
            "sync",
            sync_job_id = %job_id,
            component_id = field::Empty,
            attempt = field::Empty,
        );

        async {
            let now = self.clock.now();
            let started = match self.stores.jobs.start(job_id, now, self.config.lease).await {
                Ok(started) => started,
                Err(StoreError::NotFound { .. }) => {
                    self.settle_entry(&reservation).await;
                    return Ok(JobReport::Skipped {
                        job_id,
                        reason: SkipReason::Missing,
                    });
                }
                Err(error) => {
                    self.put_back(&reservation, self.config.busy_delay).await;
                    return Err(error);
                }
            };

            match started {
                StartOutcome::Started(job) => {
                    let span = tracing::Span::current();
                    span.record("component_id", field::display(job.component_id));
                    span.record("attempt", job.attempts);
                    self.run_job(job, reservation, shutdown).await
                }
                StartOutcome::Busy { running } => {
                    info!(%running, "another sync of this component and branch is running");
                    self.put_back(&reservation, self.config.busy_delay).await;
                    Ok(JobReport::Busy { job_id, running })
                }
                StartOutcome::Finished(job) => {
                    self.settle_entry(&reservation).await;
                    Ok(JobReport::Skipped {
                        job_id,
                        reason: SkipReason::Finished(job.status),
                    })
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn run_job(
        &self,
        job: SyncJob,
        reservation: Reservation,
        shutdown: &CancellationToken,
    ) -> Result<JobReport, StoreError> {
        let started = Instant::now();
        let component = match self.stores.components.get(job.component_id).await {
            Ok(Some(component)) => component,
            Ok(None) => {
                let message = format!("component {} no longer exists", job.component_id);
                return self
                    .give_up(&job, &reservation, message, "component_missing")
                    .await;
            }
            Err(error) => return self.store_failed(&job, &reservation, error).await,
        };
        self.announce(&job, SyncPhase::Running).await;

        let request = FetchRequest {
            component_id: component.id,
            locator: component.fossa_locator,
            revision: job.revision.clone(),
            branch: job.branch.clone(),
        };
        let (fetched, reservation) = match self
            .fetch_with_heartbeat(&job, reservation, &request, shutdown)
            .await
        {
            Fetched::Done(fetched, reservation) => (fetched, reservation),
            Fetched::LeaseLost => {
                return Ok(JobReport::Skipped {
                    job_id: job.id,
                    reason: SkipReason::LeaseLost,
                })
            }
            Fetched::Cancelled(reservation) => return self.release(&job, &reservation).await,
        };

        match *fetched {
            Ok(snapshot) => self.apply(&job, &reservation, snapshot, started).await,
            Err(error) => self.fetch_failed(&job, &reservation, &error).await,
        }
    }

    /// Fetches while renewing the queue lease and the job's heartbeat, so that a long sync
    /// is not handed to a second worker.
    async fn fetch_with_heartbeat(
        &self,
        job: &SyncJob,
        mut reservation: Reservation,
        request: &FetchRequest,
        shutdown: &CancellationToken,
    ) -> Fetched {
        // A panicking adapter must not take the worker down with it; it counts as a transient
        // failure so the retry policy bounds how often it is tried.
        let fetch = AssertUnwindSafe(self.source.fetch(request))
            .catch_unwind()
            .map(|result| {
                result.unwrap_or_else(|_| {
                    Err(ScanSourceError::Transient {
                        context: "the scan source panicked".to_owned(),
                        retry_after: None,
                        source: None,
                    })
                })
            });
        tokio::pin!(fetch);

        let every = self.config.heartbeat_every.max(Duration::from_millis(1));
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);

        loop {
            tokio::select! {
                biased;
                result = &mut fetch => return Fetched::Done(Box::new(result), reservation),
                () = shutdown.cancelled() => return Fetched::Cancelled(reservation),
                _ = beat.tick() => {
                    match self.queue.extend(&reservation, self.config.lease).await {
                        Ok(extended) => reservation = extended,
                        Err(StoreError::LeaseLost { .. }) => {
                            warn!("lease lost during fetch; abandoning the job");
                            return Fetched::LeaseLost;
                        }
                        Err(error) => warn!(%error, "could not extend the lease; will try again"),
                    }
                    match self.stores.jobs.heartbeat(job.id, self.clock.now()).await {
                        Ok(()) => {}
                        Err(StoreError::LeaseLost { .. }) => {
                            warn!("job no longer running; abandoning it");
                            return Fetched::LeaseLost;
                        }
                        Err(error) => warn!(%error, "could not record the heartbeat"),
                    }
                }
            }
        }
    }

    async fn apply(
        &self,
        job: &SyncJob,
        reservation: &Reservation,
        snapshot: ScanSnapshot,
        started: Instant,
    ) -> Result<JobReport, StoreError> {
        let revision = snapshot.revision.clone();
        let apply = SnapshotApply {
            job_id: job.id,
            attempt: job.attempts,
            component_id: job.component_id,
            branch: job.branch.clone(),
            scan_completed_at: job.scan_completed_at,
            snapshot,
            synced_at: self.clock.now(),
        };

        match self.stores.compliance.apply_snapshot(apply).await {
            Ok(ApplyOutcome::Applied(summary)) => {
                self.settle_entry(reservation).await;
                let took = started.elapsed();
                self.durations.record(took);
                ::metrics::counter!(metrics::SYNC_JOB_COMPLETED).increment(1);
                ::metrics::counter!(metrics::SYNC_ISSUES_SYNCED)
                    .increment(u64::from(summary.issues_count));
                ::metrics::histogram!(metrics::SYNC_DURATION).record(took.as_secs_f64());
                info!(
                    issues = summary.issues_count,
                    dependencies = summary.dependencies_count,
                    new_issues = summary.new_issues.len(),
                    resolved_issues = summary.resolved_issues.len(),
                    duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                    "sync completed"
                );

                let (new_issue_ids, new_cut) = events::issue_ids(&summary.new_issues);
                let (resolved_issue_ids, resolved_cut) =
                    events::issue_ids(&summary.resolved_issues);
                let data = SyncCompleted {
                    sync_job_id: job.id,
                    component_id: job.component_id,
                    revision,
                    issues_count: summary.issues_count,
                    dependencies_count: summary.dependencies_count,
                    status: summary.status,
                    new_issues: count(summary.new_issues.len()),
                    resolved_issues: count(summary.resolved_issues.len()),
                    new_issue_ids,
                    resolved_issue_ids,
                    ids_truncated: new_cut || resolved_cut,
                };
                self.publish(job.component_id, kind::SYNC_COMPLETED, &data)
                    .await;
                Ok(JobReport::Completed {
                    job_id: job.id,
                    component_id: job.component_id,
                    summary,
                })
            }
            Ok(ApplyOutcome::Stale { covered_by }) => {
                // Limitation: no event follows the `sync.started` of a stale sync; the three
                // event types of the workflow document have none for "covered by newer data",
                // so a dashboard clears its indicator on the covering sync's events instead.
                self.settle_entry(reservation).await;
                ::metrics::counter!(metrics::SYNC_JOB_SUPERSEDED).increment(1);
                info!(covered_by = ?covered_by, "scan older than stored data; not applied");
                Ok(JobReport::Stale {
                    job_id: job.id,
                    covered_by,
                })
            }
            Err(StoreError::LeaseLost { .. }) => {
                warn!("job taken over before apply; nothing applied");
                Ok(JobReport::Skipped {
                    job_id: job.id,
                    reason: SkipReason::LeaseLost,
                })
            }
            Err(error) => self.store_failed(job, reservation, error).await,
        }
    }

    async fn fetch_failed(
        &self,
        job: &SyncJob,
        reservation: &Reservation,
        failure: &ScanSourceError,
    ) -> Result<JobReport, StoreError> {
        let now = self.clock.now();
        let first = job.started_at.unwrap_or(job.queued_at);
        let waited = (now - first).to_std().unwrap_or_default();

        // Limitation: `attempts` counts every start, those spent waiting for FOSSA to finish
        // included, so a job that waited through many not-ready checks has fewer attempts
        // left for other failures; the store records no per-class count.
        match self.config.retry.decide_for(failure, job.attempts, waited) {
            RetryDecision::RetryAfter(delay) => {
                let message = failure.to_string();
                match self
                    .stores
                    .jobs
                    .retry_later(job.id, &message, after(now, delay))
                    .await
                {
                    Ok(()) => {}
                    Err(StoreError::LeaseLost { .. }) => {
                        return Ok(JobReport::Skipped {
                            job_id: job.id,
                            reason: SkipReason::LeaseLost,
                        })
                    }
                    Err(error) => return self.store_failed(job, reservation, error).await,
                }
                self.put_back(reservation, delay).await;
                ::metrics::counter!(metrics::SYNC_JOB_RETRIED, "reason" => failure.kind())
                    .increment(1);
                warn!(error = %failure, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "fetch failed; will retry");
                if matches!(failure.retry_class(), RetryClass::NotReady { .. }) {
                    self.announce(job, SyncPhase::WaitingForFossa).await;
                }
                Ok(JobReport::Retrying {
                    job_id: job.id,
                    attempt: job.attempts,
                    delay,
                    error: message,
                })
            }
            RetryDecision::GiveUp(message) => {
                self.give_up(job, reservation, message, failure.kind())
                    .await
            }
        }
    }

    /// Ends the job for good: `FAILED`, dead letter, `sync.failed`.
    async fn give_up(
        &self,
        job: &SyncJob,
        reservation: &Reservation,
        message: String,
        reason: &'static str,
    ) -> Result<JobReport, StoreError> {
        if let Err(error) = self
            .stores
            .jobs
            .fail(job.id, &message, self.clock.now())
            .await
        {
            return self.store_failed(job, reservation, error).await;
        }
        if let Err(error) = self.queue.dead_letter(reservation, &message).await {
            warn!(%error, "could not dead-letter the job; it is FAILED in the store");
        }
        ::metrics::counter!(metrics::SYNC_JOB_FAILED, "reason" => reason).increment(1);
        error!(error = %message, "sync failed");

        let data = SyncFailed {
            sync_job_id: job.id,
            component_id: job.component_id,
            error: message.clone(),
            attempts: job.attempts,
        };
        self.publish(job.component_id, kind::SYNC_FAILED, &data)
            .await;
        Ok(JobReport::Failed {
            job_id: job.id,
            attempt: job.attempts,
            error: message,
        })
    }

    /// Shutdown while fetching: the job goes back to `QUEUED`, ready at once for another
    /// worker.
    async fn release(
        &self,
        job: &SyncJob,
        reservation: &Reservation,
    ) -> Result<JobReport, StoreError> {
        let now = self.clock.now();
        info!("shutting down; putting the job back");
        self.stores
            .jobs
            .retry_later(job.id, "the worker shut down during the sync", now)
            .await?;
        self.put_back(reservation, Duration::ZERO).await;
        Ok(JobReport::Skipped {
            job_id: job.id,
            reason: SkipReason::Released,
        })
    }

    /// A store call failed mid-job: try to leave the job retryable, and report the error.
    async fn store_failed(
        &self,
        job: &SyncJob,
        reservation: &Reservation,
        failure: StoreError,
    ) -> Result<JobReport, StoreError> {
        warn!(error = %failure, "store failed during the sync; the job will run again");
        let delay = self.config.busy_delay;
        let retry_at = after(self.clock.now(), delay);
        if let Err(error) = self
            .stores
            .jobs
            .retry_later(job.id, "store unavailable during the sync", retry_at)
            .await
        {
            // The job stays RUNNING; `start` takes it over once its heartbeat is older than
            // the lease.
            warn!(%error, "could not put the job back in the store");
        }
        self.put_back(reservation, delay).await;
        Err(failure)
    }

    /// Puts the queue entry back after `delay`; a failure leaves the lease to expire.
    pub(super) async fn put_back(&self, reservation: &Reservation, delay: Duration) {
        if let Err(error) = self.queue.retry(reservation, delay).await {
            warn!(%error, "could not put the queue entry back; its lease will expire");
        }
    }

    /// Removes the queue entry of a job that needs no more work.
    async fn settle_entry(&self, reservation: &Reservation) {
        if let Err(error) = self.queue.ack(reservation).await {
            // Harmless: a redelivered entry of an ended job is acknowledged on sight.
            warn!(%error, "could not acknowledge the queue entry");
        }
    }

    async fn announce(&self, job: &SyncJob, phase: SyncPhase) {
        let data = SyncStarted {
            sync_job_id: job.id,
            component_id: job.component_id,
            trigger: events::trigger_name(job.trigger).to_owned(),
            revision: job.revision.clone(),
            attempt: job.attempts,
            phase,
        };
        self.publish(job.component_id, kind::SYNC_STARTED, &data)
            .await;
    }

    async fn publish<T: Serialize>(&self, component: ComponentId, event: &str, data: &T) {
        let now = self.clock.now();
        for channel_event in events::channel_events(component, event, data, now) {
            if let Err(error) = self.notifier.publish(channel_event).await {
                // Dashboards refetch on their next event; the stored data is what counts.
                warn!(%error, event, "could not publish");
            }
        }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
