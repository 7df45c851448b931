//! The webhook receive flow, without HTTP types.
//!
//! [`IngestService::receive`] runs the workflow document's steps in order and answers with an
//! [`IngestOutcome`] that the HTTP layer maps one to one to a status:
//!
//! | step | failure | answer |
//! | --- | --- | --- |
//! | verify signature and timestamp | missing, malformed, stale, future, mismatch | 401 (uniform) |
//! | parse and validate the body | every field error at once | 400 |
//! | same signed delivery inside the window? | — | 202 with the original `sync_id` |
//! | queue depth over the limit? | — | 429 with `retry_after` |
//! | find the component by repository URL | none linked | 404 |
//! | log the event and create the job (one write) | store down | 503 |
//! | enqueue (external queues only) | queue down | 202 anyway: the sweeper re-enqueues |
//!
//! Every request is written to the event log exactly once, rejected ones included (with a
//! bounded payload), so the log is a complete audit trail.
//!
//! ```
//! use std::sync::Arc;
//! use compliance_core::clock::{Clock, SystemClock};
//! use compliance_core::domain::NewComponent;
//! use compliance_core::ingest::{InboundWebhook, IngestConfig, IngestService};
//! use compliance_core::memory::{InMemoryQueue, InMemoryStore};
//! use compliance_core::ports::{RequestHeaders, Stores};
//! use compliance_core::signature::{self, HmacSha256Verifier, WebhookSecret};
//! use compliance_core::RepoUrl;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock);
//! let stores = Stores::from_adapter(Arc::new(InMemoryStore::new()));
//! stores
//!     .components
//!     .register(
//!         NewComponent {
//!             name: "payment-service".into(),
//!             repository_url: RepoUrl::parse("https://github.com/acme/payment-service")?,
//!             fossa_locator: "custom+48213/github.com/acme/payment-service".into(),
//!             default_branch: "main".into(),
//!         },
//!         clock.now(),
//!     )
//!     .await?;
//! let verifier = HmacSha256Verifier::new(vec![WebhookSecret::new("ci", "your-webhook-secret")]);
//! let ingest = IngestService::new(
//!     Arc::new(verifier),
//!     stores,
//!     Arc::new(InMemoryQueue::new()),
//!     clock.clone(),
//!     IngestConfig::default(),
//! );
//!
//! // What a CI job sends: the document's curl payload, signed.
//! let body = br#"{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/payment-service"},"scan":{"revision":"abc123","branch":"main","status":"passed"}}"#;
//! let timestamp = clock.now().timestamp();
//! let headers = RequestHeaders::new()
//!     .with(signature::SIGNATURE_HEADER, signature::sign(b"your-webhook-secret", timestamp, body))
//!     .with(signature::TIMESTAMP_HEADER, timestamp.to_string());
//! let request = InboundWebhook { body: body.as_slice().into(), headers, source_ip: None };
//!
//! let outcome = ingest.receive(request).await;
//! assert_eq!(outcome.http_status(), 202);
//! assert_eq!(outcome.accepted().map(|a| a.status), Some("queued"));
//! # Ok(())
//! # }
//! ```

mod depth;
mod estimate;
mod outcome;
mod record;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{field, info, warn, Instrument};

pub use estimate::{SyncDurationTracker, WorkerGuard};
pub use outcome::{Accepted, ComponentRef, IngestOutcome, RequestSyncError};

use crate::clock::{Clock, Timestamp};
use crate::domain::{
    Component, EventStatus, JobStatus, NewSyncJob, RejectionKind, Trigger, WebhookEvent,
};
use crate::error::StoreError;
use crate::events::trigger_name;
use crate::id::{ComponentId, SyncJobId, WebhookEventId};
use crate::metrics;
use crate::payload::{self, ValidatedWebhook};
use crate::ports::{
    AcceptRecord, AcceptedWebhook, CreatedJob, JobQueue, PriorDelivery, QueuePlacement,
    RequestHeaders, SignatureVerifier, Stores,
};

