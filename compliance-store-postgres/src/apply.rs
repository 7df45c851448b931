//! Applying a snapshot: one transaction of set-based statements that write only what changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use compliance_core::domain::{
    ComplianceStatus, Dependency, Issue, IssueCounts, IssueKey, JobStatus, LicenseCount, ScanResult,
};
use compliance_core::ports::{ApplyOutcome, ApplySummary, SnapshotApply};
use compliance_core::{ScanResultId, StoreError, SyncJobId, Timestamp};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::{corrupt, PgStoreError};
use crate::rows::{
    self, category_rank, int4, int4_usize, micros, severity_rank, DEPENDENCY_COLUMNS, ISSUE_FIELDS,
};

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The snapshot's issues, one per key (the last report wins, as repeated upserts would), with
/// times cut to what the database keeps.
fn distinct_issues(issues: Vec<Issue>) -> BTreeMap<IssueKey, Issue> {
    issues
        .into_iter()
        .map(|mut issue| {
            issue.detected_at = issue.detected_at.map(micros);
            (issue.key.clone(), issue)
        })
        .collect()
}

/// The snapshot's dependencies, one per locator (the last report wins).
fn distinct_dependencies(dependencies: Vec<Dependency>) -> Vec<Dependency> {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Dependency> = Vec::with_capacity(dependencies.len());
    for dep in dependencies {
        match at.get(&dep.locator).and_then(|&i| out.get_mut(i)) {
            Some(existing) => *existing = dep,
            None => {
                at.insert(dep.locator.clone(), out.len());
                out.push(dep);
            }
        }
    }
    out
}

/// Dependencies per license, most used first, then by name, "no license" last on ties.
fn license_breakdown(dependencies: &[Dependency]) -> Vec<LicenseCount> {
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
    let mut list: Vec<LicenseCount> = counts
        .into_iter()
        .map(|(license, count)| LicenseCount {
            license: license.map(str::to_owned),
            count,
        })
        .collect();
    list.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| match (&a.license, &b.license) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
    });
    list
}

/// What the job row says about the apply.
struct JobCheck {
    component_id: Uuid,
    webhook_event_id: Option<Uuid>,
}

async fn check_job(
    tx: &mut Transaction<'_, Postgres>,
    apply: &SnapshotApply,
) -> Result<JobCheck, StoreError> {
    let row = sqlx::query(
        "SELECT status, attempts, component_id, webhook_event_id FROM sync_jobs \
         WHERE id = $1 FOR UPDATE",
    )
    .bind(apply.job_id.as_uuid())
    .fetch_optional(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("locking the job of a snapshot"))?;
    let Some(row) = row else {
        return Err(StoreError::not_found(format!("sync job {}", apply.job_id)));
    };
    let status: String = row.try_get("status").map_err(corrupt)?;
    let attempts: i32 = row.try_get("attempts").map_err(corrupt)?;
    if status != JobStatus::Running.as_str() || rows::count(attempts) != apply.attempt {
        return Err(StoreError::LeaseLost {
            job_id: apply.job_id,
        });
    }
    let component_id: Uuid = row.try_get("component_id").map_err(corrupt)?;
    if component_id != apply.component_id.as_uuid() {
        return Err(StoreError::Invalid {
            what: format!(
                "sync job {} belongs to component {component_id}, not {}",
                apply.job_id, apply.component_id
            ),
        });
    }
    Ok(JobCheck {
        component_id,
        webhook_event_id: row.try_get("webhook_event_id").map_err(corrupt)?,
    })
}

/// Ends the job as superseded by the job behind newer data.
async fn settle_stale(
    tx: &mut Transaction<'_, Postgres>,
    job: SyncJobId,
    event: Option<Uuid>,
    covered_by: Option<SyncJobId>,
    now: Timestamp,
) -> Result<(), PgStoreError> {
    sqlx::query(
        "UPDATE sync_jobs SET status = 'SUPERSEDED', superseded_by = $2, completed_at = $3, \
           next_attempt_at = NULL WHERE id = $1",
    )
    .bind(job.as_uuid())
    .bind(covered_by.map(|j| j.as_uuid()))
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("superseding a stale sync"))?;
    settle_event(tx, event, now).await
}

