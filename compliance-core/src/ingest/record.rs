//! Building the event-log row for one request.

use crate::clock::Timestamp;
use crate::domain::{EventStatus, RejectionKind, WebhookEvent};
use crate::id::WebhookEventId;
use crate::payload::{self, ValidatedWebhook};
use crate::signature::{SIGNATURE_HEADER, SOURCE_HEADER};

use super::InboundWebhook;

/// Most bytes of a header value the event log keeps (signature, source system): enough for a
/// signature header carrying the most signatures the verifier reads, while a request whose
/// headers fill the server's header buffer still stores a small row.
const MAX_HEADER_BYTES: usize = 1024;

/// The value of header `name`, cut to [`MAX_HEADER_BYTES`].
fn header_text(request: &InboundWebhook, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .map(|v| bounded_text(v.as_bytes(), MAX_HEADER_BYTES).0)
}

/// The event row of a request whose body may be anything: the fields are read leniently and
/// the payload is cut to `limit` bytes.
pub(super) fn lenient(
    request: &InboundWebhook,
    id: WebhookEventId,
    received_at: Timestamp,
    limit: usize,
) -> WebhookEvent {
    let peek = payload::peek(&request.body);
    let (raw_payload, payload_truncated) = bounded_text(&request.body, limit);
    WebhookEvent {
        id,
        event_type: peek.event_type,
        source_ip: request.source_ip,
        source_system: header_text(request, SOURCE_HEADER),
        raw_payload,
        payload_truncated,
        signature: header_text(request, SIGNATURE_HEADER),
        signature_valid: false,
        processing_status: EventStatus::Failed,
        rejection: None,
        http_status: 0,
        component_id: None,
        sync_job_id: None,
        repository_url: peek.repository_url,
        revision: peek.revision,
        branch: peek.branch,
        pipeline_id: peek.pipeline_id,
        pipeline_url: peek.pipeline_url,
        actor: peek.actor,
        delivery_key: None,
        received_at,
        processed_at: Some(received_at),
        error_message: None,
    }
}

/// The event row of a rejected request.
pub(super) fn rejected(
    request: &InboundWebhook,
    id: WebhookEventId,
    received_at: Timestamp,
    limit: usize,
    kind: RejectionKind,
    error: String,
) -> WebhookEvent {
    WebhookEvent {
        rejection: Some(kind),
        http_status: kind.http_status(),
        error_message: Some(error),
        ..lenient(request, id, received_at, limit)
    }
}

/// The event row of a request whose body validated: the whole payload is kept.
pub(super) fn validated(
    request: &InboundWebhook,
    id: WebhookEventId,
    received_at: Timestamp,
    webhook: &ValidatedWebhook,
) -> WebhookEvent {
    let pipeline = webhook.pipeline.as_ref();
    WebhookEvent {
        id,
        event_type: Some(webhook.event.clone()),
        source_ip: request.source_ip,
        source_system: header_text(request, SOURCE_HEADER),
        raw_payload: String::from_utf8_lossy(&request.body).into_owned(),
        payload_truncated: false,
        signature: header_text(request, SIGNATURE_HEADER),
        signature_valid: true,
        processing_status: EventStatus::Queued,
        rejection: None,
        http_status: 202,
        component_id: None,
        sync_job_id: None,
        repository_url: Some(webhook.repository.url.original().to_owned()),
        revision: Some(webhook.scan.revision.clone()),
        branch: Some(webhook.scan.branch.clone()),
        pipeline_id: pipeline.and_then(|p| p.id.clone()),
        pipeline_url: pipeline.and_then(|p| p.url.clone()),
        actor: webhook.metadata.as_ref().and_then(|m| m.actor.clone()),
        delivery_key: None,
        received_at,
        processed_at: None,
        error_message: None,
    }
}

/// `body` as text, cut on a character boundary to at most `limit` bytes; the flag says
/// whether it was cut.
pub(super) fn bounded_text(body: &[u8], limit: usize) -> (String, bool) {
    let text = String::from_utf8_lossy(body);
    if text.len() <= limit {
        return (text.into_owned(), false);
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (text.get(..cut).unwrap_or_default().to_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bodies_are_kept_whole() {
        assert_eq!(bounded_text(b"{}", 10), ("{}".to_owned(), false));
        assert_eq!(
            bounded_text(b"0123456789", 10),
            ("0123456789".to_owned(), false)
        );
    }

    #[test]
    fn long_bodies_are_cut_to_the_limit() {
        assert_eq!(
            bounded_text(b"0123456789ab", 10),
            ("0123456789".to_owned(), true)
        );
    }

    #[test]
    fn cuts_never_split_a_character() {
        // "é" is two bytes; a cut after 3 bytes would land inside the second one.
        let (text, cut) = bounded_text("aéé".as_bytes(), 4);
        assert_eq!(text, "aé");
        assert!(cut);
    }

    #[test]
    fn header_values_are_cut_for_the_event_log() {
        // A refused request may carry header values as large as the server's header buffer.
        let request = InboundWebhook {
            headers: crate::ports::RequestHeaders::new()
                .with(SOURCE_HEADER, "s".repeat(60_000))
                .with(SIGNATURE_HEADER, format!("sha256={}", "ab".repeat(30_000))),
            ..InboundWebhook::default()
        };
        let row = lenient(&request, WebhookEventId::new(), Timestamp::default(), 4096);
        assert_eq!(row.source_system.map(|s| s.len()), Some(MAX_HEADER_BYTES));
        assert_eq!(row.signature.map(|s| s.len()), Some(MAX_HEADER_BYTES));

        let short = InboundWebhook {
            headers: crate::ports::RequestHeaders::new().with(SOURCE_HEADER, "github"),
            ..InboundWebhook::default()
        };
        let row = lenient(&short, WebhookEventId::new(), Timestamp::default(), 4096);
        assert_eq!(row.source_system.as_deref(), Some("github"));
    }

    #[test]
    fn invalid_utf8_is_kept_readable() {
        let (text, cut) = bounded_text(&[b'a', 0xff, b'b'], 100);
        assert_eq!(text, "a\u{fffd}b");
        assert!(!cut);
    }
}
