//! compliance-core's sync worker, wired to the FOSSA client and the simulator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use compliance_core::domain::{ComplianceStatus, IssueQuery, JobStatus, NewComponent, PageRequest};
use compliance_core::events::{self, SyncPhase};
use compliance_core::ingest::{InboundWebhook, IngestConfig, IngestService};
use compliance_core::memory::{InMemoryNotifier, InMemoryQueue, InMemoryStore};
use compliance_core::ports::{
    JobQueue, Notification, NotificationStream, Notifier, ScanSource, Stores,
};
use compliance_core::retry::RetryPolicy;
use compliance_core::signature::{HmacSha256Verifier, WebhookSecret};
use compliance_core::testing::fixtures;
use compliance_core::worker::{JobReport, SyncWorker, WorkerConfig};
use compliance_core::{Clock, ManualClock, RepoUrl, SyncJobId};
use compliance_fossa::sim::fixtures::{PROJECT, REVISION};
use compliance_fossa::sim::{Analysis, Endpoint, Fault, ProjectSpec, RevisionChange, SimHandle};
use futures::{FutureExt, StreamExt};

const SECRET: &str = "worker-sim-secret";
const REPO: &str = "https://github.com/acme-corp/payments-api";

struct Rig {
    sim: SimHandle,
    clock: Arc<ManualClock>,
    stores: Stores,
    ingest: IngestService,
    worker: SyncWorker,
    notifier: Arc<InMemoryNotifier>,
    component: compliance_core::domain::Component,
}

/// In-memory stores, queue and notifier on a manual clock; the worker's scan source is a
/// FossaClient pointed at a simulator, which retries nothing itself so that every failure
/// goes through the worker's retry policy.
async fn rig(locator: &str) -> Rig {
    rig_with(locator, RetryPolicy::default()).await
}

async fn rig_with(locator: &str, retry: RetryPolicy) -> Rig {
    let sim = common::sim().await;
    let clock = Arc::new(ManualClock::new(fixtures::at(0)));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let store = Arc::new(InMemoryStore::with_clock(dyn_clock.clone()));
    let stores = Stores::from_adapter(store);
    let queue: Arc<dyn JobQueue> = Arc::new(InMemoryQueue::with_clock(dyn_clock.clone()));
    let notifier = Arc::new(InMemoryNotifier::new());
    let verifier = Arc::new(HmacSha256Verifier::new(vec![WebhookSecret::new(
        "primary", SECRET,
    )]));
    let ingest = IngestService::new(
        verifier,
        stores.clone(),
        queue.clone(),
        dyn_clock.clone(),
        IngestConfig::default(),
    );
    let source: Arc<dyn ScanSource> = Arc::new(common::strict_client(&sim));
    let worker = SyncWorker::new(
        stores.clone(),
        queue,
        source,
        notifier.clone(),
        dyn_clock,
        WorkerConfig {
            worker_id: "fossa-sim-worker".to_owned(),
            heartbeat_every: Duration::from_millis(50),
            idle_wait: Duration::from_millis(20),
            retry,
            ..WorkerConfig::default()
        },
    );
    let component = stores
        .components
        .register(
            NewComponent {
                name: "payments-api".to_owned(),
                repository_url: RepoUrl::parse(REPO).unwrap(),
                fossa_locator: locator.to_owned(),
                default_branch: "main".to_owned(),
            },
            clock.now(),
        )
        .await
        .unwrap();
    Rig {
        sim,
        clock,
        stores,
        ingest,
        worker,
        notifier,
        component,
    }
}

impl Rig {
    /// Sends the CI webhook for `revision`, signed at the clock's time; returns the job.
    async fn webhook(&self, revision: &str) -> SyncJobId {
        let body = fixtures::webhook_body(REPO, revision, "main", None);
        let now = self.clock.now().timestamp();
        let outcome = self
            .ingest
            .receive(InboundWebhook {
                headers: fixtures::signed_headers(SECRET, now, body.as_bytes()),
                body: body.into(),
                source_ip: None,
            })
            .await;
        match outcome.accepted() {
            Some(accepted) => accepted.sync_id,
            None => panic!("the webhook was refused: {outcome:?}"),
        }
    }

    async fn job_status(&self, id: SyncJobId) -> JobStatus {
        self.stores.jobs.get_job(id).await.unwrap().unwrap().status
    }
}

