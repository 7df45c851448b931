//! Shared set-up for the ingest, worker and pipeline tests: in-memory adapters on a manual
//! clock, a registered component, signed requests.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod flaky;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use compliance_core::clock::{Clock, ManualClock, SystemClock, Timestamp};
use compliance_core::domain::{
    Component, JobQuery, PageRequest, SyncJob, WebhookEvent, WebhookEventQuery,
};
use compliance_core::ingest::{InboundWebhook, IngestConfig, IngestService, SyncDurationTracker};
use compliance_core::memory::{InMemoryNotifier, InMemoryQueue, InMemoryStore};
use compliance_core::ports::{JobQueue, Notifier, RequestHeaders, SignatureVerifier, Stores};
use compliance_core::retry::RetryPolicy;
use compliance_core::signature::{
    sign, HmacSha256Verifier, WebhookSecret, SIGNATURE_HEADER, SOURCE_HEADER, TIMESTAMP_HEADER,
};
use compliance_core::testing::fixtures;
use compliance_core::testing::ScriptedScanSource;
use compliance_core::worker::{SyncWorker, WorkerConfig};

use flaky::{FlakyQueue, FlakyStore};

/// The secret of the document's curl test.
pub const SECRET: &str = "your-webhook-secret";
/// The repository of the document's examples.
pub const REPO: &str = "https://github.com/acme/payment-service";

/// Everything a test drives, over one clock (manual unless the set-up asks for real time).
pub struct Harness {
    pub clock: Arc<dyn Clock>,
    pub manual: Arc<ManualClock>,
    pub store: Arc<FlakyStore>,
    pub stores: Stores,
    pub queue: Arc<FlakyQueue>,
    pub notifier: Arc<InMemoryNotifier>,
    pub source: Arc<ScriptedScanSource>,
    pub tracker: SyncDurationTracker,
    pub ingest: IngestService,
    pub component: Component,
}

/// Settings for a [`Harness`].
pub struct Setup {
    pub verifier: Option<Arc<dyn SignatureVerifier>>,
    pub ingest: IngestConfig,
    pub start: Timestamp,
    pub real_time: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            verifier: None,
            ingest: IngestConfig::default(),
            start: fixtures::at(1_000),
            real_time: false,
        }
    }
}

impl Harness {
    pub async fn new(source: ScriptedScanSource) -> Self {
        Self::with(source, Setup::default()).await
    }

