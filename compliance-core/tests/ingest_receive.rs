//! The receive flow, branch by branch, with the status each branch answers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod pipeline_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use compliance_core::domain::{EventStatus, JobStatus, RejectionKind, Trigger};
use compliance_core::ingest::{IngestConfig, IngestOutcome};
use compliance_core::ports::{JobQueue, SignatureError};
use compliance_core::testing::fixtures;
use compliance_core::testing::ScriptedScanSource;

use pipeline_support::{rev, scan_body, signed_request, Harness, Setup, REPO, SECRET};

fn source() -> ScriptedScanSource {
    ScriptedScanSource::always(fixtures::snapshot(1, 1, 1))
}

/// The workflow document's curl test, byte for byte.
const CURL_PAYLOAD: &str = r#"{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/payment-service"},"scan":{"revision":"abc123","branch":"main","status":"passed"}}"#;

#[tokio::test]
async fn the_documents_curl_payload_is_accepted_and_queued() {
    let h = Harness::new(source()).await;

    let outcome = h.send(CURL_PAYLOAD).await;

    assert_eq!(outcome.http_status(), 202);
    let accepted = outcome.accepted().unwrap();
    assert_eq!(accepted.status, "queued");
    assert!(!accepted.duplicate);
    assert_eq!(accepted.component.id, h.component.id);
    assert_eq!(accepted.component.name, "payment-service");

    let job = h.job(accepted.sync_id).await;
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.trigger, Trigger::Webhook);
    assert_eq!(job.revision.as_deref(), Some("abc123"));
    assert_eq!(job.branch, "main");
    // The curl payload has no timestamp: the signed header's time stands in for it.
    assert_eq!(job.scan_completed_at, Some(h.now()));

    let stats = h.queue.stats().await.unwrap();
    assert_eq!(
        stats.ready, 1,
        "the job is on the queue when 202 is answered"
    );

    let events = h.events().await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(Some(event.id), accepted.webhook_event_id);
    assert_eq!(event.processing_status, EventStatus::Queued);
    assert!(event.signature_valid);
    assert_eq!(event.http_status, 202);
    assert_eq!(event.sync_job_id, Some(accepted.sync_id));
    assert_eq!(event.component_id, Some(h.component.id));
    assert_eq!(event.raw_payload, CURL_PAYLOAD);
    assert_eq!(event.source_system.as_deref(), Some("github"));
    assert_eq!(event.source_ip, Some([203, 0, 113, 9].into()));
    assert!(event.delivery_key.is_some());
}

#[tokio::test]
async fn the_documents_full_body_is_logged_with_pipeline_and_actor() {
    let h = Harness::new(source()).await;
    let scanned_at = h.now() - chrono::Duration::seconds(40);

    let outcome = h
        .send(&h.body("abc123def456789", "main", Some(scanned_at)))
        .await;

    let accepted = outcome.accepted().unwrap();
    let job = h.job(accepted.sync_id).await;
    assert_eq!(job.scan_completed_at, Some(scanned_at));
    let event = &h.events().await[0];
    assert_eq!(event.event_type.as_deref(), Some("fossa.scan.completed"));
    assert_eq!(event.repository_url.as_deref(), Some(REPO));
    assert_eq!(event.revision.as_deref(), Some("abc123def456789"));
    assert_eq!(event.branch.as_deref(), Some("main"));
    assert_eq!(event.pipeline_id.as_deref(), Some("12345"));
    assert_eq!(
        event.pipeline_url.as_deref(),
        Some("https://github.com/acme/payment-service/actions/runs/12345")
    );
    assert_eq!(event.actor.as_deref(), Some("developer@acme.com"));
}

#[tokio::test]
async fn equivalent_repository_urls_find_the_component() {
    let h = Harness::new(source()).await;

    for (n, url) in [
        "git@github.com:Acme/Payment-Service.git",
        "https://github.com/acme/payment-service/",
        "ssh://git@github.com/acme/payment-service",
    ]
    .into_iter()
    .enumerate()
    {
        let body = scan_body(url, &rev(n as u64), &format!("b{n}"), None);
        let outcome = h.send(&body).await;
        assert_eq!(outcome.http_status(), 202, "{url}");
        assert_eq!(outcome.accepted().unwrap().component.id, h.component.id);
    }
}

