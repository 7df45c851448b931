//! Checks of snapshot application and the dashboard's read queries.

use crate::domain::{
    ComplianceStatus, Dependency, DependencyQuery, EventStatus, IssueCategory, IssueKey,
    IssueQuery, IssueRecord, IssueStatus, JobStatus, LicenseCount, PageRequest, ScanSnapshot,
    Severity,
};
use crate::error::StoreError;
use crate::id::ComponentId;
use crate::ports::{ApplyOutcome, Stores};
use crate::testing::fixtures::{self, at};

use super::{accept, apply, component, create, job, register, running, start, sync, try_apply};

/// Every issue of `component` matching `query`, with paging wide open.
async fn issues(stores: &Stores, component: ComponentId, query: IssueQuery) -> Vec<IssueRecord> {
    let query = IssueQuery {
        page: PageRequest::new(0, PageRequest::MAX_LIMIT),
        ..query
    };
    stores
        .compliance
        .list_issues(component, &query)
        .await
        .unwrap()
        .items
}

/// Every dependency of `component`, in the list's order.
async fn dependencies(stores: &Stores, component: ComponentId) -> Vec<Dependency> {
    let query = DependencyQuery {
        page: PageRequest::new(0, PageRequest::MAX_LIMIT),
        ..DependencyQuery::default()
    };
    stores
        .compliance
        .list_dependencies(component, &query)
        .await
        .unwrap()
        .items
}

fn sorted_keys(snapshot: &ScanSnapshot) -> Vec<IssueKey> {
    let mut keys: Vec<IssueKey> = snapshot.issues.iter().map(|i| i.key.clone()).collect();
    keys.sort();
    keys
}

fn sorted_by_name(mut deps: Vec<Dependency>) -> Vec<Dependency> {
    deps.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.locator.cmp(&b.locator)));
    deps
}

/// One apply writes the scan result, issues, dependencies, component, job and event.
pub async fn apply_snapshot_stores_everything(stores: &Stores) {
    let registered = register(stores, "payment-service").await;
    let created = accept(stores, &registered, "main", Some(100), 10).await;
    let started = start(stores, created.job.id, 20).await;
    let snapshot = fixtures::snapshot(6, 5, 1);

    let summary = apply(stores, &started, &snapshot, 30).await;
    assert_eq!(summary.issues_count, 6);
    assert_eq!(summary.dependencies_count, 5);
    assert_eq!(summary.status, ComplianceStatus::Failing);
    assert_eq!(
        summary.new_issues,
        sorted_keys(&snapshot),
        "every issue is new, sorted"
    );
    assert!(summary.resolved_issues.is_empty());

    let done = job(stores, started.id).await;
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.completed_at, Some(at(30)));
    assert_eq!(done.issues_synced, Some(6));
    assert_eq!(done.dependencies_synced, Some(5));
    assert_eq!(done.new_issues, Some(6));
    assert_eq!(done.resolved_issues, Some(0));
    let event = stores
        .events
        .get_event(created.job.webhook_event_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.processing_status, EventStatus::Processed);
    assert_eq!(event.processed_at, Some(at(30)));

    let updated = component(stores, registered.id).await;
    assert_eq!(updated.compliance_status, ComplianceStatus::Failing);
    assert_eq!(updated.last_synced_at, Some(at(30)));
    assert_eq!(updated.last_scan_at, Some(at(100)));
    assert_eq!(
        updated.last_revision.as_deref(),
        Some(snapshot.revision.as_str())
    );
    assert_eq!(updated.last_sync_job_id, Some(started.id));

    let scans = stores
        .compliance
        .list_scans(registered.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(scans.total, 1);
    let scan = scans.items.first().unwrap();
    assert_eq!(scan.id, summary.scan_result_id);
    assert_eq!(scan.component_id, registered.id);
    assert_eq!(scan.sync_job_id, started.id);
    assert_eq!(scan.revision, snapshot.revision);
    assert_eq!(scan.branch, "main");
    assert_eq!(
        scan.scanned_at, snapshot.project.scanned_at,
        "the issue scan time"
    );
    assert_eq!(scan.synced_at, at(30));
    assert_eq!(scan.total_dependencies, 5);
    assert_eq!(scan.direct_dependencies, 2);
    assert_eq!(scan.issues_count, 6);
    assert_eq!(scan.overall_status, ComplianceStatus::Failing);
    assert_eq!(scan.project_title, "payment-service");

    let stored = issues(stores, registered.id, IssueQuery::default()).await;
    assert_eq!(stored.len(), 6);
    for record in &stored {
        let expected = snapshot
            .issues
            .iter()
            .find(|i| i.key == record.issue.key)
            .unwrap();
        assert_eq!(&record.issue, expected, "the issue is stored as fetched");
        assert_eq!(record.component_id, registered.id);
        assert_eq!(record.status, IssueStatus::Active);
        assert_eq!(record.first_seen_at, at(30));
        assert_eq!(record.resolved_at, None);
        assert_eq!(record.scan_result_id, summary.scan_result_id);
    }
    let deps = dependencies(stores, registered.id).await;
    assert_eq!(deps, sorted_by_name(snapshot.dependencies.clone()));

    let (manual, _) = sync(stores, &registered, "main", None, &snapshot, 50).await;
    let updated = component(stores, registered.id).await;
    assert_eq!(
        updated.last_scan_at,
        Some(at(100)),
        "no scan time keeps the last one"
    );
    assert_eq!(updated.last_sync_job_id, Some(manual.id));
    assert_eq!(updated.last_synced_at, Some(at(51)));

    let clean = register(stores, "clean-service").await;
    let (_, summary) = sync(
        stores,
        &clean,
        "main",
        Some(5),
        &fixtures::snapshot(0, 3, 2),
        40,
    )
    .await;
    assert_eq!(
        summary.status,
        ComplianceStatus::Passing,
        "no issue means passing"
    );
    let clean = component(stores, clean.id).await;
    assert_eq!(clean.compliance_status, ComplianceStatus::Passing);
}

