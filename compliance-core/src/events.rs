//! The events a sync publishes, shaped as the workflow document shows them.
//!
//! Each event goes to two channels: `component:{id}` (the component page) and `components`
//! (the list view).

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::domain::{ComplianceStatus, IssueKey, Trigger};
use crate::id::{ComponentId, SyncJobId};
use crate::ports::ChannelEvent;

/// The channel the list view follows.
pub const COMPONENTS_CHANNEL: &str = "components";

/// Event type names.
pub mod kind {
    /// A worker started (or is waiting for FOSSA to finish) a sync.
    pub const SYNC_STARTED: &str = "sync.started";
    /// A sync applied its snapshot.
    pub const SYNC_COMPLETED: &str = "sync.completed";
    /// A sync gave up.
    pub const SYNC_FAILED: &str = "sync.failed";
}

/// The channel of one component: `component:{id}`.
#[must_use]
pub fn component_channel(id: ComponentId) -> String {
    format!("component:{id}")
}

/// The most issue ids a `sync.completed` carries in each list; beyond that the list is cut and
/// `ids_truncated` is set.
pub const MAX_ISSUE_IDS: usize = 100;

/// What a sync is doing when it announces itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    /// Fetching from FOSSA.
    Running,
    /// FOSSA is still analysing; the sync will try again.
    WaitingForFossa,
}

/// Data of `sync.started`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncStarted {
    /// The job.
    pub sync_job_id: SyncJobId,
    /// The component.
    pub component_id: ComponentId,
    /// `webhook`, `manual` or `scheduled`.
    pub trigger: String,
    /// The revision, when the job names one.
    pub revision: Option<String>,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    /// Running, or waiting for FOSSA.
    pub phase: SyncPhase,
}

/// Data of `sync.completed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncCompleted {
    /// The job.
    pub sync_job_id: SyncJobId,
    /// The component.
    pub component_id: ComponentId,
    /// The revision synced.
    pub revision: String,
    /// Active issues.
    pub issues_count: u32,
    /// Dependencies.
    pub dependencies_count: u32,
    /// PASSING or FAILING.
    pub status: ComplianceStatus,
    /// How many issues are new.
    pub new_issues: u32,
    /// How many issues were resolved.
    pub resolved_issues: u32,
    /// Ids of new issues as `category:id`, at most [`MAX_ISSUE_IDS`].
    pub new_issue_ids: Vec<String>,
    /// Ids of resolved issues as `category:id`, at most [`MAX_ISSUE_IDS`].
    pub resolved_issue_ids: Vec<String>,
    /// Whether either id list was cut.
    pub ids_truncated: bool,
}

/// Data of `sync.failed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncFailed {
    /// The job.
    pub sync_job_id: SyncJobId,
    /// The component.
    pub component_id: ComponentId,
    /// What went wrong, safe to show.
    pub error: String,
    /// How many attempts were made.
    pub attempts: u32,
}

/// The wire name of a trigger in events (`webhook`, `manual`, `scheduled`).
#[must_use]
pub fn trigger_name(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Webhook => "webhook",
        Trigger::Manual => "manual",
        Trigger::Scheduled => "scheduled",
    }
}

/// Formats issue keys as `category:id`, cut to [`MAX_ISSUE_IDS`]; the flag says whether it cut.
#[must_use]
pub fn issue_ids(keys: &[IssueKey]) -> (Vec<String>, bool) {
    let ids = keys
        .iter()
        .take(MAX_ISSUE_IDS)
        .map(|k| format!("{}:{}", k.category.as_str(), k.fossa_id))
        .collect();
    (ids, keys.len() > MAX_ISSUE_IDS)
}

/// Builds the two channel events (component channel and list channel) for one event.
#[must_use]
pub fn channel_events<T: Serialize>(
    component: ComponentId,
    event: &str,
    data: &T,
    now: Timestamp,
) -> [ChannelEvent; 2] {
    let data = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
    [
        ChannelEvent {
            channel: component_channel(component),
            event: event.to_owned(),
            data: data.clone(),
            timestamp: now,
        },
        ChannelEvent {
            channel: COMPONENTS_CHANNEL.to_owned(),
            event: event.to_owned(),
            data,
            timestamp: now,
        },
    ]
}