#[tokio::test]
async fn a_wrong_signature_is_401_and_still_logged() {
    let h = Harness::new(source()).await;
    let body = h.body(&rev(1), "main", None);
    let request = signed_request(body.as_bytes(), h.now().timestamp(), "not-the-secret");

    let outcome = h.ingest.receive(request).await;

    assert_eq!(outcome.http_status(), 401);
    assert!(matches!(
        outcome,
        IngestOutcome::Unauthorized {
            reason: SignatureError::Mismatch
        }
    ));
    let events = h.events().await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert!(!event.signature_valid);
    assert_eq!(event.rejection, Some(RejectionKind::InvalidSignature));
    assert_eq!(event.http_status, 401);
    assert_eq!(event.processing_status, EventStatus::Failed);
    assert_eq!(event.error_message.as_deref(), Some("signature mismatch"));
    // Read leniently from the unauthenticated body, for whoever investigates.
    assert_eq!(event.pipeline_id.as_deref(), Some("12345"));
    assert_eq!(event.actor.as_deref(), Some("developer@acme.com"));
    assert_eq!(event.source_system.as_deref(), Some("github"));
    assert!(event.signature.as_deref().unwrap().starts_with("sha256="));
    assert!(h.jobs().await.is_empty());
}

#[tokio::test]
async fn a_missing_signature_is_401() {
    let h = Harness::new(source()).await;
    let mut request = h.signed(CURL_PAYLOAD);
    request.headers = compliance_core::ports::RequestHeaders::new()
        .with("X-Webhook-Timestamp", h.now().timestamp().to_string());

    let outcome = h.ingest.receive(request).await;

    assert_eq!(outcome.http_status(), 401);
    let IngestOutcome::Unauthorized { reason } = outcome else {
        panic!("expected 401");
    };
    assert_eq!(reason.reason(), "missing_header");
    assert_eq!(
        h.events().await[0].rejection,
        Some(RejectionKind::InvalidSignature)
    );
}

#[tokio::test]
async fn stale_and_future_timestamps_are_401() {
    let h = Harness::new(source()).await;
    let now = h.now().timestamp();

    let stale = signed_request(CURL_PAYLOAD.as_bytes(), now - 301, SECRET);
    let future = signed_request(CURL_PAYLOAD.as_bytes(), now + 301, SECRET);
    let edge = signed_request(CURL_PAYLOAD.as_bytes(), now - 299, SECRET);

    let stale = h.ingest.receive(stale).await;
    let future = h.ingest.receive(future).await;
    let edge = h.ingest.receive(edge).await;

    assert!(matches!(
        stale,
        IngestOutcome::Unauthorized {
            reason: SignatureError::Stale { .. }
        }
    ));
    assert!(matches!(
        future,
        IngestOutcome::Unauthorized {
            reason: SignatureError::Future { .. }
        }
    ));
    assert_eq!(edge.http_status(), 202, "inside the window is fine");
}

#[tokio::test]
async fn a_rejected_body_is_logged_cut_to_the_limit() {
    let h = Harness::with(
        source(),
        Setup {
            ingest: IngestConfig {
                rejected_payload_limit: 64,
                ..IngestConfig::default()
            },
            ..Setup::default()
        },
    )
    .await;
    let body = h.body(&rev(1), "main", None);
    let request = signed_request(body.as_bytes(), h.now().timestamp(), "wrong");

    h.ingest.receive(request).await;

    let event = &h.events().await[0];
    assert!(event.payload_truncated);
    assert_eq!(event.raw_payload, body[..64]);
}

