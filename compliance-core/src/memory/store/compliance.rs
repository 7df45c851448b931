//! Applying snapshots, and the dashboard's read queries.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;

use crate::domain::{
    ComplianceStatus, ComplianceView, Dependency, DependencyCounts, DependencyQuery, EventStatus,
    Issue, IssueKey, IssueQuery, IssueRecord, IssueStatus, JobStatus, LicenseCount, Page,
    PageRequest, ScanResult,
};
use crate::error::StoreError;
use crate::id::{ComponentId, ScanResultId};
use crate::memory::lock;
use crate::ports::{ApplyOutcome, ApplySummary, ComplianceStore, SnapshotApply};

use super::{contains_ignore_case, InMemoryStore, State};

/// Converts a count for the `u32` fields of summaries, saturating.
fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl State {
    fn apply_snapshot(&mut self, apply: SnapshotApply) -> Result<ApplyOutcome, StoreError> {
        let job = self
            .jobs
            .get(&apply.job_id)
            .ok_or_else(|| StoreError::not_found(format!("sync job {}", apply.job_id)))?;
        if job.status != JobStatus::Running || job.attempts != apply.attempt {
            return Err(StoreError::LeaseLost {
                job_id: apply.job_id,
            });
        }
        if job.component_id != apply.component_id {
            return Err(StoreError::Invalid {
                what: format!(
                    "sync job {} belongs to component {}, not {}",
                    job.id, job.component_id, apply.component_id
                ),
            });
        }
        let event_id = job.webhook_event_id;
        let component = self
            .components
            .get(&apply.component_id)
            .ok_or_else(|| StoreError::not_found(format!("component {}", apply.component_id)))?;

        let stale = matches!(
            (apply.scan_completed_at, component.last_scan_at),
            (Some(scan), Some(last)) if scan < last
        );
        if stale {
            let covered_by = component.last_sync_job_id;
            self.supersede_job(apply.job_id, covered_by, apply.synced_at);
            return Ok(ApplyOutcome::Stale { covered_by });
        }

        let scan_result_id = ScanResultId::new();
        let (new_issues, resolved_issues, active) = self.upsert_issues(&apply, scan_result_id);
        let dependencies = distinct_dependencies(apply.snapshot.dependencies);
        let status = ComplianceStatus::from_issue_count(active);

        let scan = ScanResult {
            id: scan_result_id,
            component_id: apply.component_id,
            sync_job_id: apply.job_id,
            revision: apply.snapshot.revision.clone(),
            branch: apply.branch,
            scanned_at: apply
                .snapshot
                .project
                .scanned_at
                .or(apply.snapshot.project.last_analyzed_at),
            synced_at: apply.synced_at,
            total_dependencies: count_u32(dependencies.len()),
            direct_dependencies: count_u32(dependencies.iter().filter(|d| d.is_direct).count()),
            issues_count: count_u32(active),
            overall_status: status,
            project_title: apply.snapshot.project.title,
        };
        let summary = ApplySummary {
            scan_result_id,
            issues_count: scan.issues_count,
            dependencies_count: scan.total_dependencies,
            status,
            new_issues,
            resolved_issues,
        };
        self.scans.entry(apply.component_id).or_default().push(scan);
        self.dependencies.insert(apply.component_id, dependencies);

        if let Some(component) = self.components.get_mut(&apply.component_id) {
            component.compliance_status = status;
            component.last_synced_at = Some(apply.synced_at);
            component.last_scan_at = apply.scan_completed_at.or(component.last_scan_at);
            component.last_revision = Some(apply.snapshot.revision);
            component.last_sync_job_id = Some(apply.job_id);
        }
        if let Some(job) = self.jobs.get_mut(&apply.job_id) {
            job.status = JobStatus::Completed;
            job.completed_at = Some(apply.synced_at);
            job.next_attempt_at = None;
            job.issues_synced = Some(summary.issues_count);
            job.dependencies_synced = Some(summary.dependencies_count);
            job.new_issues = Some(count_u32(summary.new_issues.len()));
            job.resolved_issues = Some(count_u32(summary.resolved_issues.len()));
        }
        self.settle_event(event_id, EventStatus::Processed, None, apply.synced_at);
        Ok(ApplyOutcome::Applied(summary))
    }

    /// Upserts the snapshot's issues as active and resolves every other active issue.
    /// Returns the new and resolved keys (sorted) and how many issues are active now.
    fn upsert_issues(
        &mut self,
        apply: &SnapshotApply,
        scan_result_id: ScanResultId,
    ) -> (Vec<IssueKey>, Vec<IssueKey>, usize) {
        // A key reported twice counts once; the last report wins, as repeated upserts would.
        let incoming: BTreeMap<IssueKey, &Issue> = apply
            .snapshot
            .issues
            .iter()
            .map(|issue| (issue.key.clone(), issue))
            .collect();
        let records = self.issues.entry(apply.component_id).or_default();
        let was_active: BTreeSet<IssueKey> = records
            .values()
            .filter(|r| r.status == IssueStatus::Active)
            .map(|r| r.issue.key.clone())
            .collect();

        for (key, issue) in &incoming {
            let record = records.entry(key.clone()).or_insert_with(|| IssueRecord {
                component_id: apply.component_id,
                issue: (*issue).clone(),
                status: IssueStatus::Active,
                first_seen_at: apply.synced_at,
                resolved_at: None,
                scan_result_id,
            });
            record.issue = (*issue).clone();
            record.status = IssueStatus::Active;
            record.resolved_at = None;
            record.scan_result_id = scan_result_id;
        }
        for key in was_active.iter().filter(|k| !incoming.contains_key(*k)) {
            if let Some(record) = records.get_mut(key) {
                record.status = IssueStatus::Resolved;
                record.resolved_at = Some(apply.synced_at);
            }
        }

        let new_issues = incoming
            .keys()
            .filter(|k| !was_active.contains(*k))
            .cloned()
            .collect();
        let resolved_issues = was_active
            .into_iter()
            .filter(|k| !incoming.contains_key(k))
            .collect();
        (new_issues, resolved_issues, incoming.len())
    }
}

