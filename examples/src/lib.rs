//! The reference deployment of the compliance crates: one binary that serves the webhook
//! route, the REST API, the WebSocket hub and the live dashboard, and runs the sync workers.
//!
//! Run the demo (FOSSA simulator, sample components, a login link and a curl command):
//!
//! ```text
//! cargo run -p compliance-examples -- --demo
//! ```
//!
//! [`App::build`] composes everything from a [`Config`]; tests drive it through
//! [`App::router`] or a bound listener. It is also the model for embedding the crates in an
//! application of your own: pick a store, a queue and a notifier, build the core services
//! over them, and mount [`compliance_axum`]'s router.

pub mod config;
pub mod dashboard;
pub mod demo;

use std::sync::Arc;
use std::time::Duration;

use compliance_axum::{
    AuthConfig, ComplianceApi, CookieSecurity, MetricsAccess, RateLimits, Scope, Services,
};
use compliance_core::ingest::{IngestConfig, IngestService, SyncDurationTracker};
use compliance_core::memory::InMemoryNotifier;
use compliance_core::ports::{JobQueue, Notifier, QueuePlacement, ScanSource, Stores};
use compliance_core::signature::{HmacSha256Verifier, WebhookSecret};
use compliance_core::worker::{
    Scheduler, SchedulerConfig, Sweeper, SweeperConfig, SyncWorker, WorkerConfig,
};
use compliance_core::{Clock, StoreError, SystemClock};
use governor::Quota;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{Config, LogFormat, Role};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is unusable; the message says what to change.
    #[error("configuration: {0}")]
    Config(String),
    /// A store, queue or notifier could not be opened.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The FOSSA client or simulator could not start.
    #[error("fossa: {0}")]
    Fossa(String),
    /// Binding or serving failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// A composed server: the HTTP router plus the background tasks it needs.
pub struct App {
    api: Option<ComplianceApi>,
    router: axum::Router,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    demo: Option<demo::Demo>,
    stores: Stores,
    ingest: IngestService,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// What tests and tools keep of an [`App`] once it serves.
#[derive(Clone)]
pub struct AppHandle {
    /// The store ports.
    pub stores: Stores,
    /// The ingest service.
    pub ingest: IngestService,
    /// The FOSSA simulator's data, in demo mode.
    pub sim: Option<compliance_fossa::sim::SimState>,
    /// Cancelling it stops the server.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for AppHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppHandle").finish_non_exhaustive()
    }
}

/// The storage a configuration selects.
struct Storage {
    stores: Stores,
    queue: Arc<dyn JobQueue>,
    notifier: Arc<dyn Notifier>,
}

impl App {
    /// Builds the server described by `config`: storage, FOSSA client (or, in demo mode, the
    /// simulator), core services, workers and the HTTP router. Background tasks start on the
    /// current runtime.
    ///
    /// # Errors
    ///
    /// [`AppError`] saying what could not be set up.
    pub async fn build(config: &Config) -> Result<Self, AppError> {
        config.check_exposure().map_err(AppError::Config)?;
        let shutdown = CancellationToken::new();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut tasks = JoinSet::new();

        let mut config = config.clone();
        let demo_setup = if config.demo {
            Some(demo::prepare(&mut config))
        } else {
            None
        };

        let storage = open_storage(&config).await?;
        let secrets = parse_secrets(&config.webhook_secrets);
        let verifier =
            Arc::new(HmacSha256Verifier::new(secrets).with_tolerance(config.tolerance()));
        let durations = SyncDurationTracker::new();
        let ingest = IngestService::new(
            verifier.clone(),
            storage.stores.clone(),
            storage.queue.clone(),
            clock.clone(),
            IngestConfig {
                max_queue_depth: Some(config.max_queue_depth),
                redelivery_window: config.tolerance(),
                ..IngestConfig::default()
            },
        )
        .with_durations(durations.clone());

        let (source, demo) = match demo_setup {
            Some(setup) => {
                let demo = demo::Demo::start(setup, &storage.stores, &ingest).await?;
                (demo.scan_source()?, Some(demo))
            }
            None => (fossa_source(&config)?, None),
        };

        if config.role != Role::Api {
            spawn_workers(
                &config, &storage, &source, &clock, &durations, &shutdown, &mut tasks,
            );
            spawn_maintenance(&config, &storage, &ingest, &clock, &shutdown, &mut tasks);
        }

        let (api, router) = if config.role == Role::Worker {
            (None, health_only())
        } else {
            let api = build_api(&config, &storage, &ingest, verifier, &clock, &shutdown).await?;
            let router = api.router().merge(dashboard::routes());
            (Some(api), router)
        };

        Ok(Self {
            api,
            router,
            shutdown,
            tasks,
            demo,
            stores: storage.stores,
            ingest,
        })
    }

