//! What the SQLite adapter adds to the port contracts: the in-store queue written with the
//! job, group commit isolating a faulty request, durability across reopening, retention and
//! the bound on rejected payloads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_core::domain::{Component, JobStatus, RejectionKind};
use compliance_core::ports::{
    AcceptRecord, AcceptedWebhook, ComplianceStore, ComponentDirectory, CreatedJob, JobQueue,
    QueuePlacement, SnapshotApply, StartOutcome, SyncJobStore, WebhookEventLog,
};
use compliance_core::testing::fixtures::{self, at};
use compliance_core::{StoreError, Timestamp};
use compliance_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use tempfile::TempDir;

const LEASE: Duration = Duration::from_secs(30);

async fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(SqliteConfig::file(dir.path().join("compliance.db")))
        .await
        .unwrap()
}

async fn register(store: &SqliteStore, name: &str) -> Component {
    store
        .register(
            fixtures::component(name, &format!("https://github.com/acme/{name}")),
            at(0),
        )
        .await
        .unwrap()
}

/// An accepted webhook whose queue entry the store writes itself.
fn in_store(component: &Component, scan_at: i64, received: i64) -> AcceptedWebhook {
    let key = uuid::Uuid::new_v4().simple().to_string();
    let mut accepted = fixtures::accepted_webhook(
        component,
        "main",
        Some(at(scan_at)),
        at(received),
        Some(&key),
    );
    accepted.placement = QueuePlacement::InStore;
    accepted
}

