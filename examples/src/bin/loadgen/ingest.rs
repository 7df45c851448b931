//! `loadgen ingest`: signed webhooks for many repositories, at a fixed rate or as fast as
//! the server answers, with optional WebSocket subscribers timing each webhook's
//! `sync.completed`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::fleet::{Fleet, ProjectShape};
use crate::http::{self, Connection};
use crate::stats::{micros, round, Memory, Percentiles, Tally};
use crate::ws::{self, SyncEvent};
use crate::Common;

/// Options of an ingest run.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct IngestArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Repositories (each registered as a component with its own FOSSA project).
    #[arg(long, default_value_t = 200)]
    pub(crate) repos: u32,
    /// Concurrent senders, each with its own keep-alive connection.
    #[arg(long, default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Webhooks per second in all; 0 sends as fast as the server answers.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Seconds to send for (after the warm-up); at most 300.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Stop after this many requests (warm-up included), whichever comes first.
    #[arg(long)]
    pub(crate) requests: Option<u64>,
    /// Seconds of sending that are not measured.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) warmup: f64,
    /// Share of requests signed with a wrong secret (0 to 1).
    #[arg(long, default_value_t = 0.05)]
    pub(crate) bad_signatures: f64,
    /// WebSocket subscribers on the `components` channel timing each webhook's sync.
    #[arg(long, default_value_t = 0)]
    pub(crate) subscribers: usize,
    /// Seconds to wait after sending for the last syncs to be announced.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) drain: f64,
    /// Dependencies of each simulated project.
    #[arg(long, default_value_t = 10)]
    pub(crate) deps: usize,
    /// Active issues of each simulated project.
    #[arg(long, default_value_t = 4)]
    pub(crate) issues: usize,
}

/// A webhook the server accepted.
struct Sent {
    sync_id: String,
    repo: u32,
    seq: u64,
    at: Instant,
    measured: bool,
}

/// What the senders share.
struct Plan {
    fleet: Arc<Fleet>,
    next: AtomicU64,
    start: Instant,
    measure_from: Instant,
    deadline: Instant,
    rate: f64,
    limit: Option<u64>,
    bad_share: f64,
    secret: String,
}

impl Plan {
    /// Whether request `n` carries a wrong signature: spread evenly, `bad_share` of them.
    fn is_bad(&self, n: u64) -> bool {
        let share = self.bad_share;
        share > 0.0 && ((n + 1) as f64 * share).floor() > (n as f64 * share).floor()
    }
}

#[derive(Default)]
struct SenderOut {
    tally: Tally,
    sent: Vec<Sent>,
    last_done: Option<Instant>,
}

/// The run's report.
#[derive(Serialize)]
pub(crate) struct IngestReport {
    label: Option<String>,
    target: String,
    mode: &'static str,
    rate_per_s: f64,
    concurrency: usize,
    repos: u32,
    bad_signature_share: f64,
    measured_s: f64,
    responses: u64,
    throughput_per_s: f64,
    latency: Percentiles,
    latency_202: Percentiles,
    statuses: std::collections::BTreeMap<String, u64>,
    errors: u64,
    sync: Option<SyncReport>,
    server_memory: Option<MemoryReport>,
}

/// Webhook to `sync.completed` on the WebSocket.
#[derive(Serialize)]
struct SyncReport {
    subscribers: usize,
    accepted: usize,
    /// The webhook's own job completed.
    own: usize,
    /// A later job of the same component completed with data at least as new (coalesced).
    covered: usize,
    /// Neither was seen before the drain ended.
    missing: usize,
    failed_events: usize,
    /// Own and covered together: when the dashboard had data at least as new as the webhook.
    latency: Percentiles,
    latency_own: Percentiles,
}

/// The server's resident memory over the run.
#[derive(Serialize)]
pub(crate) struct MemoryReport {
    pub(crate) idle_rss_mib: f64,
    pub(crate) peak_rss_mib: f64,
    pub(crate) end_rss_mib: f64,
    pub(crate) hwm_mib: f64,
}

