//! Credentials never reach a log line: API tokens (bearer header and login body), session
//! cookies and the webhook secret, with every log level on.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::{header, Method, StatusCode};
use common::*;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn tokens_cookies_and_the_secret_stay_out_of_the_logs() {
    const WRONG: &str = "guessed-token-51d0c8e2a7";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let session = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let h = Harness::new().await;
            h.register("payment-service", REPO).await;
            let mut statuses = Vec::new();

            let accepted = h.send(signed_webhook(&webhook_body(REPO, "abc123"))).await;
            statuses.push(accepted.status);
            let mut forged = signed_webhook(&webhook_body(REPO, "abc124"));
            forged
                .headers_mut()
                .insert("X-Webhook-Signature", "sha256=00".parse().unwrap());
            statuses.push(h.send(forged).await.status);
            statuses.push(
                h.send(get("/api/components", Some(READ_TOKEN)))
                    .await
                    .status,
            );
            statuses.push(h.send(get("/api/components", Some(WRONG))).await.status);
            let trigger = h
                .send(request(
                    Method::POST,
                    "/api/components/not-an-id/sync",
                    Some(ADMIN_TOKEN),
                    None,
                ))
                .await;
            statuses.push(trigger.status);
            let refused = h
                .send(post("/api/login", None, json!({"token": WRONG})))
                .await;
            statuses.push(refused.status);
            let login = h
                .send(post("/api/login", None, json!({"token": ADMIN_TOKEN})))
                .await;
            statuses.push(login.status);
            let set_cookie = login.headers[header::SET_COOKIE].to_str().unwrap();
            let cookie = set_cookie.split(';').next().unwrap().to_owned();
            let mut with_cookie = get("/api/components", None);
            with_cookie
                .headers_mut()
                .insert(header::COOKIE, cookie.parse().unwrap());
            statuses.push(h.send(with_cookie).await.status);

            assert_eq!(
                statuses,
                [
                    StatusCode::ACCEPTED,
                    StatusCode::UNAUTHORIZED,
                    StatusCode::OK,
                    StatusCode::UNAUTHORIZED,
                    StatusCode::BAD_REQUEST,
                    StatusCode::UNAUTHORIZED,
                    StatusCode::OK,
                    StatusCode::OK,
                ]
            );
            cookie.split_once('=').unwrap().1.to_owned()
        })
    });

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The requests were logged at all (a span per request, with its path).
    assert!(logs.contains("/api/webhooks/fossa-scan"), "{logs}");
    assert!(logs.contains("/api/login"), "{logs}");
    for secret in [READ_TOKEN, ADMIN_TOKEN, WRONG, SECRET, session.as_str()] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }
}
