//! Faults under load, each ending with the same audit: every webhook answered 202 has
//! exactly one sync job, which completed (or was covered by a newer one, or dead-lettered
//! with a reason), and the stored compliance data equals what the FOSSA simulator holds.
//!
//! - the server killed with SIGKILL during a load of signed webhooks, then restarted on the
//!   same database (SQLite; PostgreSQL when `COMPLIANCE_TEST_POSTGRES_URL` is set);
//! - FOSSA answering 429 with `Retry-After`, 503, slowly past the client's timeout, with a
//!   dropped connection or cut-off JSON for a share of calls;
//! - a worker frozen (SIGSTOP) past its lease while it holds a job.
//!
//! PostgreSQL connections terminated mid-load and Redis restarted mid-load are tested in
//! their crates (`compliance-store-postgres/tests`, `compliance-queue-redis/tests/fault.rs`).
//!
//! `cargo test -p compliance-examples --test faults`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod harness;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use compliance_fossa::sim::{
    Endpoint, Fault, FossaSimulator, RevisionChange, SimConfig, SimHandle, SimState,
};
use harness::audit::{audit, wait_settled, Accepted};
use harness::child::{self, Setup};
use harness::{now_secs, signed_post, webhook_body, TestServer, WEBHOOK_PATH};
use tokio_util::sync::CancellationToken;

/// Signed webhooks from `senders` tasks until `stop`, each for a new FOSSA revision of one of
/// `components` (`(repository URL, locator, component id)`).
#[derive(Clone)]
struct Load {
    components: Vec<(String, String, String)>,
    sim: SimState,
    next: Arc<AtomicU64>,
    base: i64,
    /// Every revision sent, answered or not, with its scan time.
    sent: Arc<Mutex<HashMap<String, i64>>>,
    /// `(sync_id, component id)` of each 202.
    accepted: Arc<Mutex<Vec<(String, String)>>>,
    /// Requests that got no answer (the server was down) or an answer other than 202.
    unanswered: Arc<AtomicU64>,
    other: Arc<Mutex<Vec<u16>>>,
    /// When the last 202 arrived.
    last_accepted: Arc<Mutex<Option<Instant>>>,
}

impl Load {
    fn new(components: Vec<(String, String, String)>, sim: SimState) -> Self {
        Self {
            components,
            sim,
            next: Arc::new(AtomicU64::new(0)),
            base: now_secs() - 3600,
            sent: Arc::default(),
            accepted: Arc::default(),
            unanswered: Arc::default(),
            other: Arc::default(),
            last_accepted: Arc::default(),
        }
    }