    /// The HTTP router (API, WebSocket hub and dashboard; only health checks for a worker).
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// The stores, for tests and tools.
    #[must_use]
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The ingest service, for tests and tools.
    #[must_use]
    pub fn ingest(&self) -> &IngestService {
        &self.ingest
    }

    /// The demo's state, when running in demo mode.
    #[must_use]
    pub fn demo(&self) -> Option<&demo::Demo> {
        self.demo.as_ref()
    }

    /// A cheap handle on the running app's stores, services and simulator, which stays usable
    /// after [`serve`](Self::serve) takes the app.
    #[must_use]
    pub fn handle(&self) -> AppHandle {
        AppHandle {
            stores: self.stores.clone(),
            ingest: self.ingest.clone(),
            sim: self.demo.as_ref().map(|d| d.sim_state().clone()),
            shutdown: self.shutdown.clone(),
        }
    }

    /// A token whose cancellation stops the server.
    #[must_use]
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves on `listener` until the shutdown token is cancelled, then stops accepting,
    /// finishes in-flight requests, closes WebSockets and stops the background tasks.
    ///
    /// # Errors
    ///
    /// When serving fails.
    pub async fn serve(mut self, listener: tokio::net::TcpListener) -> Result<(), AppError> {
        if let Some(demo) = &self.demo {
            let addr = listener.local_addr()?;
            demo.announce(addr);
            if demo.traffic() {
                let token = self.shutdown.clone();
                let traffic = demo.traffic_driver(addr);
                self.tasks.spawn(async move { traffic.run(token).await });
            }
        }
        let shutdown = self.shutdown.clone();
        let api = self.api.clone();
        // compliance-axum's server closes connections whose request head is slower than
        // its limit (slow loris), which `axum::serve` would keep open indefinitely.
        let result =
            compliance_axum::shutdown::serve_router(listener, self.router.clone(), async move {
                shutdown.cancelled().await;
                if let Some(api) = api {
                    api.shutdown();
                }
            })
            .await;

        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Some(demo) = self.demo.take() {
            demo.stop().await;
        }
        result.map_err(AppError::Io)
    }
}

async fn open_storage(config: &Config) -> Result<Storage, AppError> {
    let url = config.database_url.as_str();
    let (stores, queue, store_notifier): Opened = if let Some(path) = url.strip_prefix("sqlite://")
    {
        open_sqlite(config, path).await?
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        open_postgres(url).await?
    } else {
        return Err(AppError::Config(format!(
            "unsupported database URL scheme in {} (use sqlite:// or postgres://)",
            config::redact_url(url)
        )));
    };

    let queue = match config.queue.as_str() {
        "store" => queue,
        other if other.starts_with("redis://") || other.starts_with("rediss://") => {
            redis_queue(other, &config.redis_key_prefix)?
        }
        other => {
            return Err(AppError::Config(format!(
                "unsupported queue {} (use store or redis://…)",
                config::redact_url(other)
            )))
        }
    };

    let notifier: Arc<dyn Notifier> = match config.notifier.as_str() {
        "local" => Arc::new(InMemoryNotifier::new()),
        "postgres" => store_notifier.ok_or_else(|| {
            AppError::Config("--notifier postgres needs a postgres:// database".into())
        })?,
        other if other.starts_with("redis://") || other.starts_with("rediss://") => {
            redis_notifier(other, &config.redis_key_prefix)?
        }
        other => {
            return Err(AppError::Config(format!(
                "unsupported notifier {} (use local, postgres or redis://…)",
                config::redact_url(other)
            )))
        }
    };

    Ok(Storage {
        stores,
        queue,
        notifier,
    })
}

/// What opening a database gives: its store ports, its queue, and its notifier if it has one.
type Opened = (Stores, Arc<dyn JobQueue>, Option<Arc<dyn Notifier>>);