fn events_of(stream: &mut NotificationStream) -> Vec<compliance_core::ports::ChannelEvent> {
    let mut seen = Vec::new();
    while let Some(Some(notification)) = stream.next().now_or_never() {
        if let Notification::Event(event) = notification {
            seen.push(event);
        }
    }
    seen
}

#[tokio::test]
async fn the_worker_completes_a_sync_against_the_simulator() {
    let rig = rig(PROJECT).await;
    rig.sim.state().load_bundled_fixtures().unwrap();
    let mut stream = rig.notifier.subscribe().await.unwrap();
    let job = rig.webhook(REVISION).await;

    let report = rig.worker.run_once().await.unwrap().unwrap();

    let JobReport::Completed { summary, .. } = report else {
        panic!("expected a completed sync, got {report:?}");
    };
    assert_eq!((summary.issues_count, summary.dependencies_count), (7, 13));
    assert_eq!(summary.status, ComplianceStatus::Failing);
    assert_eq!(summary.new_issues.len(), 7);
    assert_eq!(rig.job_status(job).await, JobStatus::Completed);

    let view = rig
        .stores
        .compliance
        .compliance_view(rig.component.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.issues.total, 7);
    assert_eq!(
        (
            view.issues.critical,
            view.issues.high,
            view.issues.medium,
            view.issues.low
        ),
        (1, 2, 3, 1)
    );
    assert_eq!((view.dependencies.total, view.dependencies.direct), (13, 8));
    let latest = view.latest_scan.unwrap();
    assert_eq!(latest.revision, REVISION);
    assert_eq!(latest.project_title, "payments-api");

    let completed: Vec<_> = events_of(&mut stream)
        .into_iter()
        .filter(|e| e.event == events::kind::SYNC_COMPLETED)
        .collect();
    assert!(!completed.is_empty());
    assert_eq!(completed[0].data["issues_count"], 7);
    assert_eq!(completed[0].data["dependencies_count"], 13);

    // Every call pinned the webhook's revision.
    for call in rig.sim.state().requests_to(Endpoint::Issues) {
        assert_eq!(call.param("scope[revision]").as_deref(), Some(REVISION));
    }
}

