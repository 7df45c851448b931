//! Flood: 50 000 webhooks with bad signatures from one address while a CI pipeline on
//! another keeps sending valid ones. The valid ones keep being accepted promptly, and the
//! database grows by a bounded amount: once the flooding address is over its rate limit, its
//! requests are refused before any write.
//!
//! `cargo test -p compliance-examples --test flood` (the long variant:
//! `cargo test -p compliance-examples --test flood -- --ignored`)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod harness;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compliance_core::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use harness::audit::{audit, wait_settled, Accepted};
use harness::{now_secs, percentile, signed_post, webhook_body, TestServer, WEBHOOK_PATH};
use tokio_util::sync::CancellationToken;

/// The address the flood comes from; the pipeline sends from 127.0.0.1.
const FLOOD_FROM: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// The server's per-address limit in this suite (its default): 50 a second, bursts of 500.
const RATE_PER_IP: u64 = 50;
const BURST_PER_IP: u64 = 500;

#[derive(Debug, Default)]
struct FloodReport {
    sent: usize,
    unauthorized: usize,
    rate_limited: usize,
    other: usize,
    elapsed: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_forged_webhooks_neither_starves_valid_ones_nor_fills_the_database() {
    flood(50_000, 32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long variant: 500 000 forged requests"]
async fn a_long_flood_of_forged_webhooks() {
    flood(500_000, 64).await;
}

async fn flood(requests: usize, concurrency: usize) {
    let server = TestServer::demo(&["--rate-per-ip", "50", "--rate-per-repo", "10"]).await;
    // The demo's first syncs run first, so the audit compares only what this test sent.
    wait_settled(&server.stores, Duration::from_secs(30))
        .await
        .expect("demo syncs settle");
    let events_before = server.event_count().await;
    let bytes_before = server.database_bytes();

    let stop = CancellationToken::new();
    let pipeline = tokio::spawn(pipeline(
        server.addr,
        server.components.clone(),
        server.sim.clone(),
        stop.clone(),
    ));
    let report = forge(&server, requests, concurrency).await;
    stop.cancel();
    let (accepted, mut latencies, refused) = pipeline.await.unwrap();

    assert!(server.is_running(), "the server stopped under the flood");
    let events_added = server.event_count().await - events_before;
    let bytes_added = server.database_bytes().saturating_sub(bytes_before);
    let p50 = percentile(&mut latencies, 50);
    let p99 = percentile(&mut latencies, 99);
    let max = latencies.iter().max().copied().unwrap_or_default();
    println!(
        "flood: {} forged requests in {:.1?} ({:.0}/s): {} answered 401, {} answered 429, {} other; \
         pipeline: {} valid webhooks accepted, {refused} refused, latency p50 {p50:?} p99 {p99:?} max {max:?}; \
         event log grew by {events_added} rows, the database by {} KiB",
        report.sent,
        report.elapsed,
        report.sent as f64 / report.elapsed.as_secs_f64(),
        report.unauthorized,
        report.rate_limited,
        report.other,
        accepted.len(),
        bytes_added / 1024,
    );

    assert_eq!(report.sent, requests);
    assert_eq!(
        report.other, 0,
        "forged requests got other answers: {report:?}"
    );
    assert_eq!(refused, 0, "valid webhooks were refused during the flood");
    assert!(
        accepted.len() >= 20,
        "only {} valid webhooks sent",
        accepted.len()
    );
    assert!(
        p99 < Duration::from_secs(1),
        "valid webhooks slowed to p99 {p99:?}"
    );

    // Only requests inside the flooding address's allowance reach the database.
    let allowance = BURST_PER_IP + RATE_PER_IP * (report.elapsed.as_secs() + 1);
    assert!(
        (report.unauthorized as u64) <= allowance,
        "{} forged requests got past the rate limit (allowance {allowance})",
        report.unauthorized
    );
    assert_eq!(
        events_added,
        (report.unauthorized + accepted.len()) as u64,
        "rate-limited requests were written"
    );

    // Each row keeps at most 4 KiB of body and 1 KiB per header field; a generous 16 KiB a
    // row (indexes, the WAL's copies of pages) plus 4 MiB for the WAL's own growth.
    let byte_allowance = events_added * 16 * 1024 + 4 * 1024 * 1024;
    assert!(
        bytes_added <= byte_allowance,
        "the database grew by {bytes_added} bytes for {events_added} rows"
    );

    let settled = wait_settled(&server.stores, Duration::from_secs(60))
        .await
        .expect("syncs settle after the flood");
    let audited = audit(&server.stores, &server.sim, &accepted).await;
    println!(
        "flood: sent {} forged + {} valid, valid accepted {}, lost {}, duplicates {}; syncs \
         settled {settled:.1?} after the flood ({} completed, {} superseded; {} components equal \
         to FOSSA)",
        report.sent,
        audited.accepted,
        audited.accepted,
        audited.lost,
        audited.duplicates,
        audited.completed,
        audited.superseded,
        audited.components_checked,
    );
    server.stop().await;
}

/// Sends `requests` forged webhooks from [`FLOOD_FROM`] over `concurrency` kept-alive
/// connections. The requests are written over raw sockets: a full HTTP client costs more CPU
/// per request than the server's refusal does, and would measure itself.
async fn forge(server: &TestServer, requests: usize, concurrency: usize) -> FloodReport {
    let body = webhook_body(
        "https://github.com/acme/payment-service",
        "abc123",
        1,
        now_secs(),
    );
    let request = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         {SIGNATURE_HEADER}: sha256={}\r\n{TIMESTAMP_HEADER}: {}\r\nContent-Length: {}\r\n\r\n{body}",
        "0".repeat(64),
        now_secs(),
        body.len()
    );
    let request = bytes::Bytes::from(request);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (request, next, addr) = (request.clone(), next.clone(), server.addr);
        workers.push(tokio::spawn(async move {
            let mut counts = FloodReport::default();
            let mut connection: Option<KeptAlive> = None;
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let conn = match connection.as_mut() {
                    Some(conn) => conn,
                    None => connection.insert(KeptAlive::open(addr).await),
                };
                counts.sent += 1;
                match conn.send(&request).await {
                    Some(401) => counts.unauthorized += 1,
                    Some(429) => counts.rate_limited += 1,
                    Some(_) => counts.other += 1,
                    None => {
                        // The server closed the connection; the request goes again on a new one.
                        counts.sent -= 1;
                        next.fetch_sub(1, Ordering::Relaxed);
                        connection = None;
                    }
                }
            }
            counts
        }));
    }
    let mut report = FloodReport::default();
    for worker in workers {
        let counts = worker.await.unwrap();
        report.sent += counts.sent;
        report.unauthorized += counts.unauthorized;
        report.rate_limited += counts.rate_limited;
        report.other += counts.other;
    }
    report.elapsed = started.elapsed();
    report
}

