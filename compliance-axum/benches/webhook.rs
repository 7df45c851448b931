//! Webhook route throughput on core's in-memory adapters, through the whole router
//! (`tower::ServiceExt::oneshot`): signature, validation, event log, job, queue.
//!
//! The in-memory store scans its event log and jobs linearly, so its cost grows with every
//! accepted request. To measure the route rather than that growth, the accepted benchmarks
//! start a fresh router every 256 requests (outside the timing); `accepted_growing_log` keeps
//! one router for the whole run to show the effect.
//!
//! Run: `cargo bench -p compliance-axum --bench webhook`
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use compliance_axum::{AuthConfig, ComplianceApi, RateLimits, Services};
use compliance_core::ingest::{IngestConfig, IngestService};
use compliance_core::memory::{InMemoryNotifier, InMemoryQueue, InMemoryStore};
use compliance_core::ports::{ComponentDirectory, JobQueue, Notifier, SignatureVerifier, Stores};
use compliance_core::signature::{sign, HmacSha256Verifier, WebhookSecret};
use compliance_core::testing::fixtures;
use compliance_core::{Clock, SystemClock};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tower::ServiceExt;

const SECRET: &str = "bench-secret";
const REPO: &str = "https://github.com/acme/payment-service";

async fn router(limits: RateLimits) -> (ComplianceApi, Router) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(InMemoryStore::new());
    store
        .register(fixtures::component("payment-service", REPO), clock.now())
        .await
        .unwrap();
    let stores = Stores::from_adapter(store);
    let queue: Arc<dyn JobQueue> = Arc::new(InMemoryQueue::new());
    let notifier: Arc<dyn Notifier> = Arc::new(InMemoryNotifier::new());
    let verifier: Arc<dyn SignatureVerifier> =
        Arc::new(HmacSha256Verifier::new(vec![WebhookSecret::new(
            "k", SECRET,
        )]));
    let ingest = IngestService::new(
        verifier.clone(),
        stores.clone(),
        queue.clone(),
        clock.clone(),
        IngestConfig::default(),
    );
    let services = Services {
        ingest,
        verifier,
        stores,
        queue,
        notifier,
        clock,
    };
    let api = ComplianceApi::builder(services)
        .auth(AuthConfig::new())
        .rate_limits(limits)
        .build()
        .await
        .unwrap();
    let router = api.router();
    (api, router)
}

const CHUNK: u64 = 256;

/// Times `iters` requests sent `concurrency` at a time, on a fresh router every [`CHUNK`].
async fn fresh_routers(iters: u64, concurrency: u64, counter: &AtomicU64) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let (api, router) = router(RateLimits::disabled()).await;
        let chunk = CHUNK.min(iters - done);
        let started = Instant::now();
        let mut sent = 0;
        while sent < chunk {
            let wave = concurrency.min(chunk - sent);
            let requests = (0..wave).map(|_| {
                let router = router.clone();
                let request = webhook(counter);
                tokio::spawn(async move { router.oneshot(request).await.unwrap().status() })
            });
            for status in futures::future::join_all(requests).await {
                assert_eq!(status.unwrap(), StatusCode::ACCEPTED);
            }
            sent += wave;
        }
        total += started.elapsed();
        api.shutdown();
        done += chunk;
    }
    total
}

/// A signed request for a fresh revision (so it is never a redelivery).
fn webhook(counter: &AtomicU64) -> Request<Body> {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let body = format!(
        r#"{{"event":"fossa.scan.completed","repository":{{"url":"{REPO}"}},"scan":{{"revision":"{n:012x}","branch":"main","status":"passed"}}}}"#
    );
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = Request::post("/api/webhooks/fossa-scan")
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            "X-Webhook-Signature",
            sign(SECRET.as_bytes(), timestamp, body.as_bytes()),
        )
        .header("X-Webhook-Timestamp", timestamp.to_string())
        .body(Body::from(body))
        .unwrap();
    let peer: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("webhook");
    group.sample_size(30);

    let counter = AtomicU64::new(0);
    group.throughput(Throughput::Elements(1));
    group.bench_function("accepted_sequential", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| fresh_routers(iters, 1, &counter));
    });
    group.bench_function("accepted_16_concurrent", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| fresh_routers(iters, 16, &counter));
    });

    let (_growing_api, growing) = rt.block_on(router(RateLimits::disabled()));
    group.bench_function("accepted_growing_log", |b| {
        b.to_async(&rt).iter(|| async {
            let response = growing.clone().oneshot(webhook(&counter)).await.unwrap();
            assert_eq!(response.status(), StatusCode::ACCEPTED);
        });
    });

    // A source over its limit: what a flood costs once the bucket is empty.
    let (_limited_api, limited) = rt.block_on(router(RateLimits {
        per_ip: Some(governor::Quota::per_hour(NonZeroU32::new(1).unwrap())),
        ..RateLimits::disabled()
    }));
    rt.block_on(limited.clone().oneshot(webhook(&counter)))
        .unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("rate_limited", |b| {
        b.to_async(&rt).iter(|| async {
            let response = limited.clone().oneshot(webhook(&counter)).await.unwrap();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
