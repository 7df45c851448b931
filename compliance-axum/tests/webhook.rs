//! The webhook route: every status it answers, the document's own curl test, rate limits.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use compliance_axum::RateLimits;
use compliance_core::domain::{EventStatus, Page, RejectionKind, WebhookEvent, WebhookEventQuery};
use compliance_core::ingest::IngestConfig;
use compliance_core::ports::{
    AcceptRecord, AcceptedWebhook, PriorDelivery, Stores, WebhookEventLog,
};
use compliance_core::{StoreError, SyncJobId, Timestamp, WebhookEventId};
use governor::Quota;

async fn events(h: &Harness) -> Vec<WebhookEvent> {
    h.stores
        .events
        .list_events(&WebhookEventQuery::default())
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn accepted_webhook_answers_202_with_the_job() {
    let h = Harness::new().await;
    let component = h.register("payment-service", REPO).await;

    let reply = h
        .send(signed_webhook(&webhook_body(REPO, "abc123def456789")))
        .await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["status"], "queued");
    assert_eq!(body["component"]["id"], component.id.to_string());
    assert_eq!(body["component"]["name"], "payment-service");
    assert!(body["estimated_completion"].as_str().unwrap().contains('T'));
    let sync_id: SyncJobId = body["sync_id"].as_str().unwrap().parse().unwrap();
    let job = h.stores.jobs.get_job(sync_id).await.unwrap().unwrap();
    assert_eq!(job.revision.as_deref(), Some("abc123def456789"));
    assert_eq!(job.component_id, component.id);

    let logged = events(&h).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].processing_status, EventStatus::Queued);
    assert_eq!(logged[0].sync_job_id, Some(sync_id));
}

/// The payload of the workflow document's "Manual Test with cURL", byte for byte.
const DOCUMENT_PAYLOAD: &str = r#"{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/payment-service"},"scan":{"revision":"abc123","branch":"main","status":"passed"}}"#;

#[tokio::test]
async fn the_documents_curl_payload_is_accepted() {
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;

    let reply = h.send(signed_webhook(DOCUMENT_PAYLOAD)).await;

    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(reply.json()["status"], "queued");
    // The raw body reached the log byte for byte.
    assert_eq!(events(&h).await[0].raw_payload, DOCUMENT_PAYLOAD);
}

/// The document's shell script, run as written (only the port differs) against a server on
/// loopback. Skips when curl or openssl is missing.
#[tokio::test]
async fn the_documents_curl_script_gets_202() {
    let tools = ["curl", "openssl", "bash"];
    if let Some(missing) = tools.iter().find(|t| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .map_or(true, |o| !o.status.success())
    }) {
        eprintln!("skipping: {missing} is not installed");
        return;
    }
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = h.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });

    let script = format!(
        r#"
# Generate signature
TIMESTAMP=$(date +%s)
PAYLOAD='{DOCUMENT_PAYLOAD}'
SECRET="your-webhook-secret"
SIGNATURE=$(echo -n "${{TIMESTAMP}}.${{PAYLOAD}}" | openssl dgst -sha256 -hmac "${{SECRET}}" | cut -d' ' -f2)

# Send webhook
curl -s -w '\n%{{http_code}}' -X POST http://localhost:{port}/api/webhooks/fossa-scan \
  -H "Content-Type: application/json" \
  -H "X-Webhook-Signature: sha256=${{SIGNATURE}}" \
  -H "X-Webhook-Timestamp: ${{TIMESTAMP}}" \
  -d "${{PAYLOAD}}"
"#
    );
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (body, code) = stdout.trim().rsplit_once('\n').expect("curl output");
    assert_eq!(
        code,
        "202",
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["component"]["name"], "payment-service");
    let logged = events(&h).await;
    assert!(logged[0].source_ip.unwrap().is_loopback());
}

