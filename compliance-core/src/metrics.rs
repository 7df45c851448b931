//! Metric names, from the workflow document, in Prometheus style.
//!
//! Recorded through the `metrics` facade; the application chooses the exporter.

/// Counter: webhook requests received (label `outcome`: accepted, duplicate, invalid_signature,
/// invalid_payload, component_not_found, rate_limited, unavailable).
pub const WEBHOOK_RECEIVED: &str = "webhook_received_total";
/// Counter: requests refused for their signature (label `reason`).
pub const WEBHOOK_SIGNATURE_INVALID: &str = "webhook_signature_invalid_total";
/// Histogram: seconds from request to answer in the ingest service.
pub const WEBHOOK_PROCESSING_DURATION: &str = "webhook_processing_duration_seconds";
/// Counter: requests for a repository no component is linked to.
pub const WEBHOOK_COMPONENT_NOT_FOUND: &str = "webhook_component_not_found_total";
/// Counter: sync jobs queued (label `trigger`).
pub const SYNC_JOB_QUEUED: &str = "sync_job_queued_total";
/// Counter: sync jobs completed.
pub const SYNC_JOB_COMPLETED: &str = "sync_job_completed_total";
/// Counter: sync jobs failed for good (label `reason`).
pub const SYNC_JOB_FAILED: &str = "sync_job_failed_total";
/// Counter: sync jobs superseded by a newer one.
pub const SYNC_JOB_SUPERSEDED: &str = "sync_job_superseded_total";
/// Counter: sync attempts scheduled for retry (label `reason`).
pub const SYNC_JOB_RETRIED: &str = "sync_job_retried_total";
/// Histogram: seconds per FOSSA API call (label `endpoint`).
pub const SYNC_FOSSA_API_DURATION: &str = "sync_fossa_api_duration_seconds";
/// Counter: issues written by syncs.
pub const SYNC_ISSUES_SYNCED: &str = "sync_issues_synced_total";
/// Histogram: seconds per whole sync (fetch and apply).
pub const SYNC_DURATION: &str = "sync_duration_seconds";

/// Every metric name above, for exporters and tests that check dashboards and alert rules.
pub const ALL: &[&str] = &[
    WEBHOOK_RECEIVED,
    WEBHOOK_SIGNATURE_INVALID,
    WEBHOOK_PROCESSING_DURATION,
    WEBHOOK_COMPONENT_NOT_FOUND,
    SYNC_JOB_QUEUED,
    SYNC_JOB_COMPLETED,
    SYNC_JOB_FAILED,
    SYNC_JOB_SUPERSEDED,
    SYNC_JOB_RETRIED,
    SYNC_FOSSA_API_DURATION,
    SYNC_ISSUES_SYNCED,
    SYNC_DURATION,
];
