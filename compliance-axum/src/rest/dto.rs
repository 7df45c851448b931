//! The JSON shapes of the REST API, with their OpenAPI schemas.
//!
//! Core's domain types stay free of HTTP and OpenAPI concerns; these mirror them field for
//! field (same names and spellings), so the document describes exactly what is sent.

use chrono::{DateTime, Utc};
use compliance_core::domain as d;
use compliance_core::ports::DeadLetter;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident from $core:ty, $case:literal { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = $case)]
        pub enum $name {
            $(
                #[allow(missing_docs)]
                $variant,
            )+
        }

        impl From<$core> for $name {
            fn from(value: $core) -> Self {
                match value {
                    $(<$core>::$variant => Self::$variant,)+
                }
            }
        }

        impl From<$name> for $core {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => Self::$variant,)+
                }
            }
        }
    };
}

wire_enum!(
    /// Status of a component's latest applied scan.
    ComplianceStatus from d::ComplianceStatus, "SCREAMING_SNAKE_CASE" { Unknown, Passing, Failing }
);
wire_enum!(
    /// Where a sync job stands.
    JobStatus from d::JobStatus, "SCREAMING_SNAKE_CASE" { Queued, Running, Completed, Failed, Superseded }
);
wire_enum!(
    /// What started a sync.
    Trigger from d::Trigger, "SCREAMING_SNAKE_CASE" { Webhook, Manual, Scheduled }
);
wire_enum!(
    /// Where a logged webhook request stands.
    EventStatus from d::EventStatus, "SCREAMING_SNAKE_CASE" { Received, Queued, Processed, Failed }
);
wire_enum!(
    /// Why a webhook request was refused.
    RejectionKind from d::RejectionKind, "snake_case" {
        InvalidSignature, InvalidPayload, ComponentNotFound, RateLimited, PayloadTooLarge,
        UnsupportedMediaType
    }
);
wire_enum!(
    /// FOSSA's issue categories.
    IssueCategory from d::IssueCategory, "snake_case" { Licensing, Vulnerability, Quality }
);
wire_enum!(
    /// The dashboard's severity scale.
    Severity from d::Severity, "snake_case" { Critical, High, Medium, Low, Unknown }
);
wire_enum!(
    /// Whether an issue is in the latest applied scan.
    IssueStatus from d::IssueStatus, "SCREAMING_SNAKE_CASE" { Active, Resolved }
);

/// A registered component.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Component {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Repository URL as registered.
    pub repository_url: String,
    /// Normalized key webhooks match on.
    pub repository_key: String,
    /// FOSSA project locator.
    pub fossa_locator: String,
    /// Main-line branch.
    pub default_branch: String,
    /// Status of the latest applied scan.
    pub compliance_status: ComplianceStatus,
    /// When a sync last completed.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Completion time of the scan behind the current data.
    pub last_scan_at: Option<DateTime<Utc>>,
    /// Revision behind the current data.
    pub last_revision: Option<String>,
    /// Job that applied the current data.
    pub last_sync_job_id: Option<Uuid>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

impl From<d::Component> for Component {
    fn from(c: d::Component) -> Self {
        Self {
            id: c.id.as_uuid(),
            name: c.name,
            repository_url: c.repository_url,
            repository_key: c.repository_key,
            fossa_locator: c.fossa_locator,
            default_branch: c.default_branch,
            compliance_status: c.compliance_status.into(),
            last_synced_at: c.last_synced_at,
            last_scan_at: c.last_scan_at,
            last_revision: c.last_revision,
            last_sync_job_id: c.last_sync_job_id.map(|j| j.as_uuid()),
            created_at: c.created_at,
        }
    }
}

/// Active issues by category and severity.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct IssueCounts {
    /// All active issues.
    pub total: u64,
    /// Licensing issues.
    pub licensing: u64,
    /// Vulnerabilities.
    pub vulnerability: u64,
    /// Quality issues.
    pub quality: u64,
    /// Critical.
    pub critical: u64,
    /// High.
    pub high: u64,
    /// Medium.
    pub medium: u64,
    /// Low.
    pub low: u64,
    /// Unknown severity.
    pub unknown: u64,
}

impl From<d::IssueCounts> for IssueCounts {
    fn from(c: d::IssueCounts) -> Self {
        Self {
            total: c.total,
            licensing: c.licensing,
            vulnerability: c.vulnerability,
            quality: c.quality,
            critical: c.critical,
            high: c.high,
            medium: c.medium,
            low: c.low,
            unknown: c.unknown,
        }
    }
}

