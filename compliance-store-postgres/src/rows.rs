//! Rows to domain values, and the small conversions every module needs.

use std::net::IpAddr;

use chrono::SubsecRound;
use compliance_core::domain::{
    ComplianceStatus, Component, Dependency, EventStatus, Issue, IssueCategory, IssueCounts,
    IssueKey, IssueRecord, IssueStatus, JobStatus, RejectionKind, ScanResult, Severity, SyncJob,
    Trigger, WebhookEvent,
};
use compliance_core::{ComponentId, ScanResultId, SyncJobId, Timestamp, WebhookEventId};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::PgStoreError;

/// `t` cut to PostgreSQL's precision (microseconds), so that what a call returns equals what a
/// later read returns.
pub(crate) fn micros(t: Timestamp) -> Timestamp {
    t.trunc_subsecs(6)
}

/// A count for an `integer` column, saturating.
pub(crate) fn int4(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A count for an `integer` column, saturating.
pub(crate) fn int4_usize(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// An `integer` column back to a count (negative values cannot be written; read them as 0).
pub(crate) fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// A `bigint` count to `u64`.
pub(crate) fn count64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The rank the issue list orders by: critical first.
pub(crate) fn severity_rank(severity: Severity) -> i16 {
    match severity {
        Severity::Critical => 0,
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
        Severity::Unknown => 4,
    }
}

/// The rank of a category in [`IssueKey`]'s order.
pub(crate) fn category_rank(category: IssueCategory) -> i16 {
    match category {
        IssueCategory::Licensing => 0,
        IssueCategory::Vulnerability => 1,
        IssueCategory::Quality => 2,
    }
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, PgStoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|e| PgStoreError::Corrupt(format!("column {column}: {e}")))
}

fn parsed<T>(
    value: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, PgStoreError> {
    parse(value).ok_or_else(|| PgStoreError::Corrupt(format!("{what} {value:?}")))
}

fn opt_count(row: &PgRow, column: &str) -> Result<Option<u32>, PgStoreError> {
    Ok(get::<Option<i32>>(row, column)?.map(count))
}

/// The columns [`component`] reads.
pub(crate) const COMPONENT_COLUMNS: &str = "c.id, c.name, c.repository_url, c.repository_key, \
     c.fossa_locator, c.default_branch, c.compliance_status, c.last_synced_at, c.last_scan_at, \
     c.last_revision, c.last_sync_job_id, c.created_at";

/// The count columns [`issue_counts`] reads.
pub(crate) const COUNT_COLUMNS: &str = "c.issues_total, c.issues_licensing, \
     c.issues_vulnerability, c.issues_quality, c.issues_critical, c.issues_high, c.issues_medium, \
     c.issues_low, c.issues_unknown, c.dependencies_total, c.dependencies_direct";

pub(crate) fn component(row: &PgRow) -> Result<Component, PgStoreError> {
    let status: String = get(row, "compliance_status")?;
    Ok(Component {
        id: ComponentId::from_uuid(get(row, "id")?),
        name: get(row, "name")?,
        repository_url: get(row, "repository_url")?,
        repository_key: get(row, "repository_key")?,
        fossa_locator: get(row, "fossa_locator")?,
        default_branch: get(row, "default_branch")?,
        compliance_status: parsed(&status, "compliance status", ComplianceStatus::parse)?,
        last_synced_at: get(row, "last_synced_at")?,
        last_scan_at: get(row, "last_scan_at")?,
        last_revision: get(row, "last_revision")?,
        last_sync_job_id: get::<Option<Uuid>>(row, "last_sync_job_id")?.map(SyncJobId::from),
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn issue_counts(row: &PgRow) -> Result<IssueCounts, PgStoreError> {
    let n = |column: &str| -> Result<u64, PgStoreError> {
        Ok(u64::from(count(get::<i32>(row, column)?)))
    };
    Ok(IssueCounts {
        total: n("issues_total")?,
        licensing: n("issues_licensing")?,
        vulnerability: n("issues_vulnerability")?,
        quality: n("issues_quality")?,
        critical: n("issues_critical")?,
        high: n("issues_high")?,
        medium: n("issues_medium")?,
        low: n("issues_low")?,
        unknown: n("issues_unknown")?,
    })
}

/// The columns [`event`] reads.
pub(crate) const EVENT_COLUMNS: &str = "id, event_type, source_ip, source_system, raw_payload, \
     payload_truncated, signature, signature_valid, processing_status, rejection, http_status, \
     component_id, sync_job_id, repository_url, revision, branch, pipeline_id, pipeline_url, \
     actor, delivery_key, received_at, processed_at, error_message";

pub(crate) fn event(row: &PgRow) -> Result<WebhookEvent, PgStoreError> {
    let status: String = get(row, "processing_status")?;
    let rejection = get::<Option<String>>(row, "rejection")?
        .map(|r| parsed(&r, "rejection kind", RejectionKind::parse))
        .transpose()?;
    let source_ip = get::<Option<String>>(row, "source_ip")?
        .map(|ip| parsed(&ip, "source ip", |s| s.parse::<IpAddr>().ok()))
        .transpose()?;
    let http_status: i16 = get(row, "http_status")?;
    Ok(WebhookEvent {
        id: WebhookEventId::from_uuid(get(row, "id")?),
        event_type: get(row, "event_type")?,
        source_ip,
        source_system: get(row, "source_system")?,
        raw_payload: get(row, "raw_payload")?,
        payload_truncated: get(row, "payload_truncated")?,
        signature: get(row, "signature")?,
        signature_valid: get(row, "signature_valid")?,
        processing_status: parsed(&status, "event status", EventStatus::parse)?,
        rejection,
        http_status: u16::try_from(http_status)
            .map_err(|_| PgStoreError::Corrupt(format!("http status {http_status}")))?,
        component_id: get::<Option<Uuid>>(row, "component_id")?.map(ComponentId::from),
        sync_job_id: get::<Option<Uuid>>(row, "sync_job_id")?.map(SyncJobId::from),
        repository_url: get(row, "repository_url")?,
        revision: get(row, "revision")?,
        branch: get(row, "branch")?,
        pipeline_id: get(row, "pipeline_id")?,
        pipeline_url: get(row, "pipeline_url")?,
        actor: get(row, "actor")?,
        delivery_key: get(row, "delivery_key")?,
        received_at: get(row, "received_at")?,
        processed_at: get(row, "processed_at")?,
        error_message: get(row, "error_message")?,
    })
}

/// The columns [`job`] reads.
pub(crate) const JOB_COLUMNS: &str = "id, component_id, trigger, webhook_event_id, status, \
     revision, branch, scan_completed_at, queued_at, started_at, completed_at, heartbeat_at, \
     attempts, next_attempt_at, issues_synced, dependencies_synced, new_issues, resolved_issues, \
     superseded_by, error_message";

pub(crate) fn job(row: &PgRow) -> Result<SyncJob, PgStoreError> {
    let trigger: String = get(row, "trigger")?;
    let status: String = get(row, "status")?;
    Ok(SyncJob {
        id: SyncJobId::from_uuid(get(row, "id")?),
        component_id: ComponentId::from_uuid(get(row, "component_id")?),
        trigger: parsed(&trigger, "trigger", Trigger::parse)?,
        webhook_event_id: get::<Option<Uuid>>(row, "webhook_event_id")?.map(WebhookEventId::from),
        status: parsed(&status, "job status", JobStatus::parse)?,
        revision: get(row, "revision")?,
        branch: get(row, "branch")?,
        scan_completed_at: get(row, "scan_completed_at")?,
        queued_at: get(row, "queued_at")?,
        started_at: get(row, "started_at")?,
        completed_at: get(row, "completed_at")?,
        heartbeat_at: get(row, "heartbeat_at")?,
        attempts: count(get(row, "attempts")?),
        next_attempt_at: get(row, "next_attempt_at")?,
        issues_synced: opt_count(row, "issues_synced")?,
        dependencies_synced: opt_count(row, "dependencies_synced")?,
        new_issues: opt_count(row, "new_issues")?,
        resolved_issues: opt_count(row, "resolved_issues")?,
        superseded_by: get::<Option<Uuid>>(row, "superseded_by")?.map(SyncJobId::from),
        error_message: get(row, "error_message")?,
    })
}

/// The columns [`scan_result`] reads.
pub(crate) const SCAN_COLUMNS: &str = "id, component_id, sync_job_id, revision, branch, \
     scanned_at, synced_at, total_dependencies, direct_dependencies, issues_count, \
     overall_status, project_title";

pub(crate) fn scan_result(row: &PgRow) -> Result<ScanResult, PgStoreError> {
    let status: String = get(row, "overall_status")?;
    Ok(ScanResult {
        id: ScanResultId::from_uuid(get(row, "id")?),
        component_id: ComponentId::from_uuid(get(row, "component_id")?),
        sync_job_id: SyncJobId::from_uuid(get(row, "sync_job_id")?),
        revision: get(row, "revision")?,
        branch: get(row, "branch")?,
        scanned_at: get(row, "scanned_at")?,
        synced_at: get(row, "synced_at")?,
        total_dependencies: count(get(row, "total_dependencies")?),
        direct_dependencies: count(get(row, "direct_dependencies")?),
        issues_count: count(get(row, "issues_count")?),
        overall_status: parsed(&status, "compliance status", ComplianceStatus::parse)?,
        project_title: get(row, "project_title")?,
    })
}

/// The columns [`issue_record`] reads.
/// Reads `issues i` joined with `components c`: an active issue was last seen by the
/// component's latest scan.
pub(crate) const ISSUE_COLUMNS: &str = "i.component_id, i.category, i.fossa_id, i.issue_type, \
     i.severity, i.title, i.package_name, i.package_version, i.package_locator, \
     i.package_manager, i.license, i.cve, i.cvss, i.direct, i.detected_at, i.url, i.status, \
     i.first_seen_at, i.resolved_at, \
     CASE WHEN i.status = 'ACTIVE' THEN COALESCE(c.last_scan_result_id, i.scan_result_id) \
       ELSE i.scan_result_id END AS scan_result_id";

pub(crate) fn issue_record(row: &PgRow) -> Result<IssueRecord, PgStoreError> {
    let status: String = get(row, "status")?;
    Ok(IssueRecord {
        component_id: ComponentId::from_uuid(get(row, "component_id")?),
        issue: issue(row)?,
        status: parsed(&status, "issue status", IssueStatus::parse)?,
        first_seen_at: get(row, "first_seen_at")?,
        resolved_at: get(row, "resolved_at")?,
        scan_result_id: ScanResultId::from_uuid(get(row, "scan_result_id")?),
    })
}

/// The columns [`issue`] reads, of `issues` alone.
pub(crate) const ISSUE_FIELDS: &str = "category, fossa_id, issue_type, severity, title, \
     package_name, package_version, package_locator, package_manager, license, cve, cvss, \
     direct, detected_at, url";

/// The issue as a scan source reported it.
pub(crate) fn issue(row: &PgRow) -> Result<Issue, PgStoreError> {
    let category: String = get(row, "category")?;
    let severity: String = get(row, "severity")?;
    Ok(Issue {
        key: IssueKey {
            category: parsed(&category, "issue category", IssueCategory::parse)?,
            fossa_id: get(row, "fossa_id")?,
        },
        issue_type: get(row, "issue_type")?,
        severity: Severity::parse(&severity),
        title: get(row, "title")?,
        package_name: get(row, "package_name")?,
        package_version: get(row, "package_version")?,
        package_locator: get(row, "package_locator")?,
        package_manager: get(row, "package_manager")?,
        license: get(row, "license")?,
        cve: get(row, "cve")?,
        cvss: get(row, "cvss")?,
        direct: get(row, "direct")?,
        detected_at: get(row, "detected_at")?,
        url: get(row, "url")?,
    })
}

/// The columns [`dependency`] reads.
pub(crate) const DEPENDENCY_COLUMNS: &str = "locator, name, version, package_manager, is_direct, \
     depth, licenses, license_expression";

pub(crate) fn dependency(row: &PgRow) -> Result<Dependency, PgStoreError> {
    let depth: i32 = get(row, "depth")?;
    Ok(Dependency {
        locator: get(row, "locator")?,
        name: get(row, "name")?,
        version: get(row, "version")?,
        package_manager: get(row, "package_manager")?,
        is_direct: get(row, "is_direct")?,
        depth: count(depth),
        licenses: get::<sqlx::types::Json<Vec<String>>>(row, "licenses")?.0,
        license_expression: get(row, "license_expression")?,
    })
}
