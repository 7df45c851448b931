//! Load driver: fan-out of one event to N real WebSocket subscribers over loopback.
//!
//! Run: `cargo run --release -p compliance-axum --example ws_fanout -- 10000 5`
//! (subscribers, rounds). It raises its own open-file limit; if that fails, raise it with
//! `ulimit -n 65536` first.
//!
//! The server runs in this process; the clients run in a child process (this same binary with
//! `--clients`), so the server's resident memory grows only by what the connections cost it.
//! For each round the server stamps the wall clock and publishes one event through the
//! notifier; the child reports when its last client had it. Both processes read the same
//! system clock.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use compliance_axum::{AuthConfig, ComplianceApi, HubConfig, RateLimits, Scope, Services};
use compliance_core::ingest::{IngestConfig, IngestService};
use compliance_core::memory::{InMemoryNotifier, InMemoryQueue, InMemoryStore};
use compliance_core::ports::{ChannelEvent, JobQueue, Notifier, SignatureVerifier, Stores};
use compliance_core::signature::{HmacSha256Verifier, WebhookSecret};
use compliance_core::{Clock, SystemClock};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "fanout-driver-token";
const CONNECT_CONCURRENCY: usize = 256;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Resident memory of this process, in KiB, from /proc/self/status.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let limit = rlimit::increase_nofile_limit(65_536).unwrap_or(0);
    if args.get(1).map(String::as_str) == Some("--clients") {
        let addr = args[2].clone();
        let n: usize = args[3].parse().unwrap();
        let rounds: usize = args[4].parse().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(clients(addr, n, rounds));
        return;
    }
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    if (limit as usize) < n + 100 {
        eprintln!("open-file limit {limit} is too low for {n} connections; run `ulimit -n 65536`");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(server(n, rounds));
}

async fn server(n: usize, rounds: usize) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let stores = Stores::from_adapter(Arc::new(InMemoryStore::new()));
    let queue: Arc<dyn JobQueue> = Arc::new(InMemoryQueue::new());
    let notifier: Arc<dyn Notifier> = Arc::new(InMemoryNotifier::new());
    let verifier: Arc<dyn SignatureVerifier> =
        Arc::new(HmacSha256Verifier::new(vec![WebhookSecret::new("k", "s")]));
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
        notifier: notifier.clone(),
        clock,
    };
    let api = ComplianceApi::builder(services)
        .auth(AuthConfig::new().token("driver", TOKEN, Scope::Read))
        .rate_limits(RateLimits::disabled())
        .hub(HubConfig {
            max_connections: n + 100,
            ..HubConfig::default()
        })
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = api.router();
    let serving = api.clone();
    tokio::spawn(async move {
        compliance_axum::serve(listener, &serving, router, std::future::pending()).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_kib();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--clients",
            &addr.to_string(),
            &n.to_string(),
            &rounds.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let connecting = Instant::now();
    let ready = lines.recv().await.expect("client process ended");
    assert_eq!(ready, "ready", "client process said {ready}");
    let connect_time = connecting.elapsed();
    while api.hub().stats().connections < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let allocations settle before reading the resident size.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_kib();
    let per_connection = (rss_after.saturating_sub(rss_before)) as f64 * 1024.0 / n as f64;

    println!("subscribers: {n}");
    println!("connect and subscribe, all: {connect_time:.2?}");
    println!(
        "server RSS: {rss_before} KiB before, {rss_after} KiB after; {per_connection:.0} bytes per connection"
    );

    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = now_ns();
        notifier
            .publish(ChannelEvent {
                channel: "components".into(),
                event: "sync.completed".into(),
                data: serde_json::json!({
                    "round": round,
                    "sync_job_id": "0191d3a4-7c1e-7a52-9d1e-3f2b9c4d5e6f",
                    "issues_count": 3,
                    "dependencies_count": 147,
                    "status": "FAILING"
                }),
                timestamp: chrono::Utc::now(),
            })
            .await
            .unwrap();
        let line = lines.recv().await.expect("client process ended");
        let last: u64 = line
            .strip_prefix(&format!("round {round} last "))
            .unwrap_or_else(|| panic!("unexpected line {line}"))
            .parse()
            .unwrap();
        let latency = Duration::from_nanos(last.saturating_sub(sent));
        println!("round {round}: last of {n} subscribers had the event after {latency:.2?}");
        latencies.push(latency);
    }
    latencies.sort();
    println!(
        "fan-out to {n}: median {:.2?}, max {:.2?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    api.shutdown();
    let _ = child.wait();
}

async fn clients(addr: String, n: usize, rounds: usize) {
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new((0..rounds).map(|_| AtomicUsize::new(0)).collect());
    let lasts: Arc<Vec<AtomicU64>> = Arc::new((0..rounds).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(tokio::sync::Notify::new());
    let connected = Arc::new(tokio::sync::Semaphore::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));

    for _ in 0..n {
        let (addr, counts, lasts, done, connected, gate) = (
            addr.clone(),
            counts.clone(),
            lasts.clone(),
            done.clone(),
            connected.clone(),
            gate.clone(),
        );
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
            request
                .headers_mut()
                .insert("Authorization", format!("Bearer {TOKEN}").parse().unwrap());
            let config = WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0);
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                    .await
                    .unwrap();
            ws.send(Message::Text(
                r#"{"type":"subscribe","channel":"components"}"#.into(),
            ))
            .await
            .unwrap();
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                match value["type"].as_str() {
                    Some("subscribed") => {
                        drop(permit);
                        connected.add_permits(1);
                        break;
                    }
                    _ => continue,
                }
            }
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let at = now_ns();
                let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                let Some(round) = value["data"]["round"].as_u64() else {
                    continue;
                };
                let round = round as usize;
                lasts[round].fetch_max(at, Ordering::AcqRel);
                if counts[round].fetch_add(1, Ordering::AcqRel) + 1 == n {
                    done.notify_one();
                }
            }
        });
    }
    let all = connected.acquire_many(n as u32).await.unwrap();
    all.forget();
    println!("ready");
    for round in 0..rounds {
        while counts[round].load(Ordering::Acquire) < n {
            done.notified().await;
        }
        println!(
            "round {round} last {}",
            lasts[round].load(Ordering::Acquire)
        );
    }
}
