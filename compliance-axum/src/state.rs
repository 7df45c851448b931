//! The API's shared state and its builder.

use std::sync::Arc;
use std::time::Duration;

use compliance_core::ingest::IngestService;
use compliance_core::ports::{JobQueue, Notifier, SignatureVerifier, Stores};
use compliance_core::{Clock, StoreError};
use ipnet::IpNet;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthConfig, Authenticator};
use crate::limits::{Limiters, RateLimits};
use crate::ws::{Hub, HubConfig};

/// The default webhook body limit: 256 KiB.
pub const DEFAULT_WEBHOOK_BODY_LIMIT: usize = 256 * 1024;
/// The default limit for JSON bodies of the REST API: 64 KiB.
pub const DEFAULT_JSON_BODY_LIMIT: usize = 64 * 1024;

/// Core's services and ports the API serves.
#[derive(Clone)]
pub struct Services {
    /// Receives webhooks and queues syncs.
    pub ingest: IngestService,
    /// The verifier the ingest service uses; the HTTP layer checks signatures before
    /// counting a request against its repository's rate limit, so that unsigned requests
    /// cannot exhaust a repository's budget.
    pub verifier: Arc<dyn SignatureVerifier>,
    /// The stores the REST API reads.
    pub stores: Stores,
    /// The job queue (readiness, dead letters, requeues).
    pub queue: Arc<dyn JobQueue>,
    /// The notifier the WebSocket hub follows.
    pub notifier: Arc<dyn Notifier>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("ingest", &self.ingest)
            .finish_non_exhaustive()
    }
}

/// Who may read `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone who can reach the port (for a scraper on a private network).
    Public,
    /// A token with scope `read` (the default).
    Token,
}

/// Builds a [`ComplianceApi`].
#[derive(Debug)]
pub struct ApiBuilder {
    services: Services,
    auth: AuthConfig,
    limits: RateLimits,
    hub: HubConfig,
    webhook_body_limit: usize,
    json_body_limit: usize,
    trusted_proxies: Vec<IpNet>,
    metrics: Option<PrometheusHandle>,
    metrics_access: MetricsAccess,
    readiness_timeout: Duration,
    shutdown: CancellationToken,
}

impl ApiBuilder {
    /// API tokens and sessions (default: no tokens, so every protected route answers 401).
    #[must_use]
    pub fn auth(mut self, auth: AuthConfig) -> Self {
        self.auth = auth;
        self
    }

    /// Rate limits (default [`RateLimits::default`]).
    #[must_use]
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// WebSocket hub limits and timers.
    #[must_use]
    pub fn hub(mut self, hub: HubConfig) -> Self {
        self.hub = hub;
        self
    }

    /// Largest webhook body accepted, in bytes (default 256 KiB); larger ones get 413.
    #[must_use]
    pub fn webhook_body_limit(mut self, bytes: usize) -> Self {
        self.webhook_body_limit = bytes;
        self
    }

    /// Largest JSON body of the REST API, in bytes (default 64 KiB).
    #[must_use]
    pub fn json_body_limit(mut self, bytes: usize) -> Self {
        self.json_body_limit = bytes;
        self
    }