async fn settle_event(
    tx: &mut Transaction<'_, Postgres>,
    event: Option<Uuid>,
    now: Timestamp,
) -> Result<(), PgStoreError> {
    let Some(event) = event else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE webhook_events SET processing_status = 'PROCESSED', processed_at = $2 \
         WHERE id = $1",
    )
    .bind(event)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("settling a webhook event"))?;
    Ok(())
}

/// Writes the snapshot's issues as active and resolves every other active one; returns the
/// new and the resolved keys, sorted.
///
/// The active issues are read and compared first, and only new, changed or reappearing ones
/// are written: on a steady project most of a sync's issues are unchanged, and rewriting
/// thousands of rows per sync would be most of its cost. The comparison is done here rather
/// than in SQL so that its cost never depends on the planner's guess about array sizes.
async fn write_issues(
    tx: &mut Transaction<'_, Postgres>,
    component: Uuid,
    issues: &BTreeMap<IssueKey, Issue>,
    scan: ScanResultId,
    previous_scan: Option<Uuid>,
    now: Timestamp,
) -> Result<(Vec<IssueKey>, Vec<IssueKey>), PgStoreError> {
    let active = sqlx::query(&format!(
        "SELECT {ISSUE_FIELDS} FROM issues WHERE component_id = $1 AND status = 'ACTIVE'"
    ))
    .bind(component)
    .fetch_all(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("reading active issues"))?;
    let mut was_active: BTreeMap<IssueKey, Issue> = BTreeMap::new();
    for row in &active {
        let issue = rows::issue(row)?;
        was_active.insert(issue.key.clone(), issue);
    }

    let mut c = IssueColumns::with_capacity(issues.len());
    for (key, issue) in issues {
        if was_active.get(key) != Some(issue) {
            c.push(issue);
        }
    }
    if !c.category.is_empty() {
        sqlx::query(
            "INSERT INTO issues (component_id, category, fossa_id, category_rank, \
               severity_rank, issue_type, severity, title, package_name, package_version, \
               package_locator, package_manager, license, cve, cvss, direct, detected_at, url, \
               status, first_seen_at, resolved_at, scan_result_id) \
             SELECT $1, t.*, 'ACTIVE', $19, NULL, $20 FROM unnest($2::text[], $3::text[], \
               $4::int2[], $5::int2[], $6::text[], $7::text[], $8::text[], $9::text[], \
               $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::float8[], \
               $16::bool[], $17::timestamptz[], $18::text[]) AS t \
             ON CONFLICT (component_id, category, fossa_id) DO UPDATE SET \
               category_rank = EXCLUDED.category_rank, severity_rank = EXCLUDED.severity_rank, \
               issue_type = EXCLUDED.issue_type, severity = EXCLUDED.severity, \
               title = EXCLUDED.title, package_name = EXCLUDED.package_name, \
               package_version = EXCLUDED.package_version, \
               package_locator = EXCLUDED.package_locator, \
               package_manager = EXCLUDED.package_manager, license = EXCLUDED.license, \
               cve = EXCLUDED.cve, cvss = EXCLUDED.cvss, direct = EXCLUDED.direct, \
               detected_at = EXCLUDED.detected_at, url = EXCLUDED.url, status = 'ACTIVE', \
               resolved_at = NULL, scan_result_id = EXCLUDED.scan_result_id",
        )
        .bind(component)
        .bind(c.category)
        .bind(c.fossa_id)
        .bind(c.category_rank)
        .bind(c.severity_rank)
        .bind(c.issue_type)
        .bind(c.severity)
        .bind(c.title)
        .bind(c.package_name)
        .bind(c.package_version)
        .bind(c.package_locator)
        .bind(c.package_manager)
        .bind(c.license)
        .bind(c.cve)
        .bind(c.cvss)
        .bind(c.direct)
        .bind(c.detected_at)
        .bind(c.url)
        .bind(now)
        .bind(scan.as_uuid())
        .execute(&mut **tx)
        .await
        .map_err(PgStoreError::sqlx("upserting issues"))?;
    }

    let resolved: Vec<IssueKey> = was_active
        .keys()
        .filter(|k| !issues.contains_key(*k))
        .cloned()
        .collect();
    if !resolved.is_empty() {
        let (categories, ids): (Vec<&str>, Vec<&str>) = resolved
            .iter()
            .map(|k| (k.category.as_str(), k.fossa_id.as_str()))
            .unzip();
        // A resolved issue was last seen by the scan before this one.
        sqlx::query(
            "UPDATE issues i SET status = 'RESOLVED', resolved_at = $4, \
               scan_result_id = COALESCE($5, i.scan_result_id) \
             FROM unnest($2::text[], $3::text[]) AS r(category, fossa_id) \
             WHERE i.component_id = $1 AND i.category = r.category \
               AND i.fossa_id = r.fossa_id COLLATE \"C\"",
        )
        .bind(component)
        .bind(categories)
        .bind(ids)
        .bind(now)
        .bind(previous_scan)
        .execute(&mut **tx)
        .await
        .map_err(PgStoreError::sqlx("resolving issues"))?;
    }

    let new_issues = issues
        .keys()
        .filter(|k| !was_active.contains_key(*k))
        .cloned()
        .collect();
    Ok((new_issues, resolved))
}

