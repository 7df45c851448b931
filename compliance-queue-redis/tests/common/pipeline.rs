//! The service side of the pipeline tests: in-memory store, ingest, workers over a queue.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use compliance_core::domain::Component;
use compliance_core::ingest::{InboundWebhook, IngestConfig, IngestOutcome, IngestService};
use compliance_core::memory::{InMemoryNotifier, InMemoryStore};
use compliance_core::ports::{JobQueue, Notifier, Stores};
use compliance_core::retry::RetryPolicy;
use compliance_core::signature::{HmacSha256Verifier, WebhookSecret};
use compliance_core::testing::{fixtures, ScriptedScanSource};
use compliance_core::worker::{SyncWorker, WorkerConfig};
use compliance_core::{Clock, SystemClock};

pub const SECRET: &str = "pipeline-test-secret";

/// Ports wired as the reference server wires them, on the wall clock.
pub struct Pipeline {
    pub clock: Arc<dyn Clock>,
    pub stores: Stores,
    pub queue: Arc<dyn JobQueue>,
    pub source: Arc<ScriptedScanSource>,
    pub ingest: IngestService,
}

impl Pipeline {
    pub fn new(queue: Arc<dyn JobQueue>) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let stores = Stores::from_adapter(Arc::new(InMemoryStore::with_clock(clock.clone())));
        let verifier = HmacSha256Verifier::new(vec![WebhookSecret::new("ci", SECRET)]);
        let ingest = IngestService::new(
            Arc::new(verifier),
            stores.clone(),
            queue.clone(),
            clock.clone(),
            IngestConfig::default(),
        );
        let source = Arc::new(ScriptedScanSource::always(fixtures::snapshot(2, 3, 7)));
        Self {
            clock,
            stores,
            queue,
            source,
            ingest,
        }
    }

    pub fn repository(i: usize) -> String {
        format!("https://github.com/acme/service-{i}")
    }

    pub async fn register(&self, i: usize) -> Component {
        self.stores
            .components
            .register(
                fixtures::component(&format!("service-{i}"), &Self::repository(i)),
                self.clock.now(),
            )
            .await
            .expect("register")
    }

    /// A signed webhook for component `i` at `revision`.
    pub fn webhook(&self, i: usize, revision: &str) -> InboundWebhook {
        let body = fixtures::webhook_body(&Self::repository(i), revision, "main", None);
        let headers =
            fixtures::signed_headers(SECRET, self.clock.now().timestamp(), body.as_bytes());
        InboundWebhook {
            body: body.into_bytes().into(),
            headers,
            source_ip: None,
        }
    }

    pub async fn send(&self, i: usize, revision: &str) -> IngestOutcome {
        self.ingest.receive(self.webhook(i, revision)).await
    }

    pub fn worker(&self, id: &str, lease: Duration) -> SyncWorker {
        let config = WorkerConfig {
            worker_id: id.to_owned(),
            lease,
            heartbeat_every: lease / 3,
            idle_wait: Duration::from_millis(200),
            busy_delay: Duration::from_millis(200),
            retry: RetryPolicy::default(),
        };
        SyncWorker::new(
            self.stores.clone(),
            self.queue.clone(),
            self.source.clone(),
            Arc::new(InMemoryNotifier::new()) as Arc<dyn Notifier>,
            self.clock.clone(),
            config,
        )
    }
}