    /// Proxies whose `X-Forwarded-For` is believed (default none: the peer address is the
    /// source).
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpNet>) -> Self {
        self.trusted_proxies = proxies.into_iter().collect();
        self
    }

    /// The Prometheus handle `/metrics` renders (see
    /// [`install_prometheus`](crate::metrics::install_prometheus)); without one, `/metrics`
    /// answers 404.
    #[must_use]
    pub fn metrics(mut self, handle: PrometheusHandle, access: MetricsAccess) -> Self {
        self.metrics = Some(handle);
        self.metrics_access = access;
        self
    }

    /// How long `/readyz` waits for each check (default 2 s).
    #[must_use]
    pub fn readiness_timeout(mut self, timeout: Duration) -> Self {
        self.readiness_timeout = timeout;
        self
    }

    /// A token whose cancellation starts the shutdown (WebSockets closed with 1001,
    /// background tasks stopped). Default: a fresh token, cancelled by
    /// [`ComplianceApi::shutdown`].
    #[must_use]
    pub fn shutdown_token(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    /// Subscribes the hub to the notifier and starts the background tasks (hub pump, rate
    /// limiter cleanup) on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// The notifier's error when the first subscription fails. Later failures are retried
    /// in the background.
    pub async fn build(self) -> Result<ComplianceApi, StoreError> {
        let first = self.services.notifier.subscribe().await?;
        let hub = Hub::new(self.hub, self.shutdown.clone());
        let limiters = Arc::new(Limiters::new(&self.limits));

        tokio::spawn(hub.clone().pump(
            Arc::clone(&self.services.notifier),
            Some(first),
            self.shutdown.clone(),
        ));
        tokio::spawn(Arc::clone(&limiters).maintain(self.shutdown.clone()));

        Ok(ComplianceApi {
            inner: Arc::new(Inner {
                services: self.services,
                authenticator: Authenticator::new(self.auth),
                limiters,
                hub,
                webhook_body_limit: self.webhook_body_limit,
                json_body_limit: self.json_body_limit,
                trusted_proxies: self.trusted_proxies,
                metrics: self.metrics,
                metrics_access: self.metrics_access,
                readiness_timeout: self.readiness_timeout,
                shutdown: self.shutdown,
            }),
        })
    }
}

/// The HTTP face of the compliance services: build it once, then mount
/// [`router`](ComplianceApi::router). Cheap to clone.
#[derive(Clone)]
pub struct ComplianceApi {
    inner: Arc<Inner>,
}

/// The state every handler receives.
pub(crate) type ApiState = ComplianceApi;

struct Inner {
    services: Services,
    authenticator: Authenticator,
    limiters: Arc<Limiters>,
    hub: Hub,
    webhook_body_limit: usize,
    json_body_limit: usize,
    trusted_proxies: Vec<IpNet>,
    metrics: Option<PrometheusHandle>,
    metrics_access: MetricsAccess,
    readiness_timeout: Duration,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for ComplianceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComplianceApi")
            .field("authenticator", &self.inner.authenticator)
            .field("hub", &self.inner.hub)
            .field("webhook_body_limit", &self.inner.webhook_body_limit)
            .field("trusted_proxies", &self.inner.trusted_proxies)
            .finish_non_exhaustive()
    }
}

impl ComplianceApi {
    /// Starts building an API over `services`.
    #[must_use]
    pub fn builder(services: Services) -> ApiBuilder {
        ApiBuilder {
            services,
            auth: AuthConfig::new(),
            limits: RateLimits::default(),
            hub: HubConfig::default(),
            webhook_body_limit: DEFAULT_WEBHOOK_BODY_LIMIT,
            json_body_limit: DEFAULT_JSON_BODY_LIMIT,
            trusted_proxies: Vec::new(),
            metrics: None,
            metrics_access: MetricsAccess::Token,
            readiness_timeout: Duration::from_secs(2),
            shutdown: CancellationToken::new(),
        }
    }

    /// The router serving every route; see the [crate docs](crate) for the list.
    pub fn router(&self) -> axum::Router {
        crate::router::router(self.clone())
    }

    /// Starts the shutdown: WebSockets close with 1001, background tasks stop.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// The shutdown token.
    #[must_use]
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The WebSocket hub.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Core's services.
    #[must_use]
    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    pub(crate) fn authenticator(&self) -> &Authenticator {
        &self.inner.authenticator
    }

    pub(crate) fn limiters(&self) -> &Limiters {
        &self.inner.limiters
    }

    pub(crate) fn webhook_body_limit(&self) -> usize {
        self.inner.webhook_body_limit
    }

    pub(crate) fn json_body_limit(&self) -> usize {
        self.inner.json_body_limit
    }

    pub(crate) fn trusted_proxies(&self) -> &[IpNet] {
        &self.inner.trusted_proxies
    }

    pub(crate) fn metrics_handle(&self) -> Option<&PrometheusHandle> {
        self.inner.metrics.as_ref()
    }

    pub(crate) fn metrics_access(&self) -> MetricsAccess {
        self.inner.metrics_access
    }

    pub(crate) fn readiness_timeout(&self) -> Duration {
        self.inner.readiness_timeout
    }
}