pub(crate) async fn run(args: IngestArgs) -> Result<IngestReport, String> {
    let common = &args.common;
    if !(0.0..=1.0).contains(&args.bad_signatures) {
        return Err("--bad-signatures is a share from 0 to 1".into());
    }
    if !(args.duration > 0.0 && args.duration <= 300.0) || args.warmup < 0.0 {
        return Err("--duration must be over 0 and at most 300 seconds".into());
    }
    let shape = ProjectShape {
        dependencies: args.deps,
        issues: args.issues,
        churn: 1.min(args.issues),
    };
    let fleet = Arc::new(
        Fleet::start(
            common.sim_addr,
            &common.sim_token,
            &common.prefix,
            args.repos,
            shape,
        )
        .await?,
    );
    http::register_all(common.target, &common.token, &fleet.repos, 16).await?;

    let stop = CancellationToken::new();
    let mut seen = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..args.subscribers {
        let socket = ws::subscribe(common.target, &common.token, "components").await?;
        let events = Arc::new(Mutex::new(Vec::new()));
        readers.push(ws::record(socket, events.clone(), stop.clone()));
        seen.push(events);
    }

    let sampler = common
        .server_pid
        .map(|pid| MemorySampler::start(pid, &stop));

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let plan = Arc::new(Plan {
        fleet: fleet.clone(),
        next: AtomicU64::new(0),
        start,
        measure_from,
        deadline: measure_from + Duration::from_secs_f64(args.duration),
        rate: args.rate.max(0.0),
        limit: args.requests,
        bad_share: args.bad_signatures,
        secret: common.secret.clone(),
    });
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        senders.spawn(send_loop(plan.clone(), Connection::new(common.target)));
    }
    let mut out = SenderOut::default();
    while let Some(done) = senders.join_next().await {
        let part = done.map_err(|e| e.to_string())?;
        out.tally.merge(part.tally);
        out.sent.extend(part.sent);
        out.last_done = out.last_done.max(part.last_done);
    }

    if let Some(events) = seen.first() {
        drain(
            &fleet,
            &out.sent,
            events,
            Duration::from_secs_f64(args.drain),
        )
        .await;
    }
    let memory = match sampler {
        Some(sampler) => sampler.finish().await,
        None => None,
    };
    stop.cancel();
    for reader in readers {
        let _ = reader.await;
    }

    let sync = (!seen.is_empty()).then(|| {
        let events: Vec<Vec<SyncEvent>> = seen
            .iter()
            .map(|e| e.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect();
        sync_report(&fleet, &out.sent, &events)
    });
    let measured_s = out.last_done.map_or(0.0, |end| {
        end.saturating_duration_since(measure_from).as_secs_f64()
    });
    let responses = out.tally.responses();
    let report = IngestReport {
        label: common.label.clone(),
        target: common.target.to_string(),
        mode: if args.rate > 0.0 { "rate" } else { "max" },
        rate_per_s: args.rate,
        concurrency: args.concurrency,
        repos: args.repos,
        bad_signature_share: args.bad_signatures,
        measured_s: round(measured_s),
        responses,
        throughput_per_s: if measured_s > 0.0 {
            round(responses as f64 / measured_s)
        } else {
            0.0
        },
        latency: Percentiles::of(std::mem::take(&mut out.tally.latencies)),
        latency_202: Percentiles::of(std::mem::take(&mut out.tally.accepted_latencies)),
        statuses: out.tally.status_map(),
        errors: out.tally.errors,
        sync,
        server_memory: memory,
    };
    if let Ok(fleet) = Arc::try_unwrap(fleet) {
        fleet.stop().await;
    }
    Ok(report)
}

