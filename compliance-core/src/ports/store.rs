use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::domain::{
    ComplianceStatus, ComplianceView, Component, ComponentQuery, ComponentSummary, Dependency,
    DependencyQuery, IssueKey, IssueQuery, IssueRecord, JobQuery, NewComponent, NewSyncJob, Page,
    ScanResult, ScanSnapshot, SyncJob, WebhookEvent, WebhookEventQuery,
};
use crate::error::StoreError;
use crate::id::{ComponentId, ScanResultId, SyncJobId, WebhookEventId};
use crate::repo_url::RepoUrl;

/// Registered components, found by normalized repository URL.
///
/// # Contract
///
/// - `register` fails with [`StoreError::Conflict`] when a component with the same
///   repository key exists.
/// - `find_by_repository` matches on [`RepoUrl::key`] exactly.
#[async_trait]
pub trait ComponentDirectory: Send + Sync + 'static {
    /// Registers a component.
    async fn register(&self, new: NewComponent, now: Timestamp) -> Result<Component, StoreError>;

    /// The component with `id`.
    async fn get(&self, id: ComponentId) -> Result<Option<Component>, StoreError>;

    /// The component whose repository matches `url`.
    async fn find_by_repository(&self, url: &RepoUrl) -> Result<Option<Component>, StoreError>;

    /// Components with their current counts, filtered and paged.
    async fn list(&self, query: &ComponentQuery) -> Result<Page<ComponentSummary>, StoreError>;

    /// Components whose last sync is older than `before` (or that never synced), oldest first,
    /// at most `limit`; for the scheduled safety net.
    async fn stale(&self, before: Timestamp, limit: u32) -> Result<Vec<Component>, StoreError>;
}

/// An accepted webhook, written in one transaction: the event, its job, and (for a queue that
/// lives in the store) the queue entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AcceptedWebhook {
    /// The event, with status `QUEUED`, `component_id` and `sync_job_id` filled in and a
    /// `delivery_key`.
    pub event: WebhookEvent,
    /// The job to create.
    pub job: NewSyncJob,
    /// Whether the store must also write the queue entry.
    pub placement: crate::ports::QueuePlacement,
}

/// What the store did with a new job.
#[derive(Clone, Debug, PartialEq)]
pub struct CreatedJob {
    /// The job as stored. Its status is `QUEUED`, or `SUPERSEDED` when a pending job for a
    /// newer scan, or data from a newer scan, already covers it.
    pub job: SyncJob,
    /// Pending jobs this one replaced (now `SUPERSEDED`, pointing at it).
    pub superseded: Vec<SyncJobId>,
    /// How many jobs are queued or running in the whole store after this write (for the
    /// completion estimate).
    pub jobs_ahead: u64,
}

/// An earlier accepted delivery of the same signed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorDelivery {
    /// The event logged for it.
    pub event_id: WebhookEventId,
    /// The job it created (the original `sync_id`).
    pub sync_job_id: SyncJobId,
    /// The component it matched.
    pub component_id: ComponentId,
    /// When it was received.
    pub received_at: Timestamp,
}

/// The result of [`WebhookEventLog::record_accepted`].
// One value per accepted webhook, moved once: boxing would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum AcceptRecord {
    /// Written.
    Created(CreatedJob),
    /// Another event with the same delivery key was accepted before: nothing was written.
    Duplicate(PriorDelivery),
}