#[tokio::test]
async fn invalid_payload_answers_400_with_every_field_error() {
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;
    let body = r#"{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/payment-service"},"scan":{"status":"unknown"}}"#;

    let reply = h.send(signed_webhook(body)).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let json = reply.json();
    assert!(json["error"].is_string());
    let fields: Vec<&str> = json["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for expected in ["scan.revision", "scan.branch", "scan.status"] {
        assert!(fields.contains(&expected), "{fields:?} lacks {expected}");
    }
    assert!(json["details"][0]["message"].is_string());
}

#[tokio::test]
async fn signature_failures_answer_one_uniform_401() {
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;
    let body = webhook_body(REPO, "abc");

    let mut wrong = signed_webhook(&body);
    wrong.headers_mut().insert(
        "X-Webhook-Signature",
        "sha256=0000000000000000000000000000000000000000000000000000000000000000"
            .parse()
            .unwrap(),
    );
    let missing = Request::post("/api/webhooks/fossa-scan")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.clone()))
        .unwrap();
    let stale = signed_webhook_at(&body, now_secs() - 3600);

    for request in [wrong, missing, stale] {
        let reply = h.send(request).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.text, r#"{"error":"Invalid webhook signature"}"#);
    }
    let logged = events(&h).await;
    assert_eq!(logged.len(), 3);
    assert!(logged
        .iter()
        .all(|e| e.rejection == Some(RejectionKind::InvalidSignature)));
}

#[tokio::test]
async fn unknown_repository_answers_404() {
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;

    let reply = h
        .send(signed_webhook(&webhook_body(
            "https://github.com/acme/other",
            "abc",
        )))
        .await;

    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.text,
        r#"{"error":"No component linked to this repository"}"#
    );
}

#[tokio::test]
async fn bodies_over_the_limit_answer_413_in_json_and_are_logged() {
    let h = Harness::configured(|b| b.webhook_body_limit(1024)).await;
    h.register("payment-service", REPO).await;
    let big = format!(
        r#"{{"event":"fossa.scan.completed","padding":"{}"}}"#,
        "x".repeat(4096)
    );

    // Declared length over the limit: refused before reading.
    let reply = h.send(signed_webhook(&big)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.json()["error"].as_str().unwrap().contains("1024"));

    // No declared length (streamed): refused while reading.
    let chunks = vec![Ok::<_, std::io::Error>(bytes::Bytes::from(big.clone()))];
    let streamed = Request::post("/api/webhooks/fossa-scan")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let reply = h.send(streamed).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.json()["error"].is_string());

    let logged = events(&h).await;
    assert_eq!(logged.len(), 2);
    assert!(logged
        .iter()
        .all(|e| e.rejection == Some(RejectionKind::PayloadTooLarge) && e.http_status == 413));
}

#[tokio::test]
async fn non_json_content_types_answer_415_and_are_logged() {
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;
    let mut request = signed_webhook(&webhook_body(REPO, "abc"));
    request
        .headers_mut()
        .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());

    let reply = h.send(request).await;

    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        reply.json()["error"],
        "Content-Type must be application/json"
    );
    let logged = events(&h).await;
    assert_eq!(
        logged[0].rejection,
        Some(RejectionKind::UnsupportedMediaType)
    );

    // A charset parameter is fine.
    let mut request = signed_webhook(&webhook_body(REPO, "abc"));
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json; charset=utf-8".parse().unwrap(),
    );
    assert_eq!(h.send(request).await.status, StatusCode::ACCEPTED);
}

fn one_per_minute() -> Quota {
    Quota::per_minute(NonZeroU32::new(1).unwrap())
}

