//! Jobs per second through `RedisQueue`: each job is enqueued, reserved and acknowledged.
//!
//! Run: `COMPLIANCE_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench -p compliance-queue-redis
//! --bench throughput -- --warm-up-time 1 --measurement-time 5 --noplot`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_core::ports::JobQueue;
use compliance_core::SyncJobId;
use compliance_queue_redis::{RedisOptions, RedisQueue};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Jobs per measured round.
const JOBS: usize = 4_000;
const LEASE: Duration = Duration::from_secs(30);

/// Jobs through the queue in measured rounds, and the CPU (µs) Redis and this process spent
/// on them, for the figures printed at the end.
static JOBS_DONE: AtomicU64 = AtomicU64::new(0);
static REDIS_CPU_US: AtomicU64 = AtomicU64::new(0);
static OWN_CPU_US: AtomicU64 = AtomicU64::new(0);

/// Redis's CPU seconds (user + system) so far, from `INFO CPU`.
async fn redis_cpu(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("CPU")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("used_cpu_user:") || l.starts_with("used_cpu_sys:"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .sum()
}

/// This process's CPU seconds so far (Linux `/proc/self/stat`, 100 ticks per second).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

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
    JOBS_DONE.fetch_add((per_task * tasks) as u64, Ordering::Relaxed);
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
    let mut admin = runtime.block_on(async {
        redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    });

    let mut group = c.benchmark_group("redis_queue");
    group.throughput(Throughput::Elements(JOBS as u64));
    group.sample_size(10);
    for tasks in [1, 16, 64] {
        group.bench_with_input(
            BenchmarkId::new("enqueue_reserve_ack", tasks),
            &tasks,
            |b, &tasks| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let (queue, mut admin) = (queue.clone(), admin.clone());
                    async move {
                        let (redis_before, own_before) = (redis_cpu(&mut admin).await, own_cpu());
                        let start = Instant::now();
                        for _ in 0..iters {
                            round(queue.clone(), tasks).await;
                        }
                        let took = start.elapsed();
                        let spent = |from: f64, to: f64| ((to - from).max(0.0) * 1e6) as u64;
                        let redis_after = redis_cpu(&mut admin).await;
                        REDIS_CPU_US.fetch_add(spent(redis_before, redis_after), Ordering::Relaxed);
                        OWN_CPU_US.fetch_add(spent(own_before, own_cpu()), Ordering::Relaxed);
                        took
                    }
                });
            },
        );
    }
    group.finish();

    let jobs = JOBS_DONE.load(Ordering::Relaxed).max(1) as f64;
    let redis_us = REDIS_CPU_US.load(Ordering::Relaxed) as f64 / jobs;
    let own_us = OWN_CPU_US.load(Ordering::Relaxed) as f64 / jobs;
    eprintln!(
        "cpu per job in measured rounds ({jobs} jobs): redis {redis_us:.1} us, client {own_us:.1} us \
         (redis alone could serve {:.0} jobs/s per core)",
        1e6 / redis_us.max(f64::EPSILON)
    );

    runtime.block_on(async {
        let _: i64 = redis::cmd("DEL")
            .arg(queue.keys())
            .query_async(&mut admin)
            .await
            .unwrap();
    });
}

criterion_group!(benches, throughput);
criterion_main!(benches);
