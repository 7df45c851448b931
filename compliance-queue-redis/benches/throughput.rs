//! Jobs per second through `RedisQueue`: each job is enqueued, reserved and acknowledged.
//!
//! Run: `COMPLIANCE_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench -p compliance-queue-redis
//! --bench throughput -- --warm-up-time 1 --measurement-time 5`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_core::ports::JobQueue;
use compliance_core::SyncJobId;
use compliance_queue_redis::{RedisOptions, RedisQueue};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Jobs per measured round.
const JOBS: usize = 4_000;
const LEASE: Duration = Duration::from_secs(30);

/// One round: `tasks` concurrent workers each enqueue a job, reserve one and ack it, until
/// `JOBS` jobs went through.
async fn round(queue: Arc<RedisQueue>, tasks: usize) {
    let per_task = JOBS / tasks;
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let queue = queue.clone();
        handles.push(tokio::spawn(async move {
            let worker = format!("bench-{t}");
            for _ in 0..per_task {
                queue
                    .enqueue(SyncJobId::new(), Duration::ZERO)
                    .await
                    .unwrap();
                // Another task may have taken this job; every task reserves exactly as many
                // as it enqueued, so one is always on its way.
                loop {
                    if let Some(held) = queue.reserve(&worker, LEASE).await.unwrap() {
                        queue.ack(&held).await.unwrap();
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
}

fn throughput(c: &mut Criterion) {
    let Ok(url) = std::env::var("COMPLIANCE_TEST_REDIS_URL") else {
        eprintln!("skipping redis queue benchmark: COMPLIANCE_TEST_REDIS_URL is not set");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());
    let options = RedisOptions::from_url(&url)
        .unwrap()
        .key_prefix(prefix.clone());
    let queue = Arc::new(RedisQueue::new(options));

    let mut group = c.benchmark_group("redis_queue");
    group.throughput(Throughput::Elements(JOBS as u64));
    group.sample_size(10);
    for tasks in [1, 16, 64] {
        group.bench_with_input(
            BenchmarkId::new("enqueue_reserve_ack", tasks),
            &tasks,
            |b, &tasks| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let queue = queue.clone();
                    async move {
                        let start = Instant::now();
                        for _ in 0..iters {
                            round(queue.clone(), tasks).await;
                        }
                        start.elapsed()
                    }
                });
            },
        );
    }
    group.finish();

    runtime.block_on(async {
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: i64 = redis::cmd("DEL")
            .arg(queue.keys())
            .query_async(&mut conn)
            .await
            .unwrap();
    });
}

criterion_group!(benches, throughput);
criterion_main!(benches);
