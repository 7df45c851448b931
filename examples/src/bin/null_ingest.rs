//! The webhook route with verification, parsing and matching but no storage: compliance-axum's
//! router over an ingest service whose store and queue answer at once. It is the ceiling that
//! durable ingest is compared with in `BENCHMARKS.md`, measured by the same load generator in
//! the same run.
//!
//! ```text
//! cargo run --release -p compliance-examples --bin null-ingest -- \
//!     --listen 127.0.0.1:3100 --webhook-secrets s3cret --admin-tokens t0ken
//! ```
//!
//! Everything per request is what the reference server does (HMAC check, payload validation,
//! redelivery lookup, queue-depth check, component lookup, the one accept write, metrics and
//! the `webhook answered` log line), except that the store keeps nothing but the registered
//! components.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use clap::Parser;
use compliance_axum::{AuthConfig, ComplianceApi, MetricsAccess, RateLimits, Scope, Services};
use compliance_core::domain::{
    ComplianceView, Component, ComponentQuery, ComponentSummary, Dependency, DependencyQuery,
    IssueCounts, IssueQuery, IssueRecord, JobQuery, NewComponent, NewSyncJob, Page, PageRequest,
    ScanResult, SyncJob, WebhookEvent, WebhookEventQuery,
};
use compliance_core::ingest::{IngestConfig, IngestService};
use compliance_core::memory::InMemoryNotifier;
use compliance_core::ports::{
    AcceptRecord, AcceptedWebhook, ApplyOutcome, ComplianceStore, ComponentDirectory, CreatedJob,
    DeadLetter, JobQueue, PriorDelivery, QueuePlacement, QueueStats, Reservation, SnapshotApply,
    StartOutcome, Stores, SyncJobStore, WebhookEventLog,
};
use compliance_core::signature::{HmacSha256Verifier, WebhookSecret};
use compliance_core::{
    Clock, ComponentId, RepoUrl, StoreError, SyncJobId, SystemClock, Timestamp, WebhookEventId,
};
use tracing_subscriber::EnvFilter;