/// Issues as column arrays, for `unnest`.
struct IssueColumns<'a> {
    category: Vec<&'static str>,
    fossa_id: Vec<&'a str>,
    category_rank: Vec<i16>,
    severity_rank: Vec<i16>,
    issue_type: Vec<&'a str>,
    severity: Vec<&'static str>,
    title: Vec<&'a str>,
    package_name: Vec<&'a str>,
    package_version: Vec<Option<&'a str>>,
    package_locator: Vec<Option<&'a str>>,
    package_manager: Vec<Option<&'a str>>,
    license: Vec<Option<&'a str>>,
    cve: Vec<Option<&'a str>>,
    cvss: Vec<Option<f64>>,
    direct: Vec<bool>,
    detected_at: Vec<Option<Timestamp>>,
    url: Vec<Option<&'a str>>,
}

impl<'a> IssueColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            category: Vec::with_capacity(n),
            fossa_id: Vec::with_capacity(n),
            category_rank: Vec::with_capacity(n),
            severity_rank: Vec::with_capacity(n),
            issue_type: Vec::with_capacity(n),
            severity: Vec::with_capacity(n),
            title: Vec::with_capacity(n),
            package_name: Vec::with_capacity(n),
            package_version: Vec::with_capacity(n),
            package_locator: Vec::with_capacity(n),
            package_manager: Vec::with_capacity(n),
            license: Vec::with_capacity(n),
            cve: Vec::with_capacity(n),
            cvss: Vec::with_capacity(n),
            direct: Vec::with_capacity(n),
            detected_at: Vec::with_capacity(n),
            url: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, issue: &'a Issue) {
        self.category.push(issue.key.category.as_str());
        self.fossa_id.push(&issue.key.fossa_id);
        self.category_rank.push(category_rank(issue.key.category));
        self.severity_rank.push(severity_rank(issue.severity));
        self.issue_type.push(&issue.issue_type);
        self.severity.push(issue.severity.as_str());
        self.title.push(&issue.title);
        self.package_name.push(&issue.package_name);
        self.package_version.push(issue.package_version.as_deref());
        self.package_locator.push(issue.package_locator.as_deref());
        self.package_manager.push(issue.package_manager.as_deref());
        self.license.push(issue.license.as_deref());
        self.cve.push(issue.cve.as_deref());
        self.cvss.push(issue.cvss);
        self.direct.push(issue.direct);
        self.detected_at.push(issue.detected_at.map(micros));
        self.url.push(issue.url.as_deref());
    }
}

