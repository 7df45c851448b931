use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::domain::component::{ComplianceStatus, Component};
use crate::domain::page::PageRequest;
use crate::id::{ComponentId, ScanResultId, SyncJobId};

/// FOSSA's issue categories; the issues API answers one category per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCategory {
    /// License policy conflicts, flags and unlicensed dependencies.
    Licensing,
    /// Known vulnerabilities.
    Vulnerability,
    /// Outdated, blacklisted or risky dependencies.
    Quality,
}

impl IssueCategory {
    /// All categories, in the order a sync fetches them.
    pub const ALL: [Self; 3] = [Self::Licensing, Self::Vulnerability, Self::Quality];

    /// FOSSA's and our spelling (`licensing`, `vulnerability`, `quality`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Licensing => "licensing",
            Self::Vulnerability => "vulnerability",
            Self::Quality => "quality",
        }
    }

    /// Parses the spelling [`as_str`](Self::as_str) produces.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "licensing" => Some(Self::Licensing),
            "vulnerability" => Some(Self::Vulnerability),
            "quality" => Some(Self::Quality),
            _ => None,
        }
    }
}

/// The dashboard's severity scale.
///
/// FOSSA gives a severity only for vulnerabilities; the client maps licensing and quality
/// issues onto this scale (documented in `compliance-fossa`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Critical.
    Critical,
    /// High.
    High,
    /// Medium.
    Medium,
    /// Low.
    Low,
    /// Not known.
    Unknown,
}

impl Severity {
    /// The spelling (`critical`, …, `unknown`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Unknown => "unknown",
        }
    }

    /// Parses the spelling [`as_str`](Self::as_str) produces; anything else is `Unknown`.
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "critical" => Self::Critical,
            "high" => Self::High,
            "medium" => Self::Medium,
            "low" => Self::Low,
            _ => Self::Unknown,
        }
    }
}

/// An issue's identity: FOSSA's id is unique within a category.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IssueKey {
    /// The category.
    pub category: IssueCategory,
    /// FOSSA's issue id, as text.
    pub fossa_id: String,
}

/// One issue as a scan source reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// Identity.
    pub key: IssueKey,
    /// FOSSA's type string (`policy_conflict`, `vulnerability`, `outdated_dependency`, …);
    /// unknown types are kept as they are.
    pub issue_type: String,
    /// Severity on the dashboard's scale.
    pub severity: Severity,
    /// Display title.
    pub title: String,
    /// Affected package name.
    pub package_name: String,
    /// Affected package version.
    pub package_version: Option<String>,
    /// Affected package locator.
    pub package_locator: Option<String>,
    /// Package manager (npm, pip, …).
    pub package_manager: Option<String>,
    /// The license involved (licensing issues).
    pub license: Option<String>,
    /// The CVE id (vulnerabilities).
    pub cve: Option<String>,
    /// CVSS score (vulnerabilities).
    pub cvss: Option<f64>,
    /// Whether the package is a direct dependency.
    pub direct: bool,
    /// When FOSSA first found it in this project.
    pub detected_at: Option<Timestamp>,
    /// A link to the issue in FOSSA, when known.
    pub url: Option<String>,
}

/// One dependency of a scanned revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// FOSSA locator, for example `npm+lodash$4.17.21`.
    pub locator: String,
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: Option<String>,
    /// Package manager (FOSSA fetcher: npm, pip, mvn, go, cargo, gem, …).
    pub package_manager: String,
    /// Whether it is a direct dependency.
    pub is_direct: bool,
    /// Depth in the tree (1 = direct).
    pub depth: u32,
    /// Licenses found, distinct and sorted.
    pub licenses: Vec<String>,
    /// The licenses joined with ` AND `, or `None` when none was found.
    pub license_expression: Option<String>,
}

/// What FOSSA says about the project.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectInfo {
    /// The project locator.
    pub locator: String,
    /// Display title.
    pub title: String,
    /// Default branch, when FOSSA knows it.
    pub default_branch: Option<String>,
    /// Latest revision locator.
    pub latest_revision: Option<String>,
    /// When the latest revision's analysis finished.
    pub last_analyzed_at: Option<Timestamp>,
    /// When the latest issue scan ran.
    pub scanned_at: Option<Timestamp>,
    /// Project URL.
    pub url: Option<String>,
}

