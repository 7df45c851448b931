//! Shared pieces of the reliability suites (hostile input, flood, faults): a demo server on
//! loopback with a temporary SQLite database, signed webhooks, a raw HTTP client, and the
//! audit every fault test ends with.

#![allow(dead_code)]

pub(crate) mod audit;
pub(crate) mod child;
pub(crate) mod load;
pub(crate) mod proxy;
pub(crate) mod raw;
pub(crate) mod services;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use compliance_core::domain::{ComponentQuery, WebhookEventQuery};
use compliance_core::ports::Stores;
use compliance_core::signature::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use compliance_examples::{App, AppError, Config};
use compliance_fossa::sim::{RevisionChange, SimState};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The webhook secret every suite configures.
pub(crate) const SECRET: &str = "reliability-webhook-secret";
/// The admin token every suite configures.
pub(crate) const TOKEN: &str = "reliability-admin-token";
/// The webhook route.
pub(crate) const WEBHOOK_PATH: &str = "/api/webhooks/fossa-scan";

/// A demo server (FOSSA simulator, sample components) serving on `127.0.0.1:<free port>`.
pub(crate) struct TestServer {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its stores, to check what was written.
    pub(crate) stores: Stores,
    /// The simulator's data and fault injection.
    pub(crate) sim: SimState,
    /// `(repository URL, FOSSA locator)` of each demo component.
    pub(crate) components: Vec<(String, String)>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), AppError>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts the demo on a fresh SQLite database, served by `App::serve` as the binary
    /// does; `extra` are further command-line flags.
    pub(crate) async fn demo(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = format!("sqlite://{}", dir.path().join("compliance.db").display());
        let mut args = vec![
            "compliance-server",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database,
            "--webhook-secrets",
            SECRET,
            "--admin-tokens",
            TOKEN,
            "--resync-after-secs",
            "0",
        ];
        args.extend_from_slice(extra);
        let config = Config::try_parse_from(args).expect("valid flags");

        let app = App::build(&config).await.expect("app builds");
        let stores = app.stores().clone();
        let demo = app.demo().expect("demo mode");
        let sim = demo.sim_state().clone();
        let components = demo_components(&stores, &sim).await;
        let shutdown = app.shutdown_token();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(app.serve(listener));
        Self {
            addr,
            stores,
            sim,
            components,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and checks it stopped without an error (nothing crashed).
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("server stops within 20 s")
            .expect("server task did not panic");
        result.expect("server stopped cleanly");
    }

    /// Whether the serving task is still running (it ends only on shutdown or a crash).
    pub(crate) fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Bytes the SQLite database takes on disk (the file, its WAL and shared memory).
    pub(crate) fn database_bytes(&self) -> u64 {
        std::fs::read_dir(self._dir.path())
            .expect("database directory")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("compliance.db"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    /// Sync jobs in the store, whatever their status.
    pub(crate) async fn job_count(&self) -> u64 {
        let query = compliance_core::domain::JobQuery {
            page: compliance_core::domain::PageRequest::new(0, 1),
            ..compliance_core::domain::JobQuery::default()
        };
        self.stores
            .jobs
            .list_jobs(&query)
            .await
            .expect("list jobs")
            .total
    }

    /// Rows in the webhook event log.
    pub(crate) async fn event_count(&self) -> u64 {
        self.stores
            .events
            .list_events(&WebhookEventQuery::default())
            .await
            .expect("list events")
            .total
    }

    /// Moves a component's FOSSA project to a new revision, so that a webhook naming it can
    /// be synced; returns the revision.
    pub(crate) fn new_revision(&self, locator: &str, n: u64) -> String {
        let revision = format!("{n:012x}{:028x}", rand_u64());
        let change = RevisionChange {
            seed: n,
            ..RevisionChange::new(&revision, (n % 3) as usize, (n % 4) as usize)
        };
        self.sim
            .advance_revision(locator, &change)
            .expect("advance simulator revision");
        revision
    }
}

/// The demo components and their FOSSA locators, as registered.
async fn demo_components(stores: &Stores, sim: &SimState) -> Vec<(String, String)> {
    let page = stores
        .components
        .list(&ComponentQuery::default())
        .await
        .expect("list components");
    let locators = sim.project_locators();
    let mut out = Vec::new();
    for summary in page.items {
        let component = summary.component;
        assert!(locators.contains(&component.fossa_locator));
        out.push((component.repository_url, component.fossa_locator));
    }
    out.sort();
    out
}

fn rand_u64() -> u128 {
    use rand::Rng;
    rand::rng().random()
}

/// The current Unix time in seconds.
pub(crate) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A complete webhook body for `repo_url` at `revision`; `scan_completed` orders deliveries.
pub(crate) fn webhook_body(
    repo_url: &str,
    revision: &str,
    pipeline: u64,
    scan_completed: i64,
) -> String {
    let timestamp = chrono::DateTime::from_timestamp(scan_completed, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::json!({
        "event": "fossa.scan.completed",
        "timestamp": timestamp,
        "repository": { "url": repo_url },
        "scan": { "revision": revision, "branch": "main", "status": "passed" },
        "pipeline": { "id": pipeline.to_string(), "provider": "reliability" },
        "metadata": { "triggered_by": "push", "actor": "ci@acme.example" }
    })
    .to_string()
}

/// `(X-Webhook-Signature, X-Webhook-Timestamp)` for `body` signed at `timestamp`.
pub(crate) fn signature(body: &[u8], timestamp: i64) -> (String, String) {
    (
        sign(SECRET.as_bytes(), timestamp, body),
        timestamp.to_string(),
    )
}

/// A POST of a webhook signed now, through `client`.
pub(crate) fn signed_post(
    client: &reqwest::Client,
    url: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let (sig, ts) = signature(body.as_bytes(), now_secs());
    client
        .post(url)
        .header("Content-Type", "application/json")
        .header(SIGNATURE_HEADER, sig)
        .header(TIMESTAMP_HEADER, ts)
        .body(body)
}

/// Waits until `check` holds, polling every 50 ms; false when `within` passed first.
pub(crate) async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Percentile `p` (0–100) of `samples`, which it sorts.
pub(crate) fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    let i = (samples.len() * p / 100).min(samples.len() - 1);
    samples[i]
}
