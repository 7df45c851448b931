//! Builders for test data: components, jobs, webhook events and scan snapshots.
//!
//! Every timestamp here is a whole number of seconds after [`base_time`], so that adapters
//! storing time at millisecond or microsecond precision return exactly what was written.

use chrono::{TimeZone, Utc};

use crate::clock::Timestamp;
use crate::domain::{
    Component, Dependency, EventStatus, Issue, IssueCategory, IssueKey, NewComponent, NewSyncJob,
    ProjectInfo, RejectionKind, ScanSnapshot, Severity, Trigger, WebhookEvent,
};
use crate::id::{ComponentId, SyncJobId, WebhookEventId};
use crate::ports::{AcceptedWebhook, QueuePlacement, RequestHeaders};
use crate::repo_url::RepoUrl;
use crate::signature::{sign, SIGNATURE_HEADER, SOURCE_HEADER, TIMESTAMP_HEADER};

/// 2024-01-01T00:00:00Z: the origin of fixture time.
#[must_use]
pub fn base_time() -> Timestamp {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// [`base_time`] plus `secs` seconds.
#[must_use]
pub fn at(secs: i64) -> Timestamp {
    base_time() + chrono::Duration::seconds(secs)
}

/// A component named `name` for the repository `url` (default branch `main`).
///
/// # Panics
///
/// When `url` is not a repository URL.
#[must_use]
pub fn component(name: &str, url: &str) -> NewComponent {
    let repository_url = RepoUrl::parse(url).unwrap_or_else(|e| panic!("fixture url {url}: {e}"));
    NewComponent {
        name: name.to_owned(),
        fossa_locator: format!("custom+4821/{}", repository_url.key()),
        repository_url,
        default_branch: "main".to_owned(),
    }
}

/// A webhook-triggered job for `component` on `branch`, queued at `queued_at`.
#[must_use]
pub fn new_job(
    component: ComponentId,
    branch: &str,
    scan_completed_at: Option<Timestamp>,
    queued_at: Timestamp,
) -> NewSyncJob {
    NewSyncJob {
        id: SyncJobId::new(),
        component_id: component,
        trigger: Trigger::Webhook,
        webhook_event_id: None,
        revision: Some(revision(queued_at.timestamp().unsigned_abs())),
        branch: branch.to_owned(),
        scan_completed_at,
        queued_at,
    }
}

/// A plausible 40-hex-digit commit id derived from `seed`.
#[must_use]
pub fn revision(seed: u64) -> String {
    format!(
        "{:040x}",
        u128::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
    )
}

/// An event as the ingest service logs a request it accepted: `QUEUED`, signature valid,
/// `202`, linked to `component` (job id and delivery key left for the caller).
#[must_use]
pub fn accepted_event(
    component: &Component,
    branch: &str,
    received_at: Timestamp,
    delivery_key: Option<&str>,
) -> WebhookEvent {
    WebhookEvent {
        id: WebhookEventId::new(),
        event_type: Some("fossa.scan.completed".to_owned()),
        source_ip: Some(std::net::IpAddr::from([10, 0, 0, 7])),
        source_system: Some("github".to_owned()),
        raw_payload: format!(
            r#"{{"event":"fossa.scan.completed","repository":{{"url":"{}"}}}}"#,
            component.repository_url
        ),
        payload_truncated: false,
        signature: Some(format!("sha256={}", "ab".repeat(32))),
        signature_valid: true,
        processing_status: EventStatus::Queued,
        rejection: None,
        http_status: 202,
        component_id: Some(component.id),
        sync_job_id: None,
        repository_url: Some(component.repository_url.clone()),
        revision: Some(revision(received_at.timestamp().unsigned_abs())),
        branch: Some(branch.to_owned()),
        pipeline_id: Some("4711".to_owned()),
        pipeline_url: Some("https://ci.example.com/pipelines/4711".to_owned()),
        actor: Some("dev@example.com".to_owned()),
        delivery_key: delivery_key.map(str::to_owned),
        received_at,
        processed_at: None,
        error_message: None,
    }
}

/// An accepted webhook for `component` on `branch`: event and job linked to each other,
/// placement external.
#[must_use]
pub fn accepted_webhook(
    component: &Component,
    branch: &str,
    scan_completed_at: Option<Timestamp>,
    received_at: Timestamp,
    delivery_key: Option<&str>,
) -> AcceptedWebhook {
    let mut event = accepted_event(component, branch, received_at, delivery_key);
    let mut job = new_job(component.id, branch, scan_completed_at, received_at);
    job.webhook_event_id = Some(event.id);
    job.revision.clone_from(&event.revision);
    event.sync_job_id = Some(job.id);
    AcceptedWebhook {
        event,
        job,
        placement: QueuePlacement::External,
    }
}

/// A request refused with `kind`, as the ingest service logs it.
#[must_use]
pub fn rejected_event(kind: RejectionKind, received_at: Timestamp) -> WebhookEvent {
    WebhookEvent {
        id: WebhookEventId::new(),
        event_type: None,
        source_ip: Some(std::net::IpAddr::from([192, 0, 2, 1])),
        source_system: None,
        raw_payload: "{\"event\":".to_owned(),
        payload_truncated: false,
        signature: None,
        signature_valid: kind != RejectionKind::InvalidSignature,
        processing_status: EventStatus::Failed,
        rejection: Some(kind),
        http_status: kind.http_status(),
        component_id: None,
        sync_job_id: None,
        repository_url: None,
        revision: None,
        branch: None,
        pipeline_id: None,
        pipeline_url: None,
        actor: None,
        delivery_key: None,
        received_at,
        processed_at: Some(received_at),
        error_message: Some(format!("refused: {}", kind.as_str())),
    }
}

/// The category of the `i`-th fixture issue: licensing, vulnerability, quality, in turn.
#[must_use]
pub fn category_of(i: usize) -> IssueCategory {
    match i % 3 {
        0 => IssueCategory::Licensing,
        1 => IssueCategory::Vulnerability,
        _ => IssueCategory::Quality,
    }
}

/// The severity of the `i`-th fixture issue: critical … unknown, changing every three issues.
#[must_use]
pub fn severity_of(i: usize) -> Severity {
    match (i / 3) % 5 {
        0 => Severity::Critical,
        1 => Severity::High,
        2 => Severity::Medium,
        3 => Severity::Low,
        _ => Severity::Unknown,
    }
}

/// The `i`-th issue of the scan family `seed`.
///
/// FOSSA ids have one fixed width (`SSSS-IIIIII`), so they sort the same way as text in every
/// database collation.
#[must_use]
pub fn issue(seed: u64, i: usize) -> Issue {
    let category = category_of(i);
    Issue {
        key: IssueKey {
            category,
            fossa_id: format!("{:04}-{i:06}", seed % 10_000),
        },
        issue_type: match category {
            IssueCategory::Licensing => "policy_conflict",
            IssueCategory::Vulnerability => "vulnerability",
            IssueCategory::Quality => "outdated_dependency",
        }
        .to_owned(),
        severity: severity_of(i),
        title: format!("Issue {i} in Package-{i:04}"),
        package_name: format!("package-{i:04}"),
        package_version: Some(format!("1.{i}.0")),
        package_locator: Some(format!("npm+package-{i:04}$1.{i}.0")),
        package_manager: Some("npm".to_owned()),
        license: (category == IssueCategory::Licensing).then(|| "GPL-3.0".to_owned()),
        cve: (category == IssueCategory::Vulnerability).then(|| format!("CVE-2024-{i:05}")),
        cvss: (category == IssueCategory::Vulnerability).then_some(7.5),
        direct: i % 2 == 0,
        detected_at: Some(at(60)),
        url: Some(format!("https://app.fossa.com/issues/{seed}/{i}")),
    }
}

/// The licenses of the `j`-th fixture dependency: MIT, Apache-2.0, BSD-3-Clause, none, and
/// MIT with Apache-2.0, in turn.
#[must_use]
pub fn licenses_of(j: usize) -> Vec<String> {
    let names: &[&str] = match j % 5 {
        0 => &["MIT"],
        1 => &["Apache-2.0"],
        2 => &["BSD-3-Clause"],
        3 => &[],
        _ => &["Apache-2.0", "MIT"],
    };
    names.iter().map(|&s| s.to_owned()).collect()
}

/// The `j`-th dependency of the scan family `seed`; every third one is direct.
#[must_use]
pub fn dependency(seed: u64, j: usize) -> Dependency {
    let licenses = licenses_of(j);
    let name = format!("dep-{:04}-{j:04}", seed % 10_000);
    Dependency {
        locator: format!("npm+{name}$2.{j}.0"),
        version: Some(format!("2.{j}.0")),
        package_manager: "npm".to_owned(),
        is_direct: j % 3 == 0,
        depth: if j % 3 == 0 { 1 } else { 2 },
        license_expression: (!licenses.is_empty()).then(|| licenses.join(" AND ")),
        licenses,
        name,
    }
}

/// A complete snapshot with `n_issues` issues ([`issue`]`(seed, 0..n)`) and `n_deps`
/// dependencies ([`dependency`]`(seed, 0..n)`).
#[must_use]
pub fn snapshot(n_issues: usize, n_deps: usize, seed: u64) -> ScanSnapshot {
    ScanSnapshot {
        project: ProjectInfo {
            locator: "custom+4821/github.com/acme/payment-service".to_owned(),
            title: "payment-service".to_owned(),
            default_branch: Some("main".to_owned()),
            latest_revision: Some(format!(
                "custom+4821/github.com/acme/payment-service${}",
                revision(seed)
            )),
            last_analyzed_at: Some(at(100)),
            scanned_at: Some(at(120)),
            url: Some("https://app.fossa.com/projects/payment-service".to_owned()),
        },
        revision: revision(seed),
        issues: (0..n_issues).map(|i| issue(seed, i)).collect(),
        dependencies: (0..n_deps).map(|j| dependency(seed, j)).collect(),
        unresolved_dependencies: 0,
    }
}

/// `base` one scan later: its first `fixed` issues are gone and `new` issues
/// ([`issue`]`(seed, 500_000 + k)`) appeared; dependencies and project stay.
#[must_use]
pub fn snapshot_with_changes(
    base: &ScanSnapshot,
    fixed: usize,
    new: usize,
    seed: u64,
) -> ScanSnapshot {
    let mut next = base.clone();
    next.revision = revision(seed.wrapping_add(1_000));
    next.issues = base
        .issues
        .iter()
        .skip(fixed)
        .cloned()
        .chain((0..new).map(|k| issue(seed, 500_000 + k)))
        .collect();
    next
}

/// A complete `fossa.scan.completed` body as the workflow document shows it, for the
/// repository at `repository_url`; `timestamp` is left out when `None` (as the document's CI
/// templates do).
#[must_use]
pub fn webhook_body(
    repository_url: &str,
    revision: &str,
    branch: &str,
    timestamp: Option<Timestamp>,
) -> String {
    let name = repository_url
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or(repository_url);
    let mut body = serde_json::json!({
        "event": "fossa.scan.completed",
        "repository": { "name": name, "url": repository_url, "provider": "github" },
        "scan": { "revision": revision, "branch": branch, "status": "failed", "issues_found": true },
        "pipeline": {
            "id": "12345",
            "url": format!("{repository_url}/actions/runs/12345"),
            "provider": "github-actions"
        },
        "metadata": { "triggered_by": "push", "actor": "developer@acme.com" }
    });
    if let (Some(t), Some(fields)) = (timestamp, body.as_object_mut()) {
        let t = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        fields.insert("timestamp".to_owned(), serde_json::Value::String(t));
    }
    body.to_string()
}

/// The headers a sender puts on `body` signed with `secret` at `timestamp` (Unix seconds):
/// `X-Webhook-Signature`, `X-Webhook-Timestamp`, and `X-Webhook-Source: github`.
#[must_use]
pub fn signed_headers(secret: &str, timestamp: i64, body: &[u8]) -> RequestHeaders {
    RequestHeaders::new()
        .with(SIGNATURE_HEADER, sign(secret.as_bytes(), timestamp, body))
        .with(TIMESTAMP_HEADER, timestamp.to_string())
        .with(SOURCE_HEADER, "github")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::parse_webhook;
    use crate::ports::SignatureVerifier;
    use crate::signature::{HmacSha256Verifier, WebhookSecret};

    #[test]
    fn signed_fixture_body_verifies_and_parses() {
        let url = "https://github.com/acme/payment-service";
        let body = webhook_body(url, &revision(7), "main", Some(at(30)));
        let now = at(60);
        let headers = signed_headers("your-webhook-secret", now.timestamp(), body.as_bytes());

        let verifier =
            HmacSha256Verifier::new(vec![WebhookSecret::new("primary", "your-webhook-secret")]);
        let verified = verifier.verify(body.as_bytes(), &headers, now).unwrap();
        assert_eq!(verified.timestamp, now);

        let parsed = parse_webhook(body.as_bytes(), Some(verified.timestamp)).unwrap();
        assert_eq!(parsed.repository.name, "payment-service");
        assert_eq!(parsed.scan.branch, "main");
        assert_eq!(parsed.scan.revision, revision(7));
        assert_eq!(parsed.timestamp, at(30));
    }

    #[test]
    fn snapshot_with_changes_drops_and_adds_issues() {
        let base = snapshot(5, 2, 1);
        let next = snapshot_with_changes(&base, 2, 3, 2);
        assert_eq!(next.issues.len(), 6);
        assert!(next.issues.iter().all(|i| !base.issues[..2].contains(i)));
        assert_eq!(next.issues[..3], base.issues[2..]);
        assert_ne!(next.revision, base.revision);
        assert_eq!(next.dependencies, base.dependencies);
    }
}