/// One kept-alive HTTP/1.1 connection from [`FLOOD_FROM`].
struct KeptAlive {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl KeptAlive {
    async fn open(addr: std::net::SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((FLOOD_FROM, 0).into()).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buffer: Vec::with_capacity(4096),
        }
    }

    /// Sends `request` and reads one answer; `None` when the connection closed.
    async fn send(&mut self, request: &[u8]) -> Option<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(request).await.ok()?;
        self.buffer.clear();
        let mut chunk = [0_u8; 4096];
        loop {
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
            let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&self.buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if self.buffer.len() >= end + 4 + length {
                return head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
            }
        }
    }
}

/// A CI pipeline on 127.0.0.1: a new revision of a demo component every 100 ms, signed,
/// until `stop`; returns what was accepted, each answer's latency and how many were refused.
async fn pipeline(
    addr: std::net::SocketAddr,
    components: Vec<(String, String)>,
    sim: compliance_fossa::sim::SimState,
    stop: CancellationToken,
) -> (Vec<Accepted>, Vec<Duration>, usize) {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .build()
        .unwrap();
    let url = format!("http://{addr}{WEBHOOK_PATH}");
    let (mut accepted, mut latencies, mut refused) = (Vec::new(), Vec::new(), 0);
    let base = now_secs() - 3600;
    for n in 0_u64.. {
        if stop.is_cancelled() {
            break;
        }
        let (repo, locator) = &components[n as usize % components.len()];
        let revision = format!("{:08x}{:032x}", n, rand::random::<u128>());
        sim.advance_revision(
            locator,
            &compliance_fossa::sim::RevisionChange::new(&revision, 1, (n % 3) as usize),
        )
        .unwrap();
        let scan_completed = base + n as i64;
        let body = webhook_body(repo, &revision, n, scan_completed);
        let started = Instant::now();
        let response = signed_post(&client, &url, body).send().await.unwrap();
        latencies.push(started.elapsed());
        if response.status().as_u16() == 202 {
            let answer: serde_json::Value = response.json().await.unwrap();
            accepted.push(Accepted::from_answer(
                &answer,
                repo,
                &revision,
                scan_completed,
            ));
        } else {
            refused += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (accepted, latencies, refused)
}
