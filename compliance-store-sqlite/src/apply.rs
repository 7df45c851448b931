//! Applying a fetched snapshot in one transaction.
//!
//! The statements, in order: check the job holds the lease; insert the scan result; read the
//! component's active issue keys once; upsert every issue of the snapshot as `ACTIVE`
//! (multi-row `INSERT … ON CONFLICT DO UPDATE`); resolve every other active issue with one
//! `UPDATE`; replace the dependencies (one `DELETE`, multi-row `INSERT`s) and the per-license
//! counts; update the component (status, pointers, counts), the job and its event. The new
//! and resolved issue lists come from the one read of the prior active set.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::sqlite::SqliteConnection;
use sqlx::Row;

use compliance_core::domain::{
    ComplianceStatus, Dependency, Issue, IssueCategory, IssueCounts, IssueKey, JobStatus,
};
use compliance_core::ports::{ApplyOutcome, ApplySummary, SnapshotApply};
use compliance_core::{ScanResultId, StoreError, SyncJobId};

use crate::error::{corrupt, store_error};
use crate::jobs::supersede_job;
use crate::rows::{self, category_code, fold, severity_code, ts, ts_opt};
use crate::sql::insert_rows;

const CONTEXT: &str = "apply snapshot";

fn db(e: sqlx::Error) -> StoreError {
    store_error(CONTEXT, e)
}

/// Converts a count for the `u32` fields of summaries, saturating.
fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// An issue with its stored forms.
struct IssueRow<'a> {
    issue: &'a Issue,
    detected_at: Option<i64>,
    title_folded: String,
    package_folded: String,
}

/// A dependency with its stored forms.
struct DependencyRow<'a> {
    dep: &'a Dependency,
    name_folded: String,
    licenses: String,
}

