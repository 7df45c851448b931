//! Redeliveries, replays and secret rotation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod pipeline_support;

use std::sync::Arc;
use std::time::Duration;

use compliance_core::clock::Clock;
use compliance_core::domain::{EventStatus, JobStatus};
use compliance_core::ingest::IngestOutcome;
use compliance_core::ports::{JobQueue, SignatureError, SignatureVerifier};
use compliance_core::signature::{HmacSha256Verifier, WebhookSecret};
use compliance_core::testing::fixtures;
use compliance_core::testing::ScriptedScanSource;

use pipeline_support::{rev, signed_request, Harness, Setup, SECRET};

fn source() -> ScriptedScanSource {
    ScriptedScanSource::always(fixtures::snapshot(1, 1, 1))
}

#[tokio::test]
async fn a_redelivery_inside_the_window_gets_the_original_sync_id_and_no_new_job() {
    let h = Harness::new(source()).await;
    let request = h.signed(&h.body(&rev(1), "main", None));

    let first = h.ingest.receive(request.clone()).await;
    h.advance(Duration::from_secs(120));
    let second = h.ingest.receive(request).await;

    let (first, second) = (first.accepted().unwrap(), second.accepted().unwrap());
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.sync_id, first.sync_id);
    assert_eq!(second.component, first.component);
    assert_eq!(second.status, "queued");
    assert_eq!(h.jobs().await.len(), 1, "no second job");
    assert_eq!(h.queue.stats().await.unwrap().depth(), 1);

    // Both requests are on record; the repeat points at the original job.
    let events = h.events().await;
    assert_eq!(events.len(), 2);
    let repeat = events
        .iter()
        .find(|e| Some(e.id) == second.webhook_event_id)
        .unwrap();
    assert_eq!(repeat.processing_status, EventStatus::Processed);
    assert_eq!(repeat.http_status, 202);
    assert_eq!(repeat.sync_job_id, Some(first.sync_id));
    assert_eq!(
        repeat.delivery_key, None,
        "only the original holds the delivery key"
    );
}

#[tokio::test]
async fn a_redelivery_after_the_sync_reports_where_the_original_job_stands() {
    let h = Harness::new(source()).await;
    let request = h.signed(&h.body(&rev(1), "main", None));
    let first = h.ingest.receive(request.clone()).await;
    h.worker().run_once().await.unwrap().unwrap();

    let second = h.ingest.receive(request).await;

    let second = second.accepted().unwrap();
    assert_eq!(second.sync_id, first.accepted().unwrap().sync_id);
    assert_eq!(second.status, "completed");
    assert_eq!(h.source.calls(), 1);
}

#[tokio::test]
async fn a_replay_after_the_window_is_refused() {
    let h = Harness::new(source()).await;
    let request = h.signed(&h.body(&rev(1), "main", None));
    assert_eq!(h.ingest.receive(request.clone()).await.http_status(), 202);

    h.advance(Duration::from_secs(301));
    let replay = h.ingest.receive(request).await;

    assert!(matches!(
        replay,
        IngestOutcome::Unauthorized {
            reason: SignatureError::Stale { .. }
        }
    ));
    assert_eq!(h.jobs().await.len(), 1);
}

#[tokio::test]
async fn a_duplicate_found_only_at_write_time_is_answered_like_a_redelivery() {
    // Two copies racing past the redelivery check: the store's delivery-key uniqueness
    // decides. Simulated with an accepted delivery older than the lookup window, which the
    // check misses and the write still sees.
    let h = Harness::new(source()).await;
    let request = h.signed(&h.body(&rev(1), "main", None));
    let verifier = HmacSha256Verifier::new(vec![WebhookSecret::new("primary", SECRET)]);
    let key = verifier
        .verify(&request.body, &request.headers, h.now())
        .unwrap()
        .delivery_key;
    let earlier = h.now() - chrono::Duration::minutes(10);
    let prior = fixtures::accepted_webhook(&h.component, "main", None, earlier, Some(&key));
    let prior_job = prior.job.id;
    h.stores.events.record_accepted(prior).await.unwrap();

    let outcome = h.ingest.receive(request).await;

    let accepted = outcome.accepted().unwrap();
    assert!(accepted.duplicate);
    assert_eq!(accepted.sync_id, prior_job);
    assert_eq!(h.jobs().await.len(), 1);
}

#[tokio::test]
async fn during_rotation_old_and_new_secrets_are_both_accepted() {
    let start = fixtures::at(10_000);
    let verifier: Arc<dyn SignatureVerifier> = Arc::new(HmacSha256Verifier::new(vec![
        WebhookSecret::new("new", "new-secret"),
        WebhookSecret::new("old", "old-secret").expires_at(start + chrono::Duration::hours(1)),
    ]));
    let h = Harness::with(
        source(),
        Setup {
            verifier: Some(verifier),
            start,
            ..Setup::default()
        },
    )
    .await;
    let now = h.now().timestamp();

    let with_new = signed_request(h.body(&rev(1), "b1", None).as_bytes(), now, "new-secret");
    let with_old = signed_request(h.body(&rev(2), "b2", None).as_bytes(), now, "old-secret");
    assert_eq!(h.ingest.receive(with_new).await.http_status(), 202);
    assert_eq!(h.ingest.receive(with_old).await.http_status(), 202);

    h.advance(Duration::from_secs(2 * 3600));
    let now = h.clock.now().timestamp();
    let old_after_expiry =
        signed_request(h.body(&rev(3), "b3", None).as_bytes(), now, "old-secret");
    let new_after_expiry =
        signed_request(h.body(&rev(4), "b4", None).as_bytes(), now, "new-secret");
    assert_eq!(h.ingest.receive(old_after_expiry).await.http_status(), 401);
    assert_eq!(h.ingest.receive(new_after_expiry).await.http_status(), 202);

    let jobs = h.jobs().await;
    assert_eq!(jobs.len(), 3);
    assert!(jobs.iter().all(|j| j.status == JobStatus::Queued));
}