/// The audit trail of webhook requests.
///
/// # Contract
///
/// - `record_accepted` is atomic: event, job and (with [`QueuePlacement::InStore`]) queue
///   entry are all committed, or none is. Coalescing happens in the same transaction: a
///   `QUEUED` job for the same component and branch is superseded by the new one, unless the
///   new one's scan is older, in which case the new one is stored `SUPERSEDED` by it; a job
///   whose scan is older than the component's `last_scan_at` is stored `SUPERSEDED` by
///   `last_sync_job_id`. A superseded job's event is marked `PROCESSED`.
/// - At most one accepted event exists per `delivery_key`; a second one returns
///   [`AcceptRecord::Duplicate`] (also under concurrent calls).
/// - When it returns, the write is durable to the adapter's documented level.
///
/// [`QueuePlacement::InStore`]: crate::ports::QueuePlacement::InStore
#[async_trait]
pub trait WebhookEventLog: Send + Sync + 'static {
    /// Records an accepted webhook with its job.
    async fn record_accepted(&self, accepted: AcceptedWebhook) -> Result<AcceptRecord, StoreError>;

    /// Records a rejected (or otherwise final) request.
    async fn record_rejected(&self, event: WebhookEvent) -> Result<(), StoreError>;

    /// The accepted delivery with `delivery_key` received at or after `since`, if any.
    async fn find_delivery(
        &self,
        delivery_key: &str,
        since: Timestamp,
    ) -> Result<Option<PriorDelivery>, StoreError>;

    /// One event.
    async fn get_event(&self, id: WebhookEventId) -> Result<Option<WebhookEvent>, StoreError>;

    /// Events, newest first, filtered and paged.
    async fn list_events(
        &self,
        query: &WebhookEventQuery,
    ) -> Result<Page<WebhookEvent>, StoreError>;

    /// Deletes events received before `before`; returns how many.
    async fn prune_events(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// What [`SyncJobStore::start`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum StartOutcome {
    /// The job is now `RUNNING` for the caller, `attempts` increased.
    Started(SyncJob),
    /// Another job for the same component and branch is running with a live heartbeat; try
    /// again later.
    Busy {
        /// The running job.
        running: SyncJobId,
    },
    /// The job has already ended (completed, failed or superseded): acknowledge and move on.
    Finished(SyncJob),
}

