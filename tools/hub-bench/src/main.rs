//! `hub-bench`: measures the SignalR hub (`signalr-hub`) against the thinnest server that does
//! the same job, in the same run, with the same client code.
//!
//! * `baseline --port P --redis-url URL` runs that ceiling: a tokio-tungstenite server with a
//!   per-user registry, fed by the same Redis channel, sending the bare `notification` JSON.
//! * `connect --target hub|baseline --url ws://... --pid PID --users N` opens N WebSocket
//!   connections (the hub's with skipNegotiation, a dev JWT and the JSON handshake), holds them,
//!   and reports how many succeeded and the server's VmRSS before and after.
//! * `notify ...` does `connect`, then publishes notifications on the `{prefix}notifications`
//!   backplane stream, as the notifier does:
//!   first a paced phase (latency at a steady rate), then a flood (as fast as possible), and
//!   reports delivered/s, publish -> client latency percentiles, losses and duplicates.
//! * `report --hub FILE --baseline FILE` prints the two JSON reports side by side with ratios.
//!
//! The clients and the publisher share this process, so each notification's publish instant
//! and its receipt are read from one clock. Everything is on 127.0.0.1; every loop is bounded by
//! a count and every wait by a timeout (`--max-secs` bounds the whole run).

use anyhow::Context;
use clap::{Parser, Subcommand};
use client::{ConnectArgs, Tracker};
use orders_adapters::redis::RedisFanout;
use report::BenchReport;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod baseline;
mod client;
mod notify;
mod procfs;
mod report;

#[derive(Parser)]
#[command(
    name = "hub-bench",
    about = "Benchmark the SignalR hub against a minimal tokio-tungstenite broadcast server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The ceiling: a minimal tokio-tungstenite server fed by the same Redis channel.
    Baseline(baseline::BaselineArgs),
    /// Open and hold N connections; report successes and the server's memory per connection.
    Connect {
        #[command(flatten)]
        connect: ConnectArgs,
        /// Keep the connections open this long after measuring.
        #[arg(long, default_value_t = 0)]
        hold_secs: u64,
    },
    /// Connect, then publish notifications and measure their delivery.
    Notify(NotifyArgs),
    /// Print a hub report and a baseline report side by side.
    Report(report::ReportArgs),
}

#[derive(clap::Args)]
struct NotifyArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[arg(long)]
    redis_url: String,
    /// The hub's FANOUT_CHANNEL_PREFIX; the channel is `{prefix}notifications`.
    #[arg(long, default_value = "orders:")]
    prefix: String,
    /// Throughput phase: this many notifications...
    #[arg(long, default_value_t = 50_000)]
    notifications: usize,
    /// ...at this rate per second (0: as fast as the publishers go).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Concurrent publishers in the unpaced phase (each awaits its publish before the next).
    #[arg(long, default_value_t = 64)]
    publishers: usize,
    /// Latency phase, run first: this many notifications... (0 skips it)
    #[arg(long, default_value_t = 10_000)]
    latency_notifications: usize,
    /// ...at this steady rate per second.
    #[arg(long, default_value_t = 1000.0)]
    latency_rate: f64,
    /// A delivery not seen this long after the phase's last publish counts as lost.
    #[arg(long, default_value_t = 10)]
    loss_timeout_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Baseline(args) => baseline::run(args).await,
        Command::Connect { connect, hold_secs } => {
            let limit = Duration::from_secs(connect.max_secs);
            tokio::time::timeout(limit, run_connect(connect, hold_secs))
                .await
                .context("the run took longer than --max-secs")?
        }
        Command::Notify(args) => {
            let limit = Duration::from_secs(args.connect.max_secs);
            tokio::time::timeout(limit, run_notify(args))
                .await
                .context("the run took longer than --max-secs")?
        }
        Command::Report(args) => report::print(&args),
    }
}

async fn run_connect(args: ConnectArgs, hold_secs: u64) -> anyhow::Result<()> {
    let tracker = Tracker::new(args.users, 0);
    let stop = CancellationToken::new();
    let connected = client::connect_all(&args, &tracker, &stop).await?;
    tokio::time::sleep(Duration::from_secs(hold_secs)).await;
    let report = BenchReport::finish(connected, Vec::new(), &tracker, args.pid)?;
    stop.cancel();
    report.emit(args.json_out.as_deref())
}

async fn run_notify(args: NotifyArgs) -> anyhow::Result<()> {
    let total = args.latency_notifications + args.notifications;
    let tracker = Tracker::new(args.connect.users, total);
    let stop = CancellationToken::new();
    let fanout = RedisFanout::connect(&args.redis_url, &args.prefix)
        .await
        .context("connecting to Redis")?;
    let connected = client::connect_all(&args.connect, &tracker, &stop).await?;
    let publisher = notify::Publisher {
        fanout,
        tracker: std::sync::Arc::clone(&tracker),
        pid: args.connect.pid,
        clk_tck: args.connect.clk_tck,
        loss_timeout: Duration::from_secs(args.loss_timeout_secs),
    };
    let mut phases = Vec::new();
    if args.latency_notifications > 0 {
        phases.push(
            publisher
                .phase(
                    "latency",
                    0..args.latency_notifications,
                    args.latency_rate,
                    1,
                )
                .await?,
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if args.notifications > 0 {
        phases.push(
            publisher
                .phase(
                    "throughput",
                    args.latency_notifications..total,
                    args.rate,
                    args.publishers,
                )
                .await?,
        );
    }
    let report = BenchReport::finish(connected, phases, &tracker, args.connect.pid)?;
    stop.cancel();
    report.emit(args.connect.json_out.as_deref())
}
