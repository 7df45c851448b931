//! `loadgen large`: one big FOSSA project synced end to end, webhook to `sync.completed`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::fleet::{Fleet, ProjectShape};
use crate::http::{self, Connection};
use crate::ingest::{MemoryReport, MemorySampler};
use crate::stats::round;
use crate::ws::{self, SyncEvent};
use crate::Common;

/// Options of a large-project run.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct LargeArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Dependencies of the project.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) deps: usize,
    /// Active issues of the project.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) issues: usize,
    /// Syncs: the first loads everything, the others apply a new revision.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Issues fixed and issues added by each new revision.
    #[arg(long, default_value_t = 50)]
    pub(crate) churn: usize,
    /// Seconds to wait for one sync.
    #[arg(long, default_value_t = 120.0)]
    pub(crate) timeout: f64,
}

/// The run's report.
#[derive(Serialize)]
pub(crate) struct LargeReport {
    label: Option<String>,
    target: String,
    dependencies: usize,
    issues: usize,
    rounds: Vec<LargeRound>,
    server_memory: Option<MemoryReport>,
}

#[derive(Serialize)]
struct LargeRound {
    /// Webhook sent to `sync.completed` on the WebSocket.
    webhook_to_completed_ms: f64,
    completed: bool,
    issues_count: Option<u64>,
    dependencies_count: Option<u64>,
}

pub(crate) async fn run(args: LargeArgs) -> Result<LargeReport, String> {
    let common = &args.common;
    let shape = ProjectShape {
        dependencies: args.deps,
        issues: args.issues,
        churn: args.churn,
    };
    let fleet = Fleet::start(common.sim_addr, &common.sim_token, &common.prefix, 1, shape).await?;
    http::register_all(common.target, &common.token, &fleet.repos, 1).await?;
    let repo = fleet.pick(0).clone();

    let stop = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::<SyncEvent>::new()));
    let socket = ws::subscribe(common.target, &common.token, "components").await?;
    let reader = ws::record(socket, seen.clone(), stop.clone());
    let sampler = common
        .server_pid
        .map(|pid| MemorySampler::start(pid, &stop));

    let mut conn = Connection::new(common.target);
    let mut rounds = Vec::new();
    for round_index in 0..args.rounds {
        let scan = if round_index == 0 {
            fleet.first_scan(&repo)
        } else {
            fleet.next_scan(&repo)?
        };
        let request = http::webhook(&conn, &common.secret, scan.body, true)?;
        let sent = Instant::now();
        let answer = conn.send(request).await?;
        if answer.status != StatusCode::ACCEPTED {
            return Err(format!(
                "webhook answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        let accepted: http::Accepted =
            serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
        let deadline = sent + Duration::from_secs_f64(args.timeout);
        let event = loop {
            let found = seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|e| e.sync_job_id == accepted.sync_id)
                .cloned();
            if found.is_some() || Instant::now() >= deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let Some(event) = event else {
            return Err(format!(
                "no sync event for job {} within {} s",
                accepted.sync_id, args.timeout
            ));
        };
        rounds.push(LargeRound {
            webhook_to_completed_ms: round(event.at.duration_since(sent).as_secs_f64() * 1000.0),
            completed: event.completed,
            issues_count: event.issues,
            dependencies_count: event.dependencies,
        });
    }

    let server_memory = match sampler {
        Some(sampler) => sampler.finish().await,
        None => None,
    };
    stop.cancel();
    let _ = reader.await;
    fleet.stop().await;
    Ok(LargeReport {
        label: common.label.clone(),
        target: common.target.to_string(),
        dependencies: args.deps,
        issues: args.issues,
        rounds,
        server_memory,
    })
}

impl LargeReport {
    pub(crate) fn print(&self) {
        let label = self.label.as_deref().unwrap_or("large");
        println!("== {label}: {} ==", self.target);
        println!(
            "  project: {} dependencies, {} issues",
            self.dependencies, self.issues
        );
        for (i, r) in self.rounds.iter().enumerate() {
            let what = if i == 0 { "first sync" } else { "new revision" };
            println!(
                "  round {} ({what}): webhook to sync.{} {:.1} ms ({} issues, {} dependencies)",
                i + 1,
                if r.completed { "completed" } else { "failed" },
                r.webhook_to_completed_ms,
                r.issues_count.map_or("?".to_owned(), |n| n.to_string()),
                r.dependencies_count
                    .map_or("?".to_owned(), |n| n.to_string()),
            );
        }
        if let Some(m) = &self.server_memory {
            println!(
                "  server RSS: before {:.1} MiB, peak {:.1} MiB, end {:.1} MiB",
                m.idle_rss_mib, m.peak_rss_mib, m.end_rss_mib
            );
        }
    }
}
