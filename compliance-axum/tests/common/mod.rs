//! A router on core's in-memory adapters, and request helpers.
#![allow(
    dead_code,
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use compliance_axum::{ApiBuilder, AuthConfig, ComplianceApi, RateLimits, Scope, Services};
use compliance_core::domain::Component;
use compliance_core::ingest::{IngestConfig, IngestService};
use compliance_core::memory::{InMemoryNotifier, InMemoryQueue, InMemoryStore};
use compliance_core::ports::{ComponentDirectory, JobQueue, Notifier, SignatureVerifier, Stores};
use compliance_core::signature::{sign, HmacSha256Verifier, WebhookSecret};
use compliance_core::testing::fixtures;
use compliance_core::{Clock, SystemClock};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const SECRET: &str = "your-webhook-secret";
pub const READ_TOKEN: &str = "read-token-7f3a9c21d4e8b6a0";
pub const ADMIN_TOKEN: &str = "admin-token-2b8e4d1f9a6c3e70";
pub const REPO: &str = "https://github.com/acme/payment-service";

/// Everything a test needs to drive and inspect the API.
pub struct Harness {
    pub api: ComplianceApi,
    pub router: Router,
    pub store: Arc<InMemoryStore>,
    pub queue: Arc<InMemoryQueue>,
    pub notifier: Arc<InMemoryNotifier>,
    pub stores: Stores,
    pub clock: Arc<dyn Clock>,
}

/// How to build a harness.
pub struct Setup {
    pub ingest: IngestConfig,
    pub stores: Option<Stores>,
    /// The queue port, instead of `Harness::queue` (which is then not the one in use).
    pub queue: Option<Arc<dyn JobQueue>>,
    pub configure: Box<dyn FnOnce(ApiBuilder) -> ApiBuilder>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            ingest: IngestConfig::default(),
            stores: None,
            queue: None,
            configure: Box::new(|b| b),
        }
    }
}

pub fn auth() -> AuthConfig {
    AuthConfig::new()
        .token("dashboard", READ_TOKEN, Scope::Read)
        .token("ops", ADMIN_TOKEN, Scope::Admin)
}

impl Harness {
    /// Tokens configured, rate limits off.
    pub async fn new() -> Self {
        Self::with(Setup::default()).await
    }

    pub async fn configured(configure: impl FnOnce(ApiBuilder) -> ApiBuilder + 'static) -> Self {
        Self::with(Setup {
            configure: Box::new(configure),
            ..Setup::default()
        })
        .await
    }

    pub async fn with(setup: Setup) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = Arc::new(InMemoryStore::new());
        let queue = Arc::new(InMemoryQueue::new());
        let notifier = Arc::new(InMemoryNotifier::with_capacity(4096));
        let stores = setup
            .stores
            .unwrap_or_else(|| Stores::from_adapter(store.clone()));
        let verifier: Arc<dyn SignatureVerifier> =
            Arc::new(HmacSha256Verifier::new(vec![WebhookSecret::new(
                "primary", SECRET,
            )]));
        let queue_port: Arc<dyn JobQueue> = setup.queue.unwrap_or_else(|| queue.clone());
        let notifier_port: Arc<dyn Notifier> = notifier.clone();
        let ingest = IngestService::new(
            verifier.clone(),
            stores.clone(),
            queue_port.clone(),
            clock.clone(),
            setup.ingest,
        );
        let services = Services {
            ingest,
            verifier,
            stores: stores.clone(),
            queue: queue_port,
            notifier: notifier_port,
            clock: clock.clone(),
        };
        let builder = ComplianceApi::builder(services)
            .auth(auth())
            .rate_limits(RateLimits::disabled());
        let api = (setup.configure)(builder).build().await.unwrap();
        let router = api.router();
        Self {
            api,
            router,
            store,
            queue,
            notifier,
            stores,
            clock,
        }
    }

    /// Registers the payment-service component directly in the store.
    pub async fn register(&self, name: &str, url: &str) -> Component {
        self.store
            .register(fixtures::component(name, url), self.clock.now())
            .await
            .unwrap()
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        Reply::read(response).await
    }
}

/// A response, read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn read(response: axum::response::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Self {
            status,
            headers,
            text: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {}", self.status, self.text))
    }
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A webhook request signed the way the workflow document's scripts sign it.
pub fn signed_webhook(body: &str) -> Request<Body> {
    signed_webhook_at(body, now_secs())
}

pub fn signed_webhook_at(body: &str, timestamp: i64) -> Request<Body> {
    let signature = sign(SECRET.as_bytes(), timestamp, body.as_bytes());
    Request::post("/api/webhooks/fossa-scan")
        .header(header::CONTENT_TYPE, "application/json")
        .header("X-Webhook-Signature", signature)
        .header("X-Webhook-Timestamp", timestamp.to_string())
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// `label` as a plausible commit id (6 or more hex digits), unchanged when it already is one.
pub fn revision(label: &str) -> String {
    if label.len() >= 6 && label.bytes().all(|b| b.is_ascii_hexdigit()) {
        return label.to_owned();
    }
    let hex: String = label.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0>8}")
}

/// A full webhook body for `url` at the revision `label` stands for (see [`revision`]).
pub fn webhook_body(url: &str, label: &str) -> String {
    let revision = revision(label);
    serde_json::json!({
        "event": "fossa.scan.completed",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "repository": {"name": "payment-service", "url": url, "provider": "github"},
        "scan": {"revision": revision, "branch": "main", "status": "failed", "issues_found": true},
        "pipeline": {"id": "12345", "url": "https://ci.example/run/12345", "provider": "github-actions"},
        "metadata": {"triggered_by": "push", "actor": "developer@acme.com"}
    })
    .to_string()
}

pub fn with_peer(mut request: Request<Body>, peer: &str) -> Request<Body> {
    let addr: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    request
}

pub fn request(
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    match body {
        Some(json) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

pub fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    request(Method::GET, uri, token, None)
}

pub fn post(uri: &str, token: Option<&str>, body: Value) -> Request<Body> {
    request(Method::POST, uri, token, Some(body))
}