/// Makes the component's dependencies the snapshot's: reads the stored ones, then deletes
/// those gone or changed and inserts those new or changed.
async fn write_dependencies(
    tx: &mut Transaction<'_, Postgres>,
    component: Uuid,
    dependencies: &[Dependency],
) -> Result<(), PgStoreError> {
    let stored = sqlx::query(&format!(
        "SELECT {DEPENDENCY_COLUMNS} FROM dependencies WHERE component_id = $1"
    ))
    .bind(component)
    .fetch_all(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("reading dependencies"))?;
    let mut stored: HashMap<String, Dependency> = stored
        .iter()
        .map(|row| rows::dependency(row).map(|d| (d.locator.clone(), d)))
        .collect::<Result<_, _>>()?;

    let mut insert: Vec<&Dependency> = Vec::new();
    let mut delete: Vec<String> = Vec::new();
    for dep in dependencies {
        match stored.remove(&dep.locator) {
            Some(old) if old == *dep => {}
            Some(old) => {
                delete.push(old.locator);
                insert.push(dep);
            }
            None => insert.push(dep),
        }
    }
    delete.extend(stored.into_keys());

    if !delete.is_empty() {
        sqlx::query("DELETE FROM dependencies WHERE component_id = $1 AND locator = ANY($2)")
            .bind(component)
            .bind(delete)
            .execute(&mut **tx)
            .await
            .map_err(PgStoreError::sqlx("removing dependencies"))?;
    }
    if insert.is_empty() {
        return Ok(());
    }
    let n = insert.len();
    let mut locator = Vec::with_capacity(n);
    let mut name = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    let mut manager = Vec::with_capacity(n);
    let mut direct = Vec::with_capacity(n);
    let mut depth = Vec::with_capacity(n);
    let mut licenses = Vec::with_capacity(n);
    let mut expression = Vec::with_capacity(n);
    for d in insert {
        locator.push(d.locator.as_str());
        name.push(d.name.as_str());
        version.push(d.version.as_deref());
        manager.push(d.package_manager.as_str());
        direct.push(d.is_direct);
        depth.push(int4(d.depth));
        licenses.push(serde_json::to_string(&d.licenses).unwrap_or_else(|_| "[]".to_owned()));
        expression.push(d.license_expression.as_deref());
    }
    sqlx::query(
        "INSERT INTO dependencies (component_id, locator, name, version, package_manager, \
           is_direct, depth, licenses, license_expression) \
         SELECT $1, t.l, t.n, t.v, t.m, t.d, t.p, t.j::jsonb, t.e FROM unnest($2::text[], \
           $3::text[], $4::text[], $5::text[], $6::bool[], $7::int4[], $8::text[], $9::text[]) \
           AS t(l, n, v, m, d, p, j, e)",
    )
    .bind(component)
    .bind(locator)
    .bind(name)
    .bind(version)
    .bind(manager)
    .bind(direct)
    .bind(depth)
    .bind(licenses)
    .bind(expression)
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("inserting dependencies"))?;
    Ok(())
}

