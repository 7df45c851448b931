//! A whole deployment in one test: instances of ingest and workers on PostgreSQL, signed
//! webhooks sent to them, and checks that every accepted webhook's sync completed once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_core::domain::Component;
use compliance_core::events::{kind, COMPONENTS_CHANNEL};
use compliance_core::ingest::{InboundWebhook, IngestConfig, IngestOutcome, IngestService};
use compliance_core::ports::{ComponentDirectory, JobQueue, Notification, Notifier, Stores};
use compliance_core::retry::RetryPolicy;
use compliance_core::signature::{HmacSha256Verifier, WebhookSecret};
use compliance_core::testing::{fixtures, ScriptedScanSource};
use compliance_core::worker::{SyncWorker, WorkerConfig};
use compliance_core::{SyncJobId, SystemClock};
use compliance_store_postgres::PgStore;
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub(crate) const SECRET: &str = "load-test-secret";

/// One instance: an ingest service and its workers on one store (one pool).
pub(crate) struct Instance {
    pub(crate) store: PgStore,
    pub(crate) ingest: IngestService,
    workers: Vec<JoinHandle<()>>,
}

impl Instance {
    pub(crate) fn start(
        store: PgStore,
        name: &str,
        workers: usize,
        source: Arc<ScriptedScanSource>,
        shutdown: &CancellationToken,
    ) -> Self {
        let stores = Stores::from_adapter(Arc::new(store.clone()));
        let queue: Arc<dyn JobQueue> = Arc::new(store.queue());
        let notifier: Arc<dyn Notifier> = Arc::new(store.notifier());
        let verifier = Arc::new(HmacSha256Verifier::new(vec![WebhookSecret::new(
            "load", SECRET,
        )]));
        let ingest = IngestService::new(
            verifier,
            stores.clone(),
            queue.clone(),
            Arc::new(SystemClock),
            IngestConfig::default(),
        );
        let config = WorkerConfig {
            worker_id: name.to_owned(),
            lease: Duration::from_secs(10),
            heartbeat_every: Duration::from_secs(3),
            idle_wait: Duration::from_millis(200),
            busy_delay: Duration::from_millis(50),
            retry: RetryPolicy {
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(500),
                ..RetryPolicy::default()
            },
        };
        let worker = SyncWorker::new(
            stores,
            queue,
            source,
            notifier,
            Arc::new(SystemClock),
            config,
        );
        let workers = (0..workers)
            .map(|i| {
                let worker = worker.clone().with_worker_id(format!("{name}-worker-{i}"));
                tokio::spawn(worker.run(shutdown.clone()))
            })
            .collect();
        Self {
            store,
            ingest,
            workers,
        }
    }

    pub(crate) async fn stop(self) {
        for worker in self.workers {
            worker.await.expect("worker task");
        }
    }
}

/// Registers `n` components named `service-{i}`.
pub(crate) async fn register(store: &PgStore, n: usize) -> Vec<Component> {
    let mut components = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("service-{i:04}");
        let url = format!("https://github.com/acme/{name}");
        components.push(
            store
                .register(fixtures::component(&name, &url), fixtures::at(0))
                .await
                .expect("register"),
        );
    }
    components
}

/// A signed webhook for `component` on `branch`.
pub(crate) fn webhook(component: &Component, branch: &str, seed: u64) -> InboundWebhook {
    let now = chrono::Utc::now();
    let body = fixtures::webhook_body(
        &component.repository_url,
        &fixtures::revision(seed),
        branch,
        Some(now),
    );
    let headers = fixtures::signed_headers(SECRET, now.timestamp(), body.as_bytes());
    InboundWebhook {
        body: body.into(),
        headers,
        source_ip: None,
    }
}

/// Every `sync.completed` on the list channel, by job, from a subscription opened now.
pub(crate) struct CompletedLog {
    task: JoinHandle<(HashMap<SyncJobId, usize>, usize)>,
    stop: CancellationToken,
}

impl CompletedLog {
    pub(crate) async fn start(notifier: &dyn Notifier) -> Self {
        let mut stream = notifier.subscribe().await.expect("subscribe");
        let stop = CancellationToken::new();
        let until = stop.clone();
        let task = tokio::spawn(async move {
            let mut seen: HashMap<SyncJobId, usize> = HashMap::new();
            let mut gaps = 0;
            loop {
                let next = tokio::select! {
                    () = until.cancelled() => break,
                    next = stream.next() => next,
                };
                match next {
                    Some(Notification::Event(event))
                        if event.channel == COMPONENTS_CHANNEL
                            && event.event == kind::SYNC_COMPLETED =>
                    {
                        let id = event
                            .data
                            .get("sync_job_id")
                            .and_then(|v| v.as_str())
                            .and_then(|s| s.parse::<Uuid>().ok())
                            .map(SyncJobId::from_uuid)
                            .expect("sync.completed names its job");
                        *seen.entry(id).or_default() += 1;
                    }
                    Some(Notification::Gap { .. }) => gaps += 1,
                    Some(Notification::Event(_)) => {}
                    None => break,
                }
            }
            (seen, gaps)
        });
        Self { task, stop }
    }

