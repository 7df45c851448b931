//! `loadgen fanout`: thousands of idle WebSocket subscribers, the server's memory per
//! connection, and how long until the last of them has a sync event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::fleet::{Fleet, ProjectShape};
use crate::http::{self, Connection};
use crate::stats::{round, Memory};
use crate::ws;
use crate::Common;

/// Options of a fan-out run.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// WebSocket subscribers on the `components` channel.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) subscribers: usize,
    /// Webhooks sent one after the other, each timed until every subscriber has its event.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 200)]
    pub(crate) connect_concurrency: usize,
    /// Seconds to wait for one round's events.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) round_timeout: f64,
}

/// The run's report.
#[derive(Serialize)]
pub(crate) struct FanoutReport {
    label: Option<String>,
    target: String,
    subscribers: usize,
    connect_failures: usize,
    connect_s: f64,
    memory: Option<FanoutMemory>,
    rounds: Vec<Round>,
    /// The slowest round: webhook sent to the last subscriber's event.
    worst_last_ms: f64,
    /// The slowest round: first subscriber's event to the last one's.
    worst_spread_ms: f64,
}

#[derive(Serialize)]
struct FanoutMemory {
    idle_rss_mib: f64,
    connected_rss_mib: f64,
    per_connection_kib: f64,
    after_rounds_rss_mib: f64,
    hwm_mib: f64,
}

/// One webhook's event reaching every subscriber.
#[derive(Serialize)]
struct Round {
    received: usize,
    /// Webhook sent to the first subscriber's event.
    first_ms: f64,
    /// Webhook sent to the last subscriber's event.
    last_ms: f64,
    /// First subscriber's event to the last one's.
    spread_ms: f64,
}

pub(crate) async fn run(args: FanoutArgs) -> Result<FanoutReport, String> {
    let common = &args.common;
    let wanted = u64::try_from(args.subscribers + 1024).unwrap_or(u64::MAX);
    let limit = rlimit::increase_nofile_limit(wanted).map_err(|e| e.to_string())?;
    if limit < wanted {
        return Err(format!(
            "open-file limit is {limit}, {wanted} needed: raise it (ulimit -n {wanted})"
        ));
    }
    let shape = ProjectShape {
        dependencies: 10,
        issues: 4,
        churn: 1,
    };
    let fleet = Fleet::start(common.sim_addr, &common.sim_token, &common.prefix, 1, shape).await?;
    http::register_all(common.target, &common.token, &fleet.repos, 1).await?;
    let repo = fleet.pick(0).clone();
    let idle = common.server_pid.and_then(Memory::of);

    let stop = CancellationToken::new();
    let (sink, mut events) = mpsc::unbounded_channel();
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut connecting = tokio::task::JoinSet::new();
    for index in 0..args.subscribers {
        let gate = gate.clone();
        let token = common.token.clone();
        let target = common.target;
        connecting.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            ws::subscribe(target, &token, "components")
                .await
                .map(|socket| (index, socket))
        });
    }
    let mut readers = Vec::with_capacity(args.subscribers);
    let mut failures = 0;
    while let Some(done) = connecting.join_next().await {
        match done.map_err(|e| e.to_string())? {
            Ok((index, socket)) => {
                readers.push(ws::forward(index, socket, sink.clone(), stop.clone()));
            }
            Err(error) => {
                if failures == 0 {
                    eprintln!("subscriber failed: {error}");
                }
                failures += 1;
            }
        }
    }
    let connect_s = started.elapsed().as_secs_f64();
    let connected = readers.len();
    // Let the server settle (handshake buffers freed) before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_connections = common.server_pid.and_then(Memory::of);

    let mut conn = Connection::new(common.target);
    let mut rounds = Vec::new();
    for _ in 0..args.rounds {
        let scan = fleet.next_scan(&repo)?;
        let revision = scan.revision;
        let request = http::webhook(&conn, &common.secret, scan.body, true)?;
        let sent = Instant::now();
        let answer = conn.send(request).await?;
        if answer.status != StatusCode::ACCEPTED {
            return Err(format!("webhook answered {}", answer.status));
        }
        let deadline = sent + Duration::from_secs_f64(args.round_timeout);
        let mut got = vec![false; args.subscribers];
        let (mut received, mut first, mut last) = (0, None, None);
        while received < connected {
            let next = tokio::time::timeout_at(deadline.into(), events.recv()).await;
            let Ok(Some((index, at, text))) = next else {
                break;
            };
            if !text.as_str().contains(revision.as_str()) {
                continue;
            }
            if let Some(slot) = got.get_mut(index).filter(|seen| !**seen) {
                *slot = true;
                received += 1;
                first = first.or(Some(at));
                last = Some(at);
            }
        }
        let ms = |at: Option<Instant>| {
            at.map_or(f64::NAN, |at| {
                round(at.duration_since(sent).as_secs_f64() * 1000.0)
            })
        };
        let spread = match (first, last) {
            (Some(first), Some(last)) => round(last.duration_since(first).as_secs_f64() * 1000.0),
            _ => f64::NAN,
        };
        rounds.push(Round {
            received,
            first_ms: ms(first),
            last_ms: ms(last),
            spread_ms: spread,
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after = common.server_pid.and_then(Memory::of);

    stop.cancel();
    for reader in readers {
        let _ = reader.await;
    }
    fleet.stop().await;

    let memory = match (idle, with_connections, after) {
        (Some(idle), Some(with), Some(after)) => Some(FanoutMemory {
            idle_rss_mib: Memory::mib(idle.rss_kib),
            connected_rss_mib: Memory::mib(with.rss_kib),
            per_connection_kib: round(
                with.rss_kib.saturating_sub(idle.rss_kib) as f64 / connected.max(1) as f64,
            ),
            after_rounds_rss_mib: Memory::mib(after.rss_kib),
            hwm_mib: Memory::mib(after.hwm_kib),
        }),
        _ => None,
    };
    let worst = |f: fn(&Round) -> f64| rounds.iter().map(f).fold(0.0_f64, f64::max);
    Ok(FanoutReport {
        label: common.label.clone(),
        target: common.target.to_string(),
        subscribers: connected,
        connect_failures: failures,
        connect_s: round(connect_s),
        memory,
        worst_last_ms: worst(|r| r.last_ms),
        worst_spread_ms: worst(|r| r.spread_ms),
        rounds,
    })
}

impl FanoutReport {
    pub(crate) fn print(&self) {
        let label = self.label.as_deref().unwrap_or("fanout");
        println!("== {label}: {} ==", self.target);
        println!(
            "  subscribers: {} connected in {:.2} s ({} failed)",
            self.subscribers, self.connect_s, self.connect_failures
        );
        if let Some(m) = &self.memory {
            println!(
                "  server RSS:  idle {:.1} MiB, with subscribers {:.1} MiB ({:.1} KiB per connection), after rounds {:.1} MiB, high-water {:.1} MiB",
                m.idle_rss_mib, m.connected_rss_mib, m.per_connection_kib, m.after_rounds_rss_mib, m.hwm_mib
            );
        }
        for (i, r) in self.rounds.iter().enumerate() {
            println!(
                "  round {}: {} received; webhook to first {:.1} ms, to last {:.1} ms; first to last {:.1} ms",
                i + 1,
                r.received,
                r.first_ms,
                r.last_ms,
                r.spread_ms
            );
        }
    }
}
