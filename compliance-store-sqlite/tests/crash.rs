//! Crash safety: a process killed (SIGKILL) in the middle of applying a large snapshot, while
//! webhooks are being accepted, leaves no half-applied snapshot and loses no accepted job.
//!
//! The test binary runs twice: as the test (the parent), and, re-executed with
//! `COMPLIANCE_SQLITE_CRASH_CHILD` set to a database path, as the child that writes until it
//! is killed. The child reports every accepted job on stdout only after `record_accepted`
//! returned, so every reported job must be found after the kill.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use compliance_core::domain::{ComponentQuery, IssueQuery, IssueStatus, JobStatus, PageRequest};
use compliance_core::ports::{
    AcceptRecord, ApplyOutcome, ComplianceStore, ComponentDirectory, JobQueue, QueuePlacement,
    SnapshotApply, StartOutcome, SyncJobStore, WebhookEventLog,
};
use compliance_core::testing::fixtures::{self, at};
use compliance_core::SyncJobId;
use compliance_store_sqlite::{SqliteConfig, SqliteStore};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;

const CHILD_ENV: &str = "COMPLIANCE_SQLITE_CRASH_CHILD";
const LEASE: Duration = Duration::from_secs(30);
/// Components the child accepts one webhook for before it starts the big apply, and as many
/// again while it runs.
const WEBHOOKS: usize = 100;
/// The synced data the crash must not disturb.
const OLD_ISSUES: usize = 50;
const OLD_DEPENDENCIES: usize = 500;
/// Large enough to take seconds and to spill uncommitted pages into the WAL.
const BIG_ISSUES: usize = 5_000;
const BIG_DEPENDENCIES: usize = 400_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(path) = std::env::var(CHILD_ENV) {
        runtime.block_on(child(PathBuf::from(path)));
        return;
    }
    runtime.block_on(killed_mid_apply_loses_nothing_and_applies_nothing());
    println!("test killed_mid_apply_loses_nothing_and_applies_nothing ... ok");
}

