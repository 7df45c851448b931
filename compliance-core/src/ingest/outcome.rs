//! What the ingest service answers; the HTTP layer maps each outcome to one status.

use std::time::Duration;

use serde::Serialize;

use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::id::{ComponentId, SyncJobId, WebhookEventId};
use crate::payload::FieldError;
use crate::ports::SignatureError;

/// The component a webhook matched, as the 202 body shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ComponentRef {
    /// Its id.
    pub id: ComponentId,
    /// Its display name.
    pub name: String,
}

/// A queued sync: the body of a 202.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Accepted {
    /// The job (for a redelivery, the job of the original delivery).
    pub sync_id: SyncJobId,
    /// The job's status in lower case: `queued` for a new job; a redelivery reports where the
    /// original job stands now, and a job whose scan is older than data already stored is
    /// `superseded` from the start.
    pub status: &'static str,
    /// The component to sync.
    pub component: ComponentRef,
    /// When the sync should be done, from the work queued ahead of it and recent sync times.
    pub estimated_completion: Timestamp,
    /// The event logged for this request; `None` for manual and scheduled syncs, which are
    /// not webhook requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_event_id: Option<WebhookEventId>,
    /// Whether this request repeated an earlier signed delivery (nothing new was queued).
    pub duplicate: bool,
}

/// The result of [`IngestService::receive`](super::IngestService::receive).
#[derive(Clone, Debug, PartialEq)]
pub enum IngestOutcome {
    /// 202: a sync is queued (or, for a redelivery, was queued before).
    Accepted(Accepted),
    /// 400: the body is not a valid webhook; `details` lists every field error.
    Invalid {
        /// A summary for the `error` field.
        message: String,
        /// One entry per field error.
        details: Vec<FieldError>,
    },
    /// 401: the signature did not verify. The answer is uniform; `reason` is for logs.
    Unauthorized {
        /// Why, for the event log and metrics only.
        reason: SignatureError,
    },
    /// 404: no component is linked to the repository.
    ComponentNotFound {
        /// The URL as the body gave it.
        repository_url: String,
    },
    /// 429: too much work is queued; the sender should come back later.
    Overloaded {
        /// When to try again.
        retry_after: Duration,
    },
    /// 503: a store could not be reached; nothing was queued.
    Unavailable {
        /// What could not be done, safe to show.
        message: String,
    },
}

impl IngestOutcome {
    /// The body text of a 401, the same for every signature failure.
    pub const UNAUTHORIZED_MESSAGE: &'static str = "Invalid webhook signature";
    /// The body text of a 404.
    pub const NOT_FOUND_MESSAGE: &'static str = "No component linked to this repository";
    /// The body text of a 400.
    pub const INVALID_MESSAGE: &'static str = "Invalid payload";
    /// The body text of a 429.
    pub const OVERLOADED_MESSAGE: &'static str = "Too many syncs queued; retry later";

    /// The HTTP status this outcome is answered with.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Accepted(_) => 202,
            Self::Invalid { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::ComponentNotFound { .. } => 404,
            Self::Overloaded { .. } => 429,
            Self::Unavailable { .. } => 503,
        }
    }

    /// The `outcome` label of [`WEBHOOK_RECEIVED`](crate::metrics::WEBHOOK_RECEIVED).
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Accepted(a) if a.duplicate => "duplicate",
            Self::Accepted(_) => "accepted",
            Self::Invalid { .. } => "invalid_payload",
            Self::Unauthorized { .. } => "invalid_signature",
            Self::ComponentNotFound { .. } => "component_not_found",
            Self::Overloaded { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
        }
    }

    /// The accepted answer, if this is one.
    #[must_use]
    pub fn accepted(&self) -> Option<&Accepted> {
        match self {
            Self::Accepted(a) => Some(a),
            _ => None,
        }
    }
}

/// Why [`IngestService::request_sync`](super::IngestService::request_sync) queued nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestSyncError {
    /// No component has this id.
    #[error("component {0} not found")]
    ComponentNotFound(ComponentId),
    /// A store could not be reached or failed.
    #[error("store unavailable")]
    Unavailable(#[from] StoreError),
}
