//! [`ComplianceStore`]: snapshot apply in one transaction of set-based statements, and the
//! dashboard's reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use compliance_core::domain::{
    ComplianceStatus, ComplianceView, Dependency, DependencyCounts, DependencyQuery, Issue,
    IssueCategory, IssueCounts, IssueKey, IssueQuery, IssueRecord, IssueStatus, JobStatus,
    LicenseCount, Page, PageRequest, ScanResult, Severity,
};
use compliance_core::ports::{ApplyOutcome, ApplySummary, ComplianceStore, SnapshotApply};
use compliance_core::{ComponentId, ScanResultId, StoreError, SyncJobId, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::rows::{
    self, category_rank, int4, int4_usize, micros, severity_rank, COMPONENT_COLUMNS, COUNT_COLUMNS,
    DEPENDENCY_COLUMNS, ISSUE_COLUMNS, SCAN_COLUMNS,
};
use crate::PgStore;

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn corrupt(err: sqlx::Error) -> PgStoreError {
    PgStoreError::Corrupt(err.to_string())
}

/// The snapshot's issues, one per key (the last report wins, as repeated upserts would).
fn distinct_issues(issues: &[Issue]) -> BTreeMap<IssueKey, &Issue> {
    issues.iter().map(|i| (i.key.clone(), i)).collect()
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

/// Upserts the snapshot's issues as active and resolves every other active one; returns the
/// new and the resolved keys, sorted.
async fn write_issues(
    tx: &mut Transaction<'_, Postgres>,
    component: Uuid,
    issues: &BTreeMap<IssueKey, &Issue>,
    scan: ScanResultId,
    now: Timestamp,
) -> Result<(Vec<IssueKey>, Vec<IssueKey>), PgStoreError> {
    let active = sqlx::query(
        "SELECT category, fossa_id FROM issues WHERE component_id = $1 AND status = 'ACTIVE'",
    )
    .bind(component)
    .fetch_all(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("reading active issues"))?;
    let mut was_active = BTreeSet::new();
    for row in &active {
        let category: String = row.try_get("category").map_err(corrupt)?;
        let category = compliance_core::domain::IssueCategory::parse(&category)
            .ok_or_else(|| PgStoreError::Corrupt(format!("issue category {category:?}")))?;
        was_active.insert(IssueKey {
            category,
            fossa_id: row.try_get("fossa_id").map_err(corrupt)?,
        });
    }

    let n = issues.len();
    let mut c = IssueColumns::with_capacity(n);
    for issue in issues.values() {
        c.push(issue);
    }
    sqlx::query(
        "INSERT INTO issues (component_id, category, fossa_id, category_rank, severity_rank, \
           issue_type, severity, title, package_name, package_version, package_locator, \
           package_manager, license, cve, cvss, direct, detected_at, url, status, \
           first_seen_at, resolved_at, scan_result_id) \
         SELECT $1, t.*, 'ACTIVE', $19, NULL, $20 FROM unnest($2::text[], $3::text[], \
           $4::int2[], $5::int2[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
           $11::text[], $12::text[], $13::text[], $14::text[], $15::float8[], $16::bool[], \
           $17::timestamptz[], $18::text[]) AS t \
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

    sqlx::query(
        "UPDATE issues SET status = 'RESOLVED', resolved_at = $3 \
         WHERE component_id = $1 AND status = 'ACTIVE' AND scan_result_id <> $2",
    )
    .bind(component)
    .bind(scan.as_uuid())
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(PgStoreError::sqlx("resolving issues"))?;

    let new_issues = issues
        .keys()
        .filter(|k| !was_active.contains(*k))
        .cloned()
        .collect();
    let resolved = was_active
        .into_iter()
        .filter(|k| !issues.contains_key(k))
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

/// Replaces the component's dependencies.
async fn write_dependencies(
    tx: &mut Transaction<'_, Postgres>,
    component: Uuid,
    dependencies: &[Dependency],
) -> Result<(), PgStoreError> {
    sqlx::query("DELETE FROM dependencies WHERE component_id = $1")
        .bind(component)
        .execute(&mut **tx)
        .await
        .map_err(PgStoreError::sqlx("removing old dependencies"))?;
    if dependencies.is_empty() {
        return Ok(());
    }
    let n = dependencies.len();
    let mut locator = Vec::with_capacity(n);
    let mut name = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    let mut manager = Vec::with_capacity(n);
    let mut direct = Vec::with_capacity(n);
    let mut depth = Vec::with_capacity(n);
    let mut licenses = Vec::with_capacity(n);
    let mut expression = Vec::with_capacity(n);
    for d in dependencies {
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

impl PgStore {
    async fn apply_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        apply: SnapshotApply,
    ) -> Result<ApplyOutcome, StoreError> {
        let now = micros(apply.synced_at);
        let job = check_job(tx, &apply).await?;

        let component = sqlx::query(
            "SELECT last_scan_at, last_sync_job_id FROM components WHERE id = $1 FOR UPDATE",
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
        let scan_completed_at = apply.scan_completed_at.map(micros);
        if matches!((scan_completed_at, last_scan_at), (Some(s), Some(l)) if s < l) {
            let covered_by = last_sync.map(SyncJobId::from_uuid);
            settle_stale(tx, apply.job_id, job.webhook_event_id, covered_by, now).await?;
            return Ok(ApplyOutcome::Stale { covered_by });
        }

        let snapshot = apply.snapshot;
        let scan_id = ScanResultId::new();
        let issues = distinct_issues(&snapshot.issues);
        let dependencies = distinct_dependencies(snapshot.dependencies.clone());
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
            write_issues(tx, job.component_id, &issues, scan_id, now).await?;
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
               dependencies_total = $16, dependencies_direct = $17, license_counts = $18 \
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

/// A page from rows carrying a `total_rows` window count, or from a separate count when the
/// page is empty.
async fn page_of<T>(
    rows: &[PgRow],
    page: PageRequest,
    map: impl Fn(&PgRow) -> Result<T, PgStoreError>,
    count: impl std::future::Future<Output = Result<i64, PgStoreError>>,
) -> Result<Page<T>, StoreError> {
    let total = match rows.first() {
        Some(row) => row.try_get::<i64, _>("total_rows").map_err(corrupt)?,
        None => count.await?,
    };
    Ok(Page {
        items: rows.iter().map(map).collect::<Result<_, _>>()?,
        total: rows::count64(total),
        offset: page.offset,
        limit: page.effective_limit(),
    })
}

#[async_trait]
impl ComplianceStore for PgStore {
    async fn apply_snapshot(&self, apply: SnapshotApply) -> Result<ApplyOutcome, StoreError> {
        let span = tracing::debug_span!(
            "apply_snapshot",
            sync_job_id = %apply.job_id,
            component_id = %apply.component_id,
            issues = apply.snapshot.issues.len(),
            dependencies = apply.snapshot.dependencies.len(),
        );
        let _entered = span.enter();
        let mut tx = self
            .shared
            .pool
            .begin()
            .await
            .map_err(PgStoreError::sqlx("starting a snapshot apply"))?;
        // On error the transaction is dropped, which rolls it back: nothing is half-applied.
        let outcome = self.apply_in(&mut tx, apply).await?;
        tx.commit()
            .await
            .map_err(PgStoreError::sqlx("committing a snapshot"))?;
        Ok(outcome)
    }

    async fn compliance_view(
        &self,
        component: ComponentId,
    ) -> Result<Option<ComplianceView>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COMPONENT_COLUMNS}, {COUNT_COLUMNS}, c.license_counts FROM components c \
             WHERE c.id = $1"
        ))
        .bind(component.as_uuid())
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("reading a compliance view"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let latest = sqlx::query(&format!(
            "SELECT {SCAN_COLUMNS} FROM scan_results WHERE component_id = $1 \
             ORDER BY synced_at DESC, id DESC LIMIT 1"
        ))
        .bind(component.as_uuid())
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("reading the latest scan"))?;

        let total: i32 = row.try_get("dependencies_total").map_err(corrupt)?;
        let direct: i32 = row.try_get("dependencies_direct").map_err(corrupt)?;
        let (total, direct) = (
            u64::from(rows::count(total)),
            u64::from(rows::count(direct)),
        );
        let licenses: sqlx::types::Json<Vec<(Option<String>, u64)>> =
            row.try_get("license_counts").map_err(corrupt)?;
        Ok(Some(ComplianceView {
            component: rows::component(&row)?,
            latest_scan: latest.as_ref().map(rows::scan_result).transpose()?,
            issues: rows::issue_counts(&row)?,
            dependencies: DependencyCounts {
                total,
                direct,
                transitive: total.saturating_sub(direct),
            },
            licenses: licenses
                .0
                .into_iter()
                .map(|(license, count)| LicenseCount { license, count })
                .collect(),
        }))
    }

    async fn list_scans(
        &self,
        component: ComponentId,
        page: PageRequest,
    ) -> Result<Page<ScanResult>, StoreError> {
        let found = sqlx::query(&format!(
            "SELECT {SCAN_COLUMNS}, count(*) OVER () AS total_rows FROM scan_results \
             WHERE component_id = $1 ORDER BY synced_at DESC, id DESC OFFSET $2 LIMIT $3"
        ))
        .bind(component.as_uuid())
        .bind(i64::from(page.offset))
        .bind(i64::from(page.effective_limit()))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("listing scans"))?;
        let count = async {
            sqlx::query_scalar("SELECT count(*) FROM scan_results WHERE component_id = $1")
                .bind(component.as_uuid())
                .fetch_one(&self.shared.pool)
                .await
                .map_err(PgStoreError::sqlx("counting scans"))
        };
        page_of(&found, page, rows::scan_result, count).await
    }

    async fn list_issues(
        &self,
        component: ComponentId,
        query: &IssueQuery,
    ) -> Result<Page<IssueRecord>, StoreError> {
        let filter = "component_id = $1 \
             AND ($2::text IS NULL OR status = $2) \
             AND ($3::text IS NULL OR category = $3) \
             AND ($4::text IS NULL OR severity = $4) \
             AND ($5::text IS NULL OR strpos(lower(title COLLATE \"default\"), lower($5)) > 0 \
                  OR strpos(lower(package_name COLLATE \"default\"), lower($5)) > 0)";
        let status = query.status.map(IssueStatus::as_str);
        let category = query.category.map(IssueCategory::as_str);
        let severity = query.severity.map(Severity::as_str);
        let found = sqlx::query(&format!(
            "SELECT {ISSUE_COLUMNS}, count(*) OVER () AS total_rows FROM issues WHERE {filter} \
             ORDER BY severity_rank, category_rank, fossa_id OFFSET $6 LIMIT $7"
        ))
        .bind(component.as_uuid())
        .bind(status)
        .bind(category)
        .bind(severity)
        .bind(query.search.as_deref())
        .bind(i64::from(query.page.offset))
        .bind(i64::from(query.page.effective_limit()))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("listing issues"))?;
        let count = async {
            sqlx::query_scalar(&format!("SELECT count(*) FROM issues WHERE {filter}"))
                .bind(component.as_uuid())
                .bind(status)
                .bind(category)
                .bind(severity)
                .bind(query.search.as_deref())
                .fetch_one(&self.shared.pool)
                .await
                .map_err(PgStoreError::sqlx("counting issues"))
        };
        page_of(&found, query.page, rows::issue_record, count).await
    }

    async fn list_dependencies(
        &self,
        component: ComponentId,
        query: &DependencyQuery,
    ) -> Result<Page<Dependency>, StoreError> {
        let filter = "component_id = $1 \
             AND ($2::bool IS NULL OR is_direct = $2) \
             AND ($3::text IS NULL OR licenses @> jsonb_build_array($3::text)) \
             AND ($4::text IS NULL OR strpos(lower(name COLLATE \"default\"), lower($4)) > 0)";
        let found = sqlx::query(&format!(
            "SELECT {DEPENDENCY_COLUMNS}, count(*) OVER () AS total_rows FROM dependencies \
             WHERE {filter} ORDER BY name, locator OFFSET $5 LIMIT $6"
        ))
        .bind(component.as_uuid())
        .bind(query.direct)
        .bind(query.license.as_deref())
        .bind(query.search.as_deref())
        .bind(i64::from(query.page.offset))
        .bind(i64::from(query.page.effective_limit()))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("listing dependencies"))?;
        let count = async {
            sqlx::query_scalar(&format!("SELECT count(*) FROM dependencies WHERE {filter}"))
                .bind(component.as_uuid())
                .bind(query.direct)
                .bind(query.license.as_deref())
                .bind(query.search.as_deref())
                .fetch_one(&self.shared.pool)
                .await
                .map_err(PgStoreError::sqlx("counting dependencies"))
        };
        page_of(&found, query.page, rows::dependency, count).await
    }
}