/// The webhook route over a store that keeps nothing.
#[derive(Parser)]
#[command(name = "null-ingest", about)]
struct Args {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:3100")]
    listen: SocketAddr,
    /// Webhook secrets, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    webhook_secrets: Vec<String>,
    /// Admin tokens (to register components), comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    admin_tokens: Vec<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    if !args.listen.ip().is_loopback() {
        eprintln!("error: null-ingest is a benchmark tool and listens on loopback only");
        return std::process::ExitCode::FAILURE;
    }
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(NullStore::default());
    let stores = Stores::from_adapter(store);
    let queue: Arc<dyn JobQueue> = Arc::new(NullQueue);
    let secrets = args
        .webhook_secrets
        .iter()
        .enumerate()
        .map(|(i, s)| WebhookSecret::new(format!("s{}", i + 1), s.trim()))
        .collect();
    let verifier = Arc::new(HmacSha256Verifier::new(secrets));
    // The reference server's settings, so that the route does the same work per request.
    let ingest = IngestService::new(
        verifier.clone(),
        stores.clone(),
        queue.clone(),
        clock.clone(),
        IngestConfig {
            max_queue_depth: Some(100_000),
            ..IngestConfig::default()
        },
    );
    let mut auth = AuthConfig::new();
    for (i, token) in args.admin_tokens.iter().enumerate() {
        auth = auth.token(format!("admin-{}", i + 1), token.trim(), Scope::Admin);
    }
    let mut builder = ComplianceApi::builder(Services {
        ingest,
        verifier,
        stores,
        queue,
        notifier: Arc::new(InMemoryNotifier::new()),
        clock,
    })
    .auth(auth)
    .rate_limits(RateLimits::disabled());
    if let Ok(handle) = compliance_axum::metrics::install_prometheus() {
        builder = builder.metrics(handle, MetricsAccess::Token);
    }
    let api = builder.build().await?;

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "null-ingest listening");
    axum::serve(
        listener,
        api.router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// Keeps the registered components (so that webhooks match) and nothing else.
#[derive(Default)]
struct NullStore {
    components: RwLock<HashMap<String, Component>>,
}

fn kept_nothing(what: &str) -> StoreError {
    StoreError::not_found(format!("{what} (the null store keeps nothing)"))
}

fn empty<T>(page: PageRequest) -> Page<T> {
    Page::from_vec(Vec::new(), page)
}

fn created(job: NewSyncJob) -> CreatedJob {
    CreatedJob {
        job: job.into_job(),
        superseded: Vec::new(),
        jobs_ahead: 1,
    }
}

#[async_trait]
impl ComponentDirectory for NullStore {
    async fn register(&self, new: NewComponent, now: Timestamp) -> Result<Component, StoreError> {
        let component = new.into_component(now);
        let mut map = self
            .components
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.contains_key(&component.repository_key) {
            return Err(StoreError::conflict(format!(
                "component for {}",
                component.repository_key
            )));
        }
        map.insert(component.repository_key.clone(), component.clone());
        Ok(component)
    }

    async fn get(&self, id: ComponentId) -> Result<Option<Component>, StoreError> {
        let map = self
            .components
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(map.values().find(|c| c.id == id).cloned())
    }

    async fn find_by_repository(&self, url: &RepoUrl) -> Result<Option<Component>, StoreError> {
        let map = self
            .components
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(map.get(url.key()).cloned())
    }

    async fn list(&self, query: &ComponentQuery) -> Result<Page<ComponentSummary>, StoreError> {
        let map = self
            .components
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all: Vec<ComponentSummary> = map
            .values()
            .map(|c| ComponentSummary {
                component: c.clone(),
                issues: IssueCounts::default(),
                dependency_count: 0,
            })
            .collect();
        all.sort_by(|a, b| a.component.name.cmp(&b.component.name));
        Ok(Page::from_vec(all, query.page))
    }

    async fn stale(&self, _before: Timestamp, _limit: u32) -> Result<Vec<Component>, StoreError> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl WebhookEventLog for NullStore {
    async fn record_accepted(&self, accepted: AcceptedWebhook) -> Result<AcceptRecord, StoreError> {
        Ok(AcceptRecord::Created(created(accepted.job)))
    }

    async fn record_rejected(&self, _event: WebhookEvent) -> Result<(), StoreError> {
        Ok(())
    }

    async fn find_delivery(
        &self,
        _delivery_key: &str,
        _since: Timestamp,
    ) -> Result<Option<PriorDelivery>, StoreError> {
        Ok(None)
    }

    async fn get_event(&self, _id: WebhookEventId) -> Result<Option<WebhookEvent>, StoreError> {
        Ok(None)
    }

    async fn list_events(
        &self,
        query: &WebhookEventQuery,
    ) -> Result<Page<WebhookEvent>, StoreError> {
        Ok(empty(query.page))
    }

    async fn prune_events(&self, _before: Timestamp) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[async_trait]
impl SyncJobStore for NullStore {
    async fn create_job(
        &self,
        job: NewSyncJob,
        _placement: QueuePlacement,
    ) -> Result<CreatedJob, StoreError> {
        Ok(created(job))
    }

    async fn get_job(&self, _id: SyncJobId) -> Result<Option<SyncJob>, StoreError> {
        Ok(None)
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<SyncJob>, StoreError> {
        Ok(empty(query.page))
    }

    async fn start(
        &self,
        id: SyncJobId,
        _now: Timestamp,
        _lease: Duration,
    ) -> Result<StartOutcome, StoreError> {
        Err(kept_nothing(&format!("job {id}")))
    }

    async fn heartbeat(&self, id: SyncJobId, _now: Timestamp) -> Result<(), StoreError> {
        Err(kept_nothing(&format!("job {id}")))
    }

    async fn retry_later(
        &self,
        id: SyncJobId,
        _error: &str,
        _next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        Err(kept_nothing(&format!("job {id}")))
    }

    async fn fail(&self, id: SyncJobId, _error: &str, _now: Timestamp) -> Result<(), StoreError> {
        Err(kept_nothing(&format!("job {id}")))
    }

    async fn supersede(
        &self,
        id: SyncJobId,
        _by: Option<SyncJobId>,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        Err(kept_nothing(&format!("job {id}")))
    }

    async fn queued_before(
        &self,
        _before: Timestamp,
        _limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        Ok(Vec::new())
    }

    async fn stalled_before(
        &self,
        _before: Timestamp,
        _limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        Ok(Vec::new())
    }

    async fn active_jobs(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn prune_jobs(&self, _before: Timestamp) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[async_trait]
impl ComplianceStore for NullStore {
    async fn apply_snapshot(&self, apply: SnapshotApply) -> Result<ApplyOutcome, StoreError> {
        Err(kept_nothing(&format!("job {}", apply.job_id)))
    }

    async fn compliance_view(
        &self,
        _component: ComponentId,
    ) -> Result<Option<ComplianceView>, StoreError> {
        Ok(None)
    }

    async fn list_scans(
        &self,
        _component: ComponentId,
        page: PageRequest,
    ) -> Result<Page<ScanResult>, StoreError> {
        Ok(empty(page))
    }

    async fn list_issues(
        &self,
        _component: ComponentId,
        query: &IssueQuery,
    ) -> Result<Page<IssueRecord>, StoreError> {
        Ok(empty(query.page))
    }

    async fn list_dependencies(
        &self,
        _component: ComponentId,
        query: &DependencyQuery,
    ) -> Result<Page<Dependency>, StoreError> {
        Ok(empty(query.page))
    }
}

/// A queue that lives "in the store": nothing to enqueue, nothing ever ready.
struct NullQueue;

#[async_trait]
impl JobQueue for NullQueue {
    fn placement(&self) -> QueuePlacement {
        QueuePlacement::InStore
    }

    async fn enqueue(&self, _job: SyncJobId, _delay: Duration) -> Result<(), StoreError> {
        Ok(())
    }

    async fn reserve(
        &self,
        _worker: &str,
        _lease: Duration,
    ) -> Result<Option<Reservation>, StoreError> {
        Ok(None)
    }

    async fn extend(
        &self,
        reservation: &Reservation,
        _lease: Duration,
    ) -> Result<Reservation, StoreError> {
        Ok(reservation.clone())
    }

    async fn ack(&self, _reservation: &Reservation) -> Result<(), StoreError> {
        Ok(())
    }

    async fn retry(&self, _reservation: &Reservation, _delay: Duration) -> Result<(), StoreError> {
        Ok(())
    }

    async fn dead_letter(
        &self,
        _reservation: &Reservation,
        _reason: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, StoreError> {
        Ok(QueueStats::default())
    }

    async fn dead_letters(&self, _limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(Vec::new())
    }

    async fn redrive(&self, _job: SyncJobId) -> Result<bool, StoreError> {
        Ok(false)
    }
}
