//! Row ↔ domain mapping: the column lists every query selects, and the conversions of ids,
//! times and enums to and from their stored forms.

use compliance_core::domain::{
    ComplianceStatus, Component, ComponentSummary, Dependency, EventStatus, Issue, IssueCategory,
    IssueCounts, IssueKey, IssueRecord, IssueStatus, JobStatus, RejectionKind, ScanResult,
    Severity, SyncJob, Trigger, WebhookEvent,
};
use compliance_core::{
    ComponentId, ScanResultId, StoreError, SyncJobId, Timestamp, WebhookEventId,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};
use uuid::Uuid;

use crate::error::{corrupt, invalid, store_error};

/// A time as stored: nanoseconds since the Unix epoch.
///
/// # Errors
///
/// `Invalid` for times outside 1677–2262, which nanoseconds in an `i64` cannot hold.
pub(crate) fn ts(t: Timestamp) -> Result<i64, StoreError> {
    t.timestamp_nanos_opt()
        .ok_or_else(|| invalid(format!("time {t} is outside the storable range")))
}

/// [`ts`] for an optional time.
pub(crate) fn ts_opt(t: Option<Timestamp>) -> Result<Option<i64>, StoreError> {
    t.map(ts).transpose()
}

/// A time used only for comparison, clamped into the storable range (so that
/// `DateTime::MIN_UTC` means "since always").
pub(crate) fn bound(t: Timestamp) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// `t + d` as stored, saturating at the end of the storable range.
pub(crate) fn ts_after(t: Timestamp, d: std::time::Duration) -> i64 {
    let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    bound(t).saturating_add(nanos)
}

/// A stored time.
pub(crate) fn time(nanos: i64) -> Timestamp {
    Timestamp::from_timestamp_nanos(nanos)
}

/// Reads column `col`.
pub(crate) fn get<'r, T>(row: &'r SqliteRow, col: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(col)
        .map_err(|e| store_error(format!("read column {col}"), e))
}

fn get_time(row: &SqliteRow, col: &str) -> Result<Timestamp, StoreError> {
    get::<i64>(row, col).map(time)
}

fn get_time_opt(row: &SqliteRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(get::<Option<i64>>(row, col)?.map(time))
}

fn get_u32(row: &SqliteRow, col: &str) -> Result<u32, StoreError> {
    let n: i64 = get(row, col)?;
    u32::try_from(n).map_err(|_| corrupt(format!("{col} = {n}")))
}

fn get_u32_opt(row: &SqliteRow, col: &str) -> Result<Option<u32>, StoreError> {
    get::<Option<i64>>(row, col)?
        .map(|n| u32::try_from(n).map_err(|_| corrupt(format!("{col} = {n}"))))
        .transpose()
}

pub(crate) fn get_u64(row: &SqliteRow, col: &str) -> Result<u64, StoreError> {
    let n: i64 = get(row, col)?;
    u64::try_from(n).map_err(|_| corrupt(format!("{col} = {n}")))
}

fn get_uuid(row: &SqliteRow, col: &str) -> Result<Uuid, StoreError> {
    get(row, col)
}

fn get_uuid_opt(row: &SqliteRow, col: &str) -> Result<Option<Uuid>, StoreError> {
    get(row, col)
}

fn parse<T>(row: &SqliteRow, col: &str, f: impl Fn(&str) -> Option<T>) -> Result<T, StoreError> {
    let text: String = get(row, col)?;
    f(&text).ok_or_else(|| corrupt(format!("{col} = {text:?}")))
}

/// The Unicode lower-case form that `*_folded` columns and searches compare.
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Stored code of an issue category.
pub(crate) fn category_code(c: IssueCategory) -> i64 {
    match c {
        IssueCategory::Licensing => 0,
        IssueCategory::Vulnerability => 1,
        IssueCategory::Quality => 2,
    }
}

fn category_from(code: i64) -> Option<IssueCategory> {
    match code {
        0 => Some(IssueCategory::Licensing),
        1 => Some(IssueCategory::Vulnerability),
        2 => Some(IssueCategory::Quality),
        _ => None,
    }
}

/// Stored code of a severity.
pub(crate) fn severity_code(s: Severity) -> i64 {
    match s {
        Severity::Critical => 0,
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
        Severity::Unknown => 4,
    }
}

