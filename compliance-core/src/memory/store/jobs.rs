//! The webhook event log and the sync job state machine, with coalescing.

use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::domain::{
    EventStatus, JobQuery, JobStatus, NewSyncJob, Page, SyncJob, WebhookEvent, WebhookEventQuery,
};
use crate::error::StoreError;
use crate::id::{SyncJobId, WebhookEventId};
use crate::memory::{add, lock};
use crate::ports::{
    AcceptRecord, AcceptedWebhook, CreatedJob, PriorDelivery, QueuePlacement, StartOutcome,
    SyncJobStore, WebhookEventLog,
};

use super::{InMemoryStore, State};

impl State {
    /// Inserts `new` and coalesces it with the pending job of its component and branch, as
    /// the [`WebhookEventLog::record_accepted`] contract says.
    fn create_job(&mut self, new: NewSyncJob, now: Timestamp) -> Result<CreatedJob, StoreError> {
        if self.jobs.contains_key(&new.id) {
            return Err(StoreError::conflict(format!("sync job {} exists", new.id)));
        }
        let Some(component) = self.components.get(&new.component_id) else {
            return Err(StoreError::not_found(format!(
                "component {}",
                new.component_id
            )));
        };
        let last_scan_at = component.last_scan_at;
        let last_sync_job_id = component.last_sync_job_id;

        let mut job = new.into_job();
        let mut superseded = Vec::new();
        let older_than_data = matches!(
            (job.scan_completed_at, last_scan_at),
            (Some(scan), Some(last)) if scan < last
        );

        if older_than_data {
            mark_superseded(&mut job, last_sync_job_id, now);
        } else {
            let pending: Vec<SyncJobId> = self
                .jobs
                .values()
                .filter(|j| {
                    j.status == JobStatus::Queued
                        && j.component_id == job.component_id
                        && j.branch == job.branch
                })
                .map(|j| j.id)
                .collect();
            for pending_id in pending {
                let Some(pending_scan) = self.jobs.get(&pending_id).map(|j| j.scan_completed_at)
                else {
                    continue;
                };
                let newer_pending = matches!(
                    (job.scan_completed_at, pending_scan),
                    (Some(scan), Some(theirs)) if scan < theirs
                );
                if newer_pending {
                    mark_superseded(&mut job, Some(pending_id), now);
                    break;
                }
                self.supersede_job(pending_id, Some(job.id), now);
                superseded.push(pending_id);
            }
        }

        let event_id = job.webhook_event_id;
        let settled = job.status == JobStatus::Superseded;
        self.jobs.insert(job.id, job.clone());
        if settled {
            self.settle_event(event_id, EventStatus::Processed, None, now);
        }
        Ok(CreatedJob {
            job,
            superseded,
            jobs_ahead: self.active_jobs(),
        })
    }

    fn active_jobs(&self) -> u64 {
        self.jobs
            .values()
            .filter(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running))
            .count() as u64
    }

    /// Ends a job as superseded unless it has already ended; settles its event.
    pub(super) fn supersede_job(&mut self, id: SyncJobId, by: Option<SyncJobId>, now: Timestamp) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.status.is_final() {
            return;
        }
        mark_superseded(job, by, now);
        let event_id = job.webhook_event_id;
        self.settle_event(event_id, EventStatus::Processed, None, now);
    }

    /// Records the end of an accepted event's processing.
    pub(super) fn settle_event(
        &mut self,
        id: Option<WebhookEventId>,
        status: EventStatus,
        error: Option<&str>,
        now: Timestamp,
    ) {
        let Some(event) = id.and_then(|id| self.events.get_mut(&id)) else {
            return;
        };
        event.processing_status = status;
        event.processed_at = Some(now);
        if let Some(error) = error {
            event.error_message = Some(error.to_owned());
        }
    }

    fn job_mut(&mut self, id: SyncJobId) -> Result<&mut SyncJob, StoreError> {
        self.jobs
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found(format!("sync job {id}")))
    }
}

fn mark_superseded(job: &mut SyncJob, by: Option<SyncJobId>, now: Timestamp) {
    job.status = JobStatus::Superseded;
    job.superseded_by = by;
    job.completed_at = Some(now);
    job.next_attempt_at = None;
}

/// Whether a running job's worker has shown a sign of life within `lease`.
fn heartbeat_alive(job: &SyncJob, now: Timestamp, lease: Duration) -> bool {
    job.heartbeat_at.is_some_and(|at| add(at, lease) > now)
}