/// Applies `apply` inside `tx` (the caller commits).
pub(crate) async fn apply_in(
    tx: &mut Transaction<'_, Postgres>,
    apply: SnapshotApply,
) -> Result<ApplyOutcome, StoreError> {
    let now = micros(apply.synced_at);
    let job = check_job(tx, &apply).await?;

    let component = sqlx::query(
        "SELECT last_scan_at, last_sync_job_id, last_scan_result_id FROM components \
             WHERE id = $1 FOR UPDATE",
    )
    .bind(job.component_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("locking the component of a snapshot"))?;
    let Some(component) = component else {
        return Err(StoreError::not_found(format!(
            "component {}",
            apply.component_id
        )));
    };
    let last_scan_at: Option<Timestamp> = component.try_get("last_scan_at").map_err(corrupt)?;
    let last_sync: Option<Uuid> = component.try_get("last_sync_job_id").map_err(corrupt)?;
    let previous_scan: Option<Uuid> = component.try_get("last_scan_result_id").map_err(corrupt)?;
    let scan_completed_at = apply.scan_completed_at.map(micros);
    if matches!((scan_completed_at, last_scan_at), (Some(s), Some(l)) if s < l) {
        let covered_by = last_sync.map(SyncJobId::from_uuid);
        settle_stale(tx, apply.job_id, job.webhook_event_id, covered_by, now).await?;
        return Ok(ApplyOutcome::Stale { covered_by });
    }

    let snapshot = apply.snapshot;
    let scan_id = ScanResultId::new();
    let issues = distinct_issues(snapshot.issues);
    let dependencies = distinct_dependencies(snapshot.dependencies);
    let status = ComplianceStatus::from_issue_count(issues.len());
    let mut counts = IssueCounts::default();
    for issue in issues.values() {
        counts.add(issue.key.category, issue.severity);
    }
    let direct = dependencies.iter().filter(|d| d.is_direct).count();

    let scan = ScanResult {
        id: scan_id,
        component_id: apply.component_id,
        sync_job_id: apply.job_id,
        revision: snapshot.revision.clone(),
        branch: apply.branch,
        scanned_at: snapshot
            .project
            .scanned_at
            .or(snapshot.project.last_analyzed_at)
            .map(micros),
        synced_at: now,
        total_dependencies: count_u32(dependencies.len()),
        direct_dependencies: count_u32(direct),
        issues_count: count_u32(issues.len()),
        overall_status: status,
        project_title: snapshot.project.title.clone(),
    };
    insert_scan(tx, &scan).await?;
    let (new_issues, resolved_issues) =
        write_issues(tx, job.component_id, &issues, scan_id, previous_scan, now).await?;
    write_dependencies(tx, job.component_id, &dependencies).await?;

    let licenses: Vec<(Option<String>, u64)> = license_breakdown(&dependencies)
        .into_iter()
        .map(|l| (l.license, l.count))
        .collect();
    sqlx::query(
        "UPDATE components SET compliance_status = $2, last_synced_at = $3, \
               last_scan_at = COALESCE($4, last_scan_at), last_revision = $5, \
               last_sync_job_id = $6, issues_total = $7, issues_licensing = $8, \
               issues_vulnerability = $9, issues_quality = $10, issues_critical = $11, \
               issues_high = $12, issues_medium = $13, issues_low = $14, issues_unknown = $15, \
               dependencies_total = $16, dependencies_direct = $17, license_counts = $18, \
               last_scan_result_id = $19 \
             WHERE id = $1",
    )
    .bind(job.component_id)
    .bind(status.as_str())
    .bind(now)
    .bind(scan_completed_at)
    .bind(&snapshot.revision)
    .bind(apply.job_id.as_uuid())
    .bind(count_int(counts.total))
    .bind(count_int(counts.licensing))
    .bind(count_int(counts.vulnerability))
    .bind(count_int(counts.quality))
    .bind(count_int(counts.critical))
    .bind(count_int(counts.high))
    .bind(count_int(counts.medium))
    .bind(count_int(counts.low))
    .bind(count_int(counts.unknown))
    .bind(int4_usize(dependencies.len()))
    .bind(int4_usize(direct))
    .bind(sqlx::types::Json(licenses))
    .bind(scan_id.as_uuid())
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("updating the component"))?;

    let summary = ApplySummary {
        scan_result_id: scan_id,
        issues_count: scan.issues_count,
        dependencies_count: scan.total_dependencies,
        status,
        new_issues,
        resolved_issues,
    };
    sqlx::query(
        "UPDATE sync_jobs SET status = 'COMPLETED', completed_at = $2, \
               next_attempt_at = NULL, issues_synced = $3, dependencies_synced = $4, \
               new_issues = $5, resolved_issues = $6 WHERE id = $1",
    )
    .bind(apply.job_id.as_uuid())
    .bind(now)
    .bind(int4(summary.issues_count))
    .bind(int4(summary.dependencies_count))
    .bind(int4_usize(summary.new_issues.len()))
    .bind(int4_usize(summary.resolved_issues.len()))
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("completing the sync job"))?;
    settle_event(tx, job.webhook_event_id, now).await?;
    Ok(ApplyOutcome::Applied(summary))
}

fn count_int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

async fn insert_scan(
    tx: &mut Transaction<'_, Postgres>,
    scan: &ScanResult,
) -> Result<(), PgStoreError> {
    sqlx::query(
        "INSERT INTO scan_results (id, component_id, sync_job_id, revision, branch, scanned_at, \
           synced_at, total_dependencies, direct_dependencies, issues_count, overall_status, \
           project_title) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(scan.id.as_uuid())
    .bind(scan.component_id.as_uuid())
    .bind(scan.sync_job_id.as_uuid())
    .bind(&scan.revision)
    .bind(&scan.branch)
    .bind(scan.scanned_at)
    .bind(scan.synced_at)
    .bind(int4(scan.total_dependencies))
    .bind(int4(scan.direct_dependencies))
    .bind(int4(scan.issues_count))
    .bind(scan.overall_status.as_str())
    .bind(&scan.project_title)
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("inserting the scan result"))?;
    Ok(())
}