async fn send_loop(plan: Arc<Plan>, mut conn: Connection) -> SenderOut {
    let mut out = SenderOut::default();
    loop {
        let n = plan.next.fetch_add(1, Ordering::Relaxed);
        if plan.limit.is_some_and(|limit| n >= limit) {
            break;
        }
        // In fixed-rate mode latency counts from when the request was due, so a server that
        // falls behind is charged for the wait it causes (no coordinated omission).
        let due = if plan.rate > 0.0 {
            let due = plan.start + Duration::from_secs_f64(n as f64 / plan.rate);
            tokio::time::sleep_until(due.into()).await;
            due
        } else {
            Instant::now()
        };
        if due >= plan.deadline {
            break;
        }

        let repo = plan.fleet.pick(n).clone();
        let bad = plan.is_bad(n);
        let (seq, body) = if bad {
            (0, Fleet::junk_scan(&repo))
        } else {
            match plan.fleet.next_scan(&repo) {
                Ok(scan) => (scan.seq, scan.body),
                Err(error) => {
                    eprintln!("simulator: {error}");
                    out.tally.errors += 1;
                    continue;
                }
            }
        };
        let request = match http::webhook(&conn, &plan.secret, body, !bad) {
            Ok(request) => request,
            Err(error) => {
                eprintln!("request: {error}");
                out.tally.errors += 1;
                continue;
            }
        };
        let sent_at = Instant::now();
        let result = conn.send(request).await;
        let done = Instant::now();
        let measured = due >= plan.measure_from;
        let Ok(answer) = result else {
            if measured {
                out.tally.errors += 1;
            }
            continue;
        };
        if answer.status == StatusCode::ACCEPTED {
            if let Ok(accepted) = serde_json::from_slice::<http::Accepted>(&answer.body) {
                out.sent.push(Sent {
                    sync_id: accepted.sync_id,
                    repo: repo.index,
                    seq,
                    at: sent_at,
                    measured,
                });
            }
        }
        if measured {
            let latency = micros(done.saturating_duration_since(due));
            *out.tally
                .statuses
                .entry(answer.status.as_u16())
                .or_default() += 1;
            out.tally.latencies.push(latency);
            if answer.status == StatusCode::ACCEPTED {
                out.tally.accepted_latencies.push(latency);
            }
            out.last_done = Some(done);
        }
    }
    out
}

/// Waits until every accepted webhook's data has been announced, or `limit` passes.
async fn drain(fleet: &Fleet, sent: &[Sent], events: &Mutex<Vec<SyncEvent>>, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let missing = {
            let events = events.lock().unwrap_or_else(PoisonError::into_inner);
            Coverage::new(fleet, &events).missing(sent)
        };
        if missing == 0 || Instant::now() >= until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// When each webhook's data reached a subscriber: its own job, or a newer one of the same
/// repository.
struct Coverage<'a> {
    own: HashMap<&'a str, Instant>,
    /// Per repository: completed sequence numbers, ascending, with the earliest arrival of
    /// that sequence or any later one.
    newer: HashMap<u32, Vec<(u64, Instant)>>,
    failed: usize,
}

impl<'a> Coverage<'a> {
    fn new(fleet: &Fleet, events: &'a [SyncEvent]) -> Self {
        let mut own = HashMap::new();
        let mut newer: HashMap<u32, Vec<(u64, Instant)>> = HashMap::new();
        let mut failed = 0;
        for event in events {
            if !event.completed {
                failed += 1;
                continue;
            }
            own.entry(event.sync_job_id.as_str()).or_insert(event.at);
            if let Some((repo, seq)) = event
                .revision
                .as_deref()
                .and_then(|r| fleet.parse_revision(r))
            {
                newer.entry(repo).or_default().push((seq, event.at));
            }
        }
        for list in newer.values_mut() {
            list.sort_unstable_by_key(|&(seq, _)| seq);
            // Suffix minimum: the first time data at least this new was shown.
            let mut earliest: Option<Instant> = None;
            for entry in list.iter_mut().rev() {
                let at = earliest.map_or(entry.1, |e| e.min(entry.1));
                entry.1 = at;
                earliest = Some(at);
            }
        }
        Self { own, newer, failed }
    }

    /// `(arrival, whether it was the webhook's own job)`.
    fn shown(&self, sent: &Sent) -> Option<(Instant, bool)> {
        if let Some(&at) = self.own.get(sent.sync_id.as_str()) {
            return Some((at, true));
        }
        let list = self.newer.get(&sent.repo)?;
        let first = list.partition_point(|&(seq, _)| seq < sent.seq);
        list.get(first).map(|&(_, at)| (at, false))
    }

    fn missing(&self, sent: &[Sent]) -> usize {
        sent.iter().filter(|s| self.shown(s).is_none()).count()
    }
}