/// Across consecutive snapshots, issues no longer reported are resolved and reappearing ones
/// are active again; the new and resolved lists say exactly what changed.
pub async fn apply_snapshot_resolves_the_rest(stores: &Stores) {
    let registered = register(stores, "payment-service").await;
    let first = fixtures::snapshot(6, 3, 1);
    let second = fixtures::snapshot_with_changes(&first, 2, 3, 2);
    sync(stores, &registered, "main", Some(100), &first, 10).await;

    let (job2, summary) = sync(stores, &registered, "main", Some(200), &second, 20).await;
    let fixed: Vec<IssueKey> = first.issues.iter().take(2).map(|i| i.key.clone()).collect();
    let mut fixed_sorted = fixed.clone();
    fixed_sorted.sort();
    let mut appeared: Vec<IssueKey> = second
        .issues
        .iter()
        .skip(4)
        .map(|i| i.key.clone())
        .collect();
    appeared.sort();
    assert_eq!(summary.issues_count, 7);
    assert_eq!(summary.new_issues, appeared);
    assert_eq!(summary.resolved_issues, fixed_sorted);
    let done = job(stores, job2.id).await;
    assert_eq!((done.new_issues, done.resolved_issues), (Some(3), Some(2)));
    assert_eq!(done.issues_synced, Some(7));

    let resolved = IssueQuery {
        status: Some(IssueStatus::Resolved),
        ..IssueQuery::default()
    };
    let resolved = issues(stores, registered.id, resolved).await;
    let mut keys: Vec<IssueKey> = resolved.iter().map(|r| r.issue.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, fixed_sorted);
    assert!(resolved.iter().all(|r| r.resolved_at == Some(at(21))));
    let active = IssueQuery {
        status: Some(IssueStatus::Active),
        ..IssueQuery::default()
    };
    assert_eq!(issues(stores, registered.id, active.clone()).await.len(), 7);
    assert_eq!(
        issues(stores, registered.id, IssueQuery::default())
            .await
            .len(),
        9
    );

    let (_, again) = sync(stores, &registered, "main", Some(300), &first, 30).await;
    assert_eq!(
        again.new_issues, fixed_sorted,
        "resolved issues that reappear are new"
    );
    assert_eq!(again.resolved_issues, appeared);
    let back = issues(stores, registered.id, active).await;
    assert_eq!(back.len(), 6);
    for record in back {
        assert_eq!(
            record.first_seen_at,
            at(11),
            "first_seen_at survives resolution"
        );
        assert_eq!(record.resolved_at, None);
    }
}