/// Settings of the ingest service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestConfig {
    /// Refuse webhooks with 429 while more jobs than this are queued, delayed or leased;
    /// `None` never refuses. Far below the limit the depth is not read for every webhook: a
    /// reading serves the next half of the free places, for 500 ms at most.
    pub max_queue_depth: Option<u64>,
    /// How far back a repeated signed delivery is answered with the original job. Keep it at
    /// least as long as the verifier's timestamp tolerance, so that any replay the verifier
    /// lets through is recognised.
    pub redelivery_window: Duration,
    /// How much of a rejected request's body the event log keeps, in bytes.
    pub rejected_payload_limit: usize,
    /// The sync duration assumed before any sync has been measured.
    pub default_sync_estimate: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_queue_depth: None,
            redelivery_window: Duration::from_secs(300),
            rejected_payload_limit: 4 * 1024,
            default_sync_estimate: Duration::from_secs(30),
        }
    }
}

/// One webhook request as the HTTP layer received it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboundWebhook {
    /// The raw body, byte for byte.
    pub body: bytes::Bytes,
    /// The request headers (at least the signature, timestamp and source headers).
    pub headers: RequestHeaders,
    /// The peer address, or the trusted proxy's forwarded address.
    pub source_ip: Option<IpAddr>,
}

/// Verifies, logs, matches and queues webhooks; also queues manual and scheduled syncs.
///
/// Cloning is cheap and shares everything.
#[derive(Clone)]
pub struct IngestService {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    verifier: Arc<dyn SignatureVerifier>,
    stores: Stores,
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
    config: IngestConfig,
    durations: SyncDurationTracker,
    /// When the queue depth must be read again (shared by clones).
    depth: Arc<depth::DepthGate>,
}

