//! Durable ingest from concurrent writers.
//!
//! Run (PostgreSQL on this machine, default `synchronous_commit = on`):
//!
//! ```sh
//! COMPLIANCE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p compliance-store-postgres --bench ingest -- --warm-up-time 1 --measurement-time 5
//! ```
//!
//! - `record_accepted/group_commit/<n>_writers`: `n` tasks each record accepted webhooks
//!   (event, job and queue entry, coalesced, committed before the call returns) as fast as
//!   they can, spread over 200 components.
//! - `record_accepted/one_tx_per_request/64_writers`: the same with group commit reduced to
//!   one webhook per transaction, the plain approach, for comparison.
//! - `ingest_service/receive/64_writers`: the whole receive flow of compliance-core
//!   (signature, parsing, redelivery check, component lookup, record) on this store.
//!
//! Skips with a note when `COMPLIANCE_TEST_POSTGRES_URL` is unset.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_core::domain::Component;
use compliance_core::ingest::{InboundWebhook, IngestConfig, IngestService};
use compliance_core::ports::{ComponentDirectory, QueuePlacement, Stores, WebhookEventLog};
use compliance_core::signature::{HmacSha256Verifier, WebhookSecret};
use compliance_core::testing::fixtures;
use compliance_core::SystemClock;
use compliance_store_postgres::{PgConfig, PgStore};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const URL_VAR: &str = "COMPLIANCE_TEST_POSTGRES_URL";
const COMPONENTS: usize = 200;
const WEBHOOKS_PER_ITER: u64 = 4_000;
const SECRET: &str = "bench-webhook-secret";

struct Fixture {
    store: PgStore,
    components: Vec<Component>,
    /// Makes every webhook's delivery key and scan time unique and increasing.
    seq: AtomicI64,
}

impl Fixture {
    async fn new(url: &str, schema: &str, config: impl Fn(PgConfig) -> PgConfig) -> Arc<Self> {
        let store = PgStore::connect(config(
            PgConfig::new(url).schema(schema).max_connections(16),
        ))
        .await
        .expect("connect");
        let mut components = Vec::with_capacity(COMPONENTS);
        for i in 0..COMPONENTS {
            let name = format!("service-{i:03}");
            let url = format!("https://github.com/acme/{name}");
            let component = store
                .register(fixtures::component(&name, &url), fixtures::at(0))
                .await
                .expect("register");
            components.push(component);
        }
        Arc::new(Self {
            store,
            components,
            seq: AtomicI64::new(1),
        })
    }

    async fn record_one(&self) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let component = &self.components[usize::try_from(n).unwrap() % COMPONENTS];
        let key = format!("bench-{n}");
        let mut accepted = fixtures::accepted_webhook(
            component,
            "main",
            Some(fixtures::at(n)),
            fixtures::at(n),
            Some(&key),
        );
        accepted.placement = QueuePlacement::InStore;
        self.store.record_accepted(accepted).await.expect("record");
    }
}

/// Runs `iters` rounds of `WEBHOOKS_PER_ITER` calls of `one` spread over `writers` tasks.
async fn concurrent<F, Fut>(iters: u64, writers: u64, one: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let per_writer = WEBHOOKS_PER_ITER / writers;
    let started = Instant::now();
    for _ in 0..iters {
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let one = one.clone();
                tokio::spawn(async move {
                    for _ in 0..per_writer {
                        one().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("writer");
        }
    }
    started.elapsed()
}

async fn drop_schema(url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&pool)
        .await
        .expect("drop schema");
    pool.close().await;
}

fn schema_name() -> String {
    format!("bench_{}", uuid::Uuid::new_v4().simple())
}

fn record_accepted(c: &mut Criterion, rt: &tokio::runtime::Runtime, url: &str) {
    let mut group = c.benchmark_group("record_accepted");
    group.throughput(Throughput::Elements(WEBHOOKS_PER_ITER));
    group.sample_size(10);

    let schema = schema_name();
    let fixture = rt.block_on(Fixture::new(url, &schema, |c| c));
    for writers in [64, 256] {
        group.bench_function(format!("group_commit/{writers}_writers"), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let fixture = fixture.clone();
                async move {
                    concurrent(iters, writers, move || {
                        let fixture = fixture.clone();
                        async move { fixture.record_one().await }
                    })
                    .await
                }
            });
        });
    }
    rt.block_on(fixture.store.close());
    rt.block_on(drop_schema(url, &schema));

    let schema = schema_name();
    let plain = rt.block_on(Fixture::new(url, &schema, |c| {
        c.ingest_max_batch(1).ingest_writers(16)
    }));
    group.bench_function("one_tx_per_request/64_writers", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let fixture = plain.clone();
            async move {
                concurrent(iters, 64, move || {
                    let fixture = fixture.clone();
                    async move { fixture.record_one().await }
                })
                .await
            }
        });
    });
    rt.block_on(plain.store.close());
    rt.block_on(drop_schema(url, &schema));
    group.finish();
}

fn ingest_service(c: &mut Criterion, rt: &tokio::runtime::Runtime, url: &str) {
    let mut group = c.benchmark_group("ingest_service");
    group.throughput(Throughput::Elements(WEBHOOKS_PER_ITER));
    group.sample_size(10);

    let schema = schema_name();
    let fixture = rt.block_on(Fixture::new(url, &schema, |c| c));
    let store = Arc::new(fixture.store.clone());
    let service = IngestService::new(
        Arc::new(HmacSha256Verifier::new(vec![WebhookSecret::new(
            "bench", SECRET,
        )])),
        Stores::from_adapter(store),
        Arc::new(fixture.store.queue()),
        Arc::new(SystemClock),
        IngestConfig::default(),
    );
    group.bench_function("receive/64_writers", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let fixture = fixture.clone();
            let service = service.clone();
            async move {
                concurrent(iters, 64, move || {
                    let fixture = fixture.clone();
                    let service = service.clone();
                    async move {
                        let n = fixture.seq.fetch_add(1, Ordering::Relaxed);
                        let component =
                            &fixture.components[usize::try_from(n).unwrap() % COMPONENTS];
                        let now = chrono::Utc::now();
                        let body = fixtures::webhook_body(
                            &component.repository_url,
                            &fixtures::revision(u64::try_from(n).unwrap()),
                            "main",
                            Some(now),
                        );
                        let headers =
                            fixtures::signed_headers(SECRET, now.timestamp(), body.as_bytes());
                        let outcome = service
                            .receive(InboundWebhook {
                                body: body.into(),
                                headers,
                                source_ip: None,
                            })
                            .await;
                        assert_eq!(outcome.http_status(), 202, "{outcome:?}");
                    }
                })
                .await
            }
        });
    });
    rt.block_on(fixture.store.close());
    rt.block_on(drop_schema(url, &schema));
    group.finish();
}

fn benches(c: &mut Criterion) {
    let Ok(url) = std::env::var(URL_VAR) else {
        eprintln!("skipping the ingest benchmarks: {URL_VAR} is not set");
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    record_accepted(c, &rt, &url);
    ingest_service(c, &rt, &url);
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