fn severity_from(code: i64) -> Option<Severity> {
    match code {
        0 => Some(Severity::Critical),
        1 => Some(Severity::High),
        2 => Some(Severity::Medium),
        3 => Some(Severity::Low),
        4 => Some(Severity::Unknown),
        _ => None,
    }
}

/// Columns of a [`Component`], for `SELECT`.
pub(crate) const COMPONENT_COLUMNS: &str = "c.id, c.name, c.repository_url, c.repository_key, \
     c.fossa_locator, c.default_branch, c.compliance_status, c.last_synced_at, c.last_scan_at, \
     c.last_revision, c.last_sync_job_id, c.created_at";

/// Columns of a [`ComponentSummary`] (the component and its stored counts).
pub(crate) const SUMMARY_COLUMNS: &str = "c.id, c.name, c.repository_url, c.repository_key, \
     c.fossa_locator, c.default_branch, c.compliance_status, c.last_synced_at, c.last_scan_at, \
     c.last_revision, c.last_sync_job_id, c.created_at, c.issues_total, c.issues_licensing, \
     c.issues_vulnerability, c.issues_quality, c.issues_critical, c.issues_high, \
     c.issues_medium, c.issues_low, c.issues_unknown, c.dependencies_total, \
     c.dependencies_direct";

pub(crate) fn component(row: &SqliteRow) -> Result<Component, StoreError> {
    Ok(Component {
        id: ComponentId::from_uuid(get_uuid(row, "id")?),
        name: get(row, "name")?,
        repository_url: get(row, "repository_url")?,
        repository_key: get(row, "repository_key")?,
        fossa_locator: get(row, "fossa_locator")?,
        default_branch: get(row, "default_branch")?,
        compliance_status: parse(row, "compliance_status", ComplianceStatus::parse)?,
        last_synced_at: get_time_opt(row, "last_synced_at")?,
        last_scan_at: get_time_opt(row, "last_scan_at")?,
        last_revision: get(row, "last_revision")?,
        last_sync_job_id: get_uuid_opt(row, "last_sync_job_id")?.map(SyncJobId::from_uuid),
        created_at: get_time(row, "created_at")?,
    })
}

/// The stored issue counts of a component row ([`SUMMARY_COLUMNS`]).
pub(crate) fn issue_counts(row: &SqliteRow) -> Result<IssueCounts, StoreError> {
    Ok(IssueCounts {
        total: get_u64(row, "issues_total")?,
        licensing: get_u64(row, "issues_licensing")?,
        vulnerability: get_u64(row, "issues_vulnerability")?,
        quality: get_u64(row, "issues_quality")?,
        critical: get_u64(row, "issues_critical")?,
        high: get_u64(row, "issues_high")?,
        medium: get_u64(row, "issues_medium")?,
        low: get_u64(row, "issues_low")?,
        unknown: get_u64(row, "issues_unknown")?,
    })
}

pub(crate) fn summary(row: &SqliteRow) -> Result<ComponentSummary, StoreError> {
    Ok(ComponentSummary {
        component: component(row)?,
        issues: issue_counts(row)?,
        dependency_count: get_u64(row, "dependencies_total")?,
    })
}

/// Columns of a [`WebhookEvent`].
pub(crate) const EVENT_COLUMNS: &str = "id, event_type, source_ip, source_system, raw_payload, \
     payload_truncated, signature, signature_valid, processing_status, rejection, http_status, \
     component_id, sync_job_id, repository_url, revision, branch, pipeline_id, pipeline_url, \
     actor, delivery_key, received_at, processed_at, error_message";

