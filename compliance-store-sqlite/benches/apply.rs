//! Applying a 20 000-dependency / 5 000-issue snapshot in one transaction.
//!
//! Each iteration starts a fresh job (not timed) and applies the snapshot; iterations
//! alternate between two scans that differ by 500 fixed and 500 new issues, so every apply
//! upserts 5 000 issues, resolves 500, and replaces all 20 000 dependencies.
//!
//! Run: `cargo bench -p compliance-store-sqlite --bench apply -- --warm-up-time 1 --measurement-time 5`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use compliance_core::ports::{
    ApplyOutcome, ComplianceStore, ComponentDirectory, QueuePlacement, SnapshotApply, StartOutcome,
    SyncJobStore,
};
use compliance_core::testing::fixtures::{self, at};
use compliance_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tempfile::TempDir;

const ISSUES: usize = 5_000;
const DEPENDENCIES: usize = 20_000;

fn apply(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let first = fixtures::snapshot(ISSUES, DEPENDENCIES, 1);
    let second = fixtures::snapshot_with_changes(&first, 500, 500, 1);
    let mut group = c.benchmark_group("apply");
    group.sample_size(10);

    for (mode, durability) in [("normal", Durability::Normal), ("full", Durability::Full)] {
        let dir = TempDir::new().unwrap();
        let config = SqliteConfig::file(dir.path().join("bench.db")).durability(durability);
        let (store, component) = runtime.block_on(async {
            let store = SqliteStore::open(config).await.unwrap();
            let component = store
                .register(
                    fixtures::component("payments", "https://github.com/acme/payments"),
                    at(0),
                )
                .await
                .unwrap();
            (store, component)
        });
        let mut round = 0_i64;
        group.bench_function(BenchmarkId::new(mode, "20k-deps-5k-issues"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let store = &store;
                let component = &component;
                let (first, second) = (&first, &second);
                let start_round = round;
                round += i64::try_from(iters).unwrap();
                async move {
                    let mut total = Duration::ZERO;
                    for i in 0..iters {
                        let r = start_round + i64::try_from(i).unwrap();
                        let job = fixtures::new_job(component.id, "main", None, at(r));
                        let job = store
                            .create_job(job, QueuePlacement::External)
                            .await
                            .unwrap()
                            .job;
                        let StartOutcome::Started(job) = store
                            .start(job.id, at(r), Duration::from_secs(30))
                            .await
                            .unwrap()
                        else {
                            panic!("start");
                        };
                        let snapshot = if r % 2 == 0 { first } else { second };
                        let apply = SnapshotApply {
                            job_id: job.id,
                            attempt: job.attempts,
                            component_id: component.id,
                            branch: "main".into(),
                            scan_completed_at: None,
                            snapshot: snapshot.clone(),
                            synced_at: at(r),
                        };
                        let started = Instant::now();
                        let outcome = store.apply_snapshot(apply).await.unwrap();
                        total += started.elapsed();
                        assert!(matches!(outcome, ApplyOutcome::Applied(_)));
                    }
                    total
                }
            });
        });
        runtime.block_on(store.close());
    }
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