impl std::fmt::Debug for IngestService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl IngestService {
    /// A service over these ports.
    #[must_use]
    pub fn new(
        verifier: Arc<dyn SignatureVerifier>,
        stores: Stores,
        queue: Arc<dyn JobQueue>,
        clock: Arc<dyn Clock>,
        config: IngestConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                verifier,
                stores,
                queue,
                clock,
                config,
                durations: SyncDurationTracker::new(),
                depth: Arc::default(),
            }),
        }
    }

    /// Uses `tracker` for completion estimates; give the workers of this process the same
    /// tracker (see [`SyncWorker::with_durations`](crate::worker::SyncWorker::with_durations)).
    #[must_use]
    pub fn with_durations(self, tracker: SyncDurationTracker) -> Self {
        let mut inner = (*self.inner).clone();
        inner.durations = tracker;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The tracker the completion estimates read.
    #[must_use]
    pub fn durations(&self) -> &SyncDurationTracker {
        &self.inner.durations
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &IngestConfig {
        &self.inner.config
    }

    /// Runs the receive flow for one request. Never fails: every failure is an outcome.
    pub async fn receive(&self, request: InboundWebhook) -> IngestOutcome {
        let started = Instant::now();
        let event_id = WebhookEventId::new();
        let span = tracing::info_span!(
            "webhook",
            webhook_event_id = %event_id,
            component_id = field::Empty,
            sync_job_id = field::Empty,
            source_ip = field::Empty,
            outcome = field::Empty,
        );
        if let Some(ip) = request.source_ip {
            span.record("source_ip", field::display(ip));
        }

        let outcome = self
            .run_flow(event_id, &request)
            .instrument(span.clone())
            .await;

        span.record("outcome", outcome.label());
        span.in_scope(|| info!(status = outcome.http_status(), "webhook answered"));
        ::metrics::counter!(metrics::WEBHOOK_RECEIVED, "outcome" => outcome.label()).increment(1);
        ::metrics::histogram!(metrics::WEBHOOK_PROCESSING_DURATION)
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    async fn run_flow(&self, event_id: WebhookEventId, request: &InboundWebhook) -> IngestOutcome {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let flow = Flow {
            service: self,
            request,
            event_id,
            now,
        };

        let verified = match inner.verifier.verify(&request.body, &request.headers, now) {
            Ok(verified) => verified,
            Err(reason) => {
                ::metrics::counter!(metrics::WEBHOOK_SIGNATURE_INVALID, "reason" => reason.reason())
                    .increment(1);
                warn!(reason = reason.reason(), "webhook signature refused");
                let event = flow.rejected(RejectionKind::InvalidSignature, reason.to_string());
                flow.log_final(event).await;
                return IngestOutcome::Unauthorized { reason };
            }
        };
        let delivery_key = verified.delivery_key;

        let webhook = match payload::parse_webhook(&request.body, Some(verified.timestamp)) {
            Ok(webhook) => webhook,
            Err(error) => {
                let details = error.details();
                warn!(errors = details.len(), "webhook payload invalid");
                let mut event = flow.rejected(RejectionKind::InvalidPayload, error.to_string());
                event.signature_valid = true;
                event.delivery_key = Some(delivery_key);
                flow.log_final(event).await;
                return IngestOutcome::Invalid {
                    message: IngestOutcome::INVALID_MESSAGE.to_owned(),
                    details,
                };
            }
        };

        let since = before(now, inner.config.redelivery_window);
        match inner
            .stores
            .events
            .find_delivery(&delivery_key, since)
            .await
        {
            Ok(Some(prior)) => return flow.redelivery(&webhook, prior).await,
            Ok(None) => {}
            Err(error) => return flow.unavailable("the webhook event log", &error).await,
        }

        if let Some(retry_after) = self.overloaded().await {
            warn!(
                retry_after_s = retry_after.as_secs(),
                "webhook refused: queue full"
            );
            let mut event = flow.rejected(
                RejectionKind::RateLimited,
                format!("sync queue full; retry after {}s", retry_after.as_secs()),
            );
            event.signature_valid = true;
            flow.log_final(event).await;
            return IngestOutcome::Overloaded { retry_after };
        }

        let url = &webhook.repository.url;
        let component = match inner.stores.components.find_by_repository(url).await {
            Ok(Some(component)) => component,
            Ok(None) => {
                ::metrics::counter!(metrics::WEBHOOK_COMPONENT_NOT_FOUND).increment(1);
                info!(repository = url.key(), "no component for repository");
                let mut event = flow.rejected(
                    RejectionKind::ComponentNotFound,
                    format!("No component linked to {}", url.original()),
                );
                event.signature_valid = true;
                flow.log_final(event).await;
                return IngestOutcome::ComponentNotFound {
                    repository_url: url.original().to_owned(),
                };
            }
            Err(error) => return flow.unavailable("the component directory", &error).await,
        };
        tracing::Span::current().record("component_id", field::display(component.id));

        let job_id = SyncJobId::new();
        let mut event = record::validated(request, event_id, now, &webhook);
        event.component_id = Some(component.id);
        event.sync_job_id = Some(job_id);
        event.delivery_key = Some(delivery_key);
        let job = NewSyncJob {
            id: job_id,
            component_id: component.id,
            trigger: Trigger::Webhook,
            webhook_event_id: Some(event_id),
            revision: Some(webhook.scan.revision.clone()),
            branch: webhook.scan.branch.clone(),
            scan_completed_at: Some(webhook.timestamp),
            queued_at: now,
        };
        let accepted = AcceptedWebhook {
            event,
            job,
            placement: inner.queue.placement(),
        };
        let created = match inner.stores.events.record_accepted(accepted).await {
            Ok(AcceptRecord::Created(created)) => created,
            Ok(AcceptRecord::Duplicate(prior)) => return flow.redelivery(&webhook, prior).await,
            Err(error) => return flow.unavailable("the webhook event log", &error).await,
        };
        tracing::Span::current().record("sync_job_id", field::display(created.job.id));

        self.after_create(&created).await;
        IngestOutcome::Accepted(self.answer(&created, &component, Some(event_id), now))
    }

    /// The retry delay to answer with when the queue is over its limit.
    async fn overloaded(&self) -> Option<Duration> {
        let limit = self.inner.config.max_queue_depth?;
        let gate = &self.inner.depth;
        if gate.may_skip(Instant::now()) {
            return None;
        }
        let depth = match self.inner.queue.stats().await {
            Ok(stats) => {
                gate.record(Instant::now(), stats.depth(), limit);
                stats.depth()
            }
            Err(error) => {
                gate.forget();
                // Refusing work because a monitoring call failed would turn a blip into an
                // outage; the write that follows fails properly if the backend is down.
                warn!(%error, "queue stats unavailable; skipping the depth check");
                return None;
            }
        };
        if depth <= limit {
            return None;
        }
        // Long enough for the excess to drain at the recent pace, within sane bounds.
        let excess = depth - limit;
        let drain = self
            .inner
            .durations
            .estimate(excess, self.inner.config.default_sync_estimate);
        let seconds = drain.as_secs().clamp(1, 300);
        Some(Duration::from_secs(seconds))
    }

    /// Counts a newly created job and puts it on an external queue.
    async fn after_create(&self, created: &CreatedJob) {
        let inner = &*self.inner;
        let job = &created.job;
        let superseded =
            created.superseded.len() + usize::from(job.status == JobStatus::Superseded);
        if superseded > 0 {
            ::metrics::counter!(metrics::SYNC_JOB_SUPERSEDED)
                .increment(u64::try_from(superseded).unwrap_or(u64::MAX));
        }
        if job.status != JobStatus::Queued {
            info!(sync_job_id = %job.id, superseded_by = ?job.superseded_by,
                "job covered by newer data; nothing to run");
            return;
        }
        ::metrics::counter!(metrics::SYNC_JOB_QUEUED, "trigger" => trigger_name(job.trigger))
            .increment(1);

        if inner.queue.placement() == QueuePlacement::External {
            if let Err(error) = inner.queue.enqueue(job.id, Duration::ZERO).await {
                // The job is committed as QUEUED; the sweeper puts it on the queue later.
                warn!(sync_job_id = %job.id, %error, "enqueue failed; the sweeper will retry");
            }
        }
    }

    fn answer(
        &self,
        created: &CreatedJob,
        component: &Component,
        webhook_event_id: Option<WebhookEventId>,
        now: Timestamp,
    ) -> Accepted {
        let wait = self
            .inner
            .durations
            .estimate(created.jobs_ahead, self.inner.config.default_sync_estimate);
        Accepted {
            sync_id: created.job.id,
            status: status_word(created.job.status),
            component: ComponentRef {
                id: component.id,
                name: component.name.clone(),
            },
            estimated_completion: after(now, wait),
            webhook_event_id,
            duplicate: false,
        }
    }

    /// Logs a request the HTTP layer refused before ingest (413, 415); the payload is cut
    /// to the configured bound.
    ///
    /// # Errors
    ///
    /// The event log's error when the write fails.
    pub async fn record_refusal(
        &self,
        kind: RejectionKind,
        request: InboundWebhook,
    ) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let event_id = WebhookEventId::new();
        let message = match kind {
            RejectionKind::PayloadTooLarge => "request body over the size limit".to_owned(),
            RejectionKind::UnsupportedMediaType => "content type is not JSON".to_owned(),
            other => format!("refused: {}", other.as_str()),
        };
        let event = record::rejected(
            &request,
            event_id,
            now,
            inner.config.rejected_payload_limit,
            kind,
            message,
        );
        ::metrics::counter!(metrics::WEBHOOK_RECEIVED, "outcome" => kind.as_str()).increment(1);
        let span = tracing::info_span!("webhook", webhook_event_id = %event_id,
            outcome = kind.as_str());
        async {
            info!(status = kind.http_status(), "webhook refused before ingest");
            inner.stores.events.record_rejected(event).await
        }
        .instrument(span)
        .await
    }

    /// Queues a sync of `component` for its default branch at FOSSA's latest revision
    /// (manual or scheduled trigger).
    ///
    /// # Errors
    ///
    /// [`RequestSyncError::ComponentNotFound`] when no component has this id,
    /// [`RequestSyncError::Unavailable`] when a store fails.
    pub async fn request_sync(
        &self,
        component: ComponentId,
        trigger: Trigger,
    ) -> Result<Accepted, RequestSyncError> {
        let inner = &*self.inner;
        let found = inner
            .stores
            .components
            .get(component)
            .await?
            .ok_or(RequestSyncError::ComponentNotFound(component))?;
        let now = inner.clock.now();
        let job = NewSyncJob {
            id: SyncJobId::new(),
            component_id: found.id,
            trigger,
            webhook_event_id: None,
            revision: None,
            branch: found.default_branch.clone(),
            scan_completed_at: None,
            queued_at: now,
        };

        let created = inner
            .stores
            .jobs
            .create_job(job, inner.queue.placement())
            .await?;
        info!(sync_job_id = %created.job.id, component_id = %found.id,
            trigger = trigger_name(trigger), "sync requested");
        self.after_create(&created).await;
        Ok(self.answer(&created, &found, None, now))
    }
}

/// One request going through [`IngestService::receive`].
struct Flow<'a> {
    service: &'a IngestService,
    request: &'a InboundWebhook,
    event_id: WebhookEventId,
    now: Timestamp,
}