#[async_trait]
impl WebhookEventLog for InMemoryStore {
    async fn record_accepted(&self, accepted: AcceptedWebhook) -> Result<AcceptRecord, StoreError> {
        let now = self.now();
        let AcceptedWebhook { mut event, job, .. } = accepted;
        // The event always names the job it created, whatever the caller filled in.
        event.component_id = Some(job.component_id);
        event.sync_job_id = Some(job.id);
        check_link(&event, job.webhook_event_id)?;

        let mut state = lock(&self.state);
        if let Some(key) = event.delivery_key.as_deref() {
            if let Some(prior) = state
                .deliveries
                .get(key)
                .and_then(|id| state.events.get(id))
                .and_then(prior_delivery)
            {
                return Ok(AcceptRecord::Duplicate(prior));
            }
        }
        if state.events.contains_key(&event.id) {
            return Err(StoreError::conflict(format!(
                "webhook event {} exists",
                event.id
            )));
        }

        // The event goes in first so that coalescing can settle it if the job is born
        // superseded; on error nothing has been written yet except this event, removed below.
        let event_id = event.id;
        let delivery_key = event.delivery_key.clone();
        state.events.insert(event_id, event);
        match state.create_job(job, now) {
            Ok(created) => {
                if let Some(key) = delivery_key {
                    state.deliveries.insert(key, event_id);
                }
                Ok(AcceptRecord::Created(created))
            }
            Err(e) => {
                state.events.remove(&event_id);
                Err(e)
            }
        }
    }

    async fn record_rejected(&self, event: WebhookEvent) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if state.events.contains_key(&event.id) {
            return Err(StoreError::conflict(format!(
                "webhook event {} exists",
                event.id
            )));
        }
        state.events.insert(event.id, event);
        Ok(())
    }

    async fn find_delivery(
        &self,
        delivery_key: &str,
        since: Timestamp,
    ) -> Result<Option<PriorDelivery>, StoreError> {
        let state = lock(&self.state);
        Ok(state
            .deliveries
            .get(delivery_key)
            .and_then(|id| state.events.get(id))
            .filter(|e| e.received_at >= since)
            .and_then(prior_delivery))
    }

    async fn get_event(&self, id: WebhookEventId) -> Result<Option<WebhookEvent>, StoreError> {
        Ok(lock(&self.state).events.get(&id).cloned())
    }

    async fn list_events(
        &self,
        query: &WebhookEventQuery,
    ) -> Result<Page<WebhookEvent>, StoreError> {
        let state = lock(&self.state);
        let mut events: Vec<&WebhookEvent> = state
            .events
            .values()
            .filter(|e| query.status.is_none_or(|s| e.processing_status == s))
            .filter(|e| query.component_id.is_none_or(|c| e.component_id == Some(c)))
            .filter(|e| query.from.is_none_or(|from| e.received_at >= from))
            .filter(|e| query.to.is_none_or(|to| e.received_at < to))
            .collect();
        events.sort_by(|a, b| b.received_at.cmp(&a.received_at).then(b.id.cmp(&a.id)));
        Ok(Page::from_vec(
            events.into_iter().cloned().collect(),
            query.page,
        ))
    }

    async fn prune_events(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut state = lock(&self.state);
        let old: Vec<WebhookEventId> = state
            .events
            .values()
            .filter(|e| e.received_at < before)
            .map(|e| e.id)
            .collect();
        for id in &old {
            if let Some(key) = state.events.remove(id).and_then(|e| e.delivery_key) {
                if state.deliveries.get(&key) == Some(id) {
                    state.deliveries.remove(&key);
                }
            }
        }
        Ok(old.len() as u64)
    }
}

/// The prior delivery an accepted event stands for.
fn prior_delivery(event: &WebhookEvent) -> Option<PriorDelivery> {
    Some(PriorDelivery {
        event_id: event.id,
        sync_job_id: event.sync_job_id?,
        component_id: event.component_id?,
        received_at: event.received_at,
    })
}

/// Checks that an accepted event and its job agree on which event created the job.
fn check_link(event: &WebhookEvent, job_event: Option<WebhookEventId>) -> Result<(), StoreError> {
    match job_event {
        Some(id) if id != event.id => Err(StoreError::Invalid {
            what: format!("job names webhook event {id}, the event is {}", event.id),
        }),
        _ => Ok(()),
    }
}

#[async_trait]
impl SyncJobStore for InMemoryStore {
    async fn create_job(
        &self,
        job: NewSyncJob,
        _placement: QueuePlacement,
    ) -> Result<CreatedJob, StoreError> {
        let now = self.now();
        lock(&self.state).create_job(job, now)
    }

