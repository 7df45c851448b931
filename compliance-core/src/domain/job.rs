use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::domain::page::PageRequest;
use crate::id::{ComponentId, SyncJobId, WebhookEventId};

/// What started a sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Trigger {
    /// A CI webhook.
    Webhook,
    /// An operator or API call.
    Manual,
    /// The safety-net scheduler.
    Scheduled,
}

impl Trigger {
    /// The database spelling (`WEBHOOK`, `MANUAL`, `SCHEDULED`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "WEBHOOK",
            Self::Manual => "MANUAL",
            Self::Scheduled => "SCHEDULED",
        }
    }

    /// Parses the spelling [`as_str`](Self::as_str) produces.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "WEBHOOK" => Some(Self::Webhook),
            "MANUAL" => Some(Self::Manual),
            "SCHEDULED" => Some(Self::Scheduled),
            _ => None,
        }
    }
}

/// Where a sync job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Waiting for a worker (also between retries).
    Queued,
    /// A worker holds it.
    Running,
    /// Its snapshot was applied.
    Completed,
    /// It gave up; `error_message` says why.
    Failed,
    /// A newer job covered it; `superseded_by` names that job.
    Superseded,
}

impl JobStatus {
    /// The database spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Superseded => "SUPERSEDED",
        }
    }

    /// Parses the spelling [`as_str`](Self::as_str) produces.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "QUEUED" => Some(Self::Queued),
            "RUNNING" => Some(Self::Running),
            "COMPLETED" => Some(Self::Completed),
            "FAILED" => Some(Self::Failed),
            "SUPERSEDED" => Some(Self::Superseded),
            _ => None,
        }
    }

    /// Whether the job has ended (completed, failed or superseded).
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Superseded)
    }
}

/// One sync of one component from FOSSA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncJob {
    /// The job's id (the `sync_id` of the webhook answer).
    pub id: SyncJobId,
    /// The component to sync.
    pub component_id: ComponentId,
    /// What started it.
    pub trigger: Trigger,
    /// The webhook request that created it.
    pub webhook_event_id: Option<WebhookEventId>,
    /// Where it stands.
    pub status: JobStatus,
    /// The revision to sync; `None` means the project's latest.
    pub revision: Option<String>,
    /// The branch the scan ran on.
    pub branch: String,
    /// When the scan completed (the webhook's `timestamp`); orders out-of-order deliveries.
    pub scan_completed_at: Option<Timestamp>,
    /// When it was created.
    pub queued_at: Timestamp,
    /// When a worker first started it.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
    /// Last sign of life from the worker running it.
    pub heartbeat_at: Option<Timestamp>,
    /// How many times a worker has started it.
    pub attempts: u32,
    /// When the next attempt is due, while it waits for a retry.
    pub next_attempt_at: Option<Timestamp>,
    /// Issues in the applied snapshot.
    pub issues_synced: Option<u32>,
    /// Dependencies in the applied snapshot.
    pub dependencies_synced: Option<u32>,
    /// Issues that were not active before this sync.
    pub new_issues: Option<u32>,
    /// Issues this sync resolved.
    pub resolved_issues: Option<u32>,
    /// The job that covered this one, when superseded.
    pub superseded_by: Option<SyncJobId>,
    /// The last error, in words safe to show.
    pub error_message: Option<String>,
}

/// What it takes to create a job.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSyncJob {
    /// The new job's id (chosen by the caller so it can be logged before the write).
    pub id: SyncJobId,
    /// The component to sync.
    pub component_id: ComponentId,
    /// What started it.
    pub trigger: Trigger,
    /// The webhook request that created it.
    pub webhook_event_id: Option<WebhookEventId>,
    /// The revision to sync; `None` for the project's latest.
    pub revision: Option<String>,
    /// The branch.
    pub branch: String,
    /// When the scan completed, if known.
    pub scan_completed_at: Option<Timestamp>,
    /// Creation time.
    pub queued_at: Timestamp,
}

impl NewSyncJob {
    /// The job as first stored: `QUEUED`, no attempts.
    #[must_use]
    pub fn into_job(self) -> SyncJob {
        SyncJob {
            id: self.id,
            component_id: self.component_id,
            trigger: self.trigger,
            webhook_event_id: self.webhook_event_id,
            status: JobStatus::Queued,
            revision: self.revision,
            branch: self.branch,
            scan_completed_at: self.scan_completed_at,
            queued_at: self.queued_at,
            started_at: None,
            completed_at: None,
            heartbeat_at: None,
            attempts: 0,
            next_attempt_at: None,
            issues_synced: None,
            dependencies_synced: None,
            new_issues: None,
            resolved_issues: None,
            superseded_by: None,
            error_message: None,
        }
    }
}

/// Filters for job lists. Results are newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobQuery {
    /// Only jobs of this component.
    pub component_id: Option<ComponentId>,
    /// Only jobs with this status.
    pub status: Option<JobStatus>,
    /// Which slice.
    pub page: PageRequest,
}