impl Flow<'_> {
    fn rejected(&self, kind: RejectionKind, error: String) -> WebhookEvent {
        record::rejected(
            self.request,
            self.event_id,
            self.now,
            self.service.inner.config.rejected_payload_limit,
            kind,
            error,
        )
    }

    /// Writes the one event-log row of a request that creates no job.
    async fn log_final(&self, event: WebhookEvent) {
        if let Err(error) = self
            .service
            .inner
            .stores
            .events
            .record_rejected(event)
            .await
        {
            // The answer to the sender does not depend on the audit row; say so loudly.
            warn!(%error, "could not log webhook request");
        }
    }

    /// Answers a repeated signed delivery with its original job, and logs the repeat.
    async fn redelivery(&self, webhook: &ValidatedWebhook, prior: PriorDelivery) -> IngestOutcome {
        let inner = &*self.service.inner;
        let span = tracing::Span::current();
        span.record("component_id", field::display(prior.component_id));
        span.record("sync_job_id", field::display(prior.sync_job_id));

        let name = match inner.stores.components.get(prior.component_id).await {
            Ok(Some(component)) => component.name,
            Ok(None) => webhook.repository.name.clone(),
            Err(error) => return self.unavailable("the component directory", &error).await,
        };
        let (status, estimated_completion) = self.prior_job_state(&prior).await;
        info!(original_event_id = %prior.event_id, "redelivery answered with the original job");

        let mut event = record::lenient(
            self.request,
            self.event_id,
            self.now,
            inner.config.rejected_payload_limit,
        );
        event.signature_valid = true;
        event.processing_status = EventStatus::Processed;
        event.http_status = 202;
        event.component_id = Some(prior.component_id);
        event.sync_job_id = Some(prior.sync_job_id);
        event.error_message = Some(format!("redelivery of event {}", prior.event_id));
        self.log_final(event).await;

        IngestOutcome::Accepted(Accepted {
            sync_id: prior.sync_job_id,
            status,
            component: ComponentRef {
                id: prior.component_id,
                name,
            },
            estimated_completion,
            webhook_event_id: Some(self.event_id),
            duplicate: true,
        })
    }

    /// Where the original job stands, for the repeated answer; an estimate on any failure,
    /// since the `sync_id` is what the sender needs.
    async fn prior_job_state(&self, prior: &PriorDelivery) -> (&'static str, Timestamp) {
        let inner = &*self.service.inner;
        let fallback = inner.config.default_sync_estimate;
        match inner.stores.jobs.get_job(prior.sync_job_id).await {
            Ok(Some(job)) if job.status.is_final() => (
                status_word(job.status),
                job.completed_at.unwrap_or(self.now),
            ),
            Ok(Some(job)) => {
                let ahead = inner.stores.jobs.active_jobs().await.unwrap_or(1);
                let wait = inner.durations.estimate(ahead, fallback);
                (status_word(job.status), after(self.now, wait))
            }
            Ok(None) | Err(_) => (
                status_word(JobStatus::Queued),
                after(self.now, inner.durations.estimate(1, fallback)),
            ),
        }
    }

    /// A store failed: answer 503 and try to leave a trace in the log.
    async fn unavailable(&self, what: &str, error: &StoreError) -> IngestOutcome {
        warn!(%error, "store unavailable; webhook not queued");
        let mut event = record::lenient(
            self.request,
            self.event_id,
            self.now,
            self.service.inner.config.rejected_payload_limit,
        );
        event.http_status = 503;
        event.error_message = Some(format!("{what} is unavailable: {error}"));
        self.log_final(event).await;
        IngestOutcome::Unavailable {
            message: format!("{what} is unavailable; retry later"),
        }
    }
}

fn status_word(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Queued => "queued",
        JobStatus::Running => "running",
        JobStatus::Completed => "completed",
        JobStatus::Failed => "failed",
        JobStatus::Superseded => "superseded",
    }
}

/// `now` plus `d`, saturating at the far future.
pub(crate) fn after(now: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// `now` minus `d`, saturating at the far past.
pub(crate) fn before(now: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}