#[tokio::test]
async fn an_invalid_body_is_400_with_every_field_error() {
    let h = Harness::new(source()).await;
    let body = r#"{"event":"fossa.scan.started","repository":{"url":"not a url"},
        "scan":{"revision":"xyz!","branch":"","status":"unknown"},
        "pipeline":{"url":"ftp://ci.example.com/1"}}"#;

    let outcome = h.send(body).await;

    assert_eq!(outcome.http_status(), 400);
    let IngestOutcome::Invalid { message, details } = outcome else {
        panic!("expected 400");
    };
    assert_eq!(message, "Invalid payload");
    let fields: Vec<&str> = details.iter().map(|d| d.field.as_str()).collect();
    for field in [
        "event",
        "repository.url",
        "scan.revision",
        "scan.branch",
        "scan.status",
        "pipeline.url",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }

    let event = &h.events().await[0];
    assert_eq!(event.rejection, Some(RejectionKind::InvalidPayload));
    assert_eq!(event.http_status, 400);
    assert!(
        event.signature_valid,
        "the signature was fine; the body was not"
    );
    assert!(h.jobs().await.is_empty());
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_named() {
    let h = Harness::new(source()).await;
    let body = r#"{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/payment-service"},
        "scan":{"branch":7,"status":"passed"}}"#;

    let IngestOutcome::Invalid { details, .. } = h.send(body).await else {
        panic!("expected 400");
    };

    let fields: Vec<&str> = details.iter().map(|d| d.field.as_str()).collect();
    assert!(fields.contains(&"scan.revision"), "{fields:?}");
    assert!(fields.contains(&"scan.branch"), "{fields:?}");
}

#[tokio::test]
async fn bodies_that_are_not_json_or_not_utf8_are_400_on_the_body() {
    let h = Harness::new(source()).await;

    let not_json = h.send("{\"event\": ").await;
    let not_utf8 = h
        .ingest
        .receive(signed_request(
            b"{\"event\":\"\xff\"}",
            h.now().timestamp(),
            SECRET,
        ))
        .await;

    for outcome in [not_json, not_utf8] {
        let IngestOutcome::Invalid { details, .. } = outcome else {
            panic!("expected 400");
        };
        assert_eq!(details.len(), 1);
        assert_eq!(details[0].field, "body");
    }
}

#[tokio::test]
async fn an_unknown_repository_is_404_and_logged() {
    let h = Harness::new(source()).await;
    let body = scan_body("https://github.com/acme/unknown", &rev(1), "main", None);

    let outcome = h.send(&body).await;

    assert_eq!(outcome.http_status(), 404);
    assert_eq!(
        outcome,
        IngestOutcome::ComponentNotFound {
            repository_url: "https://github.com/acme/unknown".to_owned()
        }
    );
    let event = &h.events().await[0];
    assert_eq!(event.rejection, Some(RejectionKind::ComponentNotFound));
    assert_eq!(event.http_status, 404);
    assert!(event.signature_valid);
    assert!(h.jobs().await.is_empty());
}

#[tokio::test]
async fn a_full_queue_is_429_with_a_retry_delay() {
    let h = Harness::with(
        source(),
        Setup {
            ingest: IngestConfig {
                max_queue_depth: Some(2),
                ..IngestConfig::default()
            },
            ..Setup::default()
        },
    )
    .await;

    for n in 0..3 {
        let outcome = h.send(&h.body(&rev(n), &format!("b{n}"), None)).await;
        assert_eq!(outcome.http_status(), 202);
    }
    let outcome = h.send(&h.body(&rev(9), "b9", None)).await;

    assert_eq!(outcome.http_status(), 429);
    let IngestOutcome::Overloaded { retry_after } = outcome else {
        panic!("expected 429");
    };
    assert!(retry_after >= Duration::from_secs(1));
    assert_eq!(h.jobs().await.len(), 3);
    let refused = h
        .events()
        .await
        .into_iter()
        .find(|e| e.http_status == 429)
        .unwrap();
    assert_eq!(refused.rejection, Some(RejectionKind::RateLimited));
}