/// A row of the component list.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ComponentSummary {
    /// The component.
    #[serde(flatten)]
    pub component: Component,
    /// Active issues.
    pub issues: IssueCounts,
    /// Dependencies of the latest applied scan.
    pub dependency_count: u64,
}

impl From<d::ComponentSummary> for ComponentSummary {
    fn from(s: d::ComponentSummary) -> Self {
        Self {
            component: s.component.into(),
            issues: s.issues.into(),
            dependency_count: s.dependency_count,
        }
    }
}

/// One applied snapshot.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScanResult {
    /// Id.
    pub id: Uuid,
    /// Component.
    pub component_id: Uuid,
    /// Job that applied it.
    pub sync_job_id: Uuid,
    /// Revision.
    pub revision: String,
    /// Branch.
    pub branch: String,
    /// When FOSSA scanned it.
    pub scanned_at: Option<DateTime<Utc>>,
    /// When it was applied.
    pub synced_at: DateTime<Utc>,
    /// Dependencies.
    pub total_dependencies: u32,
    /// Direct dependencies.
    pub direct_dependencies: u32,
    /// Active issues.
    pub issues_count: u32,
    /// PASSING or FAILING.
    pub overall_status: ComplianceStatus,
    /// FOSSA's project title.
    pub project_title: String,
}

impl From<d::ScanResult> for ScanResult {
    fn from(s: d::ScanResult) -> Self {
        Self {
            id: s.id.as_uuid(),
            component_id: s.component_id.as_uuid(),
            sync_job_id: s.sync_job_id.as_uuid(),
            revision: s.revision,
            branch: s.branch,
            scanned_at: s.scanned_at,
            synced_at: s.synced_at,
            total_dependencies: s.total_dependencies,
            direct_dependencies: s.direct_dependencies,
            issues_count: s.issues_count,
            overall_status: s.overall_status.into(),
            project_title: s.project_title,
        }
    }
}

/// Dependency totals.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct DependencyCounts {
    /// All.
    pub total: u64,
    /// Direct.
    pub direct: u64,
    /// Transitive.
    pub transitive: u64,
}

/// Dependencies carrying one license.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LicenseCount {
    /// License id; `null` counts dependencies without a license.
    pub license: Option<String>,
    /// How many dependencies carry it.
    pub count: u64,
}

/// The component page's summary.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ComplianceView {
    /// The component.
    pub component: Component,
    /// The latest applied scan.
    pub latest_scan: Option<ScanResult>,
    /// Active issues by category and severity.
    pub issues: IssueCounts,
    /// Dependencies by depth.
    pub dependencies: DependencyCounts,
    /// Dependencies per license, most used first.
    pub licenses: Vec<LicenseCount>,
}

impl From<d::ComplianceView> for ComplianceView {
    fn from(v: d::ComplianceView) -> Self {
        Self {
            component: v.component.into(),
            latest_scan: v.latest_scan.map(Into::into),
            issues: v.issues.into(),
            dependencies: DependencyCounts {
                total: v.dependencies.total,
                direct: v.dependencies.direct,
                transitive: v.dependencies.transitive,
            },
            licenses: v
                .licenses
                .into_iter()
                .map(|l| LicenseCount {
                    license: l.license,
                    count: l.count,
                })
                .collect(),
        }
    }
}

/// A stored issue of a component.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Issue {
    /// Component.
    pub component_id: Uuid,
    /// Category.
    pub category: IssueCategory,
    /// FOSSA's issue id (unique within the category).
    pub fossa_id: String,
    /// FOSSA's type string.
    pub issue_type: String,
    /// Severity.
    pub severity: Severity,
    /// Title.
    pub title: String,
    /// Affected package.
    pub package_name: String,
    /// Affected package version.
    pub package_version: Option<String>,
    /// Affected package locator.
    pub package_locator: Option<String>,
    /// Package manager.
    pub package_manager: Option<String>,
    /// License involved.
    pub license: Option<String>,
    /// CVE id.
    pub cve: Option<String>,
    /// CVSS score.
    pub cvss: Option<f64>,
    /// Whether the package is a direct dependency.
    pub direct: bool,
    /// When FOSSA first found it.
    pub detected_at: Option<DateTime<Utc>>,
    /// Link to FOSSA.
    pub url: Option<String>,
    /// Active or resolved.
    pub status: IssueStatus,
    /// When a sync first stored it.
    pub first_seen_at: DateTime<Utc>,
    /// When a sync resolved it.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Scan result that last saw it.
    pub scan_result_id: Uuid,
}

