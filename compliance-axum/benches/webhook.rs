//! Webhook route throughput on core's in-memory adapters, through the whole router
//! (`tower::ServiceExt::oneshot`): signature, validation, event log, job, queue.
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

async fn router(limits: RateLimits) -> Router {
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
    ComplianceApi::builder(services)
        .auth(AuthConfig::new())
        .rate_limits(limits)
        .build()
        .await
        .unwrap()
        .router()
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

    let accepted = rt.block_on(router(RateLimits::disabled()));
    let counter = AtomicU64::new(0);
    group.throughput(Throughput::Elements(1));
    group.bench_function("accepted_sequential", |b| {
        b.to_async(&rt).iter(|| async {
            let response = accepted.clone().oneshot(webhook(&counter)).await.unwrap();
            assert_eq!(response.status(), StatusCode::ACCEPTED);
        });
    });

    const CONCURRENT: u64 = 64;
    group.throughput(Throughput::Elements(CONCURRENT));
    group.bench_function("accepted_64_concurrent", |b| {
        b.to_async(&rt).iter(|| async {
            let requests = (0..CONCURRENT).map(|_| {
                let router = accepted.clone();
                let request = webhook(&counter);
                tokio::spawn(async move { router.oneshot(request).await.unwrap().status() })
            });
            for status in futures::future::join_all(requests).await {
                assert_eq!(status.unwrap(), StatusCode::ACCEPTED);
            }
        });
    });

    // A source over its limit: what a flood costs once the bucket is empty.
    let limited = rt.block_on(router(RateLimits {
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