#[tokio::test]
async fn a_rate_limited_sync_waits_for_retry_after_then_completes() {
    let rig = rig(PROJECT).await;
    rig.sim.state().load_bundled_fixtures().unwrap();
    rig.sim
        .state()
        .inject(Endpoint::Issues, Fault::rate_limited("30"), 1);
    let job = rig.webhook(REVISION).await;

    let report = rig.worker.run_once().await.unwrap().unwrap();
    let JobReport::Retrying {
        delay,
        attempt,
        error,
        ..
    } = report
    else {
        panic!("expected a retry, got {report:?}");
    };
    assert_eq!((delay, attempt), (Duration::from_secs(30), 1));
    assert!(error.contains("rate limited"), "{error}");
    assert_eq!(rig.job_status(job).await, JobStatus::Queued);

    // Not before FOSSA's Retry-After has passed.
    rig.clock.advance(Duration::from_secs(29));
    assert_eq!(rig.worker.run_once().await.unwrap(), None);
    rig.clock.advance(Duration::from_secs(1));

    let report = rig.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(report, JobReport::Completed { .. }), "{report:?}");
    assert_eq!(rig.job_status(job).await, JobStatus::Completed);
    let statuses: Vec<u16> = rig
        .sim
        .state()
        .requests_to(Endpoint::Issues)
        .iter()
        .map(|r| r.status)
        .collect();
    assert!(
        statuses.contains(&429) && statuses.contains(&200),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn an_analysing_revision_is_waited_for_not_stored_as_zero_issues() {
    let rig = rig(PROJECT).await;
    rig.sim.state().load_bundled_fixtures().unwrap();
    rig.sim
        .state()
        .set_analysis(PROJECT, REVISION, Analysis::InProgress)
        .unwrap();
    let mut stream = rig.notifier.subscribe().await.unwrap();
    rig.webhook(REVISION).await;

    let report = rig.worker.run_once().await.unwrap().unwrap();
    let JobReport::Retrying { delay, .. } = report else {
        panic!("expected a retry, got {report:?}");
    };
    let component = rig
        .stores
        .components
        .get(rig.component.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(component.compliance_status, ComplianceStatus::Unknown);
    let waiting = events_of(&mut stream).into_iter().any(|e| {
        e.event == events::kind::SYNC_STARTED
            && serde_json::from_value::<events::SyncStarted>(e.data.clone())
                .is_ok_and(|s| s.phase == SyncPhase::WaitingForFossa)
    });
    assert!(waiting, "sync.started announces that it waits for FOSSA");

    rig.sim.state().finish_analysis(PROJECT, REVISION).unwrap();
    rig.clock.advance(delay);
    let report = rig.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(report, JobReport::Completed { .. }), "{report:?}");
}

#[tokio::test]
async fn an_analysis_that_never_finishes_fails_the_job_saying_fossa_had_not_finished() {
    let rig = rig_with(
        PROJECT,
        RetryPolicy {
            not_ready_delay: Duration::from_secs(15),
            not_ready_max_wait: Duration::from_secs(60),
            ..RetryPolicy::default()
        },
    )
    .await;
    rig.sim.state().load_bundled_fixtures().unwrap();
    rig.sim
        .state()
        .set_analysis(PROJECT, REVISION, Analysis::InProgress)
        .unwrap();
    let job = rig.webhook(REVISION).await;

    // FOSSA is asked again every 15 s until a minute has passed, then the job gives up.
    let mut waits = 0;
    let error = loop {
        match rig.worker.run_once().await.unwrap().unwrap() {
            JobReport::Retrying { delay, .. } => {
                assert_eq!(delay, Duration::from_secs(15));
                waits += 1;
                assert!(waits <= 5, "still waiting after {waits} checks");
                rig.clock.advance(delay);
            }
            JobReport::Failed { error, .. } => break error,
            other => panic!("expected a retry or a failure, got {other:?}"),
        }
    };

    assert_eq!(
        waits, 4,
        "checks at 0, 15, 30 and 45 s, the fifth at 60 s gives up"
    );
    assert!(
        error.contains("FOSSA had not finished analysing"),
        "{error}"
    );
    assert_eq!(rig.job_status(job).await, JobStatus::Failed);
    // Nothing was stored as a result: no scan, no issues, status still unknown.
    let component = rig
        .stores
        .components
        .get(rig.component.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(component.compliance_status, ComplianceStatus::Unknown);
    let view = rig
        .stores
        .compliance
        .compliance_view(rig.component.id)
        .await
        .unwrap()
        .unwrap();
    assert!(view.latest_scan.is_none());
    assert_eq!(view.issues.total, 0);
    assert!(rig
        .sim
        .state()
        .requests_to(Endpoint::Issues)
        .iter()
        .all(|r| r.status != 200));
}

#[tokio::test]
async fn a_new_revision_resolves_fixed_issues_and_adds_new_ones() {
    let locator = "custom+48213/github.com/acme-corp/payments-api-generated";
    let (rev1, rev2) = (fixtures::revision(1), fixtures::revision(2));
    let rig = rig(locator).await;
    rig.sim
        .state()
        .generate_project(&ProjectSpec::new(locator, 400, 60, 3).with_revision(&rev1));
    rig.webhook(&rev1).await;
    let first = rig.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(first, JobReport::Completed { .. }), "{first:?}");

    let change = rig
        .sim
        .state()
        .advance_revision(locator, &RevisionChange::new(&rev2, 5, 8))
        .unwrap();
    rig.clock.advance(Duration::from_secs(120));
    rig.webhook(&rev2).await;
    let report = rig.worker.run_once().await.unwrap().unwrap();

    let JobReport::Completed { summary, .. } = report else {
        panic!("expected a completed sync, got {report:?}");
    };
    assert_eq!(summary.issues_count, 63);
    assert_eq!(summary.dependencies_count, 400);
    let ids = |keys: &[compliance_core::domain::IssueKey]| {
        let mut ids: Vec<String> = keys.iter().map(|k| k.fossa_id.clone()).collect();
        ids.sort();
        ids
    };
    let mut fixed: Vec<String> = change.fixed.iter().map(|(_, id)| id.to_string()).collect();
    let mut added: Vec<String> = change.added.iter().map(|(_, id)| id.to_string()).collect();
    fixed.sort();
    added.sort();
    assert_eq!(ids(&summary.resolved_issues), fixed);
    assert_eq!(ids(&summary.new_issues), added);

    let resolved = rig
        .stores
        .compliance
        .list_issues(
            rig.component.id,
            &IssueQuery {
                status: Some(compliance_core::domain::IssueStatus::Resolved),
                page: PageRequest::new(0, 100),
                ..IssueQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(resolved.items.len(), 5);
}