    pub async fn with(source: ScriptedScanSource, setup: Setup) -> Self {
        let manual = Arc::new(ManualClock::new(setup.start));
        let dyn_clock: Arc<dyn Clock> = if setup.real_time {
            Arc::new(SystemClock)
        } else {
            manual.clone()
        };
        let store = FlakyStore::new(Arc::new(InMemoryStore::with_clock(dyn_clock.clone())));
        let stores = store.stores();
        let queue = FlakyQueue::new(Arc::new(InMemoryQueue::with_clock(dyn_clock.clone())));
        let notifier = Arc::new(InMemoryNotifier::new());
        let verifier = setup.verifier.unwrap_or_else(|| {
            Arc::new(HmacSha256Verifier::new(vec![WebhookSecret::new(
                "primary", SECRET,
            )]))
        });
        let tracker = SyncDurationTracker::new();
        let ingest = IngestService::new(
            verifier,
            stores.clone(),
            queue.clone() as Arc<dyn JobQueue>,
            dyn_clock.clone(),
            setup.ingest,
        )
        .with_durations(tracker.clone());
        let component = stores
            .components
            .register(
                fixtures::component("payment-service", REPO),
                dyn_clock.now(),
            )
            .await
            .unwrap();
        Self {
            clock: dyn_clock,
            manual,
            store,
            stores,
            queue,
            notifier,
            source: Arc::new(source),
            tracker,
            ingest,
            component,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Moves the manual clock forward.
    pub fn advance(&self, by: Duration) {
        self.manual.advance(by);
    }

    /// Registers another component.
    pub async fn register(&self, name: &str, url: &str) -> Component {
        self.stores
            .components
            .register(fixtures::component(name, url), self.now())
            .await
            .unwrap()
    }

    /// A worker with test-friendly settings over the harness's ports.
    pub fn worker(&self) -> SyncWorker {
        self.worker_with(worker_config("w1"))
    }

    pub fn worker_with(&self, config: WorkerConfig) -> SyncWorker {
        SyncWorker::new(
            self.stores.clone(),
            self.queue.clone() as Arc<dyn JobQueue>,
            self.source.clone(),
            self.notifier.clone() as Arc<dyn Notifier>,
            self.clock.clone(),
            config,
        )
        .with_durations(self.tracker.clone())
    }

    /// `body` signed with the document's secret at the clock's current time.
    pub fn signed(&self, body: &str) -> InboundWebhook {
        signed_request(body.as_bytes(), self.now().timestamp(), SECRET)
    }

    /// A webhook body for the harness's repository.
    pub fn body(&self, revision: &str, branch: &str, timestamp: Option<Timestamp>) -> String {
        scan_body(REPO, revision, branch, timestamp)
    }

    pub async fn send(&self, body: &str) -> compliance_core::ingest::IngestOutcome {
        self.ingest.receive(self.signed(body)).await
    }

    pub async fn events(&self) -> Vec<WebhookEvent> {
        self.stores
            .events
            .list_events(&WebhookEventQuery {
                page: PageRequest::new(0, 1000),
                ..WebhookEventQuery::default()
            })
            .await
            .unwrap()
            .items
    }

    pub async fn jobs(&self) -> Vec<SyncJob> {
        self.stores
            .jobs
            .list_jobs(&JobQuery {
                page: PageRequest::new(0, 1000),
                ..JobQuery::default()
            })
            .await
            .unwrap()
            .items
    }

    pub async fn job(&self, id: compliance_core::SyncJobId) -> SyncJob {
        self.stores.jobs.get_job(id).await.unwrap().unwrap()
    }

    pub async fn component_now(&self) -> Component {
        self.stores
            .components
            .get(self.component.id)
            .await
            .unwrap()
            .unwrap()
    }
}

/// Worker settings for tests: a long lease (the manual clock decides when it passes), a fast
/// heartbeat, short idle waits.
pub fn worker_config(id: &str) -> WorkerConfig {
    WorkerConfig {
        worker_id: id.to_owned(),
        lease: Duration::from_secs(30),
        heartbeat_every: Duration::from_millis(50),
        idle_wait: Duration::from_millis(20),
        busy_delay: Duration::from_secs(1),
        retry: RetryPolicy::default(),
    }
}

/// A request carrying `body` signed with `secret` at `timestamp`, from a CI runner.
pub fn signed_request(body: &[u8], timestamp: i64, secret: &str) -> InboundWebhook {
    let headers = RequestHeaders::new()
        .with("Content-Type", "application/json")
        .with(SIGNATURE_HEADER, sign(secret.as_bytes(), timestamp, body))
        .with(TIMESTAMP_HEADER, timestamp.to_string())
        .with(SOURCE_HEADER, "github");
    InboundWebhook {
        body: bytes::Bytes::copy_from_slice(body),
        headers,
        source_ip: Some(IpAddr::from([203, 0, 113, 9])),
    }
}

/// A body in the document's full shape.
pub fn scan_body(repo: &str, revision: &str, branch: &str, timestamp: Option<Timestamp>) -> String {
    let mut body = serde_json::json!({
        "event": "fossa.scan.completed",
        "repository": {"name": "payment-service", "url": repo, "provider": "github"},
        "scan": {"revision": revision, "branch": branch, "status": "failed", "issues_found": true},
        "pipeline": {
            "id": "12345",
            "url": "https://github.com/acme/payment-service/actions/runs/12345",
            "provider": "github-actions"
        },
        "metadata": {"triggered_by": "push", "actor": "developer@acme.com"}
    });
    if let Some(at) = timestamp {
        body["timestamp"] = serde_json::Value::String(at.to_rfc3339());
    }
    body.to_string()
}

/// A commit id for the `n`-th test revision.
pub fn rev(n: u64) -> String {
    fixtures::revision(n)
}

/// Waits (at most five seconds) for the next event named `event`, skipping others; returns
/// its channel event.
pub async fn next_event(
    stream: &mut compliance_core::ports::NotificationStream,
    event: &str,
) -> compliance_core::ports::ChannelEvent {
    use futures::StreamExt;
    let wait = async {
        loop {
            match stream.next().await {
                Some(compliance_core::ports::Notification::Event(e)) if e.event == event => {
                    return e;
                }
                Some(_) => {}
                None => panic!("notification stream ended while waiting for {event}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or_else(|_| panic!("no {event} within 5s"))
}

/// Every event already delivered to `stream`, without waiting for more.
pub fn drain(
    stream: &mut compliance_core::ports::NotificationStream,
) -> Vec<compliance_core::ports::ChannelEvent> {
    use futures::FutureExt;
    use futures::StreamExt;
    let mut seen = Vec::new();
    while let Some(Some(n)) = stream.next().now_or_never() {
        if let compliance_core::ports::Notification::Event(e) = n {
            seen.push(e);
        }
    }
    seen
}

/// Polls `check` every 10 ms until it holds, failing after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
