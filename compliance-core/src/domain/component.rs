use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::domain::page::PageRequest;
use crate::domain::scan::IssueCounts;
use crate::id::{ComponentId, SyncJobId};
use crate::repo_url::RepoUrl;

/// Whether a component's latest synced scan has active issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComplianceStatus {
    /// Never synced.
    Unknown,
    /// The latest scan has no active issues.
    Passing,
    /// The latest scan has at least one active issue.
    Failing,
}

impl ComplianceStatus {
    /// The wire and database spelling (`UNKNOWN`, `PASSING`, `FAILING`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Passing => "PASSING",
            Self::Failing => "FAILING",
        }
    }

    /// Parses the spelling [`as_str`](Self::as_str) produces.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "UNKNOWN" => Some(Self::Unknown),
            "PASSING" => Some(Self::Passing),
            "FAILING" => Some(Self::Failing),
            _ => None,
        }
    }

    /// The status a scan with `active_issues` active issues gives.
    #[must_use]
    pub fn from_issue_count(active_issues: usize) -> Self {
        if active_issues == 0 {
            Self::Passing
        } else {
            Self::Failing
        }
    }
}

/// A repository linked to a FOSSA project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// The component's id.
    pub id: ComponentId,
    /// Display name, for example `payment-service`.
    pub name: String,
    /// The repository URL as registered.
    pub repository_url: String,
    /// The normalized form webhooks are matched on (see [`RepoUrl`]).
    pub repository_key: String,
    /// The FOSSA project locator, for example `custom+48213/github.com/acme/payment-service`.
    pub fossa_locator: String,
    /// The branch the dashboard treats as the main line.
    pub default_branch: String,
    /// Status of the latest applied scan.
    pub compliance_status: ComplianceStatus,
    /// When a sync last completed.
    pub last_synced_at: Option<Timestamp>,
    /// Completion time of the scan behind the current data; older scans never overwrite it.
    pub last_scan_at: Option<Timestamp>,
    /// The revision behind the current data.
    pub last_revision: Option<String>,
    /// The job that applied the current data.
    pub last_sync_job_id: Option<SyncJobId>,
    /// When the component was registered.
    pub created_at: Timestamp,
}

/// What it takes to register a component.
#[derive(Clone, Debug, PartialEq)]
pub struct NewComponent {
    /// Display name.
    pub name: String,
    /// Repository URL; its normalized form must be unique.
    pub repository_url: RepoUrl,
    /// FOSSA project locator.
    pub fossa_locator: String,
    /// Main-line branch.
    pub default_branch: String,
}

impl NewComponent {
    /// The component this registration creates, with a fresh id.
    #[must_use]
    pub fn into_component(self, now: Timestamp) -> Component {
        Component {
            id: ComponentId::new(),
            name: self.name,
            repository_url: self.repository_url.original().to_owned(),
            repository_key: self.repository_url.key().to_owned(),
            fossa_locator: self.fossa_locator,
            default_branch: self.default_branch,
            compliance_status: ComplianceStatus::Unknown,
            last_synced_at: None,
            last_scan_at: None,
            last_revision: None,
            last_sync_job_id: None,
            created_at: now,
        }
    }
}

/// A row of the component list: the component and its current counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentSummary {
    /// The component.
    #[serde(flatten)]
    pub component: Component,
    /// Active issues by category and severity.
    pub issues: IssueCounts,
    /// Dependencies of the latest applied scan.
    pub dependency_count: u64,
}

/// Filters for the component list. Results are ordered by name, then id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ComponentQuery {
    /// Only components with this status.
    pub status: Option<ComplianceStatus>,
    /// Only components whose name contains this text (case-insensitive).
    pub search: Option<String>,
    /// Which slice.
    pub page: PageRequest,
}