/// Applying the same snapshot twice leaves the same data and reports no change; an issue
/// reported twice in one snapshot is stored once.
pub async fn apply_snapshot_is_idempotent(stores: &Stores) {
    let registered = register(stores, "payment-service").await;
    let mut snapshot = fixtures::snapshot(5, 4, 1);
    let repeated = snapshot.issues.first().cloned().unwrap();
    snapshot.issues.push(repeated);

    let (_, first) = sync(stores, &registered, "main", Some(100), &snapshot, 10).await;
    assert_eq!(first.issues_count, 5, "an issue reported twice counts once");
    assert_eq!(first.new_issues.len(), 5);
    let issues_before = issues(stores, registered.id, IssueQuery::default()).await;
    let deps_before = dependencies(stores, registered.id).await;

    let (_, second) = sync(stores, &registered, "main", Some(200), &snapshot, 20).await;
    assert_eq!(second.issues_count, 5);
    assert_eq!(second.dependencies_count, 4);
    assert!(
        second.new_issues.is_empty(),
        "nothing is new the second time"
    );
    assert!(
        second.resolved_issues.is_empty(),
        "nothing is resolved the second time"
    );

    let issues_after = issues(stores, registered.id, IssueQuery::default()).await;
    assert_eq!(issues_after.len(), issues_before.len());
    for (before, after) in issues_before.iter().zip(&issues_after) {
        assert_eq!(after.issue, before.issue);
        assert_eq!(after.status, IssueStatus::Active);
        assert_eq!(after.first_seen_at, before.first_seen_at);
        assert_eq!(
            after.scan_result_id, second.scan_result_id,
            "last seen by the new scan"
        );
    }
    assert_eq!(dependencies(stores, registered.id).await, deps_before);
}

/// Each apply replaces the component's dependencies with the snapshot's.
pub async fn apply_snapshot_replaces_dependencies(stores: &Stores) {
    let registered = register(stores, "payment-service").await;
    sync(
        stores,
        &registered,
        "main",
        Some(10),
        &fixtures::snapshot(1, 5, 1),
        10,
    )
    .await;
    assert_eq!(dependencies(stores, registered.id).await.len(), 5);

    let other = fixtures::snapshot(1, 3, 2);
    let (_, summary) = sync(stores, &registered, "main", Some(20), &other, 20).await;
    assert_eq!(summary.dependencies_count, 3);
    let deps = dependencies(stores, registered.id).await;
    assert_eq!(
        deps,
        sorted_by_name(other.dependencies.clone()),
        "only the new set is left"
    );

    sync(
        stores,
        &registered,
        "main",
        Some(30),
        &fixtures::snapshot(1, 0, 3),
        30,
    )
    .await;
    assert!(dependencies(stores, registered.id).await.is_empty());
    let view = stores
        .compliance
        .compliance_view(registered.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.dependencies.total, 0);
}

