//! 8 tasks ingesting signed webhooks while 2 workers sync, on one database file: every
//! request is accepted (no "database is locked", no 503), and every job ends exactly once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_core::domain::{
    Component, EventStatus, JobQuery, JobStatus, PageRequest, WebhookEventQuery,
};
use compliance_core::ingest::{InboundWebhook, IngestConfig, IngestOutcome, IngestService};
use compliance_core::memory::InMemoryNotifier;
use compliance_core::ports::{
    ComplianceStore, ComponentDirectory, JobQueue, RequestHeaders, SyncJobStore, WebhookEventLog,
};
use compliance_core::retry::RetryPolicy;
use compliance_core::signature::{
    sign, HmacSha256Verifier, WebhookSecret, SIGNATURE_HEADER, SOURCE_HEADER, TIMESTAMP_HEADER,
};
use compliance_core::testing::fixtures::{self, at};
use compliance_core::testing::ScriptedScanSource;
use compliance_core::worker::{JobReport, SyncWorker, WorkerConfig};
use compliance_core::{SyncJobId, SystemClock};
use compliance_store_sqlite::{SqliteConfig, SqliteStore};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "concurrency-test-secret";
const INGESTERS: usize = 8;
const WORKERS: usize = 2;
const WEBHOOKS: usize = 10_000;
const COMPONENTS: usize = 50;

fn signed(body: String) -> InboundWebhook {
    let timestamp = chrono::Utc::now().timestamp();
    let headers = RequestHeaders::new()
        .with("Content-Type", "application/json")
        .with(
            SIGNATURE_HEADER,
            sign(SECRET.as_bytes(), timestamp, body.as_bytes()),
        )
        .with(TIMESTAMP_HEADER, timestamp.to_string())
        .with(SOURCE_HEADER, "github");
    InboundWebhook {
        body: body.into_bytes().into(),
        headers,
        source_ip: Some(IpAddr::from([203, 0, 113, 9])),
    }
}

