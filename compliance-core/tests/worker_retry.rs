//! Retries: Retry-After, backoff, FOSSA still analysing, permanent errors, dead letters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod pipeline_support;

use std::time::Duration;

use compliance_core::domain::{ComplianceStatus, EventStatus, JobStatus};
use compliance_core::events::{self, SyncPhase};
use compliance_core::ports::{JobQueue, Notifier};
use compliance_core::testing::fixtures;
use compliance_core::testing::{ScriptedScanSource, Step};
use compliance_core::worker::JobReport;
use compliance_core::ScanSourceError;

use pipeline_support::{drain, next_event, rev, Harness};

fn rate_limited(after: u64) -> Step {
    Step::err(move || ScanSourceError::RateLimited {
        retry_after: Some(Duration::from_secs(after)),
    })
}

fn unavailable() -> Step {
    Step::err(|| ScanSourceError::Transient {
        context: "GET /api/v2/issues: 503".into(),
        retry_after: None,
        source: None,
    })
}

fn not_ready() -> Step {
    Step::err(|| ScanSourceError::NotReady {
        message: "issues call answered 202".into(),
        retry_after: None,
    })
}

async fn queue_one(h: &Harness) -> compliance_core::SyncJobId {
    let outcome = h.send(&h.body(&rev(1), "main", None)).await;
    outcome.accepted().unwrap().sync_id
}

#[tokio::test]
async fn rate_limit_then_503_then_success() {
    let source = ScriptedScanSource::new(Step::ok(fixtures::snapshot(2, 3, 1)))
        .then(rate_limited(37))
        .then(unavailable());
    let h = Harness::new(source).await;
    let job_id = queue_one(&h).await;
    let worker = h.worker();

    // 429 with Retry-After: 37 s, exactly.
    let report = worker.run_once().await.unwrap().unwrap();
    let JobReport::Retrying { delay, attempt, .. } = report else {
        panic!("expected a retry, got {report:?}");
    };
    assert_eq!((delay, attempt), (Duration::from_secs(37), 1));
    let job = h.job(job_id).await;
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(
        job.next_attempt_at,
        Some(h.now() + chrono::Duration::seconds(37))
    );
    assert!(job.error_message.unwrap().contains("rate limited"));

    // Nothing runs before the delay has passed.
    h.advance(Duration::from_secs(36));
    assert_eq!(worker.run_once().await.unwrap(), None);
    h.advance(Duration::from_secs(1));

    // 503: exponential backoff, attempt 2's ceiling is twice the base delay.
    let report = worker.run_once().await.unwrap().unwrap();
    let JobReport::Retrying { delay, attempt, .. } = report else {
        panic!("expected a retry, got {report:?}");
    };
    assert_eq!(attempt, 2);
    assert!(delay <= Duration::from_secs(4), "{delay:?}");
    h.advance(delay);

    let report = worker.run_once().await.unwrap().unwrap();
    assert!(matches!(report, JobReport::Completed { .. }), "{report:?}");
    assert_eq!(h.source.calls(), 3);
    let job = h.job(job_id).await;
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.attempts, 3);
    assert_eq!(job.issues_synced, Some(2));
}

#[tokio::test]
async fn not_ready_is_retried_on_its_schedule_and_never_stored_as_zero_issues() {
    let source = ScriptedScanSource::new(Step::ok(fixtures::snapshot(4, 2, 1)))
        .then(not_ready())
        .then(not_ready());
    let h = Harness::new(source).await;
    let mut stream = h.notifier.subscribe().await.unwrap();
    queue_one(&h).await;
    let worker = h.worker();

    for _ in 0..2 {
        let report = worker.run_once().await.unwrap().unwrap();
        let JobReport::Retrying { delay, .. } = report else {
            panic!("expected a retry, got {report:?}");
        };
        assert_eq!(delay, Duration::from_secs(15));
        let component = h.component_now().await;
        assert_eq!(component.compliance_status, ComplianceStatus::Unknown);
        assert_eq!(component.last_synced_at, None);
        h.advance(delay);
    }
    let report = worker.run_once().await.unwrap().unwrap();
    assert!(matches!(report, JobReport::Completed { .. }), "{report:?}");

    let waiting: Vec<_> = drain(&mut stream)
        .into_iter()
        .filter(|e| e.channel == events::component_channel(h.component.id))
        .filter(|e| e.event == events::kind::SYNC_STARTED)
        .map(|e| {
            serde_json::from_value::<events::SyncStarted>(e.data)
                .unwrap()
                .phase
        })
        .collect();
    assert_eq!(
        waiting,
        [
            SyncPhase::Running,
            SyncPhase::WaitingForFossa,
            SyncPhase::Running,
            SyncPhase::WaitingForFossa,
            SyncPhase::Running,
        ]
    );
    assert_eq!(
        h.component_now().await.compliance_status,
        ComplianceStatus::Failing
    );
}

