//! The domain: what the product stores and moves around.

mod component;
mod event;
mod job;
mod page;
mod scan;

pub use component::{ComplianceStatus, Component, ComponentQuery, ComponentSummary, NewComponent};
pub use event::{EventStatus, RejectionKind, WebhookEvent, WebhookEventQuery};
pub use job::{JobQuery, JobStatus, NewSyncJob, SyncJob, Trigger};
pub use page::{Page, PageRequest};
pub use scan::{
    ComplianceView, Dependency, DependencyCounts, DependencyQuery, Issue, IssueCategory,
    IssueCounts, IssueKey, IssueQuery, IssueRecord, IssueStatus, LicenseCount, ProjectInfo,
    ScanResult, ScanSnapshot, Severity,
};