async fn killed_mid_apply_loses_nothing_and_applies_nothing() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("compliance.db");
    let first_job = prepare(&path).await;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = {
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };

    // Wait for the big apply to start, then for its uncommitted pages to spill into the WAL
    // (the page cache is smaller than the snapshot), and kill the child without warning:
    // the file now holds half a snapshot that was never committed.
    let mut acked: HashSet<SyncJobId> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let big_job = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the child reports its progress");
        match line.split_once(' ') {
            Some(("acked", id)) => {
                acked.insert(id.parse().unwrap());
            }
            Some(("applying", id)) => break id.parse::<SyncJobId>().unwrap(),
            _ => panic!("unexpected child output {line:?}"),
        }
    };
    let wal = wal_path(&path);
    let wal_before = file_len(&wal);
    let started = Instant::now();
    let mut spilled = false;
    while started.elapsed() < Duration::from_secs(30) {
        if file_len(&wal) > wal_before + 4 * 1024 * 1024 {
            spilled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    while let Ok(line) = lines.try_recv() {
        match line.split_once(' ') {
            Some(("acked", id)) => {
                acked.insert(id.parse().unwrap());
            }
            Some(("applied", _)) => panic!("the apply committed before the kill; make it larger"),
            _ => panic!("unexpected child output {line:?}"),
        }
    }
    eprintln!(
        "killed the child {:?} into the apply; {} webhooks acknowledged; uncommitted pages \
         in the WAL: {spilled}",
        started.elapsed(),
        acked.len()
    );
    assert!(acked.len() >= WEBHOOKS, "the first round was acknowledged");
    assert!(
        spilled,
        "the apply's uncommitted pages reached the WAL before the kill"
    );

    assert_integrity(&path).await;
    let store = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();

    // Nothing of the big snapshot is visible.
    let big = store.get_job(big_job).await.unwrap().unwrap();
    assert_eq!(
        (big.status, big.attempts),
        (JobStatus::Running, 1),
        "the killed apply did not commit"
    );
    let payments = store
        .list(&ComponentQuery {
            search: Some("payments".into()),
            ..ComponentQuery::default()
        })
        .await
        .unwrap()
        .items
        .pop()
        .unwrap();
    assert_eq!(payments.component.last_sync_job_id, Some(first_job));
    assert_eq!(payments.issues.total, OLD_ISSUES as u64);
    assert_eq!(payments.dependency_count, OLD_DEPENDENCIES as u64);
    let id = payments.component.id;
    let view = store.compliance_view(id).await.unwrap().unwrap();
    assert_eq!(view.dependencies.total, OLD_DEPENDENCIES as u64);
    assert_eq!(view.latest_scan.unwrap().sync_job_id, first_job);
    let scans = store.list_scans(id, PageRequest::default()).await.unwrap();
    assert_eq!(scans.total, 1, "no scan result of the killed apply");
    let deps = store
        .list_dependencies(id, &Default::default())
        .await
        .unwrap();
    assert_eq!(deps.total, OLD_DEPENDENCIES as u64);
    let active = IssueQuery {
        status: Some(IssueStatus::Active),
        ..IssueQuery::default()
    };
    assert_eq!(
        store.list_issues(id, &active).await.unwrap().total,
        OLD_ISSUES as u64
    );
    let all = store.list_issues(id, &IssueQuery::default()).await.unwrap();
    assert_eq!(all.total, OLD_ISSUES as u64, "no issue of the killed apply");

    // Every acknowledged webhook has its job, queued, with its queue entry.
    let queue = store.queue();
    let mut queued = HashSet::new();
    while let Some(r) = queue.reserve("after-crash", LEASE).await.unwrap() {
        queued.insert(r.job_id);
    }
    for job in &acked {
        let stored = store.get_job(*job).await.unwrap();
        assert_eq!(
            stored.map(|j| j.status),
            Some(JobStatus::Queued),
            "acknowledged job {job} is stored"
        );
        assert!(queued.contains(job), "acknowledged job {job} is queued");
    }

    // The interrupted job can still finish: the worker's next attempt applies cleanly.
    let restarted = match store
        .start(big_job, at(5_000), Duration::ZERO)
        .await
        .unwrap()
    {
        StartOutcome::Started(job) => job,
        other => panic!("restart: {other:?}"),
    };
    let retry = store
        .apply_snapshot(SnapshotApply {
            job_id: big_job,
            attempt: restarted.attempts,
            component_id: id,
            branch: "main".into(),
            scan_completed_at: None,
            snapshot: fixtures::snapshot(OLD_ISSUES, 700, 3),
            synced_at: at(5_001),
        })
        .await
        .unwrap();
    assert!(matches!(retry, ApplyOutcome::Applied(s) if s.dependencies_count == 700));
    store.close().await;
}

/// A database with one synced component and the components the child's webhooks target;
/// returns the job whose data the component holds.
async fn prepare(path: &Path) -> SyncJobId {
    let store = SqliteStore::open(SqliteConfig::file(path)).await.unwrap();
    let payments = store
        .register(
            fixtures::component("payments", "https://github.com/acme/payments"),
            at(0),
        )
        .await
        .unwrap();
    for i in 0..2 * WEBHOOKS {
        let name = format!("svc-{i}");
        store
            .register(
                fixtures::component(&name, &format!("https://github.com/acme/{name}")),
                at(0),
            )
            .await
            .unwrap();
    }
    let job = fixtures::new_job(payments.id, "main", Some(at(10)), at(10));
    let job = store
        .create_job(job, QueuePlacement::External)
        .await
        .unwrap()
        .job;
    let StartOutcome::Started(job) = store.start(job.id, at(11), LEASE).await.unwrap() else {
        panic!("start");
    };
    store
        .apply_snapshot(SnapshotApply {
            job_id: job.id,
            attempt: job.attempts,
            component_id: payments.id,
            branch: "main".into(),
            scan_completed_at: job.scan_completed_at,
            snapshot: fixtures::snapshot(OLD_ISSUES, OLD_DEPENDENCIES, 1),
            synced_at: at(12),
        })
        .await
        .unwrap();
    store.close().await;
    job.id
}

/// The child: accepts webhooks, then applies a huge snapshot while accepting more, and
/// reports each step on stdout. It never ends on its own.
async fn child(path: PathBuf) {
    let store = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
    let components = store
        .list(&ComponentQuery {
            page: PageRequest::new(0, 1000),
            ..ComponentQuery::default()
        })
        .await
        .unwrap()
        .items;
    let payments = components
        .iter()
        .find(|c| c.component.name == "payments")
        .unwrap()
        .component
        .clone();
    let targets: Vec<_> = components
        .iter()
        .filter(|c| c.component.name != "payments")
        .map(|c| c.component.clone())
        .collect();
    let (first, second) = targets.split_at(WEBHOOKS);

    accept_all(&store, first).await;

    let job = fixtures::new_job(payments.id, "main", Some(at(100)), at(100));
    let job = store
        .create_job(job, QueuePlacement::External)
        .await
        .unwrap()
        .job;
    let StartOutcome::Started(job) = store.start(job.id, at(101), LEASE).await.unwrap() else {
        panic!("start");
    };
    let snapshot = fixtures::snapshot(BIG_ISSUES, BIG_DEPENDENCIES, 2);
    report(&format!("applying {}", job.id));
    let more = {
        let store = store.clone();
        let second = second.to_vec();
        tokio::spawn(async move { accept_all(&store, &second).await })
    };
    store
        .apply_snapshot(SnapshotApply {
            job_id: job.id,
            attempt: job.attempts,
            component_id: payments.id,
            branch: "main".into(),
            scan_completed_at: job.scan_completed_at,
            snapshot,
            synced_at: at(102),
        })
        .await
        .unwrap();
    report(&format!("applied {}", job.id));
    more.await.unwrap();
    std::future::pending::<()>().await;
}

/// Accepts one webhook per component, concurrently, reporting each once it returned.
async fn accept_all(store: &SqliteStore, components: &[compliance_core::domain::Component]) {
    let mut calls = Vec::new();
    for (i, component) in components.iter().enumerate() {
        let store = store.clone();
        let key = uuid::Uuid::new_v4().simple().to_string();
        let secs = 200 + i64::try_from(i).unwrap();
        let mut accepted =
            fixtures::accepted_webhook(component, "main", Some(at(secs)), at(secs), Some(&key));
        accepted.placement = QueuePlacement::InStore;
        calls.push(tokio::spawn(async move {
            match store.record_accepted(accepted).await.unwrap() {
                AcceptRecord::Created(created) => report(&format!("acked {}", created.job.id)),
                AcceptRecord::Duplicate(prior) => panic!("duplicate {prior:?}"),
            }
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
}

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap().to_os_string();
    name.push("-wal");
    db.with_file_name(name)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// SQLite's own check of the file left behind.
async fn assert_integrity(path: &Path) {
    let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(verdict, "ok");
    conn.close().await.unwrap();
}
