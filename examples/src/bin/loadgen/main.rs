//! Load generator for the reference server (and for anything that speaks its webhook route,
//! such as the Python baseline under `examples/bench/baseline/`).
//!
//! It hosts the FOSSA simulator itself, registers its repositories as components through the
//! REST API, then sends signed webhooks and reports throughput, latency percentiles and
//! status counts; with subscribers it also times each webhook to its `sync.completed` on the
//! WebSocket. Point the server at the simulator:
//!
//! ```text
//! compliance-server --webhook-secrets s3cret --admin-tokens t0ken \
//!     --fossa-base-url http://127.0.0.1:4600 --fossa-api-key loadgen-sim-token \
//!     --rate-per-ip 0 --rate-per-repo 0 --resync-after-secs 0
//! loadgen ingest --secret s3cret --token t0ken --duration 10
//! loadgen ingest --secret s3cret --token t0ken --rate 100 --subscribers 1
//! loadgen fanout --secret s3cret --token t0ken --subscribers 10000 --server-pid <pid>
//! loadgen large  --secret s3cret --token t0ken --deps 20000 --issues 5000
//! ```
//!
//! `examples/bench/run.sh` runs every scenario of `BENCHMARKS.md`. Targets must be loopback
//! addresses, and every run is bounded in time.

mod fanout;
mod fleet;
mod http;
mod ingest;
mod large;
mod stats;
mod ws;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

/// Load generator: signed webhooks, WebSocket latency and fan-out.
#[derive(Parser)]
#[command(name = "loadgen", about)]
struct Cli {
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Signed webhooks for many repositories; throughput, latency, statuses, and (with
    /// subscribers) webhook to `sync.completed`.
    Ingest(ingest::IngestArgs),
    /// Many idle WebSocket subscribers: memory per connection, time until the last one has
    /// an event.
    Fanout(fanout::FanoutArgs),
    /// One large project synced end to end.
    Large(large::LargeArgs),
}

/// What every scenario needs: where the server is, its credentials, and the simulator.
#[derive(clap::Args, Clone, Debug)]
struct Common {
    /// The server (a loopback address).
    #[arg(long, default_value = "127.0.0.1:3000")]
    target: SocketAddr,
    /// The server's webhook secret.
    #[arg(long, env = "LOADGEN_SECRET", hide_env_values = true)]
    secret: String,
    /// An admin API token of the server (registers components, opens WebSockets).
    #[arg(long, env = "LOADGEN_TOKEN", hide_env_values = true)]
    token: String,
    /// Where the FOSSA simulator this run hosts listens (a loopback address).
    #[arg(long, default_value = "127.0.0.1:4600")]
    sim_addr: SocketAddr,
    /// The token the simulator requires (give the server the same as its FOSSA API key).
    #[arg(long, default_value = "loadgen-sim-token", hide_default_value = true)]
    sim_token: String,
    /// Name prefix of the synthetic repositories.
    #[arg(long, default_value = "repo")]
    prefix: String,
    /// The server's process id, to read its resident memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A name for this run in the report.
    #[arg(long)]
    label: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let common = match &cli.command {
        Command::Ingest(a) => &a.common,
        Command::Fanout(a) => &a.common,
        Command::Large(a) => &a.common,
    };
    if !common.target.ip().is_loopback() || !common.sim_addr.ip().is_loopback() {
        eprintln!("error: loadgen only sends to loopback addresses");
        return std::process::ExitCode::FAILURE;
    }

    let printed = match cli.command {
        Command::Ingest(args) => ingest::run(args)
            .await
            .map(|r| output(cli.json, &r, || r.print())),
        Command::Fanout(args) => fanout::run(args)
            .await
            .map(|r| output(cli.json, &r, || r.print())),
        Command::Large(args) => large::run(args)
            .await
            .map(|r| output(cli.json, &r, || r.print())),
    };
    match printed {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn output<T: serde::Serialize>(json: bool, report: &T, text: impl FnOnce()) {
    if json {
        match serde_json::to_string(report) {
            Ok(line) => println!("{line}"),
            Err(error) => eprintln!("error: report not serializable: {error}"),
        }
    } else {
        text();
    }
}