impl From<d::IssueRecord> for Issue {
    fn from(r: d::IssueRecord) -> Self {
        let i = r.issue;
        Self {
            component_id: r.component_id.as_uuid(),
            category: i.key.category.into(),
            fossa_id: i.key.fossa_id,
            issue_type: i.issue_type,
            severity: i.severity.into(),
            title: i.title,
            package_name: i.package_name,
            package_version: i.package_version,
            package_locator: i.package_locator,
            package_manager: i.package_manager,
            license: i.license,
            cve: i.cve,
            cvss: i.cvss,
            direct: i.direct,
            detected_at: i.detected_at,
            url: i.url,
            status: r.status.into(),
            first_seen_at: r.first_seen_at,
            resolved_at: r.resolved_at,
            scan_result_id: r.scan_result_id.as_uuid(),
        }
    }
}

/// A dependency of the latest applied scan.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Dependency {
    /// FOSSA locator.
    pub locator: String,
    /// Package name.
    pub name: String,
    /// Version.
    pub version: Option<String>,
    /// Package manager.
    pub package_manager: String,
    /// Direct dependency.
    pub is_direct: bool,
    /// Depth in the tree (1 = direct).
    pub depth: u32,
    /// Licenses found.
    pub licenses: Vec<String>,
    /// Licenses joined with ` AND `.
    pub license_expression: Option<String>,
}

impl From<d::Dependency> for Dependency {
    fn from(x: d::Dependency) -> Self {
        Self {
            locator: x.locator,
            name: x.name,
            version: x.version,
            package_manager: x.package_manager,
            is_direct: x.is_direct,
            depth: x.depth,
            licenses: x.licenses,
            license_expression: x.license_expression,
        }
    }
}

/// One sync job.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SyncJob {
    /// Id (the `sync_id` of the webhook answer).
    pub id: Uuid,
    /// Component.
    pub component_id: Uuid,
    /// What started it.
    pub trigger: Trigger,
    /// Webhook request that created it.
    pub webhook_event_id: Option<Uuid>,
    /// Where it stands.
    pub status: JobStatus,
    /// Revision to sync; `null` for the latest.
    pub revision: Option<String>,
    /// Branch.
    pub branch: String,
    /// When the scan completed.
    pub scan_completed_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub queued_at: DateTime<Utc>,
    /// First start.
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    pub completed_at: Option<DateTime<Utc>>,
    /// Last sign of life.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Starts so far.
    pub attempts: u32,
    /// Next attempt, while waiting for a retry.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Issues applied.
    pub issues_synced: Option<u32>,
    /// Dependencies applied.
    pub dependencies_synced: Option<u32>,
    /// New issues.
    pub new_issues: Option<u32>,
    /// Resolved issues.
    pub resolved_issues: Option<u32>,
    /// Job that covered this one.
    pub superseded_by: Option<Uuid>,
    /// Last error.
    pub error_message: Option<String>,
}

impl From<d::SyncJob> for SyncJob {
    fn from(j: d::SyncJob) -> Self {
        Self {
            id: j.id.as_uuid(),
            component_id: j.component_id.as_uuid(),
            trigger: j.trigger.into(),
            webhook_event_id: j.webhook_event_id.map(|e| e.as_uuid()),
            status: j.status.into(),
            revision: j.revision,
            branch: j.branch,
            scan_completed_at: j.scan_completed_at,
            queued_at: j.queued_at,
            started_at: j.started_at,
            completed_at: j.completed_at,
            heartbeat_at: j.heartbeat_at,
            attempts: j.attempts,
            next_attempt_at: j.next_attempt_at,
            issues_synced: j.issues_synced,
            dependencies_synced: j.dependencies_synced,
            new_issues: j.new_issues,
            resolved_issues: j.resolved_issues,
            superseded_by: j.superseded_by.map(|s| s.as_uuid()),
            error_message: j.error_message,
        }
    }
}

/// One logged webhook request.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookEvent {
    /// Id.
    pub id: Uuid,
    /// The body's `event`.
    pub event_type: Option<String>,
    /// Sender address.
    pub source_ip: Option<String>,
    /// `X-Webhook-Source`.
    pub source_system: Option<String>,
    /// Raw body as text (cut for rejected requests).
    pub raw_payload: String,
    /// Whether `raw_payload` was cut.
    pub payload_truncated: bool,
    /// Signature header as sent.
    pub signature: Option<String>,
    /// Whether the signature verified.
    pub signature_valid: bool,
    /// Where it stands.
    pub processing_status: EventStatus,
    /// Why it was refused.
    pub rejection: Option<RejectionKind>,
    /// Status it was answered with.
    pub http_status: u16,
    /// Matched component.
    pub component_id: Option<Uuid>,
    /// Created job.
    pub sync_job_id: Option<Uuid>,
    /// `repository.url`.
    pub repository_url: Option<String>,
    /// `scan.revision`.
    pub revision: Option<String>,
    /// `scan.branch`.
    pub branch: Option<String>,
    /// `pipeline.id`.
    pub pipeline_id: Option<String>,
    /// `pipeline.url`.
    pub pipeline_url: Option<String>,
    /// `metadata.actor`.
    pub actor: Option<String>,
    /// Digest identifying the signed delivery.
    pub delivery_key: Option<String>,
    /// Arrival.
    pub received_at: DateTime<Utc>,
    /// End of processing.
    pub processed_at: Option<DateTime<Utc>>,
    /// What went wrong.
    pub error_message: Option<String>,
}

