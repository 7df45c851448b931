//! Store and queue wrappers that fail on demand, for the "store down" branches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use compliance_core::clock::Timestamp;
use compliance_core::domain::{
    ComplianceView, Component, ComponentQuery, ComponentSummary, Dependency, DependencyQuery,
    IssueQuery, IssueRecord, JobQuery, NewComponent, NewSyncJob, Page, PageRequest, ScanResult,
    SyncJob, WebhookEvent, WebhookEventQuery,
};
use compliance_core::memory::{InMemoryQueue, InMemoryStore};
use compliance_core::ports::{
    AcceptRecord, AcceptedWebhook, ApplyOutcome, ComplianceStore, ComponentDirectory, CreatedJob,
    DeadLetter, JobQueue, PriorDelivery, QueuePlacement, QueueStats, Reservation, SnapshotApply,
    StartOutcome, Stores, SyncJobStore, WebhookEventLog,
};
use compliance_core::repo_url::RepoUrl;
use compliance_core::{ComponentId, StoreError, SyncJobId, WebhookEventId};

fn down(what: &str) -> StoreError {
    StoreError::Unavailable {
        context: format!("{what} (test outage)"),
        source: None,
    }
}

/// Switches for [`FlakyStore`]: each makes one port fail with `Unavailable`.
#[derive(Debug, Default)]
pub struct Outages {
    pub events: AtomicBool,
    pub components: AtomicBool,
    pub jobs: AtomicBool,
    pub apply: AtomicBool,
}

fn check(flag: &AtomicBool, what: &str) -> Result<(), StoreError> {
    if flag.load(Ordering::SeqCst) {
        Err(down(what))
    } else {
        Ok(())
    }
}

/// An [`InMemoryStore`] whose ports fail while their switch is on.
pub struct FlakyStore {
    pub inner: Arc<InMemoryStore>,
    pub outages: Outages,
}

impl FlakyStore {
    pub fn new(inner: Arc<InMemoryStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            outages: Outages::default(),
        })
    }

    pub fn stores(self: &Arc<Self>) -> Stores {
        Stores::from_adapter(self.clone())
    }
}

#[async_trait]
impl ComponentDirectory for FlakyStore {
    async fn register(&self, new: NewComponent, now: Timestamp) -> Result<Component, StoreError> {
        check(&self.outages.components, "components")?;
        self.inner.register(new, now).await
    }
    async fn get(&self, id: ComponentId) -> Result<Option<Component>, StoreError> {
        check(&self.outages.components, "components")?;
        ComponentDirectory::get(&*self.inner, id).await
    }
    async fn find_by_repository(&self, url: &RepoUrl) -> Result<Option<Component>, StoreError> {
        check(&self.outages.components, "components")?;
        self.inner.find_by_repository(url).await
    }
    async fn list(&self, query: &ComponentQuery) -> Result<Page<ComponentSummary>, StoreError> {
        check(&self.outages.components, "components")?;
        self.inner.list(query).await
    }
    async fn stale(&self, before: Timestamp, limit: u32) -> Result<Vec<Component>, StoreError> {
        check(&self.outages.components, "components")?;
        self.inner.stale(before, limit).await
    }
}

#[async_trait]
impl WebhookEventLog for FlakyStore {
    async fn record_accepted(&self, accepted: AcceptedWebhook) -> Result<AcceptRecord, StoreError> {
        check(&self.outages.events, "events")?;
        self.inner.record_accepted(accepted).await
    }
    async fn record_rejected(&self, event: WebhookEvent) -> Result<(), StoreError> {
        check(&self.outages.events, "events")?;
        self.inner.record_rejected(event).await
    }
    async fn find_delivery(
        &self,
        delivery_key: &str,
        since: Timestamp,
    ) -> Result<Option<PriorDelivery>, StoreError> {
        check(&self.outages.events, "events")?;
        self.inner.find_delivery(delivery_key, since).await
    }
    async fn get_event(&self, id: WebhookEventId) -> Result<Option<WebhookEvent>, StoreError> {
        self.inner.get_event(id).await
    }
    async fn list_events(
        &self,
        query: &WebhookEventQuery,
    ) -> Result<Page<WebhookEvent>, StoreError> {
        self.inner.list_events(query).await
    }
    async fn prune_events(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.prune_events(before).await
    }
}

