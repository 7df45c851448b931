//! The whole pipeline in memory: signed bytes in, `sync.completed` out.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod pipeline_support;

use std::time::Duration;

use compliance_core::domain::{ComplianceStatus, EventStatus, IssueQuery, IssueStatus, JobStatus};
use compliance_core::events::{self, SyncCompleted, SyncPhase, SyncStarted};
use compliance_core::ports::Notifier;
use compliance_core::testing::fixtures;
use compliance_core::testing::{ScriptedScanSource, Step};
use compliance_core::worker::JobReport;

use pipeline_support::{next_event, rev, Harness};

#[tokio::test]
async fn signed_webhooks_end_in_sync_completed_with_new_and_resolved_counts() {
    let first_scan = fixtures::snapshot(5, 12, 7);
    // The second scan fixed the first two issues and found three new ones.
    let second_scan = fixtures::snapshot_with_changes(&first_scan, 2, 3, 7);
    let source =
        ScriptedScanSource::new(Step::ok(second_scan.clone())).then(Step::ok(first_scan.clone()));
    let h = Harness::new(source).await;
    let mut stream = h.notifier.subscribe().await.unwrap();
    let worker = h.worker();

    let outcome = h.send(&h.body(&first_scan.revision, "main", None)).await;
    let first_job = outcome.accepted().unwrap().sync_id;
    worker.run_once().await.unwrap().unwrap();

    let started = next_event(&mut stream, events::kind::SYNC_STARTED).await;
    assert_eq!(started.channel, events::component_channel(h.component.id));
    let started: SyncStarted = serde_json::from_value(started.data).unwrap();
    assert_eq!(started.sync_job_id, first_job);
    assert_eq!(started.trigger, "webhook");
    assert_eq!(
        started.revision.as_deref(),
        Some(first_scan.revision.as_str())
    );
    assert_eq!(started.phase, SyncPhase::Running);

    let completed = next_event(&mut stream, events::kind::SYNC_COMPLETED).await;
    assert_eq!(completed.channel, events::component_channel(h.component.id));
    let list_copy = next_event(&mut stream, events::kind::SYNC_COMPLETED).await;
    assert_eq!(list_copy.channel, events::COMPONENTS_CHANNEL);
    assert_eq!(list_copy.data, completed.data);
    let completed: SyncCompleted = serde_json::from_value(completed.data).unwrap();
    assert_eq!(completed.sync_job_id, first_job);
    assert_eq!(completed.component_id, h.component.id);
    assert_eq!(completed.issues_count, 5);
    assert_eq!(completed.dependencies_count, 12);
    assert_eq!(completed.status, ComplianceStatus::Failing);
    assert_eq!((completed.new_issues, completed.resolved_issues), (5, 0));
    assert_eq!(completed.new_issue_ids.len(), 5);
    assert!(!completed.ids_truncated);

    h.advance(Duration::from_secs(600));
    h.send(&h.body(&second_scan.revision, "main", None)).await;
    worker.run_once().await.unwrap().unwrap();

    let completed = next_event(&mut stream, events::kind::SYNC_COMPLETED).await;
    let completed: SyncCompleted = serde_json::from_value(completed.data).unwrap();
    assert_eq!(completed.issues_count, 6);
    assert_eq!((completed.new_issues, completed.resolved_issues), (3, 2));
    let fixed: Vec<String> = first_scan.issues[..2]
        .iter()
        .map(|i| format!("{}:{}", i.key.category.as_str(), i.key.fossa_id))
        .collect();
    let mut resolved = completed.resolved_issue_ids.clone();
    resolved.sort();
    let mut expected = fixed;
    expected.sort();
    assert_eq!(resolved, expected);

    // What the dashboard reads afterwards.
    let component = h.component_now().await;
    assert_eq!(
        component.last_revision.as_deref(),
        Some(second_scan.revision.as_str())
    );
    assert_eq!(component.last_synced_at, Some(h.now()));
    let resolved_rows = h
        .stores
        .compliance
        .list_issues(
            h.component.id,
            &IssueQuery {
                status: Some(IssueStatus::Resolved),
                ..IssueQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(resolved_rows.total, 2);
    let events = h.events().await;
    assert!(events
        .iter()
        .all(|e| e.processing_status == EventStatus::Processed));
    assert_eq!(
        h.source.requests()[0].revision.as_deref(),
        Some(first_scan.revision.as_str())
    );
    assert_eq!(
        h.source.requests()[0].locator,
        "custom+4821/github.com/acme/payment-service"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_fifty_webhooks_causes_at_most_two_fetches() {
    // The first fetch outlasts the burst; the one after it is quick.
    let source = ScriptedScanSource::new(
        Step::ok(fixtures::snapshot(3, 3, 1)).delayed(Duration::from_millis(50)),
    )
    .then(Step::ok(fixtures::snapshot(3, 3, 1)).delayed(Duration::from_millis(1_500)));
    let h = Harness::new(source).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(h.worker().run(shutdown.clone()));

    let mut sync_ids = Vec::new();
    for n in 0..50_u64 {
        let scanned = h.now();
        let outcome = h.send(&h.body(&rev(n), "main", Some(scanned))).await;
        assert_eq!(outcome.http_status(), 202, "webhook {n}");
        sync_ids.push(outcome.accepted().unwrap().sync_id);
        if n == 0 {
            // The first sync is running while the rest of the burst arrives.
            pipeline_support::eventually(Duration::from_secs(2), "first fetch", || async {
                h.source.calls() == 1
            })
            .await;
        }
        h.advance(Duration::from_secs(1));
    }
    let last = *sync_ids.last().unwrap();
    pipeline_support::eventually(Duration::from_secs(5), "last job completed", || async {
        h.job(last).await.status == JobStatus::Completed
    })
    .await;
    shutdown.cancel();
    worker.await.unwrap();

    assert_eq!(
        h.source.calls(),
        2,
        "one running sync, then the one pending"
    );
    assert_eq!(h.source.requests()[1].revision, Some(rev(49)));
    let jobs = h.jobs().await;
    assert_eq!(jobs.len(), 50);
    for job in &jobs {
        if job.id == sync_ids[0] || job.id == last {
            assert_eq!(job.status, JobStatus::Completed);
            continue;
        }
        assert_eq!(job.status, JobStatus::Superseded, "{job:?}");
        // Following the chain of replacements ends at the job that covered it.
        let mut cover = job.superseded_by.expect("names the job that covered it");
        while cover != last {
            cover = h.job(cover).await.superseded_by.expect("chain continues");
        }
    }
    let events = h.events().await;
    assert_eq!(events.len(), 50);
    assert!(events
        .iter()
        .all(|e| e.processing_status == EventStatus::Processed));
}

#[tokio::test]
async fn a_burst_before_any_worker_runs_is_one_fetch() {
    let h = Harness::new(ScriptedScanSource::always(fixtures::snapshot(1, 1, 1))).await;
    for n in 0..50_u64 {
        h.send(&h.body(&rev(n), "main", Some(h.now()))).await;
        h.advance(Duration::from_secs(1));
    }

    let worker = h.worker();
    while worker.run_once().await.unwrap().is_some() {}

    assert_eq!(h.source.calls(), 1);
    assert_eq!(h.source.requests()[0].revision, Some(rev(49)));
}

#[tokio::test]
async fn an_older_scan_arriving_late_is_recorded_but_never_overwrites() {
    let newer = fixtures::snapshot(4, 4, 2);
    let h = Harness::new(ScriptedScanSource::always(newer.clone())).await;
    let worker = h.worker();
    let t_new = h.now();
    let t_old = t_new - chrono::Duration::seconds(90);

    let applied = h.send(&h.body(&newer.revision, "main", Some(t_new))).await;
    let applied = applied.accepted().unwrap().sync_id;
    worker.run_once().await.unwrap().unwrap();
    h.advance(Duration::from_secs(10));

    let late = h.send(&h.body(&rev(77), "main", Some(t_old))).await;

    assert_eq!(late.http_status(), 202, "recorded and acknowledged");
    let late = late.accepted().unwrap();
    assert_eq!(late.status, "superseded");
    let job = h.job(late.sync_id).await;
    assert_eq!(job.status, JobStatus::Superseded);
    assert_eq!(job.superseded_by, Some(applied));
    while worker.run_once().await.unwrap().is_some() {}
    assert_eq!(h.source.calls(), 1, "nothing fetched for the old scan");
    let component = h.component_now().await;
    assert_eq!(
        component.last_revision.as_deref(),
        Some(newer.revision.as_str())
    );
    assert_eq!(component.last_sync_job_id, Some(applied));
    let logged = h
        .stores
        .events
        .get_event(job.webhook_event_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(logged.processing_status, EventStatus::Processed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_scan_fetched_while_a_newer_one_lands_is_not_applied() {
    // Two branches, so both syncs may run at once; the older scan's fetch is slow and finishes
    // after the newer scan has been applied.
    let h = Harness::new(
        ScriptedScanSource::new(Step::ok(fixtures::snapshot(2, 2, 5)))
            .then(Step::ok(fixtures::snapshot(9, 9, 4)).delayed(Duration::from_millis(1_000))),
    )
    .await;
    let t_new = h.now();
    let old = h
        .send(&h.body(
            &rev(4),
            "feature",
            Some(t_new - chrono::Duration::seconds(60)),
        ))
        .await;
    let old = old.accepted().unwrap().sync_id;
    let slow = h.worker();
    let slow = tokio::spawn(async move { slow.run_once().await });
    pipeline_support::eventually(Duration::from_secs(2), "old fetch", || async {
        h.source.calls() == 1
    })
    .await;

    let new = h.send(&h.body(&rev(5), "main", Some(t_new))).await;
    let new = new.accepted().unwrap().sync_id;
    let report = h.worker().run_once().await.unwrap().unwrap();
    assert!(matches!(report, JobReport::Completed { .. }), "{report:?}");

    let report = slow.await.unwrap().unwrap().unwrap();
    assert_eq!(
        report,
        JobReport::Stale {
            job_id: old,
            covered_by: Some(new)
        }
    );
    let job = h.job(old).await;
    assert_eq!(job.status, JobStatus::Superseded);
    assert_eq!(job.superseded_by, Some(new));
    assert_eq!(
        h.component_now().await.last_revision,
        Some(fixtures::revision(5))
    );
}