pub(crate) fn event(row: &SqliteRow) -> Result<WebhookEvent, StoreError> {
    let source_ip = get::<Option<String>>(row, "source_ip")?
        .map(|ip| {
            ip.parse()
                .map_err(|_| corrupt(format!("source_ip = {ip:?}")))
        })
        .transpose()?;
    let rejection = get::<Option<String>>(row, "rejection")?
        .map(|r| RejectionKind::parse(&r).ok_or_else(|| corrupt(format!("rejection = {r:?}"))))
        .transpose()?;
    let http_status: i64 = get(row, "http_status")?;
    Ok(WebhookEvent {
        id: WebhookEventId::from_uuid(get_uuid(row, "id")?),
        event_type: get(row, "event_type")?,
        source_ip,
        source_system: get(row, "source_system")?,
        raw_payload: get(row, "raw_payload")?,
        payload_truncated: get(row, "payload_truncated")?,
        signature: get(row, "signature")?,
        signature_valid: get(row, "signature_valid")?,
        processing_status: parse(row, "processing_status", EventStatus::parse)?,
        rejection,
        http_status: u16::try_from(http_status)
            .map_err(|_| corrupt(format!("http_status = {http_status}")))?,
        component_id: get_uuid_opt(row, "component_id")?.map(ComponentId::from_uuid),
        sync_job_id: get_uuid_opt(row, "sync_job_id")?.map(SyncJobId::from_uuid),
        repository_url: get(row, "repository_url")?,
        revision: get(row, "revision")?,
        branch: get(row, "branch")?,
        pipeline_id: get(row, "pipeline_id")?,
        pipeline_url: get(row, "pipeline_url")?,
        actor: get(row, "actor")?,
        delivery_key: get(row, "delivery_key")?,
        received_at: get_time(row, "received_at")?,
        processed_at: get_time_opt(row, "processed_at")?,
        error_message: get(row, "error_message")?,
    })
}

/// Columns of a [`SyncJob`].
pub(crate) const JOB_COLUMNS: &str = "id, component_id, trigger, webhook_event_id, status, \
     revision, branch, scan_completed_at, queued_at, started_at, completed_at, heartbeat_at, \
     attempts, next_attempt_at, issues_synced, dependencies_synced, new_issues, \
     resolved_issues, superseded_by, error_message";

pub(crate) fn job(row: &SqliteRow) -> Result<SyncJob, StoreError> {
    Ok(SyncJob {
        id: SyncJobId::from_uuid(get_uuid(row, "id")?),
        component_id: ComponentId::from_uuid(get_uuid(row, "component_id")?),
        trigger: parse(row, "trigger", Trigger::parse)?,
        webhook_event_id: get_uuid_opt(row, "webhook_event_id")?.map(WebhookEventId::from_uuid),
        status: parse(row, "status", JobStatus::parse)?,
        revision: get(row, "revision")?,
        branch: get(row, "branch")?,
        scan_completed_at: get_time_opt(row, "scan_completed_at")?,
        queued_at: get_time(row, "queued_at")?,
        started_at: get_time_opt(row, "started_at")?,
        completed_at: get_time_opt(row, "completed_at")?,
        heartbeat_at: get_time_opt(row, "heartbeat_at")?,
        attempts: get_u32(row, "attempts")?,
        next_attempt_at: get_time_opt(row, "next_attempt_at")?,
        issues_synced: get_u32_opt(row, "issues_synced")?,
        dependencies_synced: get_u32_opt(row, "dependencies_synced")?,
        new_issues: get_u32_opt(row, "new_issues")?,
        resolved_issues: get_u32_opt(row, "resolved_issues")?,
        superseded_by: get_uuid_opt(row, "superseded_by")?.map(SyncJobId::from_uuid),
        error_message: get(row, "error_message")?,
    })
}

/// Columns of a [`ScanResult`] (table alias `s`).
pub(crate) const SCAN_COLUMNS: &str = "s.id AS scan_id, s.component_id AS scan_component_id, \
     s.sync_job_id AS scan_sync_job_id, s.revision AS scan_revision, s.branch AS scan_branch, \
     s.scanned_at AS scan_scanned_at, s.synced_at AS scan_synced_at, \
     s.total_dependencies AS scan_total_dependencies, \
     s.direct_dependencies AS scan_direct_dependencies, s.issues_count AS scan_issues_count, \
     s.overall_status AS scan_overall_status, s.project_title AS scan_project_title";