/// Sync jobs and their state machine.
///
/// # Contract
///
/// - `create` coalesces exactly as [`WebhookEventLog::record_accepted`] does.
/// - `start` moves `QUEUED` to `RUNNING`; it also takes over a `RUNNING` job whose heartbeat
///   is older than `lease` (its worker died). It answers `Busy` while another job of the same
///   component and branch is `RUNNING` with a heartbeat newer than `lease`.
/// - Final states (`COMPLETED`, `FAILED`, `SUPERSEDED`) never change again.
/// - `fail` and `supersede` also settle the job's webhook event (`FAILED`, `PROCESSED`).
#[async_trait]
pub trait SyncJobStore: Send + Sync + 'static {
    /// Creates a job (manual or scheduled trigger, or a test).
    async fn create_job(
        &self,
        job: NewSyncJob,
        placement: crate::ports::QueuePlacement,
    ) -> Result<CreatedJob, StoreError>;

    /// One job.
    async fn get_job(&self, id: SyncJobId) -> Result<Option<SyncJob>, StoreError>;

    /// Jobs, newest first, filtered and paged.
    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<SyncJob>, StoreError>;

    /// Marks the job `RUNNING` for a worker.
    async fn start(
        &self,
        id: SyncJobId,
        now: Timestamp,
        lease: Duration,
    ) -> Result<StartOutcome, StoreError>;

    /// Records that the running job is alive.
    async fn heartbeat(&self, id: SyncJobId, now: Timestamp) -> Result<(), StoreError>;

    /// Puts a running job back to `QUEUED` to be retried at `next_attempt_at`.
    async fn retry_later(
        &self,
        id: SyncJobId,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Ends the job as `FAILED` with `error`.
    async fn fail(&self, id: SyncJobId, error: &str, now: Timestamp) -> Result<(), StoreError>;

    /// Ends the job as `SUPERSEDED` by `by`.
    async fn supersede(
        &self,
        id: SyncJobId,
        by: Option<SyncJobId>,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Jobs still `QUEUED` that were queued (or due for retry) before `before`, oldest first,
    /// at most `limit`; the sweeper re-enqueues them when the queue is external.
    async fn queued_before(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError>;

    /// Jobs still `RUNNING` whose last heartbeat was before `before`, oldest heartbeat first,
    /// at most `limit`: their worker died or froze. The sweeper re-enqueues them when the
    /// queue is external, because that queue may have lost their entry too (a Redis that came
    /// back empty); `start` then lets another worker take them over.
    async fn stalled_before(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError>;

    /// How many jobs are `QUEUED` or `RUNNING`.
    async fn active_jobs(&self) -> Result<u64, StoreError>;

    /// Deletes final jobs that ended before `before`; returns how many.
    async fn prune_jobs(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// One snapshot to apply, with the job that fetched it.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotApply {
    /// The job; it must be `RUNNING` with `attempts == attempt`.
    pub job_id: SyncJobId,
    /// The attempt that fetched the snapshot (the job's `attempts` when it started).
    pub attempt: u32,
    /// The component.
    pub component_id: ComponentId,
    /// The branch the scan ran on.
    pub branch: String,
    /// When the scan completed (orders out-of-order deliveries).
    pub scan_completed_at: Option<Timestamp>,
    /// The data.
    pub snapshot: ScanSnapshot,
    /// Now.
    pub synced_at: Timestamp,
}

/// What an applied snapshot changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplySummary {
    /// The new scan result.
    pub scan_result_id: ScanResultId,
    /// Active issues after the apply.
    pub issues_count: u32,
    /// Dependencies stored.
    pub dependencies_count: u32,
    /// The component's new status.
    pub status: ComplianceStatus,
    /// Issues active now that were not active before, sorted.
    pub new_issues: Vec<IssueKey>,
    /// Issues active before that are resolved now, sorted.
    pub resolved_issues: Vec<IssueKey>,
}

/// The result of [`ComplianceStore::apply_snapshot`].
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyOutcome {
    /// Applied; the job is `COMPLETED` with the counts.
    Applied(ApplySummary),
    /// The component already holds data from a newer scan; nothing was changed except that
    /// the job is now `SUPERSEDED` by the job that applied that data.
    Stale {
        /// The job whose data is newer.
        covered_by: Option<SyncJobId>,
    },
}

/// The synced compliance data and the dashboard's read queries.
///
/// # Contract
///
/// - `apply_snapshot` is one transaction: the scan result is inserted; every issue of the
///   snapshot is upserted by (component, category, FOSSA id) as `ACTIVE`; every other `ACTIVE`
///   issue of the component becomes `RESOLVED`; the component's dependencies are replaced by
///   the snapshot's; the component's status, `last_synced_at`, `last_scan_at`,
///   `last_revision` and `last_sync_job_id` are updated; the job becomes `COMPLETED` with its
///   counts; its webhook event becomes `PROCESSED`.
/// - It fails with [`StoreError::LeaseLost`] when the job is not `RUNNING` at `attempt`, and
///   changes nothing.
/// - Applying the same snapshot twice leaves the same data (idempotent upserts).
#[async_trait]
pub trait ComplianceStore: Send + Sync + 'static {
    /// Applies a fetched snapshot atomically.
    async fn apply_snapshot(&self, apply: SnapshotApply) -> Result<ApplyOutcome, StoreError>;

    /// The component page's summary.
    async fn compliance_view(
        &self,
        component: ComponentId,
    ) -> Result<Option<ComplianceView>, StoreError>;

    /// Applied scans of a component, newest first.
    async fn list_scans(
        &self,
        component: ComponentId,
        page: crate::domain::PageRequest,
    ) -> Result<Page<ScanResult>, StoreError>;

    /// A component's issues, filtered and paged.
    async fn list_issues(
        &self,
        component: ComponentId,
        query: &IssueQuery,
    ) -> Result<Page<IssueRecord>, StoreError>;

    /// A component's current dependencies, filtered and paged.
    async fn list_dependencies(
        &self,
        component: ComponentId,
        query: &DependencyQuery,
    ) -> Result<Page<Dependency>, StoreError>;
}

/// The four store ports, usually served by one adapter value.
#[derive(Clone)]
pub struct Stores {
    /// Components.
    pub components: Arc<dyn ComponentDirectory>,
    /// Webhook event log.
    pub events: Arc<dyn WebhookEventLog>,
    /// Sync jobs.
    pub jobs: Arc<dyn SyncJobStore>,
    /// Compliance data.
    pub compliance: Arc<dyn ComplianceStore>,
}

impl Stores {
    /// All four ports from one adapter.
    pub fn from_adapter<S>(store: Arc<S>) -> Self
    where
        S: ComponentDirectory + WebhookEventLog + SyncJobStore + ComplianceStore,
    {
        Self {
            components: store.clone(),
            events: store.clone(),
            jobs: store.clone(),
            compliance: store,
        }
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
