//! The ports: small, object-safe async traits that adapters implement.
//!
//! Services hold ports as `Arc<dyn Port>`. Every port has an in-memory adapter in
//! [`crate::memory`], and (feature `testing`) a conformance suite in `crate::testing` that every
//! adapter runs against itself.

mod notifier;
mod queue;
mod scan_source;
mod store;
mod verifier;

pub use notifier::{ChannelEvent, Notification, NotificationStream, Notifier};
pub use queue::{DeadLetter, JobQueue, QueuePlacement, QueueStats, Reservation};
pub use scan_source::{FetchRequest, ScanSource};
pub use store::{
    AcceptRecord, AcceptedWebhook, ApplyOutcome, ApplySummary, ComplianceStore, ComponentDirectory,
    CreatedJob, PriorDelivery, SnapshotApply, StartOutcome, Stores, SyncJobStore, WebhookEventLog,
};
pub use verifier::{RequestHeaders, SignatureError, SignatureVerifier, VerifiedSignature};