/// The body of webhook `n`: scans complete in the order of `n`, whatever order they arrive in.
fn body(component: &Component, n: usize) -> String {
    let scanned = at(0) + chrono::Duration::milliseconds(i64::try_from(n).unwrap());
    serde_json::json!({
        "event": "fossa.scan.completed",
        "timestamp": scanned.to_rfc3339(),
        "repository": {"name": component.name, "url": component.repository_url},
        "scan": {"revision": fixtures::revision(n as u64), "branch": "main", "status": "failed"},
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_ingesters_and_two_workers_lose_and_repeat_nothing() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("compliance.db");
    let store = SqliteStore::open(SqliteConfig::file(&path)).await.unwrap();
    let mut components = Vec::new();
    for i in 0..COMPONENTS {
        let name = format!("svc-{i}");
        let url = format!("https://github.com/acme/{name}");
        components.push(
            store
                .register(fixtures::component(&name, &url), at(0))
                .await
                .unwrap(),
        );
    }
    let components = Arc::new(components);

    let queue: Arc<dyn JobQueue> = Arc::new(store.queue());
    let clock = Arc::new(SystemClock);
    let ingest = IngestService::new(
        Arc::new(HmacSha256Verifier::new(vec![WebhookSecret::new(
            "ci", SECRET,
        )])),
        store.stores(),
        Arc::clone(&queue),
        clock.clone(),
        IngestConfig::default(),
    );
    let source = Arc::new(ScriptedScanSource::always(fixtures::snapshot(5, 20, 1)));
    let notifier = Arc::new(InMemoryNotifier::new());
    let shutdown = CancellationToken::new();

    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let worker = SyncWorker::new(
            store.stores(),
            Arc::clone(&queue),
            source.clone(),
            notifier.clone(),
            clock.clone(),
            WorkerConfig {
                worker_id: format!("worker-{w}"),
                lease: Duration::from_secs(30),
                heartbeat_every: Duration::from_secs(5),
                idle_wait: Duration::from_millis(50),
                busy_delay: Duration::from_millis(20),
                retry: RetryPolicy::default(),
            },
        );
        let queue = Arc::clone(&queue);
        let shutdown = shutdown.clone();
        workers.push(tokio::spawn(async move {
            let mut reports: Vec<JobReport> = Vec::new();
            while !shutdown.is_cancelled() {
                match worker.run_once().await {
                    Ok(Some(report)) => reports.push(report),
                    Ok(None) => queue.wait_for_work(Duration::from_millis(50)).await,
                    Err(e) => panic!("worker store error: {e}"),
                }
            }
            reports
        }));
    }

    let started = Instant::now();
    let mut ingesters = Vec::new();
    for t in 0..INGESTERS {
        let ingest = ingest.clone();
        let components = Arc::clone(&components);
        ingesters.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for n in (t..WEBHOOKS).step_by(INGESTERS) {
                let component = &components[n % COMPONENTS];
                match ingest.receive(signed(body(component, n))).await {
                    IngestOutcome::Accepted(a) if !a.duplicate => accepted.push((n, a.sync_id)),
                    other => panic!("webhook {n}: {other:?}"),
                }
            }
            accepted
        }));
    }
    let mut jobs: HashMap<usize, SyncJobId> = HashMap::new();
    for task in ingesters {
        jobs.extend(task.await.unwrap());
    }
    let ingested = started.elapsed();
    assert_eq!(jobs.len(), WEBHOOKS, "every webhook was answered 202");

    let deadline = Instant::now() + Duration::from_secs(300);
    while store.active_jobs().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "jobs still active after 300 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let mut reports = Vec::new();
    for worker in workers {
        reports.extend(worker.await.unwrap());
    }
    eprintln!(
        "{WEBHOOKS} webhooks ingested in {ingested:?}; {} jobs handled by the workers",
        reports.len()
    );
    assert!(
        !reports
            .iter()
            .any(|r| matches!(r, JobReport::Retrying { .. } | JobReport::Failed { .. })),
        "no job failed or retried"
    );

    // Every job ended: completed, or superseded by a newer one.
    let count = |status| {
        let store = store.clone();
        async move {
            store
                .list_jobs(&JobQuery {
                    status: Some(status),
                    page: PageRequest::new(0, 1),
                    ..JobQuery::default()
                })
                .await
                .unwrap()
                .total
        }
    };
    let completed = count(JobStatus::Completed).await;
    let superseded = count(JobStatus::Superseded).await;
    assert_eq!(count(JobStatus::Failed).await, 0);
    assert_eq!(
        count(JobStatus::Queued).await + count(JobStatus::Running).await,
        0
    );
    assert_eq!(completed + superseded, WEBHOOKS as u64, "every job ended");
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.depth(), stats.dead), (0, 0), "the queue is empty");

    // Completed exactly once: one scan result per completed job, none twice.
    let mut scans = 0;
    for component in components.iter() {
        scans += store
            .list_scans(component.id, PageRequest::default())
            .await
            .unwrap()
            .total;
    }
    assert_eq!(scans, completed, "one applied scan per completed job");
    let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT sync_job_id FROM scan_results \
         GROUP BY sync_job_id HAVING count(*) > 1)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(twice, 0, "no job applied twice");

    // The newest scan of each component is the one its data comes from.
    for (i, component) in components.iter().enumerate() {
        let newest = (0..WEBHOOKS).rev().find(|n| n % COMPONENTS == i).unwrap();
        let job = store.get_job(jobs[&newest]).await.unwrap().unwrap();
        assert_eq!(
            job.status,
            JobStatus::Completed,
            "newest job of {}",
            component.name
        );
        let now = store.get(component.id).await.unwrap().unwrap();
        assert_eq!(
            now.last_sync_job_id,
            Some(job.id),
            "data of {}",
            component.name
        );
    }
    let processed = store
        .list_events(&WebhookEventQuery {
            status: Some(EventStatus::Processed),
            page: PageRequest::new(0, 1),
            ..WebhookEventQuery::default()
        })
        .await
        .unwrap()
        .total;
    assert_eq!(processed, WEBHOOKS as u64, "every event settled");
    store.close().await;
}