/// The scan result of a row selected with [`SCAN_COLUMNS`], or `None` when a left join found
/// none.
pub(crate) fn scan(row: &SqliteRow) -> Result<Option<ScanResult>, StoreError> {
    let Some(id) = get_uuid_opt(row, "scan_id")? else {
        return Ok(None);
    };
    Ok(Some(ScanResult {
        id: ScanResultId::from_uuid(id),
        component_id: ComponentId::from_uuid(get_uuid(row, "scan_component_id")?),
        sync_job_id: SyncJobId::from_uuid(get_uuid(row, "scan_sync_job_id")?),
        revision: get(row, "scan_revision")?,
        branch: get(row, "scan_branch")?,
        scanned_at: get_time_opt(row, "scan_scanned_at")?,
        synced_at: get_time(row, "scan_synced_at")?,
        total_dependencies: get_u32(row, "scan_total_dependencies")?,
        direct_dependencies: get_u32(row, "scan_direct_dependencies")?,
        issues_count: get_u32(row, "scan_issues_count")?,
        overall_status: parse(row, "scan_overall_status", ComplianceStatus::parse)?,
        project_title: get(row, "scan_project_title")?,
    }))
}

/// Columns of an [`IssueRecord`].
pub(crate) const ISSUE_COLUMNS: &str = "component_id, category, fossa_id, issue_type, severity, \
     title, package_name, package_version, package_locator, package_manager, license, cve, \
     cvss, direct, detected_at, url, status, first_seen_at, resolved_at, scan_result_id";

pub(crate) fn issue(row: &SqliteRow) -> Result<IssueRecord, StoreError> {
    let category: i64 = get(row, "category")?;
    let severity: i64 = get(row, "severity")?;
    Ok(IssueRecord {
        component_id: ComponentId::from_uuid(get_uuid(row, "component_id")?),
        issue: Issue {
            key: IssueKey {
                category: category_from(category)
                    .ok_or_else(|| corrupt(format!("category = {category}")))?,
                fossa_id: get(row, "fossa_id")?,
            },
            issue_type: get(row, "issue_type")?,
            severity: severity_from(severity)
                .ok_or_else(|| corrupt(format!("severity = {severity}")))?,
            title: get(row, "title")?,
            package_name: get(row, "package_name")?,
            package_version: get(row, "package_version")?,
            package_locator: get(row, "package_locator")?,
            package_manager: get(row, "package_manager")?,
            license: get(row, "license")?,
            cve: get(row, "cve")?,
            cvss: get(row, "cvss")?,
            direct: get(row, "direct")?,
            detected_at: get_time_opt(row, "detected_at")?,
            url: get(row, "url")?,
        },
        status: parse(row, "status", IssueStatus::parse)?,
        first_seen_at: get_time(row, "first_seen_at")?,
        resolved_at: get_time_opt(row, "resolved_at")?,
        scan_result_id: ScanResultId::from_uuid(get_uuid(row, "scan_result_id")?),
    })
}

/// Columns of a [`Dependency`].
pub(crate) const DEPENDENCY_COLUMNS: &str = "locator, name, version, package_manager, \
     is_direct, depth, licenses, license_expression";

pub(crate) fn dependency(row: &SqliteRow) -> Result<Dependency, StoreError> {
    let licenses: String = get(row, "licenses")?;
    Ok(Dependency {
        locator: get(row, "locator")?,
        name: get(row, "name")?,
        version: get(row, "version")?,
        package_manager: get(row, "package_manager")?,
        is_direct: get(row, "is_direct")?,
        depth: get_u32(row, "depth")?,
        licenses: serde_json::from_str(&licenses)
            .map_err(|_| corrupt(format!("licenses = {licenses:?}")))?,
        license_expression: get(row, "license_expression")?,
    })
}

/// Maps every row with `f`.
pub(crate) fn all<T>(
    rows: &[SqliteRow],
    f: impl Fn(&SqliteRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_to_the_nanosecond() {
        let t = Timestamp::from_timestamp_nanos(1_700_000_000_123_456_789);
        assert_eq!(time(ts(t).unwrap()), t);
    }

    #[test]
    fn far_times_are_refused_for_storage_and_clamped_for_comparison() {
        assert!(ts(Timestamp::MAX_UTC).is_err());
        assert_eq!(bound(Timestamp::MIN_UTC), i64::MIN);
        assert_eq!(bound(Timestamp::MAX_UTC), i64::MAX);
    }

    #[test]
    fn codes_round_trip() {
        for c in IssueCategory::ALL {
            assert_eq!(category_from(category_code(c)), Some(c));
        }
        for s in [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Unknown,
        ] {
            assert_eq!(severity_from(severity_code(s)), Some(s));
        }
    }
}
