//! What this adapter adds to the port contracts: migrations under a lock, group commit,
//! the in-store queue and its wake-ups, fan-out between instances, and atomic applies.
//!
//! Needs `COMPLIANCE_TEST_POSTGRES_URL`; skips with a message when it is unset.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_core::domain::{
    Component, DependencyQuery, EventStatus, IssueQuery, IssueStatus, JobQuery, JobStatus,
    NewSyncJob, PageRequest, ScanSnapshot, SyncJob, Trigger,
};
use compliance_core::ports::{
    AcceptRecord, AcceptedWebhook, ApplyOutcome, ChannelEvent, ComplianceStore, ComponentDirectory,
    JobQueue, Notification, Notifier, QueuePlacement, SnapshotApply, StartOutcome, SyncJobStore,
    WebhookEventLog,
};
use compliance_core::testing::fixtures::{self, at};
use compliance_core::{StoreError, SyncJobId};
use compliance_store_postgres::PgStore;
use futures::StreamExt;

use common::TestDb;

async fn register(store: &PgStore, name: &str) -> Component {
    let url = format!("https://github.com/acme/{name}");
    store
        .register(fixtures::component(name, &url), at(0))
        .await
        .unwrap()
}

fn in_store(mut accepted: AcceptedWebhook) -> AcceptedWebhook {
    accepted.placement = QueuePlacement::InStore;
    accepted
}

async fn start_job(store: &PgStore, component: &Component, scan: i64) -> SyncJob {
    let job = NewSyncJob {
        id: SyncJobId::new(),
        component_id: component.id,
        trigger: Trigger::Manual,
        webhook_event_id: None,
        revision: None,
        branch: "main".to_owned(),
        scan_completed_at: Some(at(scan)),
        queued_at: at(scan),
    };
    let created = store
        .create_job(job, QueuePlacement::External)
        .await
        .unwrap();
    match store
        .start(created.job.id, at(scan), Duration::from_secs(30))
        .await
        .unwrap()
    {
        StartOutcome::Started(job) => job,
        other => panic!("expected the job to start, got {other:?}"),
    }
}