fn sync_report(fleet: &Fleet, sent: &[Sent], per_subscriber: &[Vec<SyncEvent>]) -> SyncReport {
    let measured: Vec<&Sent> = sent.iter().filter(|s| s.measured).collect();
    let (mut own, mut covered, mut missing, mut failed) = (0, 0, 0, 0);
    let mut all = Vec::new();
    let mut own_latencies = Vec::new();
    for events in per_subscriber {
        let coverage = Coverage::new(fleet, events);
        failed += coverage.failed;
        for s in &measured {
            match coverage.shown(s) {
                Some((at, is_own)) => {
                    let latency = micros(at.saturating_duration_since(s.at));
                    all.push(latency);
                    if is_own {
                        own += 1;
                        own_latencies.push(latency);
                    } else {
                        covered += 1;
                    }
                }
                None => missing += 1,
            }
        }
    }
    SyncReport {
        subscribers: per_subscriber.len(),
        accepted: measured.len(),
        own,
        covered,
        missing,
        failed_events: failed,
        latency: Percentiles::of(all),
        latency_own: Percentiles::of(own_latencies),
    }
}

/// Samples the server's resident memory every 200 ms.
pub(crate) struct MemorySampler {
    idle: Option<Memory>,
    peak: Arc<AtomicU64>,
    pid: u32,
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl MemorySampler {
    pub(crate) fn start(pid: u32, parent: &CancellationToken) -> Self {
        let idle = Memory::of(pid);
        let peak = Arc::new(AtomicU64::new(idle.map_or(0, |m| m.rss_kib)));
        let stop = parent.child_token();
        let task = {
            let peak = peak.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(m) = Memory::of(pid) {
                        peak.fetch_max(m.rss_kib, Ordering::Relaxed);
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            })
        };
        Self {
            idle,
            peak,
            pid,
            task,
            stop,
        }
    }

    pub(crate) async fn finish(self) -> Option<MemoryReport> {
        self.stop.cancel();
        let _ = self.task.await;
        let end = Memory::of(self.pid)?;
        let idle = self.idle?;
        Some(MemoryReport {
            idle_rss_mib: Memory::mib(idle.rss_kib),
            peak_rss_mib: Memory::mib(self.peak.load(Ordering::Relaxed).max(end.rss_kib)),
            end_rss_mib: Memory::mib(end.rss_kib),
            hwm_mib: Memory::mib(end.hwm_kib),
        })
    }
}

