//! The HTTP and WebSocket face of `compliance-core`: an axum [`Router`](axum::Router) with
//! the webhook route, live channels, the REST API, auth, rate limits, health and metrics.
//!
//! The crate holds no business rules: it maps HTTP to core's services and ports, and core's
//! outcomes back to HTTP statuses and JSON. Mount [`ComplianceApi::router`] in your own app,
//! or serve it as is with [`serve`].
//!
//! | piece | module | notes |
//! | --- | --- | --- |
//! | `POST /api/webhooks/fossa-scan` | [`webhook`] | raw body to core byte for byte; 202/400/401/404/413/415/429/503 |
//! | REST under `/api` | [`rest`] | components, compliance, issues, dependencies, scans, sync jobs, webhook events, replay, dead letters |
//! | `GET /ws` | [`ws`] | subscribe with `last_seq`, bounded replay, `gap` when the history cannot cover it |
//! | API tokens and sessions | [`auth`] | bearer or session cookie; scopes `read` ⊂ `admin`; constant-time comparison |
//! | rate limits | [`limits`] | per source IP, per repository, queue backpressure from core |
//! | errors | [`error`] | `{"error", "details"?, "retry_after"?}` everywhere |
//! | OpenAPI 3 | [`openapi`] | `GET /api/openapi.json`, generated with utoipa |
//! | health and metrics | `/healthz`, `/readyz`, `/metrics` | Prometheus handle passed in by the app ([`metrics::install_prometheus`]) |
//! | graceful shutdown | [`shutdown`] | stop accepting, finish requests, close WebSockets with 1001 |
//!
//! # Example
//!
//! A router on core's in-memory adapters (swap in the SQLite, PostgreSQL or Redis adapters
//! for a real deployment):
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use compliance_axum::{serve, AuthConfig, ComplianceApi, Scope, Services};
//! use compliance_core::ingest::{IngestConfig, IngestService};
//! use compliance_core::memory::{InMemoryNotifier, InMemoryQueue, InMemoryStore};
//! use compliance_core::ports::{JobQueue, Notifier, SignatureVerifier, Stores};
//! use compliance_core::signature::{HmacSha256Verifier, WebhookSecret};
//! use compliance_core::{Clock, SystemClock};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock);
//! let stores = Stores::from_adapter(Arc::new(InMemoryStore::new()));
//! let queue: Arc<dyn JobQueue> = Arc::new(InMemoryQueue::new());
//! let notifier: Arc<dyn Notifier> = Arc::new(InMemoryNotifier::new());
//! let verifier: Arc<dyn SignatureVerifier> = Arc::new(HmacSha256Verifier::new(vec![
//!     WebhookSecret::new("primary", "your-webhook-secret"),
//! ]));
//! let ingest = IngestService::new(
//!     verifier.clone(),
//!     stores.clone(),
//!     queue.clone(),
//!     clock.clone(),
//!     IngestConfig::default(),
//! );
//!
//! let api = ComplianceApi::builder(Services { ingest, verifier, stores, queue, notifier, clock })
//!     .auth(AuthConfig::new().token("dashboard", "a-long-random-token", Scope::Admin))
//!     .build()
//!     .await?;
//! let router = api.router();
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! serve(listener, &api, router, compliance_axum::shutdown::termination_signal()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The WebSocket protocol
//!
//! See [`ws::protocol`]: `subscribe` / `unsubscribe` / `ping` from the client; `subscribed`,
//! `event`, `gap`, `unsubscribed`, `error`, `pong` from the server. Every event carries a
//! per-channel `seq`; a client that reconnects sends its last `seq` and gets exactly what it
//! missed, or a `gap` telling it to refetch when the bounded history cannot cover it.

pub mod auth;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod rest;
pub mod shutdown;
pub mod webhook;
pub mod ws;

mod router;
mod state;

pub use auth::{AuthConfig, CookieSecurity, Scope};
pub use error::{ApiError, ErrorBody, FieldDetail};
pub use limits::RateLimits;
pub use router::router;
pub use shutdown::serve;
pub use state::{
    ApiBuilder, ComplianceApi, MetricsAccess, Services, DEFAULT_JSON_BODY_LIMIT,
    DEFAULT_WEBHOOK_BODY_LIMIT,
};
pub use ws::{Hub, HubConfig};
