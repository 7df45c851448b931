//! The workflow document's curl test, run as the document writes it (bash, openssl, curl)
//! against the reference server in demo mode: it must answer 202 with a `sync_id`, and the
//! sync it queued must complete.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;
use std::time::Duration;

use clap::Parser;
use compliance_core::domain::JobStatus;
use compliance_examples::{App, Config};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_curl_command_is_accepted_and_synced() {
    if !(have("curl") && have("openssl")) {
        assert!(
            std::env::var("COMPLIANCE_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "curl and openssl are required in CI"
        );
        eprintln!("skipping: curl or openssl not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse_from([
        "compliance-server",
        "--demo",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &format!("sqlite://{}", dir.path().join("curl.db").display()),
        "--webhook-secrets",
        "your-webhook-secret",
        "--admin-tokens",
        "curl-test-token",
    ]);
    let app = App::build(&config).await.unwrap();
    let handle = app.handle();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(app.serve(listener));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/ci/document-curl-test.sh");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(script)
            .env("COMPLIANCE_URL", format!("http://{addr}"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let body = String::from_utf8_lossy(&output.stdout).to_string();
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {body}; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(answer["status"], "queued", "{answer}");
    assert_eq!(answer["component"]["name"], "payment-service", "{answer}");
    assert!(answer["estimated_completion"].is_string(), "{answer}");
    let sync_id = answer["sync_id"]
        .as_str()
        .expect("sync_id")
        .parse()
        .unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let job = handle
            .stores
            .jobs
            .get_job(sync_id)
            .await
            .unwrap()
            .expect("job stored");
        if job.status.is_final() {
            // Either it ran, or a newer job for the same component covered it.
            assert!(
                matches!(job.status, JobStatus::Completed | JobStatus::Superseded),
                "{job:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sync not finished: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    handle.shutdown.cancel();
    server.await.unwrap().unwrap();
}