    async fn get_job(&self, id: SyncJobId) -> Result<Option<SyncJob>, StoreError> {
        Ok(lock(&self.state).jobs.get(&id).cloned())
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<SyncJob>, StoreError> {
        let state = lock(&self.state);
        let mut jobs: Vec<&SyncJob> = state
            .jobs
            .values()
            .filter(|j| query.component_id.is_none_or(|c| j.component_id == c))
            .filter(|j| query.status.is_none_or(|s| j.status == s))
            .collect();
        jobs.sort_by(|a, b| b.queued_at.cmp(&a.queued_at).then(b.id.cmp(&a.id)));
        Ok(Page::from_vec(
            jobs.into_iter().cloned().collect(),
            query.page,
        ))
    }

    async fn start(
        &self,
        id: SyncJobId,
        now: Timestamp,
        lease: Duration,
    ) -> Result<StartOutcome, StoreError> {
        let mut state = lock(&self.state);
        let job = state
            .jobs
            .get(&id)
            .ok_or_else(|| StoreError::not_found(format!("sync job {id}")))?;
        if job.status.is_final() {
            return Ok(StartOutcome::Finished(job.clone()));
        }
        if job.status == JobStatus::Running && heartbeat_alive(job, now, lease) {
            return Ok(StartOutcome::Busy { running: id });
        }
        let running_sibling = state.jobs.values().find(|other| {
            other.id != id
                && other.status == JobStatus::Running
                && other.component_id == job.component_id
                && other.branch == job.branch
                && heartbeat_alive(other, now, lease)
        });
        if let Some(other) = running_sibling {
            return Ok(StartOutcome::Busy { running: other.id });
        }

        let job = state.job_mut(id)?;
        job.status = JobStatus::Running;
        job.attempts = job.attempts.saturating_add(1);
        job.started_at = job.started_at.or(Some(now));
        job.heartbeat_at = Some(now);
        job.next_attempt_at = None;
        Ok(StartOutcome::Started(job.clone()))
    }

    async fn heartbeat(&self, id: SyncJobId, now: Timestamp) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let job = state.job_mut(id)?;
        if job.status != JobStatus::Running {
            return Err(StoreError::LeaseLost { job_id: id });
        }
        job.heartbeat_at = Some(now);
        Ok(())
    }

    async fn retry_later(
        &self,
        id: SyncJobId,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let job = state.job_mut(id)?;
        if job.status.is_final() {
            return Ok(());
        }
        job.status = JobStatus::Queued;
        job.error_message = Some(error.to_owned());
        job.next_attempt_at = Some(next_attempt_at);
        job.heartbeat_at = None;
        Ok(())
    }

    async fn fail(&self, id: SyncJobId, error: &str, now: Timestamp) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let job = state.job_mut(id)?;
        if job.status.is_final() {
            return Ok(());
        }
        job.status = JobStatus::Failed;
        job.error_message = Some(error.to_owned());
        job.completed_at = Some(now);
        job.next_attempt_at = None;
        let event_id = job.webhook_event_id;
        state.settle_event(event_id, EventStatus::Failed, Some(error), now);
        Ok(())
    }

    async fn supersede(
        &self,
        id: SyncJobId,
        by: Option<SyncJobId>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.job_mut(id)?;
        state.supersede_job(id, by, now);
        Ok(())
    }

    async fn queued_before(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        let state = lock(&self.state);
        let due = |j: &SyncJob| j.next_attempt_at.unwrap_or(j.queued_at);
        let mut jobs: Vec<&SyncJob> = state
            .jobs
            .values()
            .filter(|j| j.status == JobStatus::Queued && due(j) < before)
            .collect();
        jobs.sort_by(|a, b| due(a).cmp(&due(b)).then(a.id.cmp(&b.id)));
        Ok(jobs.into_iter().take(limit as usize).cloned().collect())
    }

    async fn stalled_before(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        let state = lock(&self.state);
        let beat = |j: &SyncJob| j.heartbeat_at.or(j.started_at).unwrap_or(j.queued_at);
        let mut jobs: Vec<&SyncJob> = state
            .jobs
            .values()
            .filter(|j| j.status == JobStatus::Running && beat(j) < before)
            .collect();
        jobs.sort_by(|a, b| beat(a).cmp(&beat(b)).then(a.id.cmp(&b.id)));
        Ok(jobs.into_iter().take(limit as usize).cloned().collect())
    }

    async fn active_jobs(&self) -> Result<u64, StoreError> {
        Ok(lock(&self.state).active_jobs())
    }

    async fn prune_jobs(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut state = lock(&self.state);
        let before_len = state.jobs.len();
        state
            .jobs
            .retain(|_, j| !(j.status.is_final() && j.completed_at.is_some_and(|at| at < before)));
        Ok((before_len - state.jobs.len()) as u64)
    }
}