    /// Stops listening; returns the completions seen per job and how many gaps were reported.
    pub(crate) async fn finish(self) -> (HashMap<SyncJobId, usize>, usize) {
        self.stop.cancel();
        self.task.await.expect("listener task")
    }
}

/// Sends `webhook` to `ingest` until it is answered 202 (a 503 while the database is away is
/// retried, as a CI sender would); returns the job and how many 503s it took.
pub(crate) async fn deliver(ingest: &IngestService, webhook: InboundWebhook) -> (SyncJobId, u32) {
    let mut unavailable = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match ingest.receive(webhook.clone()).await {
            IngestOutcome::Accepted(accepted) => return (accepted.sync_id, unavailable),
            IngestOutcome::Unavailable { .. } if Instant::now() < deadline => {
                unavailable += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("webhook not accepted: {other:?}"),
        }
    }
}

/// Waits until no job is queued or running.
pub(crate) async fn drain(store: &PgStore, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        match compliance_core::ports::SyncJobStore::active_jobs(store).await {
            Ok(0) => return,
            Ok(n) => assert!(
                Instant::now() < deadline,
                "{n} jobs still active after {limit:?}"
            ),
            Err(err) => assert!(Instant::now() < deadline, "store still failing: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits, with the workers still running, until the queue holds no entry and no dead letter.
///
/// An `ack` whose connection was killed leaves its entry leased although the job has ended;
/// the entry becomes visible when the lease runs out and the next worker to reserve it
/// acknowledges it on sight. So after faults the queue empties within about one lease.
pub(crate) async fn drain_queue(store: &PgStore, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        match store.queue().stats().await {
            Ok(stats) if stats.depth() == 0 && stats.dead == 0 => return,
            Ok(stats) => assert!(
                Instant::now() < deadline,
                "queue not empty after {limit:?}: {stats:?}"
            ),
            Err(err) => assert!(Instant::now() < deadline, "queue still failing: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every job's final status, read directly.
pub(crate) async fn job_statuses(store: &PgStore) -> HashMap<SyncJobId, (String, Option<Uuid>)> {
    let rows: Vec<(Uuid, String, Option<Uuid>)> =
        sqlx::query_as("SELECT id, status, superseded_by FROM sync_jobs")
            .fetch_all(store.pool())
            .await
            .expect("read jobs");
    rows.into_iter()
        .map(|(id, status, by)| (SyncJobId::from_uuid(id), (status, by)))
        .collect()
}

/// Checks that every accepted job is `COMPLETED`, or superseded (by a newer webhook, or as a
/// scan older than data already applied) by a chain of jobs that ends in a `COMPLETED` one.
pub(crate) fn assert_covered(
    accepted: &[SyncJobId],
    statuses: &HashMap<SyncJobId, (String, Option<Uuid>)>,
) {
    for &job in accepted {
        let mut at = job;
        let mut hops = 0;
        loop {
            let (status, by) = statuses
                .get(&at)
                .unwrap_or_else(|| panic!("job {at} of a 202 answer is missing"));
            match (status.as_str(), by) {
                ("COMPLETED", _) => break,
                ("SUPERSEDED", Some(by)) => at = SyncJobId::from_uuid(*by),
                other => panic!("job {at} of a 202 answer ended as {other:?}"),
            }
            hops += 1;
            assert!(hops < 1000, "supersede chain from {job} does not end");
        }
    }
}

/// Checks [`assert_covered`], and that each completed job announced `sync.completed` exactly
/// once.
pub(crate) fn assert_all_completed_once(
    accepted: &[SyncJobId],
    statuses: &HashMap<SyncJobId, (String, Option<Uuid>)>,
    completions: &HashMap<SyncJobId, usize>,
) {
    assert_covered(accepted, statuses);
    for (job, (status, _)) in statuses {
        if status == "COMPLETED" {
            assert_eq!(
                completions.get(job).copied().unwrap_or(0),
                1,
                "job {job} announced sync.completed once"
            );
        }
    }
    let announced: usize = completions.values().sum();
    let completed_jobs = statuses.values().filter(|(s, _)| s == "COMPLETED").count();
    assert_eq!(
        announced, completed_jobs,
        "no completion announced twice or for nothing"
    );
}