#[tokio::test]
async fn a_store_outage_is_503_and_never_a_panic() {
    let h = Harness::new(source()).await;

    h.store.outages.components.store(true, Ordering::SeqCst);
    let components_down = h.send(CURL_PAYLOAD).await;
    h.store.outages.components.store(false, Ordering::SeqCst);

    h.store.outages.events.store(true, Ordering::SeqCst);
    let events_down = h.send(&h.body(&rev(2), "main", None)).await;
    h.store.outages.events.store(false, Ordering::SeqCst);

    for outcome in [components_down, events_down] {
        assert_eq!(outcome.http_status(), 503);
        let IngestOutcome::Unavailable { message } = outcome else {
            panic!("expected 503");
        };
        assert!(message.contains("unavailable"), "{message}");
    }
    assert!(h.jobs().await.is_empty());
    // The first outage left the event log up, so that request is on record.
    let events = h.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].http_status, 503);
}

#[tokio::test]
async fn a_failed_enqueue_still_answers_202_with_the_job_committed() {
    let h = Harness::new(source()).await;
    h.queue.enqueue_down.store(true, Ordering::SeqCst);

    let outcome = h.send(CURL_PAYLOAD).await;

    assert_eq!(outcome.http_status(), 202);
    let job = h.job(outcome.accepted().unwrap().sync_id).await;
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(h.queue.stats().await.unwrap().depth(), 0);
}

#[tokio::test]
async fn the_completion_estimate_follows_the_queue_and_measured_syncs() {
    let h = Harness::new(source()).await;
    let default = IngestConfig::default().default_sync_estimate;

    let first = h.send(&h.body(&rev(1), "b1", None)).await;
    assert_eq!(
        first.accepted().unwrap().estimated_completion,
        h.now() + chrono::Duration::from_std(default).unwrap()
    );

    h.tracker.record(Duration::from_secs(4));
    h.tracker.record(Duration::from_secs(6));
    let second = h.send(&h.body(&rev(2), "b2", None)).await;

    // Two jobs queued, one worker's worth of 5-second syncs each.
    assert_eq!(
        second.accepted().unwrap().estimated_completion,
        h.now() + chrono::Duration::seconds(10)
    );
}

#[tokio::test]
async fn refusals_before_ingest_are_logged_with_a_bounded_payload() {
    let h = Harness::new(source()).await;
    let huge = "x".repeat(10_000);
    let request = signed_request(huge.as_bytes(), h.now().timestamp(), SECRET);

    h.ingest
        .record_refusal(RejectionKind::PayloadTooLarge, request)
        .await
        .unwrap();

    let event = &h.events().await[0];
    assert_eq!(event.rejection, Some(RejectionKind::PayloadTooLarge));
    assert_eq!(event.http_status, 413);
    assert!(event.payload_truncated);
    assert_eq!(
        event.raw_payload.len(),
        IngestConfig::default().rejected_payload_limit
    );
    assert_eq!(event.source_system.as_deref(), Some("github"));
}

#[tokio::test]
async fn manual_sync_requests_queue_a_job_for_the_default_branch() {
    let h = Harness::new(source()).await;

    let accepted = h
        .ingest
        .request_sync(h.component.id, Trigger::Manual)
        .await
        .unwrap();

    assert_eq!(accepted.status, "queued");
    assert_eq!(accepted.webhook_event_id, None);
    let job = h.job(accepted.sync_id).await;
    assert_eq!(job.trigger, Trigger::Manual);
    assert_eq!(job.branch, "main");
    assert_eq!(job.revision, None);
    assert_eq!(h.queue.stats().await.unwrap().ready, 1);
}

#[tokio::test]
async fn manual_sync_of_an_unknown_component_or_a_down_store_is_an_error() {
    let h = Harness::new(source()).await;

    let missing = h
        .ingest
        .request_sync(compliance_core::ComponentId::new(), Trigger::Manual)
        .await;
    assert!(matches!(
        missing,
        Err(compliance_core::ingest::RequestSyncError::ComponentNotFound(_))
    ));

    h.store.outages.jobs.store(true, Ordering::SeqCst);
    let down = h.ingest.request_sync(h.component.id, Trigger::Manual).await;
    assert!(matches!(
        down,
        Err(compliance_core::ingest::RequestSyncError::Unavailable(_))
    ));
}