/// A job that is not running at the given attempt cannot apply, and changes nothing.
pub async fn apply_snapshot_lease_lost(stores: &Stores) {
    let registered = register(stores, "payment-service").await;
    let snapshot = fixtures::snapshot(3, 2, 1);
    let queued = create(stores, &registered, "main", Some(5), 0).await.job;
    for attempt in [0, 1] {
        let not_started = crate::domain::SyncJob {
            attempts: attempt,
            ..queued.clone()
        };
        let result = try_apply(stores, &not_started, &snapshot, 1).await;
        assert!(
            matches!(result, Err(StoreError::LeaseLost { job_id }) if job_id == queued.id),
            "a queued job cannot apply (attempt {attempt}): {result:?}"
        );
    }

    let first = start(stores, queued.id, 0).await;
    let second = start(stores, queued.id, 100).await;
    assert_eq!(
        second.attempts, 2,
        "a second worker took the expired job over"
    );
    let result = try_apply(stores, &first, &snapshot, 101).await;
    assert!(
        matches!(result, Err(StoreError::LeaseLost { .. })),
        "the first worker lost the job: {result:?}"
    );
    let untouched = component(stores, registered.id).await;
    assert_eq!(untouched.compliance_status, ComplianceStatus::Unknown);
    assert_eq!(untouched.last_sync_job_id, None);
    assert!(issues(stores, registered.id, IssueQuery::default())
        .await
        .is_empty());
    let scans = stores
        .compliance
        .list_scans(registered.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(scans.total, 0);
    let still = job(stores, queued.id).await;
    assert_eq!((still.status, still.attempts), (JobStatus::Running, 2));

    apply(stores, &second, &snapshot, 102).await;
    let result = try_apply(stores, &second, &snapshot, 103).await;
    assert!(
        matches!(result, Err(StoreError::LeaseLost { .. })),
        "a completed job cannot apply again: {result:?}"
    );
}

/// A snapshot of a scan older than the component's data is not applied; the job ends
/// superseded by the job that applied the newer data.
pub async fn apply_snapshot_stale(stores: &Stores) {
    let registered = register(stores, "payment-service").await;
    let newer = running(stores, &registered, "main", Some(100), 10).await;
    let older = accept(stores, &registered, "develop", Some(50), 11).await;
    let older = start(stores, older.job.id, 12).await;
    let applied = fixtures::snapshot(3, 2, 1);
    apply(stores, &newer, &applied, 20).await;

    let outcome = try_apply(stores, &older, &fixtures::snapshot(9, 9, 2), 21)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ApplyOutcome::Stale {
            covered_by: Some(newer.id)
        }
    );
    let ended = job(stores, older.id).await;
    assert_eq!(ended.status, JobStatus::Superseded);
    assert_eq!(ended.superseded_by, Some(newer.id));
    let event = stores
        .events
        .get_event(older.webhook_event_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.processing_status, EventStatus::Processed);

    let kept = component(stores, registered.id).await;
    assert_eq!(kept.last_sync_job_id, Some(newer.id));
    assert_eq!(kept.last_scan_at, Some(at(100)));
    assert_eq!(
        kept.last_revision.as_deref(),
        Some(applied.revision.as_str())
    );
    assert_eq!(
        issues(stores, registered.id, IssueQuery::default())
            .await
            .len(),
        3
    );
    assert_eq!(dependencies(stores, registered.id).await.len(), 2);
}

/// The component view counts active issues, dependencies and licenses of the latest scan.
pub async fn compliance_view_counts(stores: &Stores) {
    let registered = register(stores, "payment-service").await;
    sync(
        stores,
        &registered,
        "main",
        Some(10),
        &fixtures::snapshot(3, 1, 9),
        10,
    )
    .await;
    let (latest, summary) = sync(
        stores,
        &registered,
        "main",
        Some(20),
        &fixtures::snapshot(15, 8, 1),
        20,
    )
    .await;

    let view = stores
        .compliance
        .compliance_view(registered.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.component, component(stores, registered.id).await);
    let scan = view.latest_scan.expect("a latest scan");
    assert_eq!(
        (scan.id, scan.sync_job_id),
        (summary.scan_result_id, latest.id)
    );

    let counts = view.issues;
    assert_eq!(counts.total, 15, "the first scan's issues are resolved");
    assert_eq!(
        (counts.licensing, counts.vulnerability, counts.quality),
        (5, 5, 5)
    );
    assert_eq!(
        (
            counts.critical,
            counts.high,
            counts.medium,
            counts.low,
            counts.unknown
        ),
        (3, 3, 3, 3, 3)
    );
    assert_eq!(
        (
            view.dependencies.total,
            view.dependencies.direct,
            view.dependencies.transitive
        ),
        (8, 3, 5)
    );
    let license = |name: Option<&str>, count| LicenseCount {
        license: name.map(str::to_owned),
        count,
    };
    assert_eq!(
        view.licenses,
        [
            license(Some("Apache-2.0"), 3),
            license(Some("MIT"), 3),
            license(Some("BSD-3-Clause"), 2),
            license(None, 1),
        ],
        "most used first, then by name; no license counts under None"
    );

    let fresh = register(stores, "fresh-service").await;
    let view = stores
        .compliance
        .compliance_view(fresh.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.latest_scan, None);
    assert_eq!(view.issues.total, 0);
    assert_eq!(view.dependencies.total, 0);
    assert!(view.licenses.is_empty());
}