#[tokio::test]
async fn not_ready_past_the_maximum_wait_fails_saying_fossa_had_not_finished() {
    let h = Harness::new(ScriptedScanSource::new(not_ready())).await;
    let job_id = queue_one(&h).await;
    let worker = h.worker();

    let mut rounds = 0;
    let error = loop {
        rounds += 1;
        assert!(rounds < 200, "never gave up");
        match worker.run_once().await.unwrap().unwrap() {
            JobReport::Retrying { delay, .. } => h.advance(delay),
            JobReport::Failed { error, .. } => break error,
            other => panic!("unexpected {other:?}"),
        }
    };

    assert!(
        error.contains("FOSSA had not finished analysing"),
        "{error}"
    );
    assert!(error.contains("15m"), "{error}");
    // Waiting for FOSSA does not use up the five attempts other failures get.
    assert!(rounds > 5);
    let job = h.job(job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error_message.as_deref(), Some(error.as_str()));
    assert_eq!(h.queue.dead_letters(10).await.unwrap()[0].job_id, job_id);
}

#[tokio::test]
async fn a_permanent_404_fails_at_once_and_is_dead_lettered() {
    let h = Harness::new(ScriptedScanSource::new(Step::err(|| {
        ScanSourceError::NotFound {
            context: "project custom+4821/github.com/acme/payment-service".into(),
        }
    })))
    .await;
    let mut stream = h.notifier.subscribe().await.unwrap();
    let job_id = queue_one(&h).await;

    let report = h.worker().run_once().await.unwrap().unwrap();

    let JobReport::Failed { attempt, error, .. } = report else {
        panic!("expected failure, got {report:?}");
    };
    assert_eq!(attempt, 1);
    assert!(error.starts_with("not found in FOSSA"), "{error}");
    assert_eq!(h.source.calls(), 1);

    let job = h.job(job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let event = h
        .stores
        .events
        .get_event(job.webhook_event_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.processing_status, EventStatus::Failed);

    let dead = h.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job_id, job_id);
    assert_eq!(dead[0].reason, error);

    let failed = next_event(&mut stream, events::kind::SYNC_FAILED).await;
    let data: events::SyncFailed = serde_json::from_value(failed.data).unwrap();
    assert_eq!(data.sync_job_id, job_id);
    assert_eq!(data.error, error);
    assert_eq!(data.attempts, 1);
    let also_on_list = next_event(&mut stream, events::kind::SYNC_FAILED).await;
    assert_eq!(also_on_list.channel, events::COMPONENTS_CHANNEL);
}

#[tokio::test]
async fn transient_failures_give_up_after_the_last_attempt() {
    let h = Harness::new(ScriptedScanSource::new(unavailable())).await;
    let job_id = queue_one(&h).await;
    let worker = h.worker();

    let mut attempts = 0;
    let error = loop {
        attempts += 1;
        match worker.run_once().await.unwrap().unwrap() {
            JobReport::Retrying { delay, .. } => h.advance(delay),
            JobReport::Failed { error, .. } => break error,
            other => panic!("unexpected {other:?}"),
        }
    };

    assert_eq!(attempts, 5);
    assert!(error.contains("gave up after 5 attempts"), "{error}");
    assert_eq!(h.job(job_id).await.status, JobStatus::Failed);
    assert_eq!(h.queue.dead_letters(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_panicking_source_counts_as_a_transient_failure() {
    let source = ScriptedScanSource::new(Step::ok(fixtures::snapshot(1, 1, 1)))
        .then(Step::err(|| panic!("adapter bug")));
    let h = Harness::new(source).await;
    queue_one(&h).await;
    let worker = h.worker();

    let report = worker.run_once().await.unwrap().unwrap();
    let JobReport::Retrying { error, delay, .. } = report else {
        panic!("expected a retry, got {report:?}");
    };
    assert!(error.contains("panicked"), "{error}");
    h.advance(delay);
    assert!(matches!(
        worker.run_once().await.unwrap().unwrap(),
        JobReport::Completed { .. }
    ));
}