#[cfg(feature = "sqlite")]
async fn open_sqlite(config: &Config, path: &str) -> Result<Opened, AppError> {
    use compliance_store_sqlite::{Durability, SqliteConfig, SqliteStore};

    let durability = match config.sqlite_synchronous.as_str() {
        "normal" | "NORMAL" => Durability::Normal,
        "full" | "FULL" => Durability::Full,
        other => {
            return Err(AppError::Config(format!(
                "--sqlite-synchronous must be normal or full, not {other}"
            )))
        }
    };
    let retention = Duration::from_secs(config.retention_days.saturating_mul(24 * 3600));
    let sqlite_config = if path == ":memory:" {
        SqliteConfig::memory()
    } else {
        SqliteConfig::file(path)
    }
    .durability(durability)
    .event_retention(retention)
    .job_retention(retention);
    let store = SqliteStore::open(sqlite_config).await?;
    let queue: Arc<dyn JobQueue> = Arc::new(store.queue());
    Ok((store.stores(), queue, None))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_config: &Config, _path: &str) -> Result<Opened, AppError> {
    Err(AppError::Config(
        "this binary was built without the sqlite feature".into(),
    ))
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Opened, AppError> {
    use compliance_store_postgres::{PgConfig, PgStore};

    let store = PgStore::connect(PgConfig::new(url)).await?;
    let queue: Arc<dyn JobQueue> = Arc::new(store.queue());
    let notifier: Arc<dyn Notifier> = Arc::new(store.notifier());
    Ok((Stores::from_adapter(Arc::new(store)), queue, Some(notifier)))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str) -> Result<Opened, AppError> {
    Err(AppError::Config(
        "this binary was built without the postgres feature (cargo build --features postgres)"
            .into(),
    ))
}

#[cfg(feature = "redis")]
fn redis_options(
    url: &str,
    prefix: &str,
) -> Result<compliance_queue_redis::RedisOptions, AppError> {
    compliance_queue_redis::RedisOptions::from_url(url)
        .map(|o| o.key_prefix(prefix))
        .map_err(|e| AppError::Config(e.to_string()))
}

#[cfg(feature = "redis")]
fn redis_queue(url: &str, prefix: &str) -> Result<Arc<dyn JobQueue>, AppError> {
    let queue = compliance_queue_redis::RedisQueue::new(redis_options(url, prefix)?);
    Ok(Arc::new(queue))
}

#[cfg(feature = "redis")]
fn redis_notifier(url: &str, prefix: &str) -> Result<Arc<dyn Notifier>, AppError> {
    let notifier = compliance_queue_redis::RedisNotifier::new(redis_options(url, prefix)?);
    Ok(Arc::new(notifier))
}

#[cfg(not(feature = "redis"))]
fn redis_queue(_url: &str, _prefix: &str) -> Result<Arc<dyn JobQueue>, AppError> {
    Err(AppError::Config(
        "this binary was built without the redis feature (cargo build --features redis)".into(),
    ))
}

#[cfg(not(feature = "redis"))]
fn redis_notifier(_url: &str, _prefix: &str) -> Result<Arc<dyn Notifier>, AppError> {
    Err(AppError::Config(
        "this binary was built without the redis feature (cargo build --features redis)".into(),
    ))
}

/// `id:secret` or a bare secret (named `s1`, `s2`, … in the order given).
fn parse_secrets(raw: &[String]) -> Vec<WebhookSecret> {
    raw.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| match s.split_once(':') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
                WebhookSecret::new(id, secret)
            }
            _ => WebhookSecret::new(format!("s{}", i + 1), s),
        })
        .collect()
}

fn fossa_source(config: &Config) -> Result<Arc<dyn ScanSource>, AppError> {
    use compliance_fossa::{FossaClient, FossaConfig};

    let token = config.fossa_api_key.clone().unwrap_or_default();
    let fossa = if token.is_empty() {
        FossaConfig::without_token()
    } else {
        FossaConfig::new(token)
    }
    .with_base_url(&config.fossa_base_url)
    .map_err(|e| AppError::Fossa(e.to_string()))?;
    let client = FossaClient::new(fossa).map_err(|e| AppError::Fossa(e.to_string()))?;
    Ok(Arc::new(client))
}