fn apply_of(job: &SyncJob, snapshot: ScanSnapshot, synced: i64) -> SnapshotApply {
    SnapshotApply {
        job_id: job.id,
        attempt: job.attempts,
        component_id: job.component_id,
        branch: job.branch.clone(),
        scan_completed_at: job.scan_completed_at,
        snapshot,
        synced_at: at(synced),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_connects_on_a_fresh_schema_migrate_once() {
    let Some(db) = TestDb::from_env("concurrent_connects_on_a_fresh_schema_migrate_once").await
    else {
        return;
    };
    let schema = db.schema();
    let connects: Vec<_> = (0..6)
        .map(|_| {
            let config = db.config(&schema).max_connections(2);
            tokio::spawn(PgStore::connect(config))
        })
        .collect();
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(connect.await.unwrap().expect("every instance starts"));
    }

    let admin = db.admin().await;
    let applied: Vec<(i64, bool)> = sqlx::query_as(&format!(
        "SELECT version, success FROM \"{schema}\"._sqlx_migrations ORDER BY version"
    ))
    .fetch_all(&admin)
    .await
    .unwrap();
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert_eq!(
        applied.len(),
        migrations,
        "each migration applied exactly once"
    );
    assert!(applied.iter().all(|(_, ok)| *ok));
    // Every instance works on the one schema.
    for (i, store) in stores.iter().enumerate() {
        register(store, &format!("service-{i}")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_migrated_by_a_newer_version_is_refused() {
    let Some(db) = TestDb::from_env("a_database_migrated_by_a_newer_version_is_refused").await
    else {
        return;
    };
    let schema = db.schema();
    PgStore::connect(db.config(&schema))
        .await
        .unwrap()
        .close()
        .await;
    let admin = db.admin().await;
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\"._sqlx_migrations \
         (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', true, '\\x00', 0)"
    ))
    .execute(&admin)
    .await
    .unwrap();

    let refused = PgStore::connect(db.config(&schema)).await;
    assert!(
        matches!(refused, Err(StoreError::Backend { .. })),
        "expected a backend error, got {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_is_unavailable() {
    let Some(db) = TestDb::from_env("an_unreachable_database_is_unavailable").await else {
        return;
    };
    // A port nothing listens on: bind one and let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut url = url::Url::parse(db.url()).unwrap();
    url.set_port(Some(port)).unwrap();
    let started = Instant::now();
    let result = PgStore::connect(
        compliance_store_postgres::PgConfig::new(url.to_string())
            .connect_timeout(Duration::from_secs(2))
            .acquire_timeout(Duration::from_secs(1)),
    )
    .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable { .. })),
        "expected Unavailable, got {result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "it fails fast");
}

/// Holds the first batch on a row lock so that the rest of a burst lands in one batch, then
/// checks the burst coalesced as one-at-a-time writes would have.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_coalesces_inside_one_group_commit() {
    const BURST: i64 = 40;
    let Some(db) = TestDb::from_env("a_burst_coalesces_inside_one_group_commit").await else {
        return;
    };
    let schema = db.schema();
    let store = PgStore::connect(db.config(&schema).ingest_writers(1))
        .await
        .unwrap();
    let component = register(&store, "payment-service").await;
    let first = fixtures::accepted_webhook(&component, "main", Some(at(1)), at(1), Some("k-0"));
    let AcceptRecord::Created(first_created) =
        store.record_accepted(in_store(first)).await.unwrap()
    else {
        panic!("the first delivery is new");
    };

    // Lock the pending job: the next batch waits on it while the burst piles up behind.
    let admin = db.admin().await;
    let mut blocker = admin.begin().await.unwrap();
    sqlx::query(&format!(
        "SELECT id FROM \"{schema}\".sync_jobs WHERE id = $1 FOR UPDATE"
    ))
    .bind(first_created.job.id.as_uuid())
    .execute(&mut *blocker)
    .await
    .unwrap();

    // Scans arrive out of order; the newest is number BURST / 2.
    let scan_of = |i: i64| if i == BURST / 2 { 10_000 } else { 10 + i };
    let tasks: Vec<_> = (1..=BURST)
        .map(|i| {
            let store = store.clone();
            let accepted = in_store(fixtures::accepted_webhook(
                &component,
                "main",
                Some(at(scan_of(i))),
                at(100 + i),
                Some(&format!("k-{i}")),
            ));
            tokio::spawn(async move { (accepted.job.id, store.record_accepted(accepted).await) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    blocker.rollback().await.unwrap();

    let mut newest = None;
    for task in tasks {
        let (id, result) = task.await.unwrap();
        let AcceptRecord::Created(created) = result.unwrap() else {
            panic!("fresh delivery keys are never duplicates");
        };
        assert_eq!(created.job.id, id);
        if created.job.scan_completed_at == Some(at(10_000)) {
            newest = Some(id);
        }
    }
    let newest = newest.unwrap();

    let jobs = store
        .list_jobs(&JobQuery {
            page: PageRequest::new(0, 1000),
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.total, u64::try_from(BURST + 1).unwrap());
    let queued: Vec<SyncJobId> = jobs
        .items
        .iter()
        .filter(|j| j.status == JobStatus::Queued)
        .map(|j| j.id)
        .collect();
    assert_eq!(queued, vec![newest], "only the newest scan is left pending");
    let ids: HashSet<SyncJobId> = jobs.items.iter().map(|j| j.id).collect();
    for job in jobs.items.iter().filter(|j| j.id != newest) {
        assert_eq!(job.status, JobStatus::Superseded, "{job:?}");
        let by = job.superseded_by.expect("a superseded job names its cover");
        assert!(ids.contains(&by), "{by} is one of the burst's jobs");
        let event = store
            .get_event(job.webhook_event_id.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.processing_status, EventStatus::Processed);
    }

    // Exactly one queue entry: the pending job's.
    let queue = store.queue();
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.leased, stats.delayed), (1, 0, 0));
    let reservation = queue
        .reserve("test", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reservation.job_id, newest);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_inside_one_batch_and_across_instances() {
    const CALLERS: usize = 24;
    let Some(db) = TestDb::from_env("duplicates_inside_one_batch_and_across_instances").await
    else {
        return;
    };
    let schema = db.schema();
    let a = PgStore::connect(db.config(&schema)).await.unwrap();
    let b = PgStore::connect(db.config(&schema)).await.unwrap();
    let component = register(&a, "payment-service").await;

    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = barrier.clone();
            let accepted = fixtures::accepted_webhook(
                &component,
                "main",
                Some(at(5)),
                at(10),
                Some("one-delivery"),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                store.record_accepted(accepted).await.unwrap()
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            AcceptRecord::Created(c) => created.push(c),
            AcceptRecord::Duplicate(d) => duplicates.push(d),
        }
    }
    assert_eq!(created.len(), 1);
    let job = created[0].job.id;
    assert!(duplicates.iter().all(|d| d.sync_job_id == job));
    assert_eq!(a.active_jobs().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_entries_are_written_with_in_store_jobs_only() {
    let Some(db) = TestDb::from_env("queue_entries_are_written_with_in_store_jobs_only").await
    else {
        return;
    };
    let store = db.store().await;
    let queue = store.queue();
    assert_eq!(queue.placement(), QueuePlacement::InStore);
    let api = register(&store, "api").await;
    let web = register(&store, "web").await;

    let external = fixtures::accepted_webhook(&api, "main", Some(at(1)), at(1), Some("a"));
    store.record_accepted(external).await.unwrap();
    assert_eq!(
        queue.stats().await.unwrap().depth(),
        0,
        "external: no entry"
    );

    let inside = in_store(fixtures::accepted_webhook(
        &web,
        "main",
        Some(at(1)),
        at(1),
        Some("b"),
    ));
    let job = inside.job.id;
    store.record_accepted(inside).await.unwrap();
    let reservation = queue
        .reserve("w", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("the job's entry came with it");
    assert_eq!(reservation.job_id, job);
    queue.ack(&reservation).await.unwrap();

    // A newer webhook supersedes the pending job and takes its place in the queue.
    let first = in_store(fixtures::accepted_webhook(
        &web,
        "dev",
        Some(at(2)),
        at(2),
        Some("c"),
    ));
    let second = in_store(fixtures::accepted_webhook(
        &web,
        "dev",
        Some(at(3)),
        at(3),
        Some("d"),
    ));
    let second_id = second.job.id;
    store.record_accepted(first).await.unwrap();
    store.record_accepted(second).await.unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.ready, 1, "the superseded job's entry is gone");
    let reservation = queue
        .reserve("w", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reservation.job_id, second_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enqueue_on_one_instance_wakes_workers_on_another() {
    let Some(db) = TestDb::from_env("an_enqueue_on_one_instance_wakes_workers_on_another").await
    else {
        return;
    };
    let schema = db.schema();
    let a = PgStore::connect(db.config(&schema)).await.unwrap();
    let b = PgStore::connect(db.config(&schema)).await.unwrap();
    let component = register(&a, "payment-service").await;

    // The first wait opens the listener; let it settle.
    b.queue().wait_for_work(Duration::from_millis(100)).await;
    let waiter = {
        let queue = b.queue();
        tokio::spawn(async move {
            let started = Instant::now();
            queue.wait_for_work(Duration::from_secs(20)).await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let accepted = in_store(fixtures::accepted_webhook(
        &component,
        "main",
        Some(at(1)),
        at(1),
        Some("k"),
    ));
    a.record_accepted(accepted).await.unwrap();
    let waited = waiter.await.unwrap();
    assert!(
        waited < Duration::from_secs(5),
        "woken by the enqueue, not by the 20 s timeout ({waited:?})"
    );
}

fn big_event(n: u64, bytes: usize) -> ChannelEvent {
    ChannelEvent {
        channel: "components".to_owned(),
        event: "sync.completed".to_owned(),
        data: serde_json::json!({ "n": n, "padding": "x".repeat(bytes) }),
        timestamp: at(i64::try_from(n).unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_of_any_size_reach_other_instances_in_order() {
    let Some(db) = TestDb::from_env("events_of_any_size_reach_other_instances_in_order").await
    else {
        return;
    };
    let schema = db.schema();
    let publisher = PgStore::connect(db.config(&schema))
        .await
        .unwrap()
        .notifier();
    let listener = PgStore::connect(db.config(&schema))
        .await
        .unwrap()
        .notifier();
    let mut stream = listener.subscribe().await.unwrap();

    // Small, over NOTIFY's 8000-byte limit, and far over it, interleaved.
    let sizes = [10, 9_000, 100, 250_000, 7_890, 8_100];
    for (n, size) in sizes.iter().enumerate() {
        publisher.publish(big_event(n as u64, *size)).await.unwrap();
    }
    for (n, size) in sizes.iter().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream is open");
        assert_eq!(got, Notification::Event(big_event(n as u64, *size)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_listener_reconnects_and_reports_a_gap() {
    let Some(db) = TestDb::from_env("a_killed_listener_reconnects_and_reports_a_gap").await else {
        return;
    };
    let schema = db.schema();
    let name = format!("listener-{}", uuid::Uuid::new_v4().simple());
    let listening = PgStore::connect(db.config(&schema).application_name(&name))
        .await
        .unwrap();
    let publisher = PgStore::connect(db.config(&schema))
        .await
        .unwrap()
        .notifier();
    let mut stream = listening.notifier().subscribe().await.unwrap();
    publisher.publish(big_event(1, 10)).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    assert_eq!(
        first.unwrap().unwrap(),
        Notification::Event(big_event(1, 10))
    );

    let admin = db.admin().await;
    assert!(
        db.terminate(&admin, &name).await >= 1,
        "the listener was connected"
    );
    let gap = tokio::time::timeout(Duration::from_secs(15), stream.next())
        .await
        .expect("a notification within 15 s")
        .unwrap();
    assert!(matches!(gap, Notification::Gap { .. }), "got {gap:?}");

    // Listening again: later events arrive.
    publisher.publish(big_event(2, 10)).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    assert_eq!(
        next.unwrap().unwrap(),
        Notification::Event(big_event(2, 10))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_apply_changes_nothing() {
    let Some(db) = TestDb::from_env("a_failed_apply_changes_nothing").await else {
        return;
    };
    let store = db.store().await;
    let component = register(&store, "payment-service").await;
    let first = fixtures::snapshot(30, 40, 1);
    let job = start_job(&store, &component, 10).await;
    store
        .apply_snapshot(apply_of(&job, first.clone(), 11))
        .await
        .unwrap();
    let view_before = store.compliance_view(component.id).await.unwrap();

    // PostgreSQL refuses NUL bytes in text: the dependency insert fails after the issues
    // were written inside the transaction.
    let mut broken = fixtures::snapshot_with_changes(&first, 10, 10, 2);
    broken.dependencies[7].name = "nul\0byte".to_owned();
    let job = start_job(&store, &component, 20).await;
    let failed = store.apply_snapshot(apply_of(&job, broken, 21)).await;
    assert!(failed.is_err(), "{failed:?}");

    assert_eq!(
        store.compliance_view(component.id).await.unwrap(),
        view_before
    );
    let issues = store
        .list_issues(
            component.id,
            &IssueQuery {
                page: PageRequest::new(0, 1000),
                ..IssueQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(issues.total, 30);
    assert!(issues.items.iter().all(|i| i.status == IssueStatus::Active));
    let still = store.get_job(job.id).await.unwrap().unwrap();
    assert_eq!(still.status, JobStatus::Running, "the job can be retried");

    // The same job applies a good snapshot afterwards.
    let good = fixtures::snapshot_with_changes(&first, 10, 10, 2);
    let outcome = store
        .apply_snapshot(apply_of(&job, good, 22))
        .await
        .unwrap();
    let ApplyOutcome::Applied(summary) = outcome else {
        panic!("expected Applied, got {outcome:?}");
    };
    assert_eq!(
        (summary.new_issues.len(), summary.resolved_issues.len()),
        (10, 10)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_dependencies_and_unchanged_issues_read_back_right() {
    let Some(db) =
        TestDb::from_env("changed_dependencies_and_unchanged_issues_read_back_right").await
    else {
        return;
    };
    let store = db.store().await;
    let component = register(&store, "payment-service").await;
    let first = fixtures::snapshot(12, 10, 1);
    let job = start_job(&store, &component, 10).await;
    let ApplyOutcome::Applied(one) = store
        .apply_snapshot(apply_of(&job, first.clone(), 11))
        .await
        .unwrap()
    else {
        panic!("applied");
    };

    // Next scan: 3 issues fixed, 2 new, one issue's title changed; one dependency changes
    // version, one is gone, one is new.
    let mut second = fixtures::snapshot_with_changes(&first, 3, 2, 1);
    second.issues[0].title = "Renamed".to_owned();
    second.dependencies[4].version = Some("9.9.9".to_owned());
    second.dependencies[4].licenses = vec!["ISC".to_owned()];
    second.dependencies.remove(6);
    second.dependencies.push(fixtures::dependency(7, 3));
    let job = start_job(&store, &component, 20).await;
    let ApplyOutcome::Applied(two) = store
        .apply_snapshot(apply_of(&job, second.clone(), 21))
        .await
        .unwrap()
    else {
        panic!("applied");
    };

    let issues = store
        .list_issues(
            component.id,
            &IssueQuery {
                page: PageRequest::new(0, 1000),
                ..IssueQuery::default()
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(issues.len(), 14);
    for record in &issues {
        let in_second = second.issues.iter().find(|i| i.key == record.issue.key);
        match in_second {
            Some(issue) => {
                assert_eq!(record.status, IssueStatus::Active);
                assert_eq!(&record.issue, issue, "stored as last reported");
                assert_eq!(
                    record.scan_result_id, two.scan_result_id,
                    "seen by the last scan"
                );
            }
            None => {
                assert_eq!(record.status, IssueStatus::Resolved);
                assert_eq!(record.resolved_at, Some(at(21)));
                assert_eq!(
                    record.scan_result_id, one.scan_result_id,
                    "last seen by the first"
                );
            }
        }
    }

    let mut expected = second.dependencies.clone();
    expected.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.locator.cmp(&b.locator)));
    let stored = store
        .list_dependencies(
            component.id,
            &DependencyQuery {
                page: PageRequest::new(0, 1000),
                ..DependencyQuery::default()
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(stored, expected);
}

/// The queue entry is written in the transaction of the event and the job: when it cannot be
/// written, neither are they.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_queue_write_leaves_no_event_and_no_job() {
    let Some(db) = TestDb::from_env("a_failed_queue_write_leaves_no_event_and_no_job").await else {
        return;
    };
    let schema = db.schema();
    let store = PgStore::connect(db.config(&schema)).await.unwrap();
    let component = register(&store, "payment-service").await;
    let admin = db.admin().await;
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION \"{schema}\".refuse() RETURNS trigger LANGUAGE plpgsql AS \
           $$BEGIN RAISE EXCEPTION 'queue refused'; END$$; \
         CREATE TRIGGER refuse BEFORE INSERT ON \"{schema}\".queue_entries \
           FOR EACH ROW EXECUTE FUNCTION \"{schema}\".refuse()"
    ))
    .execute(&admin)
    .await
    .unwrap();

    let accepted = in_store(fixtures::accepted_webhook(
        &component,
        "main",
        Some(at(1)),
        at(1),
        Some("k"),
    ));
    let (event, job) = (accepted.event.id, accepted.job.id);
    let refused = store.record_accepted(accepted.clone()).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(store.get_event(event).await.unwrap(), None, "no event");
    assert_eq!(store.get_job(job).await.unwrap(), None, "no job");
    assert_eq!(store.active_jobs().await.unwrap(), 0);

    // Once the queue takes entries again, the same delivery is new, not a duplicate.
    sqlx::query(&format!(
        "DROP TRIGGER refuse ON \"{schema}\".queue_entries"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let record = store.record_accepted(accepted).await.unwrap();
    assert!(matches!(record, AcceptRecord::Created(_)), "{record:?}");
    let reservation = store
        .queue()
        .reserve("w", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("the entry came with the job");
    assert_eq!(reservation.job_id, job);
}

/// Every pooled connection runs with the configured statement timeout, schema and name, and a
/// statement held up past the timeout fails as unavailable instead of hanging the request.
#[tokio::test(flavor = "multi_thread")]
async fn statements_are_cut_at_the_configured_timeout() {
    let Some(db) = TestDb::from_env("statements_are_cut_at_the_configured_timeout").await else {
        return;
    };
    let schema = db.schema();
    let name = format!("timeout-{}", uuid::Uuid::new_v4().simple());
    let store = PgStore::connect(
        db.config(&schema)
            .statement_timeout(Some(Duration::from_millis(300)))
            .application_name(&name),
    )
    .await
    .unwrap();
    let component = register(&store, "payment-service").await;

    let settings: (String, String, String, String) = sqlx::query_as(
        "SELECT current_setting('statement_timeout'), current_setting('search_path'), \
           current_setting('application_name'), \
           current_setting('idle_in_transaction_session_timeout')",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        settings,
        ("300ms".to_owned(), schema.clone(), name, "1min".to_owned())
    );

    // Another session holds the table: the read waits for its lock until the timeout.
    let admin = db.admin().await;
    let mut holder = admin.begin().await.unwrap();
    sqlx::query(&format!(
        "LOCK TABLE \"{schema}\".components IN ACCESS EXCLUSIVE MODE"
    ))
    .execute(&mut *holder)
    .await
    .unwrap();
    let started = Instant::now();
    let read = store.get(component.id).await;
    let waited = started.elapsed();
    assert!(
        matches!(read, Err(StoreError::Unavailable { .. })),
        "expected Unavailable, got {read:?}"
    );
    assert!(waited < Duration::from_secs(3), "cut after {waited:?}");
    holder.rollback().await.unwrap();
    assert!(store.get(component.id).await.unwrap().is_some());
}
