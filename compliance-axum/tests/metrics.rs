//! `/metrics` with the crate's Prometheus helper: HTTP counts and latency histograms per route
//! template, and core's webhook metrics. One test per binary: it installs a global recorder.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::http::StatusCode;
use common::*;
use compliance_axum::MetricsAccess;

#[tokio::test]
async fn metrics_show_http_and_webhook_figures() {
    let handle = compliance_axum::metrics::install_prometheus().unwrap();
    let h = Harness::configured(move |b| b.metrics(handle, MetricsAccess::Public)).await;
    let component = h.register("payment-service", REPO).await;

    assert_eq!(
        h.send(signed_webhook(&webhook_body(REPO, "abc123")))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let uri = format!("/api/components/{}", component.id);
    assert_eq!(
        h.send(get(&uri, Some(READ_TOKEN))).await.status,
        StatusCode::OK
    );
    h.send(get("/nowhere", None)).await;

    let reply = h.send(get("/metrics", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.text;
    for expected in [
        r#"http_requests_total{method="POST",route="/api/webhooks/fossa-scan",status="202"} 1"#,
        // Labelled by template, never by the concrete id.
        r#"http_requests_total{method="GET",route="/api/components/{id}",status="200"} 1"#,
        r#"http_requests_total{method="any",route="unmatched",status="404"} 1"#,
        r#"http_request_duration_seconds_bucket{method="GET",route="/api/components/{id}",le="0.005"}"#,
        r#"webhook_received_total{outcome="accepted"} 1"#,
        "webhook_processing_duration_seconds_bucket",
        "sync_job_queued_total",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    assert!(!text.contains(&component.id.to_string()));
}
