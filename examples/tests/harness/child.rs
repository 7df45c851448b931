//! The built `compliance-server` binary as a child process, pointed at a FOSSA simulator the
//! test owns (so the simulator outlives the server's crashes), and a REST client and audit
//! for it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use compliance_fossa::sim::{FossaSimulator, ProjectSpec, SimConfig, SimHandle};
use serde_json::Value;

use super::{SECRET, TOKEN};

/// A running `compliance-server` process.
pub(crate) struct Server {
    child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

/// What every process of one test shares: the database, the simulator, the flags.
pub(crate) struct Setup {
    /// `sqlite://…` or `postgres://…`.
    pub(crate) database_url: String,
    /// The simulator's base URL and token.
    pub(crate) fossa_url: String,
    pub(crate) fossa_token: String,
    /// Where the processes write their logs.
    pub(crate) log_dir: PathBuf,
}

impl Setup {
    /// Flags for a process of this setup.
    fn args(&self, addr: SocketAddr, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--listen",
            &addr.to_string(),
            "--database-url",
            &self.database_url,
            "--webhook-secrets",
            SECRET,
            "--admin-tokens",
            TOKEN,
            "--fossa-base-url",
            &self.fossa_url,
            "--fossa-api-key",
            &self.fossa_token,
            "--resync-after-secs",
            "0",
            "--rate-per-ip",
            "0",
            "--rate-per-repo",
            "0",
            "--log-format",
            "json",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    /// Starts a server process on a free loopback port and waits until it answers.
    pub(crate) async fn start(&self, name: &str, extra: &[&str]) -> Server {
        self.start_at(name, free_port(), extra).await
    }

    /// Starts a server process on `addr` and waits until it answers.
    pub(crate) async fn start_at(&self, name: &str, addr: SocketAddr, extra: &[&str]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{name}.log")))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_compliance-server"))
            .args(self.args(addr, extra))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn compliance-server");
        let server = Server { child, addr };
        let healthy = super::eventually(Duration::from_secs(60), || async {
            reqwest::get(format!("http://{addr}/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(
            healthy,
            "compliance-server did not come up; see {}",
            self.log_dir.display()
        );
        server
    }
}

/// A FOSSA simulator of the test's own, which outlives the server processes.
pub(crate) async fn fossa() -> SimHandle {
    FossaSimulator::start(SimConfig::default().with_token("reliability-fossa-token"))
        .await
        .expect("simulator starts")
}

/// A loopback address with a port that was free a moment ago.
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

impl Server {
    /// `http://127.0.0.1:<port><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Whether the process is still running (it exits only when stopped or on a crash).
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown code runs.
    pub(crate) fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGSTOP: the process freezes mid-whatever, holding its leases.
    pub(crate) fn freeze(&self) {
        signal(self.child.id(), "-STOP");
    }

    /// SIGCONT.
    pub(crate) fn thaw(&self) {
        signal(self.child.id(), "-CONT");
    }

    /// SIGTERM, then waits for a clean exit.
    pub(crate) fn stop(mut self) {
        signal(self.child.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "compliance-server exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        panic!("compliance-server did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "-CONT");
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, which: &str) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {which} {pid} failed");
}

/// An authenticated REST client.
pub(crate) fn api_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// GET `path` as JSON.
pub(crate) async fn get(client: &reqwest::Client, server: &Server, path: &str) -> Value {
    let response = client.get(server.url(path)).send().await.expect("GET");
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.json().await.expect("JSON")
}

/// Generates `count` FOSSA projects in the simulator and registers a component for each;
/// returns `(repository URL, locator, component id)`.
pub(crate) async fn register_components(
    sim: &SimHandle,
    server: &Server,
    count: usize,
) -> Vec<(String, String, String)> {
    let client = api_client();
    let mut out = Vec::new();
    for i in 0..count {
        let url = format!("https://github.com/acme/reliability-{i}");
        let locator = format!("custom+1/github.com/acme/reliability-{i}");
        sim.state().generate_project(
            &ProjectSpec::new(&locator, 30 + 7 * i, 4 + i, i as u64 + 1).with_unresolved(1),
        );
        let response = client
            .post(server.url("/api/components"))
            .json(&serde_json::json!({
                "name": format!("reliability-{i}"),
                "repository_url": url,
                "fossa_locator": locator,
            }))
            .send()
            .await
            .expect("register");
        assert_eq!(response.status().as_u16(), 201, "register component {i}");
        let component: Value = response.json().await.expect("JSON");
        let id = component["id"].as_str().expect("id").to_owned();
        out.push((url, locator, id));
    }
    out
}

/// Waits until every job in `ids` has ended; returns how long that took, or the jobs still
/// open (as the API shows them) when `within` passed first.
pub(crate) async fn wait_ended(
    server: &Server,
    ids: &BTreeSet<String>,
    within: Duration,
) -> Result<Duration, Vec<String>> {
    let client = api_client();
    let started = Instant::now();
    loop {
        let mut open = Vec::new();
        for id in ids {
            let job = client
                .get(server.url(&format!("/api/sync-jobs/{id}")))
                .send()
                .await;
            let job = match job {
                Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
                _ => None,
            };
            let status = job.as_ref().and_then(|j| j["status"].as_str());
            if !matches!(status, Some("COMPLETED" | "FAILED" | "SUPERSEDED")) {
                open.push(match job {
                    Some(job) => job.to_string(),
                    None => format!("{id}: not found"),
                });
            }
        }
        if open.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= within {
            return Err(open);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The audit through the REST API: each `sync_id` answered 202 names exactly one job, which
/// ended; no webhook event has two jobs; each component's stored revision is one the
/// simulator has, no older than the newest completed one accepted, with FOSSA's issues and
/// dependencies. `accepted` is `(sync_id, component id)`; `sent` maps every revision sent
/// (answered or not) to its scan time.
pub(crate) async fn audit(
    server: &Server,
    sim: &SimHandle,
    components: &[(String, String, String)],
    accepted: &[(String, String)],
    sent: &HashMap<String, i64>,
) -> super::audit::AuditReport {
    let client = api_client();
    let mut report = super::audit::AuditReport {
        accepted: accepted.len(),
        ..Default::default()
    };
    let mut problems = Vec::new();

    let mut jobs: HashMap<String, Value> = HashMap::new();
    for (_, _, component) in components {
        let mut items = Vec::new();
        loop {
            let page = get(
                &client,
                server,
                &format!(
                    "/api/components/{component}/sync-jobs?limit=1000&offset={}",
                    items.len()
                ),
            )
            .await;
            let got = page["items"].as_array().cloned().unwrap_or_default();
            let last = got.len() < 1000;
            items.extend(got);
            if last {
                break;
            }
        }
        let mut per_event: BTreeMap<String, usize> = BTreeMap::new();
        for job in items {
            if let Some(event) = job["webhook_event_id"].as_str() {
                *per_event.entry(event.to_owned()).or_default() += 1;
            }
            jobs.insert(job["id"].as_str().unwrap_or_default().to_owned(), job);
        }
        report.duplicates += per_event.values().filter(|&&n| n > 1).count();
    }

    let named: BTreeSet<&String> = accepted.iter().map(|(id, _)| id).collect();
    report.jobs = named.len();
    for id in named {
        let Some(job) = jobs.get(id) else {
            report.lost += 1;
            problems.push(format!("{id}: no job"));
            continue;
        };
        match job["status"].as_str() {
            Some("COMPLETED") => report.completed += 1,
            Some("SUPERSEDED") if job["superseded_by"].is_string() => report.superseded += 1,
            Some("FAILED") if job["error_message"].as_str().is_some_and(|m| !m.is_empty()) => {
                report.dead_lettered += 1;
            }
            other => {
                report.lost += 1;
                problems.push(format!("{id}: ended {other:?}: {job}"));
            }
        }
    }

    for (_, locator, component) in components {
        let view = get(&client, server, &format!("/api/components/{component}")).await;
        let Some(revision) = view["last_revision"].as_str() else {
            continue;
        };
        let newest_completed = accepted
            .iter()
            .filter(|(_, c)| c == component)
            .filter_map(|(id, _)| jobs.get(id))
            .filter(|j| j["status"] == "COMPLETED")
            .filter_map(|j| j["revision"].as_str().and_then(|r| sent.get(r)))
            .max();
        let stored_at = sent.get(revision);
        if let (Some(newest), Some(stored)) = (newest_completed, stored_at) {
            if stored < newest {
                problems.push(format!(
                    "{component}: stores {revision}, older than a completed one"
                ));
            }
        }
        check_against_sim(
            &client,
            server,
            sim,
            component,
            locator,
            revision,
            &mut problems,
        )
        .await;
        report.components_checked += 1;
    }

    assert!(
        problems.is_empty() && report.duplicates == 0,
        "audit failed: {report:?}\n{}",
        problems.join("\n")
    );
    report
}

async fn check_against_sim(
    client: &reqwest::Client,
    server: &Server,
    sim: &SimHandle,
    component: &str,
    locator: &str,
    revision: &str,
    problems: &mut Vec<String>,
) {
    let project = sim.state().project(locator).expect("simulator project");
    let Some(fossa) = project.revision(revision) else {
        problems.push(format!("{component}: stores {revision}, unknown to FOSSA"));
        return;
    };
    let expected: BTreeSet<(String, String)> = fossa
        .issues
        .iter()
        .filter(|i| !i.ignored)
        .map(|i| {
            (
                serde_json::to_value(i.category)
                    .unwrap_or_default()
                    .to_string(),
                i.id.to_string(),
            )
        })
        .collect();
    let page = get(
        client,
        server,
        &format!("/api/components/{component}/issues?status=ACTIVE&limit=1000"),
    )
    .await;
    let stored: BTreeSet<(String, String)> = page["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            (
                i["category"].to_string(),
                i["fossa_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    if stored != expected {
        problems.push(format!(
            "{component}@{revision}: issues {stored:?}, FOSSA has {expected:?}"
        ));
    }
    let deps: BTreeSet<&str> = fossa
        .dependencies
        .iter()
        .filter(|d| !d.ignored && d.locator != "NULL")
        .map(|d| d.locator.as_str())
        .collect();
    let page = get(
        client,
        server,
        &format!("/api/components/{component}/dependencies?limit=1"),
    )
    .await;
    if page["total"].as_u64() != Some(deps.len() as u64) {
        problems.push(format!(
            "{component}@{revision}: {} dependencies stored, FOSSA has {}",
            page["total"],
            deps.len()
        ));
    }
}

/// A fresh SQLite URL under `dir`.
pub(crate) fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("compliance.db").display())
}
