//! Durable ingest of one webhook (event + job + queue entry in one write) from many
//! concurrent callers, in both durability modes; and the same through the ingest service
//! (signature verification, parsing, redelivery and component lookups, then the write).
//!
//! Run: `cargo bench -p compliance-store-sqlite --bench ingest -- --warm-up-time 1 --measurement-time 5`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_core::domain::Component;
use compliance_core::ingest::{InboundWebhook, IngestConfig, IngestOutcome, IngestService};
use compliance_core::ports::{
    AcceptRecord, ComponentDirectory, JobQueue, QueuePlacement, RequestHeaders, WebhookEventLog,
};
use compliance_core::signature::{
    sign, HmacSha256Verifier, WebhookSecret, SIGNATURE_HEADER, SOURCE_HEADER, TIMESTAMP_HEADER,
};
use compliance_core::testing::fixtures::{self, at};
use compliance_core::SystemClock;
use compliance_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tempfile::TempDir;

/// Webhooks per measured iteration.
const BATCH: u64 = 4_096;
/// Components the webhooks are spread over (coalescing happens, as in real traffic).
const COMPONENTS: usize = 1_000;
const SECRET: &str = "bench-secret";

struct Setup {
    _dir: TempDir,
    store: SqliteStore,
    components: Arc<Vec<Component>>,
    seq: Arc<AtomicU64>,
}

fn setup(runtime: &tokio::runtime::Runtime, durability: Durability) -> Setup {
    runtime.block_on(async {
        let dir = TempDir::new().unwrap();
        let config = SqliteConfig::file(dir.path().join("bench.db")).durability(durability);
        let store = SqliteStore::open(config).await.unwrap();
        let mut components = Vec::with_capacity(COMPONENTS);
        for i in 0..COMPONENTS {
            let name = format!("svc-{i}");
            let url = format!("https://github.com/acme/{name}");
            components.push(
                store
                    .register(fixtures::component(&name, &url), at(0))
                    .await
                    .unwrap(),
            );
        }
        Setup {
            _dir: dir,
            store,
            components: Arc::new(components),
            seq: Arc::new(AtomicU64::new(0)),
        }
    })
}

/// `BATCH` webhooks written by `callers` concurrent tasks straight through the store port.
async fn store_batch(setup: &Setup, callers: u64) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(callers as usize);
    for _ in 0..callers {
        let store = setup.store.clone();
        let components = Arc::clone(&setup.components);
        let seq = Arc::clone(&setup.seq);
        tasks.push(tokio::spawn(async move {
            for _ in 0..BATCH / callers {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let component = &components[n as usize % COMPONENTS];
                let key = format!("{n:064x}");
                let scanned = at(i64::try_from(n).unwrap());
                let mut accepted = fixtures::accepted_webhook(
                    component,
                    "main",
                    Some(scanned),
                    scanned,
                    Some(&key),
                );
                accepted.placement = QueuePlacement::InStore;
                let record = store.record_accepted(accepted).await.unwrap();
                assert!(matches!(record, AcceptRecord::Created(_)));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

fn signed(body: String) -> InboundWebhook {
    let timestamp = chrono::Utc::now().timestamp();
    let headers = RequestHeaders::new()
        .with("Content-Type", "application/json")
        .with(
            SIGNATURE_HEADER,
            sign(SECRET.as_bytes(), timestamp, body.as_bytes()),
        )
        .with(TIMESTAMP_HEADER, timestamp.to_string())
        .with(SOURCE_HEADER, "github");
    InboundWebhook {
        body: body.into_bytes().into(),
        headers,
        source_ip: Some(IpAddr::from([203, 0, 113, 9])),
    }
}

/// `BATCH` signed requests answered by the ingest service from `callers` concurrent tasks.
async fn service_batch(setup: &Setup, ingest: &IngestService, callers: u64) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(callers as usize);
    for _ in 0..callers {
        let ingest = ingest.clone();
        let components = Arc::clone(&setup.components);
        let seq = Arc::clone(&setup.seq);
        tasks.push(tokio::spawn(async move {
            for _ in 0..BATCH / callers {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let component = &components[n as usize % COMPONENTS];
                let scanned = at(i64::try_from(n).unwrap());
                let body = serde_json::json!({
                    "event": "fossa.scan.completed",
                    "timestamp": scanned.to_rfc3339(),
                    "repository": {"name": component.name, "url": component.repository_url},
                    "scan": {"revision": fixtures::revision(n), "branch": "main",
                             "status": "passed"},
                })
                .to_string();
                match ingest.receive(signed(body)).await {
                    IngestOutcome::Accepted(_) => {}
                    other => panic!("{other:?}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

fn ingest(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);

    for (mode, durability) in [("normal", Durability::Normal), ("full", Durability::Full)] {
        let setup = setup(&runtime, durability);
        for callers in [64, 512] {
            group.bench_with_input(
                BenchmarkId::new(format!("store/{mode}"), callers),
                &callers,
                |b, &callers| {
                    b.to_async(&runtime).iter_custom(|iters| {
                        let setup = &setup;
                        async move {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                total += store_batch(setup, callers).await;
                            }
                            total
                        }
                    });
                },
            );
        }
        runtime.block_on(setup.store.close());
    }

    let setup = setup(&runtime, Durability::Normal);
    let queue: Arc<dyn JobQueue> = Arc::new(setup.store.queue());
    let service = IngestService::new(
        Arc::new(HmacSha256Verifier::new(vec![WebhookSecret::new(
            "ci", SECRET,
        )])),
        setup.store.stores(),
        queue,
        Arc::new(SystemClock),
        IngestConfig::default(),
    );
    group.bench_function(BenchmarkId::new("service/normal", 512), |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let setup = &setup;
            let service = &service;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += service_batch(setup, service, 512).await;
                }
                total
            }
        });
    });
    runtime.block_on(setup.store.close());
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