impl IngestReport {
    pub(crate) fn print(&self) {
        let label = self.label.as_deref().unwrap_or("ingest");
        println!("== {label}: {} ==", self.target);
        let mode = if self.mode == "rate" {
            format!("{} webhooks/s", self.rate_per_s)
        } else {
            "as fast as possible".to_owned()
        };
        println!(
            "  load:        {mode}, {} connections, {} repositories, {:.0}% bad signatures",
            self.concurrency,
            self.repos,
            self.bad_signature_share * 100.0
        );
        println!(
            "  throughput:  {:.0} responses/s ({} in {:.2} s), {} without answer",
            self.throughput_per_s, self.responses, self.measured_s, self.errors
        );
        println!("  statuses:    {:?}", self.statuses);
        println!("  latency:     {}", self.latency.line());
        println!("  latency 202: {}", self.latency_202.line());
        if let Some(sync) = &self.sync {
            println!(
                "  webhook to sync.completed ({} subscriber(s)): {}",
                sync.subscribers,
                sync.latency.line()
            );
            println!(
                "    own job {}  covered by a newer job {}  not seen {}  sync.failed {}",
                sync.own, sync.covered, sync.missing, sync.failed_events
            );
        }
        if let Some(m) = &self.server_memory {
            println!(
                "  server RSS:  idle {:.1} MiB, peak {:.1} MiB, end {:.1} MiB (high-water {:.1} MiB)",
                m.idle_rss_mib, m.peak_rss_mib, m.end_rss_mib, m.hwm_mib
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn plan(fleet: Arc<Fleet>, bad_share: f64) -> Plan {
        let now = Instant::now();
        Plan {
            fleet,
            next: AtomicU64::new(0),
            start: now,
            measure_from: now,
            deadline: now,
            rate: 0.0,
            limit: None,
            bad_share,
            secret: String::new(),
        }
    }

    async fn fleet(repos: u32) -> Arc<Fleet> {
        let shape = ProjectShape {
            dependencies: 2,
            issues: 1,
            churn: 1,
        };
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        Arc::new(Fleet::start(addr, "t", "r", repos, shape).await.unwrap())
    }

    fn rev(fleet: &Fleet, repo: u32, seq: u64) -> String {
        format!("{:08x}{repo:08x}{seq:024x}", fleet.run_id)
    }

    fn completed(job: &str, revision: Option<String>, at: Instant) -> SyncEvent {
        SyncEvent {
            sync_job_id: job.to_owned(),
            revision,
            issues: None,
            dependencies: None,
            completed: true,
            at,
        }
    }

    fn sent(job: &str, repo: u32, seq: u64, at: Instant) -> Sent {
        Sent {
            sync_id: job.to_owned(),
            repo,
            seq,
            at,
            measured: true,
        }
    }

    #[tokio::test]
    async fn bad_signatures_are_the_requested_share_spread_evenly() {
        let fleet = fleet(1).await;
        let bad = |share: f64, n: u64| {
            let plan = plan(fleet.clone(), share);
            (0..n).filter(|&i| plan.is_bad(i)).count()
        };
        assert_eq!(bad(0.05, 1000), 50);
        assert_eq!(bad(0.05, 20), 1);
        assert_eq!(bad(0.0, 1000), 0);
        assert_eq!(bad(1.0, 1000), 1000);
        assert_eq!(bad(0.5, 10), 5);
    }

    #[tokio::test]
    async fn a_webhook_is_shown_by_its_own_job_or_the_first_newer_one_of_its_repository() {
        let fleet = fleet(2).await;
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Repository 1: job a (seq 1) completes at 10 ms; seq 5 at 30 ms and seq 3 at 50 ms
        // (announced out of order); a failed job and a revision of another run count as
        // nothing.
        let mut other_run = rev(&fleet, 1, 9);
        other_run.replace_range(0..8, &format!("{:08x}", fleet.run_id.wrapping_add(1)));
        let mut failed = completed("f", Some(rev(&fleet, 1, 8)), at(5));
        failed.completed = false;
        let events = vec![
            completed("a", Some(rev(&fleet, 1, 1)), at(10)),
            completed("x", Some(rev(&fleet, 1, 5)), at(30)),
            completed("y", Some(rev(&fleet, 1, 3)), at(50)),
            completed("z", Some(other_run), at(1)),
            failed,
        ];
        let webhooks = vec![
            sent("a", 1, 1, at(0)), // own job: 10 ms
            sent("b", 1, 2, at(2)), // covered by seq 5 at 30 ms (earlier than seq 3)
            sent("c", 1, 4, at(4)), // covered by seq 5: 26 ms
            sent("d", 1, 6, at(6)), // nothing newer than 5: missing
            sent("e", 0, 1, at(0)), // another repository: missing
        ];

        let coverage = Coverage::new(&fleet, &events);
        assert_eq!(coverage.failed, 1);
        assert_eq!(coverage.shown(&webhooks[0]), Some((at(10), true)));
        assert_eq!(coverage.shown(&webhooks[1]), Some((at(30), false)));
        assert_eq!(coverage.shown(&webhooks[2]), Some((at(30), false)));
        assert_eq!(coverage.shown(&webhooks[3]), None);
        assert_eq!(coverage.missing(&webhooks), 2);

        // Two subscribers that saw the same events: every figure counts both.
        let report = sync_report(&fleet, &webhooks, &[events.clone(), events]);
        assert_eq!(report.subscribers, 2);
        assert_eq!(report.accepted, 5);
        assert_eq!((report.own, report.covered, report.missing), (2, 4, 4));
        assert_eq!(report.failed_events, 2);
        assert_eq!(report.latency.count, 6);
        assert_eq!(report.latency.max_ms, 28.0);
        assert_eq!(report.latency_own.p50_ms, 10.0);
    }
}