#[async_trait]
impl SyncJobStore for FlakyStore {
    async fn create_job(
        &self,
        job: NewSyncJob,
        placement: QueuePlacement,
    ) -> Result<CreatedJob, StoreError> {
        check(&self.outages.jobs, "jobs")?;
        self.inner.create_job(job, placement).await
    }
    async fn get_job(&self, id: SyncJobId) -> Result<Option<SyncJob>, StoreError> {
        self.inner.get_job(id).await
    }
    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<SyncJob>, StoreError> {
        self.inner.list_jobs(query).await
    }
    async fn start(
        &self,
        id: SyncJobId,
        now: Timestamp,
        lease: Duration,
    ) -> Result<StartOutcome, StoreError> {
        check(&self.outages.jobs, "jobs")?;
        self.inner.start(id, now, lease).await
    }
    async fn heartbeat(&self, id: SyncJobId, now: Timestamp) -> Result<(), StoreError> {
        check(&self.outages.jobs, "jobs")?;
        self.inner.heartbeat(id, now).await
    }
    async fn retry_later(
        &self,
        id: SyncJobId,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        check(&self.outages.jobs, "jobs")?;
        self.inner.retry_later(id, error, next_attempt_at).await
    }
    async fn fail(&self, id: SyncJobId, error: &str, now: Timestamp) -> Result<(), StoreError> {
        check(&self.outages.jobs, "jobs")?;
        self.inner.fail(id, error, now).await
    }
    async fn supersede(
        &self,
        id: SyncJobId,
        by: Option<SyncJobId>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        check(&self.outages.jobs, "jobs")?;
        self.inner.supersede(id, by, now).await
    }
    async fn queued_before(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        check(&self.outages.jobs, "jobs")?;
        self.inner.queued_before(before, limit).await
    }
    async fn stalled_before(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        check(&self.outages.jobs, "jobs")?;
        self.inner.stalled_before(before, limit).await
    }
    async fn active_jobs(&self) -> Result<u64, StoreError> {
        check(&self.outages.jobs, "jobs")?;
        self.inner.active_jobs().await
    }
    async fn prune_jobs(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.prune_jobs(before).await
    }
}

#[async_trait]
impl ComplianceStore for FlakyStore {
    async fn apply_snapshot(&self, apply: SnapshotApply) -> Result<ApplyOutcome, StoreError> {
        check(&self.outages.apply, "apply")?;
        self.inner.apply_snapshot(apply).await
    }
    async fn compliance_view(
        &self,
        component: ComponentId,
    ) -> Result<Option<ComplianceView>, StoreError> {
        self.inner.compliance_view(component).await
    }
    async fn list_scans(
        &self,
        component: ComponentId,
        page: PageRequest,
    ) -> Result<Page<ScanResult>, StoreError> {
        self.inner.list_scans(component, page).await
    }
    async fn list_issues(
        &self,
        component: ComponentId,
        query: &IssueQuery,
    ) -> Result<Page<IssueRecord>, StoreError> {
        self.inner.list_issues(component, query).await
    }
    async fn list_dependencies(
        &self,
        component: ComponentId,
        query: &DependencyQuery,
    ) -> Result<Page<Dependency>, StoreError> {
        self.inner.list_dependencies(component, query).await
    }
}

/// An [`InMemoryQueue`] whose `enqueue` fails while `enqueue_down` is on, and that can claim
/// to live in the store.
pub struct FlakyQueue {
    pub inner: Arc<InMemoryQueue>,
    pub enqueue_down: AtomicBool,
    pub in_store: AtomicBool,
}

impl FlakyQueue {
    pub fn new(inner: Arc<InMemoryQueue>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            enqueue_down: AtomicBool::new(false),
            in_store: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl JobQueue for FlakyQueue {
    fn placement(&self) -> QueuePlacement {
        if self.in_store.load(Ordering::SeqCst) {
            QueuePlacement::InStore
        } else {
            QueuePlacement::External
        }
    }
    async fn enqueue(&self, job: SyncJobId, delay: Duration) -> Result<(), StoreError> {
        check(&self.enqueue_down, "queue")?;
        self.inner.enqueue(job, delay).await
    }
    async fn reserve(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Reservation>, StoreError> {
        self.inner.reserve(worker, lease).await
    }
    async fn extend(
        &self,
        reservation: &Reservation,
        lease: Duration,
    ) -> Result<Reservation, StoreError> {
        self.inner.extend(reservation, lease).await
    }
    async fn ack(&self, reservation: &Reservation) -> Result<(), StoreError> {
        self.inner.ack(reservation).await
    }
    async fn retry(&self, reservation: &Reservation, delay: Duration) -> Result<(), StoreError> {
        self.inner.retry(reservation, delay).await
    }
    async fn dead_letter(&self, reservation: &Reservation, reason: &str) -> Result<(), StoreError> {
        self.inner.dead_letter(reservation, reason).await
    }
    async fn stats(&self) -> Result<QueueStats, StoreError> {
        self.inner.stats().await
    }
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters(limit).await
    }
    async fn redrive(&self, job: SyncJobId) -> Result<bool, StoreError> {
        self.inner.redrive(job).await
    }
    async fn wait_for_work(&self, timeout: Duration) {
        self.inner.wait_for_work(timeout).await;
    }
}
