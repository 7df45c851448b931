//! Metrics of the HTTP layer, and a helper that installs a Prometheus recorder.
//!
//! The webhook and sync metrics are named in [`compliance_core::metrics`] and recorded by core;
//! this module adds the HTTP-level ones. The library records through the `metrics` facade only;
//! the application chooses the recorder. [`install_prometheus`] is the one-call way to get a
//! recorder whose handle the router serves at `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: HTTP requests answered (labels `method`, `route`, `status`).
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Histogram: seconds from request to response head (labels `method`, `route`).
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
/// Counter: requests refused by a rate limit before any other work (label `limit`: `ip`,
/// `repository`, `login`).
pub const HTTP_RATE_LIMITED: &str = "http_rate_limited_total";
/// Gauge: open WebSocket connections.
pub const WS_CONNECTIONS: &str = "ws_connections";
/// Counter: WebSocket connections ended (label `reason`).
pub const WS_DISCONNECTED: &str = "ws_disconnected_total";
/// Counter: WebSocket clients dropped by the server (label `reason`: `slow`, `write_timeout`).
pub const WS_DROPPED: &str = "ws_clients_dropped_total";

/// Histogram buckets for request and processing durations, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs a global Prometheus recorder with histogram buckets for every duration metric of
/// this crate and of core, and returns the handle to pass to
/// [`ApiBuilder::metrics`](crate::ApiBuilder::metrics).
///
/// Call it once, from the application, before building the router.
///
/// # Errors
///
/// When a recorder is already installed.
pub fn install_prometheus() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)?
        .install_recorder()
}

/// Middleware counting requests and timing them per route template (`/api/components/{id}`,
/// never the concrete path, so label sets stay bounded).
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());

    let response = next.run(request).await;

    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