/// Issues are ordered by severity then key, filter by status, category, severity and text,
/// and page.
pub async fn list_issues_filters_and_order(stores: &Stores) {
    let registered = register(stores, "payment-service").await;
    let first = fixtures::snapshot(15, 0, 1);
    sync(stores, &registered, "main", Some(10), &first, 10).await;
    let second = fixtures::snapshot_with_changes(&first, 3, 0, 2);
    sync(stores, &registered, "main", Some(20), &second, 20).await;

    // The fixture's index order is its (severity, key) order: severities change every three
    // issues and categories cycle licensing, vulnerability, quality within each three.
    let key = |i: usize| fixtures::issue(1, i).key;
    let keys = |records: Vec<IssueRecord>| -> Vec<IssueKey> {
        records.into_iter().map(|r| r.issue.key).collect()
    };
    let all = issues(stores, registered.id, IssueQuery::default()).await;
    assert_eq!(
        keys(all),
        (0..15).map(key).collect::<Vec<_>>(),
        "severity, then key"
    );

    let active = IssueQuery {
        status: Some(IssueStatus::Active),
        ..IssueQuery::default()
    };
    assert_eq!(
        keys(issues(stores, registered.id, active).await),
        (3..15).map(key).collect::<Vec<_>>()
    );
    let resolved = IssueQuery {
        status: Some(IssueStatus::Resolved),
        ..IssueQuery::default()
    };
    assert_eq!(
        keys(issues(stores, registered.id, resolved).await),
        [key(0), key(1), key(2)]
    );

    let vulnerabilities = IssueQuery {
        category: Some(IssueCategory::Vulnerability),
        ..IssueQuery::default()
    };
    assert_eq!(
        keys(issues(stores, registered.id, vulnerabilities).await),
        [key(1), key(4), key(7), key(10), key(13)]
    );
    let high = IssueQuery {
        severity: Some(Severity::High),
        ..IssueQuery::default()
    };
    assert_eq!(
        keys(issues(stores, registered.id, high).await),
        [key(3), key(4), key(5)]
    );
    let both = IssueQuery {
        category: Some(IssueCategory::Vulnerability),
        severity: Some(Severity::High),
        ..IssueQuery::default()
    };
    assert_eq!(keys(issues(stores, registered.id, both).await), [key(4)]);

    let by_package = IssueQuery {
        search: Some("PACKAGE-0007".to_owned()),
        ..IssueQuery::default()
    };
    assert_eq!(
        keys(issues(stores, registered.id, by_package).await),
        [key(7)]
    );
    let by_title = IssueQuery {
        search: Some("issue 12 in".to_owned()),
        ..IssueQuery::default()
    };
    assert_eq!(
        keys(issues(stores, registered.id, by_title).await),
        [key(12)]
    );

    let page = IssueQuery {
        page: PageRequest::new(2, 5),
        ..IssueQuery::default()
    };
    let page = stores
        .compliance
        .list_issues(registered.id, &page)
        .await
        .unwrap();
    assert_eq!((page.total, page.offset, page.limit), (15, 2, 5));
    assert_eq!(keys(page.items), (2..7).map(key).collect::<Vec<_>>());
}