fn spawn_workers(
    config: &Config,
    storage: &Storage,
    source: &Arc<dyn ScanSource>,
    clock: &Arc<dyn Clock>,
    durations: &SyncDurationTracker,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    for n in 0..config.workers.max(1) {
        let worker = SyncWorker::new(
            storage.stores.clone(),
            storage.queue.clone(),
            source.clone(),
            storage.notifier.clone(),
            clock.clone(),
            WorkerConfig::default(),
        )
        .with_worker_id(format!("{}-w{n}", hostname()))
        .with_durations(durations.clone());
        tasks.spawn(worker.run(shutdown.clone()));
    }
}

fn spawn_maintenance(
    config: &Config,
    storage: &Storage,
    ingest: &IngestService,
    clock: &Arc<dyn Clock>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    if storage.queue.placement() == QueuePlacement::External {
        let sweeper = Sweeper::new(
            storage.stores.jobs.clone(),
            storage.queue.clone(),
            clock.clone(),
            SweeperConfig::default(),
        );
        tasks.spawn(sweeper.run(shutdown.clone()));
    }
    if config.resync_after_secs > 0 {
        let scheduler = Scheduler::new(
            ingest.clone(),
            storage.stores.clone(),
            clock.clone(),
            SchedulerConfig {
                max_age: Duration::from_secs(config.resync_after_secs),
                ..SchedulerConfig::default()
            },
        );
        tasks.spawn(scheduler.run(shutdown.clone()));
    }
    let retention = Duration::from_secs(config.retention_days.saturating_mul(24 * 3600));
    let stores = storage.stores.clone();
    let clock = clock.clone();
    let token = shutdown.clone();
    tasks.spawn(async move { prune_loop(stores, clock, retention, token).await });
}

/// Deletes webhook events and finished jobs older than the retention, hourly.
async fn prune_loop(
    stores: Stores,
    clock: Arc<dyn Clock>,
    retention: Duration,
    shutdown: CancellationToken,
) {
    let Ok(keep) = chrono::Duration::from_std(retention) else {
        return;
    };
    loop {
        let before = clock.now() - keep;
        match stores.events.prune_events(before).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned webhook events"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning webhook events failed"),
        }
        match stores.jobs.prune_jobs(before).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned finished jobs"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning jobs failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

async fn build_api(
    config: &Config,
    storage: &Storage,
    ingest: &IngestService,
    verifier: Arc<HmacSha256Verifier>,
    clock: &Arc<dyn Clock>,
    shutdown: &CancellationToken,
) -> Result<ComplianceApi, AppError> {
    let mut auth = AuthConfig::new();
    for (i, token) in config
        .admin_tokens
        .iter()
        .filter(|t| !t.trim().is_empty())
        .enumerate()
    {
        auth = auth.token(format!("admin-{}", i + 1), token.trim(), Scope::Admin);
    }
    for (i, token) in config
        .read_tokens
        .iter()
        .filter(|t| !t.trim().is_empty())
        .enumerate()
    {
        auth = auth.token(format!("read-{}", i + 1), token.trim(), Scope::Read);
    }
    if config.listen.ip().is_loopback() {
        // Browsers only send `Secure` cookies over HTTPS or to localhost by name; a loopback
        // server is reached over plain HTTP at 127.0.0.1.
        auth = auth.cookie_security(CookieSecurity::AllowPlainHttp);
    }

    let limits = RateLimits {
        per_ip: quota(config.rate_per_ip),
        per_repository: quota(config.rate_per_repo),
        ..RateLimits::default()
    };

    let mut builder = ComplianceApi::builder(Services {
        ingest: ingest.clone(),
        verifier,
        stores: storage.stores.clone(),
        queue: storage.queue.clone(),
        notifier: storage.notifier.clone(),
        clock: clock.clone(),
    })
    .auth(auth)
    .rate_limits(limits)
    .shutdown_token(shutdown.clone());
    if let Some(handle) = metrics_handle() {
        builder = builder.metrics(handle, MetricsAccess::Token);
    }
    Ok(builder.build().await?)
}

/// A quota of `per_second` with bursts of ten times that; 0 turns the limit off.
fn quota(per_second: u32) -> Option<Quota> {
    let rate = std::num::NonZeroU32::new(per_second)?;
    let burst = std::num::NonZeroU32::new(per_second.saturating_mul(10)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// The process-wide Prometheus handle: installed once, shared by every app in the process.
fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| compliance_axum::metrics::install_prometheus().ok())
        .clone()
}

fn health_only() -> axum::Router {
    axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }))
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| format!("pid{}", std::process::id()))
}

/// The README's examples, compiled as doctests so the embedding guide cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