#[tokio::test]
async fn a_source_over_its_limit_gets_429_and_costs_no_write() {
    let h = Harness::configured(|b| {
        b.rate_limits(RateLimits {
            per_ip: Some(one_per_minute()),
            ..RateLimits::disabled()
        })
    })
    .await;
    h.register("payment-service", REPO).await;

    let first = h
        .send(with_peer(
            signed_webhook(&webhook_body(REPO, "a")),
            "198.51.100.7:5000",
        ))
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = h
        .send(with_peer(
            signed_webhook(&webhook_body(REPO, "b")),
            "198.51.100.7:5001",
        ))
        .await;

    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    let body = second.json();
    assert_eq!(body["error"], "Too many requests");
    let retry_after = body["retry_after"].as_u64().unwrap();
    assert!((50..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        second.headers[header::RETRY_AFTER].to_str().unwrap(),
        retry_after.to_string()
    );
    // Only the accepted request was written.
    assert_eq!(events(&h).await.len(), 1);

    // Another address has its own bucket.
    let other = h
        .send(with_peer(
            signed_webhook(&webhook_body(REPO, "c")),
            "203.0.113.1:5000",
        ))
        .await;
    assert_eq!(other.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_repository_over_its_limit_gets_429_but_unsigned_requests_do_not_count() {
    let h = Harness::configured(|b| {
        b.rate_limits(RateLimits {
            per_repository: Some(one_per_minute()),
            ..RateLimits::disabled()
        })
    })
    .await;
    h.register("payment-service", REPO).await;

    // Forged requests for the repository must not use up its budget.
    for _ in 0..3 {
        let mut forged = signed_webhook(&webhook_body(REPO, "x"));
        forged
            .headers_mut()
            .insert("X-Webhook-Signature", "sha256=00".parse().unwrap());
        assert_eq!(h.send(forged).await.status, StatusCode::UNAUTHORIZED);
    }
    let first = h.send(signed_webhook(&webhook_body(REPO, "a"))).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = h.send(signed_webhook(&webhook_body(REPO, "b"))).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(second.headers.contains_key(header::RETRY_AFTER));
    assert!(second.json()["retry_after"].as_u64().unwrap() >= 1);

    // Another repository's webhook still goes through (to a 404: it is not registered).
    let other = h
        .send(signed_webhook(&webhook_body(
            "https://github.com/acme/ledger",
            "a",
        )))
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let h = Harness::with(Setup {
        ingest: IngestConfig {
            max_queue_depth: Some(0),
            ..IngestConfig::default()
        },
        ..Setup::default()
    })
    .await;
    h.register("payment-service", REPO).await;
    assert_eq!(
        h.send(signed_webhook(&webhook_body(REPO, "a")))
            .await
            .status,
        StatusCode::ACCEPTED
    );

    let reply = h.send(signed_webhook(&webhook_body(REPO, "b"))).await;

    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let body = reply.json();
    assert!(body["retry_after"].as_u64().unwrap() >= 1);
    assert_eq!(
        reply.headers[header::RETRY_AFTER].to_str().unwrap(),
        body["retry_after"].to_string()
    );
}

/// An event log whose accepting write fails, as a database that went away would.
struct DownEventLog(Arc<compliance_core::memory::InMemoryStore>);

#[async_trait]
impl WebhookEventLog for DownEventLog {
    async fn record_accepted(&self, _: AcceptedWebhook) -> Result<AcceptRecord, StoreError> {
        Err(StoreError::unavailable(
            "insert webhook event",
            std::io::Error::other("connection refused"),
        ))
    }
    async fn record_rejected(&self, event: WebhookEvent) -> Result<(), StoreError> {
        self.0.record_rejected(event).await
    }
    async fn find_delivery(
        &self,
        key: &str,
        since: Timestamp,
    ) -> Result<Option<PriorDelivery>, StoreError> {
        self.0.find_delivery(key, since).await
    }
    async fn get_event(&self, id: WebhookEventId) -> Result<Option<WebhookEvent>, StoreError> {
        self.0.get_event(id).await
    }
    async fn list_events(&self, q: &WebhookEventQuery) -> Result<Page<WebhookEvent>, StoreError> {
        self.0.list_events(q).await
    }
    async fn prune_events(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.0.prune_events(before).await
    }
}

#[tokio::test]
async fn a_store_that_is_down_answers_503_in_json() {
    let store = Arc::new(compliance_core::memory::InMemoryStore::new());
    let mut stores = Stores::from_adapter(store.clone());
    stores.events = Arc::new(DownEventLog(store.clone()));
    let h = Harness::with(Setup {
        stores: Some(stores),
        ..Setup::default()
    })
    .await;
    use compliance_core::ports::ComponentDirectory;
    store
        .register(
            compliance_core::testing::fixtures::component("payment-service", REPO),
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    let reply = h.send(signed_webhook(&webhook_body(REPO, "a"))).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = reply.json();
    assert!(body["error"].is_string());
    assert!(!reply.text.contains("connection refused"));
}

#[tokio::test]
async fn a_redelivery_gets_the_original_sync_id() {
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;
    let body = webhook_body(REPO, "abc");
    let timestamp = now_secs();

    let first = h.send(signed_webhook_at(&body, timestamp)).await.json();
    let again = h.send(signed_webhook_at(&body, timestamp)).await;

    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.json()["sync_id"], first["sync_id"]);
    assert_eq!(again.json()["duplicate"], true);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let h = Harness::configured(|b| b.trusted_proxies(["10.0.0.0/8".parse().unwrap()])).await;
    h.register("payment-service", REPO).await;

    let mut via_proxy = with_peer(signed_webhook(&webhook_body(REPO, "a")), "10.1.2.3:40000");
    via_proxy
        .headers_mut()
        .insert("X-Forwarded-For", "6.6.6.6, 198.51.100.20".parse().unwrap());
    h.send(via_proxy).await;
    let mut direct = with_peer(
        signed_webhook(&webhook_body(REPO, "b")),
        "203.0.113.5:40000",
    );
    direct
        .headers_mut()
        .insert("X-Forwarded-For", "6.6.6.6".parse().unwrap());
    h.send(direct).await;

    let mut ips: Vec<String> = events(&h)
        .await
        .iter()
        .map(|e| e.source_ip.unwrap().to_string())
        .collect();
    ips.sort();
    assert_eq!(ips, vec!["198.51.100.20", "203.0.113.5"]);
}

#[tokio::test]
async fn forwarded_for_is_ignored_without_a_trusted_proxy_setting() {
    // The default: no proxy is trusted, not even one on loopback or a private network.
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;

    for (n, peer) in ["127.0.0.1:40000", "10.1.2.3:40000"]
        .into_iter()
        .enumerate()
    {
        let mut request = with_peer(signed_webhook(&webhook_body(REPO, &n.to_string())), peer);
        request
            .headers_mut()
            .insert("X-Forwarded-For", "6.6.6.6".parse().unwrap());
        request
            .headers_mut()
            .insert("X-Real-IP", "6.6.6.7".parse().unwrap());
        assert_eq!(h.send(request).await.status, StatusCode::ACCEPTED);
    }

    let mut ips: Vec<String> = events(&h)
        .await
        .iter()
        .map(|e| e.source_ip.unwrap().to_string())
        .collect();
    ips.sort();
    assert_eq!(ips, vec!["10.1.2.3", "127.0.0.1"]);
}

#[tokio::test]
async fn the_default_body_limit_is_256_kib() {
    let h = Harness::new().await;
    h.register("payment-service", REPO).await;
    // A valid webhook padded with an extra field to exactly `len` bytes.
    let padded = |len: usize| {
        let head = r#"{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/payment-service"},"scan":{"revision":"abc123","branch":"main","status":"passed"},"padding":""#;
        let tail = r#""}"#;
        let body = format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()));
        assert_eq!(body.len(), len);
        body
    };

    let at_limit = h.send(signed_webhook(&padded(256 * 1024))).await;
    assert_eq!(at_limit.status, StatusCode::ACCEPTED, "{}", at_limit.text);

    let over = h.send(signed_webhook(&padded(256 * 1024 + 1))).await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        over.json()["error"].as_str().unwrap().contains("262144"),
        "{}",
        over.text
    );
}
