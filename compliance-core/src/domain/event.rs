use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::domain::page::PageRequest;
use crate::id::{ComponentId, SyncJobId, WebhookEventId};

/// Where a logged webhook request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    /// Logged, not yet decided.
    Received,
    /// Accepted; its sync job is queued or running.
    Queued,
    /// Its sync job completed (or was covered by a newer one).
    Processed,
    /// Rejected, or its sync job failed.
    Failed,
}

impl EventStatus {
    /// The wire and database spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "RECEIVED",
            Self::Queued => "QUEUED",
            Self::Processed => "PROCESSED",
            Self::Failed => "FAILED",
        }
    }

    /// Parses the spelling [`as_str`](Self::as_str) produces.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RECEIVED" => Some(Self::Received),
            "QUEUED" => Some(Self::Queued),
            "PROCESSED" => Some(Self::Processed),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Why a webhook request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionKind {
    /// The signature header was missing, malformed, stale or did not match (401).
    InvalidSignature,
    /// The body was not valid (400).
    InvalidPayload,
    /// No component is linked to the repository (404).
    ComponentNotFound,
    /// Refused to protect the system (429).
    RateLimited,
    /// The body was over the size limit (413).
    PayloadTooLarge,
    /// The content type was not JSON (415).
    UnsupportedMediaType,
}

impl RejectionKind {
    /// The wire and database spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidPayload => "invalid_payload",
            Self::ComponentNotFound => "component_not_found",
            Self::RateLimited => "rate_limited",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
        }
    }

    /// Parses the spelling [`as_str`](Self::as_str) produces.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invalid_signature" => Some(Self::InvalidSignature),
            "invalid_payload" => Some(Self::InvalidPayload),
            "component_not_found" => Some(Self::ComponentNotFound),
            "rate_limited" => Some(Self::RateLimited),
            "payload_too_large" => Some(Self::PayloadTooLarge),
            "unsupported_media_type" => Some(Self::UnsupportedMediaType),
            _ => None,
        }
    }

    /// The HTTP status this rejection is answered with.
    #[must_use]
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidSignature => 401,
            Self::InvalidPayload => 400,
            Self::ComponentNotFound => 404,
            Self::RateLimited => 429,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
        }
    }
}

/// One logged webhook request: the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The event's id.
    pub id: WebhookEventId,
    /// The body's `event` field, when it could be read.
    pub event_type: Option<String>,
    /// The peer address (or the trusted proxy's forwarded address).
    pub source_ip: Option<IpAddr>,
    /// The `X-Webhook-Source` header (azure, gitlab, github, …).
    pub source_system: Option<String>,
    /// The raw body as text, cut to the adapter's bound for rejected requests.
    pub raw_payload: String,
    /// Whether `raw_payload` was cut.
    pub payload_truncated: bool,
    /// The signature header as sent (it is a MAC, not a secret).
    pub signature: Option<String>,
    /// Whether the signature verified.
    pub signature_valid: bool,
    /// Where the request stands.
    pub processing_status: EventStatus,
    /// Why it was refused, when it was.
    pub rejection: Option<RejectionKind>,
    /// The status the request was answered with.
    pub http_status: u16,
    /// The matched component.
    pub component_id: Option<ComponentId>,
    /// The job the request created.
    pub sync_job_id: Option<SyncJobId>,
    /// `repository.url` from the body.
    pub repository_url: Option<String>,
    /// `scan.revision` from the body.
    pub revision: Option<String>,
    /// `scan.branch` from the body.
    pub branch: Option<String>,
    /// `pipeline.id` from the body.
    pub pipeline_id: Option<String>,
    /// `pipeline.url` from the body.
    pub pipeline_url: Option<String>,
    /// `metadata.actor` from the body.
    pub actor: Option<String>,
    /// Hex digest identifying the signed delivery, used to detect redeliveries.
    pub delivery_key: Option<String>,
    /// When the request arrived.
    pub received_at: Timestamp,
    /// When its processing ended (answer for rejections; sync end for accepted ones).
    pub processed_at: Option<Timestamp>,
    /// What went wrong, in words safe to show (never a secret).
    pub error_message: Option<String>,
}

/// Filters for the webhook event log. Results are newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebhookEventQuery {
    /// Only events with this status.
    pub status: Option<EventStatus>,
    /// Only events matched to this component.
    pub component_id: Option<ComponentId>,
    /// Only events received at or after this time.
    pub from: Option<Timestamp>,
    /// Only events received before this time.
    pub to: Option<Timestamp>,
    /// Which slice.
    pub page: PageRequest,
}