fn created(record: AcceptRecord) -> CreatedJob {
    match record {
        AcceptRecord::Created(created) => created,
        AcceptRecord::Duplicate(prior) => panic!("unexpected duplicate of {prior:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_webhook_is_queued_in_the_same_write() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let queue = store.queue();
    let component = register(&store, "payments").await;

    let first = created(
        store
            .record_accepted(in_store(&component, 10, 10))
            .await
            .unwrap(),
    );
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        stats.ready, 1,
        "the store wrote the entry, nobody called enqueue"
    );

    // A newer scan for the same branch supersedes the pending job and takes its entry out.
    let second = created(
        store
            .record_accepted(in_store(&component, 20, 20))
            .await
            .unwrap(),
    );
    assert_eq!(second.superseded, vec![first.job.id]);
    assert_eq!(queue.stats().await.unwrap().ready, 1);
    let reservation = queue.reserve("w", LEASE).await.unwrap().unwrap();
    assert_eq!(reservation.job_id, second.job.id);
    assert_eq!(
        store.get_job(first.job.id).await.unwrap().unwrap().status,
        JobStatus::Superseded
    );

    // A job born superseded (older scan than the pending one) gets no entry.
    let late = created(
        store
            .record_accepted(in_store(&component, 5, 30))
            .await
            .unwrap(),
    );
    assert_eq!(late.job.status, JobStatus::Superseded);
    assert_eq!(queue.reserve("w", LEASE).await.unwrap(), None);

    // External placement leaves the queue alone.
    let external = fixtures::accepted_webhook(&component, "dev", None, at(40), None);
    created(store.record_accepted(external).await.unwrap());
    assert_eq!(
        queue.stats().await.unwrap().depth(),
        1,
        "only the leased entry"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_entry_of_a_superseded_job_stays_for_its_worker_to_ack() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let queue = store.queue();
    let component = register(&store, "payments").await;

    let first = created(
        store
            .record_accepted(in_store(&component, 10, 10))
            .await
            .unwrap(),
    );
    let held = queue.reserve("w", LEASE).await.unwrap().unwrap();
    assert_eq!(held.job_id, first.job.id);
    // Reserved but not started: still QUEUED, so a newer webhook supersedes it.
    let second = created(
        store
            .record_accepted(in_store(&component, 20, 20))
            .await
            .unwrap(),
    );
    assert_eq!(second.superseded, vec![first.job.id]);

    queue
        .ack(&held)
        .await
        .expect("the worker's lease is intact after the supersession");
    let next = queue.reserve("w", LEASE).await.unwrap().unwrap();
    assert_eq!(next.job_id, second.job.id);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_faulty_request_in_a_group_fails_alone() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let component = register(&store, "payments").await;

    // Many concurrent webhooks, one of which reuses another's event id: the group's
    // multi-row insert fails, the writer retries each alone, and only the copy fails.
    let mut calls = Vec::new();
    let original = in_store(&component, 1, 1);
    let mut copy = in_store(&component, 2, 2);
    copy.event.id = original.event.id;
    copy.job.webhook_event_id = Some(original.event.id);
    let mut requests = vec![original, copy];
    for i in 0..60 {
        let other = register(&store, &format!("svc-{i}")).await;
        requests.push(in_store(&other, 3, 3));
    }
    // Keep the writer busy with a large apply so that the requests queue up behind it and
    // are drained as one group.
    let busy = {
        let job = fixtures::new_job(component.id, "busy", None, at(0));
        let job = store
            .create_job(job, QueuePlacement::External)
            .await
            .unwrap()
            .job;
        let started = match store.start(job.id, at(1), LEASE).await.unwrap() {
            StartOutcome::Started(job) => job,
            other => panic!("start: {other:?}"),
        };
        let store = store.clone();
        tokio::spawn(async move {
            store
                .apply_snapshot(SnapshotApply {
                    job_id: started.id,
                    attempt: started.attempts,
                    component_id: started.component_id,
                    branch: started.branch.clone(),
                    scan_completed_at: None,
                    snapshot: fixtures::snapshot(2_000, 20_000, 1),
                    synced_at: at(2),
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    for request in requests {
        let store = store.clone();
        calls.push(tokio::spawn(
            async move { store.record_accepted(request).await },
        ));
    }
    let mut failures = Vec::new();
    let mut accepted = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(record) => {
                created(record);
                accepted += 1;
            }
            Err(e) => failures.push(e),
        }
    }
    busy.await.unwrap().unwrap();
    assert_eq!(accepted, 61, "every request but the copy is written");
    assert!(
        matches!(failures.as_slice(), [StoreError::Conflict { .. }]),
        "the copy fails with a conflict: {failures:?}"
    );
    assert_eq!(store.queue().stats().await.unwrap().ready, 61);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_webhooks_survive_reopening() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let component = register(&store, "payments").await;
    let mut jobs = Vec::new();
    for i in 0..20 {
        let other = register(&store, &format!("svc-{i}")).await;
        jobs.push(
            created(store.record_accepted(in_store(&other, i, i)).await.unwrap())
                .job
                .id,
        );
    }
    store.close().await;
    assert!(
        store.get(component.id).await.is_err(),
        "a closed store refuses calls"
    );

    let store = open(&dir).await;
    assert_eq!(store.get(component.id).await.unwrap(), Some(component));
    assert_eq!(store.active_jobs().await.unwrap(), 20);
    let queue = store.queue();
    let mut reserved = Vec::new();
    while let Some(r) = queue.reserve("w", LEASE).await.unwrap() {
        reserved.push(r.job_id);
    }
    assert_eq!(reserved, jobs, "every entry is back, in order");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_waiting_for_work_wake_on_commit() {
    let store = SqliteStore::open(SqliteConfig::memory()).await.unwrap();
    let component = register(&store, "payments").await;
    let queue = Arc::new(store.queue());

    let waiter = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move {
            let started = Instant::now();
            queue.wait_for_work(Duration::from_secs(20)).await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    created(
        store
            .record_accepted(in_store(&component, 1, 1))
            .await
            .unwrap(),
    );
    let waited = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the waiter woke")
        .unwrap();
    assert!(waited < Duration::from_secs(5), "woke after {waited:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_payloads_are_cut_to_the_configured_bound() {
    let store = SqliteStore::open(SqliteConfig::memory().rejected_payload_limit(16))
        .await
        .unwrap();
    let mut junk = fixtures::rejected_event(RejectionKind::InvalidSignature, at(1));
    junk.raw_payload = "x".repeat(10_000);
    let id = junk.id;
    store.record_rejected(junk).await.unwrap();

    let stored = store.get_event(id).await.unwrap().unwrap();
    assert_eq!(stored.raw_payload, "x".repeat(16));
    assert!(stored.payload_truncated);

    let mut small = fixtures::rejected_event(RejectionKind::InvalidPayload, at(2));
    small.raw_payload = "{}".to_owned();
    let id = small.id;
    store.record_rejected(small.clone()).await.unwrap();
    assert_eq!(store.get_event(id).await.unwrap().unwrap(), small);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_applies_the_configured_retention() {
    let config = SqliteConfig::memory()
        .event_retention(Duration::from_secs(3600))
        .job_retention(Duration::from_secs(7200));
    let store = SqliteStore::open(config).await.unwrap();
    let component = register(&store, "payments").await;
    let now = Timestamp::from(std::time::SystemTime::now());
    let hours_ago = |h: i64| now - chrono::Duration::hours(h);

    for received in [hours_ago(3), hours_ago(2), now] {
        let mut old = fixtures::rejected_event(RejectionKind::InvalidSignature, received);
        old.raw_payload = "junk".to_owned();
        store.record_rejected(old).await.unwrap();
    }
    let mut finished = Vec::new();
    for ended in [hours_ago(3), now] {
        let job = fixtures::new_job(component.id, "main", None, ended);
        let job = store
            .create_job(job, QueuePlacement::External)
            .await
            .unwrap()
            .job;
        store.fail(job.id, "gave up", ended).await.unwrap();
        finished.push(job.id);
    }
    let pending = fixtures::new_job(component.id, "dev", None, hours_ago(5));
    let pending = store
        .create_job(pending, QueuePlacement::External)
        .await
        .unwrap();

    let report = store.prune().await.unwrap();
    assert_eq!((report.events, report.jobs), (2, 1));
    assert!(store.get_job(finished[0]).await.unwrap().is_none());
    assert!(store.get_job(finished[1]).await.unwrap().is_some());
    assert!(
        store.get_job(pending.job.id).await.unwrap().is_some(),
        "unfinished jobs are never pruned"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_durability_opens_and_writes() {
    let dir = TempDir::new().unwrap();
    let config = SqliteConfig::file(dir.path().join("full.db")).durability(Durability::Full);
    let store = SqliteStore::open(config).await.unwrap();
    let component = register(&store, "payments").await;
    created(
        store
            .record_accepted(in_store(&component, 1, 1))
            .await
            .unwrap(),
    );
    assert_eq!(store.config().durability, Durability::Full);
    assert_eq!(store.queue().stats().await.unwrap().ready, 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_memory_stores_never_share_data() {
    let a = SqliteStore::open(SqliteConfig::memory()).await.unwrap();
    let b = SqliteStore::open(SqliteConfig::memory()).await.unwrap();
    register(&a, "payments").await;
    register(&b, "payments").await;
    let url = compliance_core::RepoUrl::parse("https://github.com/acme/payments").unwrap();
    assert!(a.find_by_repository(&url).await.unwrap().is_some());
    assert!(b.find_by_repository(&url).await.unwrap().is_some());
    a.close().await;
    b.close().await;
}
