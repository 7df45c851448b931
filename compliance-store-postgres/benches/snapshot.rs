//! Applying a large snapshot: 20 000 dependencies and 5 000 issues in one transaction.
//!
//! Run:
//!
//! ```sh
//! COMPLIANCE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p compliance-store-postgres --bench snapshot -- --warm-up-time 1 --measurement-time 5
//! ```
//!
//! - `apply_snapshot/first_sync`: into a component with no data yet (every row inserted).
//! - `apply_snapshot/next_sync`: over the previous scan's data, with 100 issues fixed and 100
//!   new (upserts, resolve-the-rest, dependencies replaced); the steady state.
//!
//! Only `apply_snapshot` is timed; creating and starting the job is not. Skips with a note
//! when `COMPLIANCE_TEST_POSTGRES_URL` is unset.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use compliance_core::domain::{Component, NewSyncJob, ScanSnapshot, Trigger};
use compliance_core::ports::{
    ApplyOutcome, ComplianceStore, ComponentDirectory, QueuePlacement, SnapshotApply, StartOutcome,
    SyncJobStore,
};
use compliance_core::testing::fixtures;
use compliance_core::SyncJobId;
use compliance_store_postgres::{PgConfig, PgStore};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const URL_VAR: &str = "COMPLIANCE_TEST_POSTGRES_URL";
const ISSUES: usize = 5_000;
const DEPENDENCIES: usize = 20_000;

/// Creates and starts a job for `component`, then times the apply of `snapshot`.
async fn timed_apply(
    store: &PgStore,
    component: &Component,
    snapshot: &ScanSnapshot,
    clock: &AtomicI64,
) -> Duration {
    let now = fixtures::at(clock.fetch_add(10, Ordering::Relaxed));
    let new = NewSyncJob {
        id: SyncJobId::new(),
        component_id: component.id,
        trigger: Trigger::Manual,
        webhook_event_id: None,
        revision: Some(snapshot.revision.clone()),
        branch: "main".to_owned(),
        scan_completed_at: Some(now),
        queued_at: now,
    };
    let created = store
        .create_job(new, QueuePlacement::External)
        .await
        .expect("create");
    let StartOutcome::Started(job) = store
        .start(created.job.id, now, Duration::from_secs(60))
        .await
        .expect("start")
    else {
        panic!("the job did not start");
    };
    let apply = SnapshotApply {
        job_id: job.id,
        attempt: job.attempts,
        component_id: component.id,
        branch: job.branch.clone(),
        scan_completed_at: job.scan_completed_at,
        snapshot: snapshot.clone(),
        synced_at: now,
    };

    let started = Instant::now();
    let outcome = store.apply_snapshot(apply).await.expect("apply");
    let took = started.elapsed();
    assert!(matches!(outcome, ApplyOutcome::Applied(_)), "{outcome:?}");
    took
}

fn benches(c: &mut Criterion) {
    let Ok(url) = std::env::var(URL_VAR) else {
        eprintln!("skipping the snapshot benchmarks: {URL_VAR} is not set");
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let store = rt
        .block_on(PgStore::connect(PgConfig::new(url.clone()).schema(&schema)))
        .expect("connect");
    let clock = AtomicI64::new(1_000);

    let base = fixtures::snapshot(ISSUES, DEPENDENCIES, 1);
    let changed = fixtures::snapshot_with_changes(&base, 100, 100, 1);

    let mut group = c.benchmark_group("apply_snapshot");
    group.throughput(Throughput::Elements(
        u64::try_from(ISSUES + DEPENDENCIES).unwrap(),
    ));
    group.sample_size(10);

    group.bench_function("first_sync", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (store, base, clock) = (&store, &base, &clock);
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    // A fresh component each time, so every row is new.
                    let name = format!("first-{i}-{}", uuid::Uuid::new_v4().simple());
                    let url = format!("https://github.com/acme/{name}");
                    let component = store
                        .register(fixtures::component(&name, &url), fixtures::at(0))
                        .await
                        .expect("register");
                    total += timed_apply(store, &component, base, clock).await;
                }
                total
            }
        });
    });

    let component = rt
        .block_on(store.register(
            fixtures::component("steady", "https://github.com/acme/steady"),
            fixtures::at(0),
        ))
        .expect("register");
    rt.block_on(timed_apply(&store, &component, &base, &clock));
    group.bench_function("next_sync", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (store, component, clock) = (&store, &component, &clock);
            let (base, changed) = (&base, &changed);
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let snapshot = if i % 2 == 0 { changed } else { base };
                    total += timed_apply(store, component, snapshot, clock).await;
                }
                total
            }
        });
    });
    group.finish();

    rt.block_on(async {
        store.close().await;
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&pool)
            .await
            .expect("drop schema");
    });
}

criterion_group!(snapshot, benches);
criterion_main!(snapshot);