/// Everything one sync fetched for one revision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanSnapshot {
    /// Project metadata.
    pub project: ProjectInfo,
    /// The revision the data belongs to (bare revision, not the locator).
    pub revision: String,
    /// Active issues of every category.
    pub issues: Vec<Issue>,
    /// Resolved dependencies.
    pub dependencies: Vec<Dependency>,
    /// Unresolved placeholders (`NULL` locators) that were skipped.
    pub unresolved_dependencies: u32,
}

/// Whether a stored issue is still present in the latest scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IssueStatus {
    /// Present in the latest applied scan.
    Active,
    /// Absent from the latest applied scan.
    Resolved,
}

impl IssueStatus {
    /// The spelling (`ACTIVE`, `RESOLVED`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Resolved => "RESOLVED",
        }
    }

    /// Parses the spelling [`as_str`](Self::as_str) produces.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(Self::Active),
            "RESOLVED" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// A stored issue of a component.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssueRecord {
    /// The component.
    pub component_id: ComponentId,
    /// The issue as last seen.
    #[serde(flatten)]
    pub issue: Issue,
    /// Active or resolved.
    pub status: IssueStatus,
    /// When a sync first stored it.
    pub first_seen_at: Timestamp,
    /// When a sync resolved it.
    pub resolved_at: Option<Timestamp>,
    /// The scan result that last saw it.
    pub scan_result_id: ScanResultId,
}

/// One applied snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanResult {
    /// Its id.
    pub id: ScanResultId,
    /// The component.
    pub component_id: ComponentId,
    /// The job that applied it.
    pub sync_job_id: SyncJobId,
    /// The revision.
    pub revision: String,
    /// The branch.
    pub branch: String,
    /// When FOSSA scanned it (issue scan, else analysis).
    pub scanned_at: Option<Timestamp>,
    /// When it was applied.
    pub synced_at: Timestamp,
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

/// Issue counts by category and severity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

impl IssueCounts {
    /// Adds one issue of `category` and `severity`.
    pub fn add(&mut self, category: IssueCategory, severity: Severity) {
        self.total += 1;
        match category {
            IssueCategory::Licensing => self.licensing += 1,
            IssueCategory::Vulnerability => self.vulnerability += 1,
            IssueCategory::Quality => self.quality += 1,
        }
        match severity {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::Unknown => self.unknown += 1,
        }
    }
}

/// How many dependencies carry a license.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseCount {
    /// The license id; dependencies with none are counted under `None`.
    pub license: Option<String>,
    /// How many dependencies carry it.
    pub count: u64,
}

/// Dependency totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyCounts {
    /// All.
    pub total: u64,
    /// Direct.
    pub direct: u64,
    /// Transitive.
    pub transitive: u64,
}

/// The component page's summary, read in one call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComplianceView {
    /// The component.
    pub component: Component,
    /// The latest applied scan.
    pub latest_scan: Option<ScanResult>,
    /// Active issues by category and severity.
    pub issues: IssueCounts,
    /// Dependencies by depth.
    pub dependencies: DependencyCounts,
    /// Dependencies per license, most used first (a dependency with several licenses counts
    /// once under each).
    pub licenses: Vec<LicenseCount>,
}

/// Filters for a component's issues. Ordered by severity (critical first), then key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IssueQuery {
    /// Only this status; `None` means both.
    pub status: Option<IssueStatus>,
    /// Only this category.
    pub category: Option<IssueCategory>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only issues whose title or package name contains this text (case-insensitive).
    pub search: Option<String>,
    /// Which slice.
    pub page: PageRequest,
}

/// Filters for a component's dependencies. Ordered by name, then locator.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DependencyQuery {
    /// Only direct (`true`) or only transitive (`false`).
    pub direct: Option<bool>,
    /// Only dependencies carrying this license.
    pub license: Option<String>,
    /// Only dependencies whose name contains this text (case-insensitive).
    pub search: Option<String>,
    /// Which slice.
    pub page: PageRequest,
}