    fn spawn(
        &self,
        addr: SocketAddr,
        senders: usize,
        stop: &CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..senders)
            .map(|_| {
                let load = self.clone();
                let stop = stop.clone();
                tokio::spawn(async move { load.send_until(addr, stop).await })
            })
            .collect()
    }

    async fn send_until(&self, addr: SocketAddr, stop: CancellationToken) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = format!("http://{addr}{WEBHOOK_PATH}");
        while !stop.is_cancelled() {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let (repo, locator, component) = &self.components[n as usize % self.components.len()];
            let revision = format!("{n:08x}{:032x}", rand::random::<u128>());
            self.sim
                .advance_revision(
                    locator,
                    &RevisionChange::new(&revision, 1, (n % 3) as usize),
                )
                .unwrap();
            let scan_completed = self.base + n as i64;
            self.sent
                .lock()
                .unwrap()
                .insert(revision.clone(), scan_completed);
            let body = webhook_body(repo, &revision, n, scan_completed);
            match signed_post(&client, &url, body).send().await {
                Ok(response) if response.status().as_u16() == 202 => {
                    let answer: serde_json::Value = response.json().await.unwrap();
                    let id = answer["sync_id"].as_str().unwrap().to_owned();
                    self.accepted.lock().unwrap().push((id, component.clone()));
                    *self.last_accepted.lock().unwrap() = Some(Instant::now());
                }
                Ok(response) => {
                    self.other.lock().unwrap().push(response.status().as_u16());
                    self.unanswered.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    self.unanswered.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn accepted(&self) -> Vec<(String, String)> {
        self.accepted.lock().unwrap().clone()
    }
}

async fn fossa() -> SimHandle {
    FossaSimulator::start(SimConfig::default().with_token("reliability-fossa-token"))
        .await
        .unwrap()
}

/// Sends webhooks for 3 s, kills the server with SIGKILL, restarts it on the same database
/// and address, sends for 2 s more, then audits.
async fn kill9_during_load(database_url: String, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let sim = fossa().await;
    // Slow FOSSA a little, so syncs are in flight when the process dies.
    sim.state().set_latency(None, Duration::from_millis(30));
    let setup = Setup {
        database_url,
        fossa_url: sim.base_url().to_owned(),
        fossa_token: sim.token().to_owned(),
        log_dir: dir.path().to_owned(),
    };
    let mut server = setup.start("before-kill", &["--workers", "2"]).await;
    let addr = server.addr;
    let components = child::register_components(&sim, &server, 4).await;

    let load = Load::new(components.clone(), sim.state().clone());
    let stop = CancellationToken::new();
    let senders = load.spawn(addr, 4, &stop);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let accepted_before_kill = load.accepted().len();
    server.kill9();
    let killed_at = Instant::now();
    drop(server);

    let server = setup
        .start_at("after-kill", addr, &["--workers", "2"])
        .await;
    let back_up = killed_at.elapsed();
    let accepting_again = loop {
        if load
            .last_accepted
            .lock()
            .unwrap()
            .is_some_and(|t| t > killed_at)
        {
            break killed_at.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    for sender in senders {
        sender.await.unwrap();
    }

    let accepted = load.accepted();
    let ids: BTreeSet<String> = accepted.iter().map(|(id, _)| id.clone()).collect();
    let drained = child::wait_ended(&server, &ids, Duration::from_secs(90))
        .await
        .expect("every accepted job ends after the restart");
    let sent = load.sent.lock().unwrap().clone();
    let report = child::audit(&server, &sim, &components, &accepted, &sent).await;
    let others = load.other.lock().unwrap().clone();
    println!(
        "kill -9 ({label}): {} webhooks sent, {} accepted ({accepted_before_kill} before the kill), \
         {} unanswered while down {others:?}, lost {}, duplicates {}; server answering {back_up:?} \
         after the kill, accepting {accepting_again:?} after; all accepted jobs ended {:?} after the \
         load stopped; audit {report:?}",
        sent.len(),
        accepted.len(),
        load.unanswered.load(Ordering::Relaxed),
        report.lost,
        report.duplicates,
        drained,
    );
    assert!(accepted_before_kill > 0 && accepted.len() > accepted_before_kill);
    assert!(
        others.iter().all(|&s| s == 503),
        "answers other than 202/503: {others:?}"
    );
    server.stop();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_load_loses_no_accepted_webhook_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    kill9_during_load(child::sqlite_url(dir.path()), "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_load_loses_no_accepted_webhook_on_postgres() {
    let required = std::env::var("COMPLIANCE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let Ok(base) = std::env::var("COMPLIANCE_TEST_POSTGRES_URL") else {
        assert!(!required, "COMPLIANCE_TEST_POSTGRES_URL is unset");
        println!("skipped: COMPLIANCE_TEST_POSTGRES_URL is unset");
        return;
    };
    if !cfg!(feature = "postgres") {
        assert!(
            !required,
            "compliance-server built without the postgres feature"
        );
        println!("skipped: built without the postgres feature (cargo test --features postgres)");
        return;
    }
    let database = format!("reliability_kill_{:016x}", rand::random::<u64>());
    let created = std::process::Command::new("psql")
        .args([&base, "-q", "-c", &format!("CREATE DATABASE {database}")])
        .status()
        .expect("run psql");
    assert!(created.success(), "CREATE DATABASE failed on {base}");
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => panic!("COMPLIANCE_TEST_POSTGRES_URL has no database part"),
    };
    kill9_during_load(url, "PostgreSQL").await;
    let _ = std::process::Command::new("psql")
        .args([
            &base,
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        ])
        .status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fossa_failing_a_share_of_calls_loses_no_accepted_webhook() {
    let server = TestServer::demo(&[
        "--rate-per-ip",
        "0",
        "--rate-per-repo",
        "0",
        "--workers",
        "4",
    ])
    .await;
    wait_settled(&server.stores, Duration::from_secs(30))
        .await
        .expect("demo syncs settle");

    // One call answers its head, then holds its body past the client's 30 s read timeout.
    server.sim.inject(
        Endpoint::Projects,
        Fault::SlowBody {
            chunk: 1 << 20,
            delay: Duration::from_secs(31),
        },
        1,
    );
    let stop = CancellationToken::new();
    let injector = {
        let sim = server.sim.clone();
        let stop = stop.clone();
        tokio::spawn(async move { inject_faults(sim, stop).await })
    };
    let started = Instant::now();
    let client = reqwest::Client::new();
    let url = server.url(WEBHOOK_PATH);
    let mut accepted = Vec::new();
    let base = now_secs() - 3600;
    for n in 0..60_u64 {
        let (repo, locator) = &server.components[n as usize % server.components.len()];
        let revision = server.new_revision(locator, n);
        let body = webhook_body(repo, &revision, n, base + n as i64);
        let response = signed_post(&client, &url, body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 202);
        let answer: serde_json::Value = response.json().await.unwrap();
        accepted.push(Accepted::from_answer(
            &answer,
            repo,
            &revision,
            base + n as i64,
        ));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let sent_in = started.elapsed();
    // Faults keep coming for a few seconds after the last webhook, while its syncs run.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    let injected = injector.await.unwrap();

    let settled = wait_settled(&server.stores, Duration::from_secs(50))
        .await
        .expect("every job ends despite the faults");
    let consumed = injected + 1 - server.sim.pending_faults();
    let calls = server.sim.requests().len();
    let report = audit(&server.stores, &server.sim, &accepted).await;
    println!(
        "fossa faults: {} webhooks accepted in {sent_in:?}; {consumed} of {calls} FOSSA calls \
         faulted (429 with Retry-After, 503, dropped connection, cut-off JSON, one read timeout); \
         all jobs ended {settled:?} after the faults stopped; audit {report:?}",
        accepted.len()
    );
    assert!(consumed >= 10, "only {consumed} faults reached the client");
    server.stop().await;
}

/// Every 40 ms, one fault on one call: 429 with `Retry-After: 1`, 503, a dropped
/// connection, or cut-off JSON. Returns how many were injected.
async fn inject_faults(sim: SimState, stop: CancellationToken) -> usize {
    let faults = [
        Fault::rate_limited("1"),
        Fault::unavailable("1"),
        Fault::status(503),
        Fault::DropConnection,
        Fault::MalformedJson,
    ];
    let endpoints = [Endpoint::Projects, Endpoint::Issues, Endpoint::Dependencies];
    let mut n = 0;
    while !stop.is_cancelled() {
        if sim.pending_faults() < 2 {
            sim.inject(
                endpoints[n % endpoints.len()],
                faults[n % faults.len()].clone(),
                1,
            );
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_frozen_past_its_lease_applies_nothing_and_its_job_completes_once() {
    let dir = tempfile::tempdir().unwrap();
    let sim = fossa().await;
    let setup = Setup {
        database_url: child::sqlite_url(dir.path()),
        fossa_url: sim.base_url().to_owned(),
        fossa_token: sim.token().to_owned(),
        log_dir: dir.path().to_owned(),
    };
    let first = setup.start("frozen", &["--workers", "1"]).await;
    let components = child::register_components(&sim, &first, 1).await;
    let client = child::api_client();
    let (_, _, component) = &components[0];

    // A sync that takes 3 s on its dependencies call: time to freeze the worker holding it.
    let (repo, locator, _) = components[0].clone();
    let revision = format!("{:040x}", rand::random::<u128>());
    sim.state()
        .advance_revision(&locator, &RevisionChange::new(&revision, 1, 2))
        .unwrap();
    sim.state()
        .set_latency(Some(Endpoint::Dependencies), Duration::from_secs(3));
    let scan_completed = now_secs();
    let body = webhook_body(&repo, &revision, 1, scan_completed);
    let response = signed_post(&reqwest::Client::new(), &first.url(WEBHOOK_PATH), body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let answer: serde_json::Value = response.json().await.unwrap();
    let sync_id = answer["sync_id"].as_str().unwrap().to_owned();
    let running = harness::eventually(Duration::from_secs(10), || async {
        child::get(&client, &first, &format!("/api/sync-jobs/{sync_id}")).await["status"]
            == "RUNNING"
    })
    .await;
    assert!(running, "the job never started");
    first.freeze();
    let frozen_at = Instant::now();

    // Another process takes the job once the 30 s lease has run out.
    sim.state()
        .set_latency(Some(Endpoint::Dependencies), Duration::ZERO);
    let second = setup.start("rescuer", &["--workers", "1"]).await;
    let ids: BTreeSet<String> = [sync_id.clone()].into();
    let rescued = child::wait_ended(&second, &ids, Duration::from_secs(60))
        .await
        .expect("the job completes after the lease");
    let recovered_after = frozen_at.elapsed();

    // The frozen worker wakes up: its lease is gone, so it must apply nothing.
    first.thaw();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let job = child::get(&client, &second, &format!("/api/sync-jobs/{sync_id}")).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    assert!(job["attempts"].as_u64() >= Some(2), "{job}");
    let scans = child::get(
        &client,
        &second,
        &format!("/api/components/{component}/scans?limit=100"),
    )
    .await;
    let applied = scans["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["sync_job_id"].as_str() == Some(sync_id.as_str()))
        .count();
    assert_eq!(
        applied, 1,
        "the job's snapshot was applied {applied} times: {scans}"
    );

    let sent: HashMap<String, i64> = [(revision.clone(), scan_completed)].into();
    let report = child::audit(
        &second,
        &sim,
        &components,
        &[(sync_id, component.clone())],
        &sent,
    )
    .await;
    println!(
        "stalled worker: frozen while holding its job; another process completed it {recovered_after:?} \
         after the freeze ({rescued:?} after it started); the woken worker applied nothing; audit {report:?}"
    );
    first.stop();
    second.stop();
    sim.shutdown().await;
}
