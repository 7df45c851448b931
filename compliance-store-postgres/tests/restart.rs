//! PostgreSQL going away under load: connections killed with `pg_terminate_backend`, and the
//! server unreachable for a while (a proxy in front of it stops). Requests fail fast with
//! "unavailable" meanwhile, and afterwards every webhook answered 202 has a completed job.
//!
//! Needs `COMPLIANCE_TEST_POSTGRES_URL`; skips with a message when it is unset.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_core::ingest::IngestOutcome;
use compliance_core::ports::{ChannelEvent, ComponentDirectory, JobQueue, Notification, Notifier};
use compliance_core::testing::{fixtures, ScriptedScanSource};
use compliance_core::StoreError;
use compliance_store_postgres::{PgConfig, PgStore};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use common::load::{self, CompletedLog, Instance};
use common::proxy::{target_of, Proxy};
use common::TestDb;

const COMPONENTS: usize = 100;

/// Sends webhooks (one component and branch each) from `senders` tasks until `stop` is set;
/// returns the jobs of the 202 answers and how many 503s were seen.
async fn send_until(
    ingest: Vec<compliance_core::ingest::IngestService>,
    components: Arc<Vec<compliance_core::domain::Component>>,
    senders: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<compliance_core::SyncJobId>, u32) {
    let tasks: Vec<_> = (0..senders)
        .map(|s| {
            let ingest = ingest.clone();
            let components = components.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                let mut unavailable = 0;
                let mut n = s;
                while !stop.load(Ordering::SeqCst) {
                    let component = &components[n % components.len()];
                    let branch = format!("branch-{n}");
                    let webhook = load::webhook(component, &branch, n as u64);
                    let (job, refused) = load::deliver(&ingest[n % ingest.len()], webhook).await;
                    accepted.push(job);
                    unavailable += refused;
                    n += senders;
                }
                (accepted, unavailable)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut unavailable = 0;
    for task in tasks {
        let (jobs, refused) = task.await.unwrap();
        accepted.extend(jobs);
        unavailable += refused;
    }
    (accepted, unavailable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_lose_no_accepted_webhook() {
    let Some(db) = TestDb::from_env("killed_connections_lose_no_accepted_webhook").await else {
        return;
    };
    let schema = db.schema();
    let app = format!("restart-{}", uuid::Uuid::new_v4().simple());
    let connect = |name: String| {
        PgStore::connect(
            db.config(&schema)
                .max_connections(6)
                .acquire_timeout(Duration::from_secs(2))
                .notifier_capacity(100_000)
                .application_name(name),
        )
    };
    let a = connect(app.clone()).await.unwrap();
    let b = connect(app.clone()).await.unwrap();
    let listener = connect(format!("{app}-listener")).await.unwrap();
    let components = Arc::new(load::register(&a, COMPONENTS).await);
    let completions = CompletedLog::start(&listener.notifier()).await;

    let source = Arc::new(ScriptedScanSource::always(fixtures::snapshot(3, 5, 1)));
    let shutdown = CancellationToken::new();
    let instances = [
        Instance::start(a, "a", 2, source.clone(), &shutdown),
        Instance::start(b, "b", 2, source.clone(), &shutdown),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let sending = tokio::spawn(send_until(
        vec![instances[0].ingest.clone(), instances[1].ingest.clone()],
        components,
        16,
        stop.clone(),
    ));

    // Kill every connection of both instances (pools and listeners) several times under load.
    let admin = db.admin().await;
    let mut killed = 0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        killed += db.terminate(&admin, &app).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::SeqCst);
    let (accepted, unavailable) = sending.await.unwrap();
    assert!(killed > 0, "connections were killed");
    assert!(
        accepted.len() > 100,
        "load kept flowing: {} accepted",
        accepted.len()
    );
    eprintln!(
        "killed {killed} connections; {} webhooks accepted, {unavailable} answers were 503",
        accepted.len()
    );

    let store = instances[0].store.clone();
    load::drain(&store, Duration::from_secs(120)).await;
    // Entries whose ack was cut off are reclaimed after their lease (10 s) and acknowledged.
    load::drain_queue(&store, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    shutdown.cancel();
    for instance in instances {
        instance.stop().await;
    }
    let (completions, _gaps) = completions.finish().await;

    let statuses = load::job_statuses(&store).await;
    // Every 202 has its job, completed (or covered by a completed newer scan). Completions
    // published while the listener was being killed may be missed (it reported a gap then),
    // so only "at most once" is checked for them.
    load::assert_covered(&accepted, &statuses);
    assert!(
        completions.values().all(|&n| n == 1),
        "no completion announced twice"
    );
    let stats = store.queue().stats().await.unwrap();
    assert_eq!((stats.depth(), stats.dead), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_database_fails_fast_and_recovers() {
    let Some(db) = TestDb::from_env("an_unreachable_database_fails_fast_and_recovers").await else {
        return;
    };
    let schema = db.schema();
    let proxy = Proxy::start(target_of(db.url())).await;
    let config = PgConfig::new(proxy.url(db.url()))
        .schema(&schema)
        .max_connections(6)
        .acquire_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(5))
        .notifier_capacity(100_000);
    let store = PgStore::connect(config).await.unwrap();
    let components = Arc::new(load::register(&store, 20).await);
    let source = Arc::new(ScriptedScanSource::always(fixtures::snapshot(3, 5, 1)));
    let shutdown = CancellationToken::new();
    let instance = Instance::start(store.clone(), "only", 2, source, &shutdown);

    let stop = Arc::new(AtomicBool::new(false));
    let sending = tokio::spawn(send_until(
        vec![instance.ingest.clone()],
        components.clone(),
        8,
        stop.clone(),
    ));
    let mut notifications = store.notifier().subscribe().await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;

    proxy.down();
    // While it is down, a request is refused within about the acquire timeout, as 503.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let outcome = instance
        .ingest
        .receive(load::webhook(&components[0], "probe", 1))
        .await;
    assert!(
        matches!(outcome, IngestOutcome::Unavailable { .. }),
        "expected 503, got {outcome:?}"
    );
    assert_eq!(outcome.http_status(), 503);
    assert!(started.elapsed() < Duration::from_secs(4), "failed fast");
    let read = store.get(components[0].id).await;
    assert!(
        matches!(read, Err(StoreError::Unavailable { .. })),
        "{read:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    proxy.up();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let (accepted, unavailable) = sending.await.unwrap();
    assert!(unavailable > 0, "senders saw the outage");
    assert!(
        store.get(components[0].id).await.unwrap().is_some(),
        "reads work again"
    );

    // The listener lost its connection with the rest: it reconnects and says events may have
    // been missed, and events published afterwards arrive again.
    let gap = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match notifications.next().await.expect("the stream stays open") {
                Notification::Gap { reason } => return reason,
                Notification::Event(_) => {}
            }
        }
    })
    .await
    .expect("a gap after the outage");
    eprintln!("gap reported: {gap}");
    let marker = ChannelEvent {
        channel: "components".to_owned(),
        event: "test.after_outage".to_owned(),
        data: serde_json::json!({}),
        timestamp: chrono::Utc::now(),
    };
    store.notifier().publish(marker.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while notifications.next().await.expect("the stream stays open")
            != Notification::Event(marker.clone())
        {}
    })
    .await
    .expect("events arrive after the gap");

    load::drain(&store, Duration::from_secs(120)).await;
    load::drain_queue(&store, Duration::from_secs(30)).await;
    shutdown.cancel();
    instance.stop().await;
    let statuses = load::job_statuses(&store).await;
    load::assert_covered(&accepted, &statuses);
    let stats = store.queue().stats().await.unwrap();
    assert_eq!((stats.depth(), stats.dead), (0, 0));
}