/// The snapshot's dependencies with one entry per locator (the last one reported wins).
fn distinct_dependencies(dependencies: Vec<Dependency>) -> Vec<Dependency> {
    let mut by_locator: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Dependency> = Vec::with_capacity(dependencies.len());
    for dep in dependencies {
        match by_locator.get(&dep.locator).and_then(|&i| out.get_mut(i)) {
            Some(existing) => *existing = dep,
            None => {
                by_locator.insert(dep.locator.clone(), out.len());
                out.push(dep);
            }
        }
    }
    out
}

/// Dependencies per license, most used first, then by license name; `None` last on ties.
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

#[async_trait]
impl ComplianceStore for InMemoryStore {
    async fn apply_snapshot(&self, apply: SnapshotApply) -> Result<ApplyOutcome, StoreError> {
        lock(&self.state).apply_snapshot(apply)
    }

    async fn compliance_view(
        &self,
        component: ComponentId,
    ) -> Result<Option<ComplianceView>, StoreError> {
        let state = lock(&self.state);
        let Some(found) = state.components.get(&component) else {
            return Ok(None);
        };
        let latest_scan = state
            .scans
            .get(&component)
            .and_then(|scans| {
                scans
                    .iter()
                    .max_by(|a, b| a.synced_at.cmp(&b.synced_at).then(a.id.cmp(&b.id)))
            })
            .cloned();
        let deps = state
            .dependencies
            .get(&component)
            .map_or(&[][..], Vec::as_slice);
        let total = deps.len() as u64;
        let direct = deps.iter().filter(|d| d.is_direct).count() as u64;
        Ok(Some(ComplianceView {
            component: found.clone(),
            latest_scan,
            issues: state.active_issue_counts(component),
            dependencies: DependencyCounts {
                total,
                direct,
                transitive: total - direct,
            },
            licenses: license_breakdown(deps),
        }))
    }

    async fn list_scans(
        &self,
        component: ComponentId,
        page: PageRequest,
    ) -> Result<Page<ScanResult>, StoreError> {
        let state = lock(&self.state);
        let mut scans: Vec<ScanResult> = state.scans.get(&component).cloned().unwrap_or_default();
        scans.sort_by(|a, b| b.synced_at.cmp(&a.synced_at).then(b.id.cmp(&a.id)));
        Ok(Page::from_vec(scans, page))
    }

    async fn list_issues(
        &self,
        component: ComponentId,
        query: &IssueQuery,
    ) -> Result<Page<IssueRecord>, StoreError> {
        let state = lock(&self.state);
        let mut issues: Vec<&IssueRecord> = state
            .issues
            .get(&component)
            .into_iter()
            .flat_map(BTreeMap::values)
            .filter(|r| query.status.is_none_or(|s| r.status == s))
            .filter(|r| query.category.is_none_or(|c| r.issue.key.category == c))
            .filter(|r| query.severity.is_none_or(|s| r.issue.severity == s))
            .filter(|r| {
                query.search.as_deref().is_none_or(|text| {
                    contains_ignore_case(&r.issue.title, text)
                        || contains_ignore_case(&r.issue.package_name, text)
                })
            })
            .collect();
        issues.sort_by(|a, b| {
            a.issue
                .severity
                .cmp(&b.issue.severity)
                .then_with(|| a.issue.key.cmp(&b.issue.key))
        });
        Ok(Page::from_vec(
            issues.into_iter().cloned().collect(),
            query.page,
        ))
    }

    async fn list_dependencies(
        &self,
        component: ComponentId,
        query: &DependencyQuery,
    ) -> Result<Page<Dependency>, StoreError> {
        let state = lock(&self.state);
        let mut deps: Vec<&Dependency> = state
            .dependencies
            .get(&component)
            .into_iter()
            .flatten()
            .filter(|d| query.direct.is_none_or(|direct| d.is_direct == direct))
            .filter(|d| {
                query
                    .license
                    .as_deref()
                    .is_none_or(|license| d.licenses.iter().any(|l| l == license))
            })
            .filter(|d| {
                query
                    .search
                    .as_deref()
                    .is_none_or(|text| contains_ignore_case(&d.name, text))
            })
            .collect();
        deps.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.locator.cmp(&b.locator)));
        Ok(Page::from_vec(
            deps.into_iter().cloned().collect(),
            query.page,
        ))
    }
}