/// Dependencies are ordered by name then locator, filter by directness, license and text,
/// and page.
pub async fn list_dependencies_filters_and_order(stores: &Stores) {
    let registered = register(stores, "payment-service").await;
    let mut snapshot = fixtures::snapshot(0, 10, 1);
    let mut twin = fixtures::dependency(1, 3);
    twin.locator = format!("npm+{}$0.9.0", twin.name);
    twin.is_direct = false;
    snapshot.dependencies.push(twin.clone());
    sync(stores, &registered, "main", Some(10), &snapshot, 10).await;

    let dep = |j: usize| fixtures::dependency(1, j).locator;
    let locators =
        |deps: Vec<Dependency>| -> Vec<String> { deps.into_iter().map(|d| d.locator).collect() };
    let list = |query: DependencyQuery| async move {
        stores
            .compliance
            .list_dependencies(registered.id, &query)
            .await
            .unwrap()
    };

    let all = list(DependencyQuery::default()).await;
    assert_eq!(all.total, 11);
    let mut expected: Vec<String> = (0..10).map(dep).collect();
    expected.insert(3, twin.locator.clone());
    assert_eq!(locators(all.items), expected, "by name, then locator");

    let direct = list(DependencyQuery {
        direct: Some(true),
        ..DependencyQuery::default()
    })
    .await;
    assert_eq!(locators(direct.items), [dep(0), dep(3), dep(6), dep(9)]);
    let transitive = list(DependencyQuery {
        direct: Some(false),
        ..DependencyQuery::default()
    })
    .await;
    assert_eq!(transitive.total, 7);

    let mit = list(DependencyQuery {
        license: Some("MIT".to_owned()),
        ..DependencyQuery::default()
    })
    .await;
    assert_eq!(locators(mit.items), [dep(0), dep(4), dep(5), dep(9)]);

    let search = list(DependencyQuery {
        search: Some("DEP-0001-0007".to_owned()),
        ..DependencyQuery::default()
    })
    .await;
    assert_eq!(locators(search.items), [dep(7)]);

    let page = list(DependencyQuery {
        page: PageRequest::new(3, 2),
        ..DependencyQuery::default()
    })
    .await;
    assert_eq!((page.total, page.offset, page.limit), (11, 3, 2));
    assert_eq!(locators(page.items), [twin.locator, dep(3)]);
}

/// Applied scans list newest first and page.
pub async fn list_scans_newest_first(stores: &Stores) {
    let registered = register(stores, "payment-service").await;
    let mut jobs = Vec::new();
    for (i, secs) in [10, 20, 30].into_iter().enumerate() {
        let snapshot = fixtures::snapshot(i, 1, 1);
        let (job, _) = sync(stores, &registered, "main", Some(secs), &snapshot, secs).await;
        jobs.push(job.id);
    }

    let scans = stores
        .compliance
        .list_scans(registered.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(scans.total, 3);
    let order: Vec<_> = scans.items.iter().map(|s| s.sync_job_id).collect();
    let mut newest_first = jobs.clone();
    newest_first.reverse();
    assert_eq!(order, newest_first);
    let counts: Vec<u32> = scans.items.iter().map(|s| s.issues_count).collect();
    assert_eq!(counts, [2, 1, 0]);

    let page = stores
        .compliance
        .list_scans(registered.id, PageRequest::new(1, 1))
        .await
        .unwrap();
    assert_eq!((page.total, page.offset, page.limit), (3, 1, 1));
    assert_eq!(
        page.items.first().map(|s| s.sync_job_id),
        jobs.get(1).copied()
    );
}

/// Reads about a component that does not exist find nothing and do not fail.
pub async fn reads_of_unknown_component(stores: &Stores) {
    let unknown = ComponentId::new();
    assert_eq!(
        stores.compliance.compliance_view(unknown).await.unwrap(),
        None
    );
    let scans = stores
        .compliance
        .list_scans(unknown, PageRequest::default())
        .await
        .unwrap();
    assert_eq!((scans.total, scans.items.len()), (0, 0));
    let issues = stores
        .compliance
        .list_issues(unknown, &IssueQuery::default())
        .await
        .unwrap();
    assert_eq!((issues.total, issues.items.len()), (0, 0));
    let deps = stores
        .compliance
        .list_dependencies(unknown, &DependencyQuery::default())
        .await
        .unwrap();
    assert_eq!((deps.total, deps.items.len()), (0, 0));
}