/// Applies `apply` inside the writer's transaction.
pub(crate) async fn apply_snapshot(
    conn: &mut SqliteConnection,
    apply: SnapshotApply,
) -> Result<ApplyOutcome, StoreError> {
    let synced_at = ts(apply.synced_at)?;
    let scan_completed_at = ts_opt(apply.scan_completed_at)?;
    let scanned_at = ts_opt(
        apply
            .snapshot
            .project
            .scanned_at
            .or(apply.snapshot.project.last_analyzed_at),
    )?;

    let event_id = check_lease(conn, &apply).await?;
    let component =
        sqlx::query("SELECT last_scan_at, last_sync_job_id FROM components WHERE id = ?")
            .bind(apply.component_id.as_uuid())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::not_found(format!("component {}", apply.component_id)))?;
    let last_scan_at: Option<i64> = rows::get(&component, "last_scan_at")?;
    let last_job: Option<uuid::Uuid> = rows::get(&component, "last_sync_job_id")?;
    if matches!((scan_completed_at, last_scan_at), (Some(scan), Some(last)) if scan < last) {
        let covered_by = last_job.map(SyncJobId::from_uuid);
        supersede_job(conn, apply.job_id, covered_by, synced_at).await?;
        return Ok(ApplyOutcome::Stale { covered_by });
    }

    // A key or locator reported twice counts once; the last report wins, as repeated
    // upserts would.
    let incoming: BTreeMap<&IssueKey, &Issue> = apply
        .snapshot
        .issues
        .iter()
        .map(|issue| (&issue.key, issue))
        .collect();
    let mut dependencies = distinct_dependencies(&apply.snapshot.dependencies);
    // In key order, so that the inserts append to the b-tree instead of landing at random.
    dependencies.sort_unstable_by(|a, b| (&a.name, &a.locator).cmp(&(&b.name, &b.locator)));
    let issue_rows = incoming
        .values()
        .map(|issue| {
            Ok(IssueRow {
                issue,
                detected_at: ts_opt(issue.detected_at)?,
                title_folded: fold(&issue.title),
                package_folded: fold(&issue.package_name),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let dependency_rows: Vec<DependencyRow<'_>> = dependencies
        .iter()
        .map(|dep| DependencyRow {
            dep,
            name_folded: fold(&dep.name),
            licenses: serde_json::to_string(&dep.licenses).unwrap_or_else(|_| "[]".to_owned()),
        })
        .collect();

    let was_active = active_keys(conn, &apply).await?;
    let new_issues: Vec<IssueKey> = incoming
        .keys()
        .filter(|k| !was_active.contains(**k))
        .map(|k| (*k).clone())
        .collect();
    let resolved_issues: Vec<IssueKey> = was_active
        .iter()
        .filter(|k| !incoming.contains_key(k))
        .cloned()
        .collect();

    let status = ComplianceStatus::from_issue_count(incoming.len());
    let direct = dependencies.iter().filter(|d| d.is_direct).count();
    let mut counts = IssueCounts::default();
    for issue in incoming.values() {
        counts.add(issue.key.category, issue.severity);
    }
    let summary = ApplySummary {
        scan_result_id: ScanResultId::new(),
        issues_count: count_u32(incoming.len()),
        dependencies_count: count_u32(dependencies.len()),
        status,
        new_issues,
        resolved_issues,
    };
    let scan_id = summary.scan_result_id.as_uuid();

    sqlx::query(
        "INSERT INTO scan_results (id, component_id, sync_job_id, revision, branch, scanned_at, \
         synced_at, total_dependencies, direct_dependencies, issues_count, overall_status, \
         project_title) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(scan_id)
    .bind(apply.component_id.as_uuid())
    .bind(apply.job_id.as_uuid())
    .bind(apply.snapshot.revision.as_str())
    .bind(apply.branch.as_str())
    .bind(scanned_at)
    .bind(synced_at)
    .bind(i64::from(summary.dependencies_count))
    .bind(i64::try_from(direct).unwrap_or(i64::MAX))
    .bind(i64::from(summary.issues_count))
    .bind(status.as_str())
    .bind(apply.snapshot.project.title.as_str())
    .execute(&mut *conn)
    .await
    .map_err(db)?;

    upsert_issues(conn, &apply, scan_id, synced_at, &issue_rows).await?;
    replace_dependencies(conn, &apply, scan_id, &dependency_rows).await?;
    update_component(
        conn,
        &apply,
        &counts,
        status,
        synced_at,
        scan_completed_at,
        summary.dependencies_count,
        direct,
    )
    .await?;
    complete_job(conn, &apply, &summary, synced_at, event_id).await?;
    Ok(ApplyOutcome::Applied(summary))
}

/// Checks the job is `RUNNING` at the attempt that fetched the snapshot and belongs to the
/// component; returns its webhook event.
async fn check_lease(
    conn: &mut SqliteConnection,
    apply: &SnapshotApply,
) -> Result<Option<uuid::Uuid>, StoreError> {
    let job = sqlx::query(
        "SELECT status, attempts, component_id, webhook_event_id FROM sync_jobs WHERE id = ?",
    )
    .bind(apply.job_id.as_uuid())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?
    .ok_or_else(|| StoreError::not_found(format!("sync job {}", apply.job_id)))?;
    let status: String = rows::get(&job, "status")?;
    let attempts: i64 = rows::get(&job, "attempts")?;
    if status != JobStatus::Running.as_str() || attempts != i64::from(apply.attempt) {
        return Err(StoreError::LeaseLost {
            job_id: apply.job_id,
        });
    }
    let component: uuid::Uuid = rows::get(&job, "component_id")?;
    if component != apply.component_id.as_uuid() {
        return Err(StoreError::Invalid {
            what: format!(
                "sync job {} belongs to component {component}, not {}",
                apply.job_id, apply.component_id
            ),
        });
    }
    rows::get(&job, "webhook_event_id")
}

/// The component's active issue keys before the apply.
async fn active_keys(
    conn: &mut SqliteConnection,
    apply: &SnapshotApply,
) -> Result<BTreeSet<IssueKey>, StoreError> {
    let found = sqlx::query(
        "SELECT category, fossa_id FROM issues WHERE component_id = ? AND status = 'ACTIVE'",
    )
    .bind(apply.component_id.as_uuid())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    found
        .iter()
        .map(|row| {
            let code: i64 = row.try_get("category").map_err(db)?;
            let category = IssueCategory::ALL
                .into_iter()
                .find(|c| category_code(*c) == code)
                .ok_or_else(|| corrupt(format!("category = {code}")))?;
            Ok(IssueKey {
                category,
                fossa_id: row.try_get("fossa_id").map_err(db)?,
            })
        })
        .collect()
}

async fn upsert_issues(
    conn: &mut SqliteConnection,
    apply: &SnapshotApply,
    scan_id: uuid::Uuid,
    synced_at: i64,
    issues: &[IssueRow<'_>],
) -> Result<(), StoreError> {
    let component = apply.component_id.as_uuid();
    insert_rows(
        conn,
        "INSERT INTO issues (component_id, category, fossa_id, issue_type, severity, title, \
         title_folded, package_name, package_folded, package_version, package_locator, \
         package_manager, license, cve, cvss, direct, detected_at, url, status, first_seen_at, \
         resolved_at, scan_result_id) VALUES ",
        "ON CONFLICT (component_id, category, fossa_id) DO UPDATE SET \
         issue_type = excluded.issue_type, severity = excluded.severity, \
         title = excluded.title, title_folded = excluded.title_folded, \
         package_name = excluded.package_name, package_folded = excluded.package_folded, \
         package_version = excluded.package_version, \
         package_locator = excluded.package_locator, \
         package_manager = excluded.package_manager, license = excluded.license, \
         cve = excluded.cve, cvss = excluded.cvss, direct = excluded.direct, \
         detected_at = excluded.detected_at, url = excluded.url, status = 'ACTIVE', \
         resolved_at = NULL, scan_result_id = excluded.scan_result_id",
        22,
        1024,
        issues,
        |q, row| {
            let i = row.issue;
            q.bind(component)
                .bind(category_code(i.key.category))
                .bind(i.key.fossa_id.as_str())
                .bind(i.issue_type.as_str())
                .bind(severity_code(i.severity))
                .bind(i.title.as_str())
                .bind(row.title_folded.as_str())
                .bind(i.package_name.as_str())
                .bind(row.package_folded.as_str())
                .bind(i.package_version.as_deref())
                .bind(i.package_locator.as_deref())
                .bind(i.package_manager.as_deref())
                .bind(i.license.as_deref())
                .bind(i.cve.as_deref())
                .bind(i.cvss)
                .bind(i.direct)
                .bind(row.detected_at)
                .bind(i.url.as_deref())
                .bind("ACTIVE")
                .bind(synced_at)
                .bind(None::<i64>)
                .bind(scan_id)
        },
    )
    .await
    .map_err(db)?;

    // Every issue of the snapshot now points at the new scan result; the rest are resolved.
    sqlx::query(
        "UPDATE issues SET status = 'RESOLVED', resolved_at = ? \
         WHERE component_id = ? AND status = 'ACTIVE' AND scan_result_id <> ?",
    )
    .bind(synced_at)
    .bind(component)
    .bind(scan_id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

async fn replace_dependencies(
    conn: &mut SqliteConnection,
    apply: &SnapshotApply,
    scan_id: uuid::Uuid,
    dependencies: &[DependencyRow<'_>],
) -> Result<(), StoreError> {
    let component = apply.component_id.as_uuid();
    // Upsert in key order, then drop what the snapshot no longer has: an unchanged
    // dependency is rewritten in place instead of deleted and inserted again.
    insert_rows(
        conn,
        "INSERT INTO dependencies (component_id, locator, name, name_folded, version, \
         package_manager, is_direct, depth, licenses, license_expression, scan_result_id) \
         VALUES ",
        "ON CONFLICT (component_id, name, locator) DO UPDATE SET \
         name_folded = excluded.name_folded, version = excluded.version, \
         package_manager = excluded.package_manager, is_direct = excluded.is_direct, \
         depth = excluded.depth, licenses = excluded.licenses, \
         license_expression = excluded.license_expression, \
         scan_result_id = excluded.scan_result_id",
        11,
        2048,
        dependencies,
        |q, row| {
            let d = row.dep;
            q.bind(component)
                .bind(d.locator.as_str())
                .bind(d.name.as_str())
                .bind(row.name_folded.as_str())
                .bind(d.version.as_deref())
                .bind(d.package_manager.as_str())
                .bind(d.is_direct)
                .bind(i64::from(d.depth))
                .bind(row.licenses.as_str())
                .bind(d.license_expression.as_deref())
                .bind(scan_id)
        },
    )
    .await
    .map_err(db)?;
    sqlx::query("DELETE FROM dependencies WHERE component_id = ? AND scan_result_id <> ?")
        .bind(component)
        .bind(scan_id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    sqlx::query("DELETE FROM component_licenses WHERE component_id = ?")
        .bind(component)
        .execute(&mut *conn)
        .await
        .map_err(db)?;

    let breakdown = license_breakdown(dependencies.iter().map(|row| row.dep));
    insert_rows(
        conn,
        "INSERT INTO component_licenses (component_id, license, count) VALUES ",
        "",
        3,
        1024,
        &breakdown,
        |q, (license, count)| {
            q.bind(component)
                .bind(license.as_deref())
                .bind(i64::try_from(*count).unwrap_or(i64::MAX))
        },
    )
    .await
    .map_err(db)
}

#[allow(clippy::too_many_arguments)]
async fn update_component(
    conn: &mut SqliteConnection,
    apply: &SnapshotApply,
    counts: &IssueCounts,
    status: ComplianceStatus,
    synced_at: i64,
    scan_completed_at: Option<i64>,
    dependencies: u32,
    direct: usize,
) -> Result<(), StoreError> {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    sqlx::query(
        "UPDATE components SET compliance_status = ?, last_synced_at = ?, \
         last_scan_at = coalesce(?, last_scan_at), last_revision = ?, last_sync_job_id = ?, \
         issues_total = ?, issues_licensing = ?, issues_vulnerability = ?, issues_quality = ?, \
         issues_critical = ?, issues_high = ?, issues_medium = ?, issues_low = ?, \
         issues_unknown = ?, dependencies_total = ?, dependencies_direct = ? WHERE id = ?",
    )
    .bind(status.as_str())
    .bind(synced_at)
    .bind(scan_completed_at)
    .bind(apply.snapshot.revision.as_str())
    .bind(apply.job_id.as_uuid())
    .bind(n(counts.total))
    .bind(n(counts.licensing))
    .bind(n(counts.vulnerability))
    .bind(n(counts.quality))
    .bind(n(counts.critical))
    .bind(n(counts.high))
    .bind(n(counts.medium))
    .bind(n(counts.low))
    .bind(n(counts.unknown))
    .bind(i64::from(dependencies))
    .bind(i64::try_from(direct).unwrap_or(i64::MAX))
    .bind(apply.component_id.as_uuid())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

async fn complete_job(
    conn: &mut SqliteConnection,
    apply: &SnapshotApply,
    summary: &ApplySummary,
    synced_at: i64,
    event_id: Option<uuid::Uuid>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sync_jobs SET status = 'COMPLETED', completed_at = ?, next_attempt_at = NULL, \
         issues_synced = ?, dependencies_synced = ?, new_issues = ?, resolved_issues = ? \
         WHERE id = ?",
    )
    .bind(synced_at)
    .bind(i64::from(summary.issues_count))
    .bind(i64::from(summary.dependencies_count))
    .bind(i64::from(count_u32(summary.new_issues.len())))
    .bind(i64::from(count_u32(summary.resolved_issues.len())))
    .bind(apply.job_id.as_uuid())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if let Some(event) = event_id {
        sqlx::query(
            "UPDATE webhook_events SET processing_status = 'PROCESSED', processed_at = ? \
             WHERE id = ?",
        )
        .bind(synced_at)
        .bind(event)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// The snapshot's dependencies with one entry per locator (the last one reported wins).
fn distinct_dependencies(dependencies: &[Dependency]) -> Vec<&Dependency> {
    let mut by_locator: HashMap<&str, usize> = HashMap::with_capacity(dependencies.len());
    let mut out: Vec<&Dependency> = Vec::with_capacity(dependencies.len());
    for dep in dependencies {
        match by_locator
            .get(dep.locator.as_str())
            .and_then(|&i| out.get_mut(i))
        {
            Some(existing) => *existing = dep,
            None => {
                by_locator.insert(dep.locator.as_str(), out.len());
                out.push(dep);
            }
        }
    }
    out
}

/// Dependencies per license (each distinct license of a dependency counts once; none counts
/// under `None`).
fn license_breakdown<'a>(
    dependencies: impl Iterator<Item = &'a Dependency>,
) -> Vec<(Option<String>, u64)> {
    let mut counts: BTreeMap<Option<&str>, u64> = BTreeMap::new();
    for dep in dependencies {
        let licenses: BTreeSet<&str> = dep.licenses.iter().map(String::as_str).collect();
        if licenses.is_empty() {
            *counts.entry(None).or_default() += 1;
        }
        for license in licenses {
            *counts.entry(Some(license)).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(license, count)| (license.map(str::to_owned), count))
        .collect()
}