impl From<d::WebhookEvent> for WebhookEvent {
    fn from(e: d::WebhookEvent) -> Self {
        Self {
            id: e.id.as_uuid(),
            event_type: e.event_type,
            source_ip: e.source_ip.map(|ip| ip.to_string()),
            source_system: e.source_system,
            raw_payload: e.raw_payload,
            payload_truncated: e.payload_truncated,
            signature: e.signature,
            signature_valid: e.signature_valid,
            processing_status: e.processing_status.into(),
            rejection: e.rejection.map(Into::into),
            http_status: e.http_status,
            component_id: e.component_id.map(|c| c.as_uuid()),
            sync_job_id: e.sync_job_id.map(|j| j.as_uuid()),
            repository_url: e.repository_url,
            revision: e.revision,
            branch: e.branch,
            pipeline_id: e.pipeline_id,
            pipeline_url: e.pipeline_url,
            actor: e.actor,
            delivery_key: e.delivery_key,
            received_at: e.received_at,
            processed_at: e.processed_at,
            error_message: e.error_message,
        }
    }
}

/// A dead-lettered job.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeadLetterEntry {
    /// The job.
    pub job_id: Uuid,
    /// Why it was given up.
    pub reason: String,
    /// How many times it was delivered.
    pub deliveries: u32,
    /// When it was dead-lettered.
    pub dead_at: DateTime<Utc>,
}

impl From<DeadLetter> for DeadLetterEntry {
    fn from(d: DeadLetter) -> Self {
        Self {
            job_id: d.job_id.as_uuid(),
            reason: d.reason,
            deliveries: d.deliveries,
            dead_at: d.dead_at,
        }
    }
}

/// The component a sync is for.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ComponentRef {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
}

/// A queued sync (the 202 answer of the webhook and of sync triggers).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SyncAccepted {
    /// The job.
    pub sync_id: Uuid,
    /// `queued`, or where an earlier job stands for a redelivery (`running`, `completed`, …),
    /// or `superseded` when newer data already covers it.
    pub status: String,
    /// The component.
    pub component: ComponentRef,
    /// When the sync should be done.
    pub estimated_completion: DateTime<Utc>,
    /// The logged webhook request, for webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub webhook_event_id: Option<Uuid>,
    /// Whether this repeated an earlier signed delivery.
    pub duplicate: bool,
}

impl From<compliance_core::ingest::Accepted> for SyncAccepted {
    fn from(a: compliance_core::ingest::Accepted) -> Self {
        Self {
            sync_id: a.sync_id.as_uuid(),
            status: a.status.to_owned(),
            component: ComponentRef {
                id: a.component.id.as_uuid(),
                name: a.component.name,
            },
            estimated_completion: a.estimated_completion,
            webhook_event_id: a.webhook_event_id.map(|e| e.as_uuid()),
            duplicate: a.duplicate,
        }
    }
}

macro_rules! page {
    ($(#[$meta:meta])* $name:ident of $item:ty) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Serialize, ToSchema)]
        pub struct $name {
            /// The items of this slice.
            pub items: Vec<$item>,
            /// Items in the whole list.
            pub total: u64,
            /// Offset of this slice.
            pub offset: u32,
            /// Limit applied.
            pub limit: u32,
        }

        impl<T: Into<$item>> From<d::Page<T>> for $name {
            fn from(page: d::Page<T>) -> Self {
                Self {
                    items: page.items.into_iter().map(Into::into).collect(),
                    total: page.total,
                    offset: page.offset,
                    limit: page.limit,
                }
            }
        }
    };
}

page!(
    /// A page of components.
    ComponentPage of ComponentSummary
);
page!(
    /// A page of issues.
    IssuePage of Issue
);
page!(
    /// A page of dependencies.
    DependencyPage of Dependency
);
page!(
    /// A page of applied scans.
    ScanPage of ScanResult
);
page!(
    /// A page of sync jobs.
    SyncJobPage of SyncJob
);
page!(
    /// A page of logged webhook requests.
    WebhookEventPage of WebhookEvent
);
