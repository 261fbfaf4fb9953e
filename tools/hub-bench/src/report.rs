//! One run's results as JSON, and the side-by-side table of two runs.

use crate::client::{ConnectReport, Tracker};
use crate::notify::PhaseReport;
use crate::procfs;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub connect: ConnectReport,
    pub phases: Vec<PhaseReport>,
    /// Connections still open when the bench finished.
    pub open_at_end: usize,
    /// Why connections ended before the bench stopped them -> count.
    pub ended_early: BTreeMap<String, u64>,
    pub misdelivered: u64,
    pub unparsed: u64,
    pub rss_end_kib: u64,
}

impl BenchReport {
    pub fn finish(
        connect: ConnectReport,
        phases: Vec<PhaseReport>,
        tracker: &Tracker,
        pid: u32,
    ) -> anyhow::Result<Self> {
        Ok(BenchReport {
            connect,
            phases,
            open_at_end: tracker.open.load(Relaxed),
            ended_early: tracker.ended.lock().unwrap().clone(),
            misdelivered: tracker.misdelivered.load(Relaxed),
            unparsed: tracker.unparsed.load(Relaxed),
            rss_end_kib: procfs::rss_kib(pid)?,
        })
    }

    /// Prints the JSON on stdout and, if asked, writes it to `path`.
    pub fn emit(&self, path: Option<&Path>) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        if let Some(path) = path {
            std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
        }
        println!("{json}");
        Ok(())
    }

    fn phase(&self, name: &str) -> Option<&PhaseReport> {
        self.phases.iter().find(|p| p.name == name)
    }
}

#[derive(clap::Args)]
pub struct ReportArgs {
    #[arg(long)]
    pub hub: PathBuf,
    #[arg(long)]
    pub baseline: PathBuf,
}

fn load(path: &Path) -> anyhow::Result<BenchReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

struct Table {
    label_width: usize,
}

impl Table {
    fn header(&self, title: &str) {
        println!();
        println!(
            "{title:<w$} {:>14} {:>14} {:>13}",
            "hub",
            "baseline",
            "hub/baseline",
            w = self.label_width
        );
    }

    fn row(&self, label: &str, hub: f64, baseline: f64, decimals: usize) {
        let ratio = if baseline != 0.0 {
            format!("{:.2}", hub / baseline)
        } else {
            "-".to_owned()
        };
        println!(
            "{label:<w$} {hub:>14.d$} {baseline:>14.d$} {ratio:>13}",
            w = self.label_width,
            d = decimals
        );
    }
}

fn reasons(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{v} x {k}"))
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn print(args: &ReportArgs) -> anyhow::Result<()> {
    let hub = load(&args.hub)?;
    let base = load(&args.baseline)?;
    let t = Table { label_width: 38 };
    let (h, b) = (&hub.connect, &base.connect);
    t.header(&format!(
        "idle connections ({} users x {})",
        h.users, h.conns_per_user
    ));
    t.row("attempted", h.attempted as f64, b.attempted as f64, 0);
    t.row(
        "connections held",
        h.connected as f64,
        b.connected as f64,
        0,
    );
    t.row("failed", h.failed as f64, b.failed as f64, 0);
    t.row("connect time (s)", h.connect_secs, b.connect_secs, 2);
    t.row("connects/s", h.connects_per_sec, b.connects_per_sec, 0);
    t.row(
        "server CPU while connecting (s)",
        h.server_cpu_connect_secs,
        b.server_cpu_connect_secs,
        2,
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    t.row(
        "RSS idle, before connecting (MiB)",
        mib(h.rss_idle_kib),
        mib(b.rss_idle_kib),
        1,
    );
    t.row(
        "RSS with the connections (MiB)",
        mib(h.rss_connected_kib),
        mib(b.rss_connected_kib),
        1,
    );
    t.row(
        "KiB per connection",
        h.kib_per_connection,
        b.kib_per_connection,
        1,
    );
    t.row(
        "RSS at the end (MiB)",
        mib(hub.rss_end_kib),
        mib(base.rss_end_kib),
        1,
    );

    for name in ["latency", "throughput"] {
        let (Some(hp), Some(bp)) = (hub.phase(name), base.phase(name)) else {
            continue;
        };
        let how = if hp.target_rate > 0.0 {
            format!("paced at {:.0}/s", hp.target_rate)
        } else {
            "as fast as possible".to_owned()
        };
        t.header(&format!("{name}: {} notifications, {how}", hp.published));
        t.row(
            "PUBLISH issued/s",
            hp.publish_per_sec,
            bp.publish_per_sec,
            0,
        );
        t.row(
            "expected deliveries",
            hp.expected_deliveries as f64,
            bp.expected_deliveries as f64,
            0,
        );
        t.row("delivered", hp.delivered as f64, bp.delivered as f64, 0);
        t.row(
            "notifications delivered/s",
            hp.delivered_per_sec,
            bp.delivered_per_sec,
            0,
        );
        let ms = |us: u64| us as f64 / 1000.0;
        t.row(
            "latency p50 (ms)",
            ms(hp.latency.p50_us),
            ms(bp.latency.p50_us),
            3,
        );
        t.row(
            "latency p90 (ms)",
            ms(hp.latency.p90_us),
            ms(bp.latency.p90_us),
            3,
        );
        t.row(
            "latency p99 (ms)",
            ms(hp.latency.p99_us),
            ms(bp.latency.p99_us),
            3,
        );
        t.row(
            "latency p99.9 (ms)",
            ms(hp.latency.p999_us),
            ms(bp.latency.p999_us),
            3,
        );
        t.row(
            "latency max (ms)",
            ms(hp.latency.max_us),
            ms(bp.latency.max_us),
            3,
        );
        t.row("losses", hp.losses as f64, bp.losses as f64, 0);
        t.row("duplicates", hp.duplicates as f64, bp.duplicates as f64, 0);
        t.row(
            "publish errors",
            hp.publish_errors as f64,
            bp.publish_errors as f64,
            0,
        );
        t.row("server CPU (s)", hp.server_cpu_secs, bp.server_cpu_secs, 2);
        t.row(
            "server CPU per delivery (us)",
            hp.server_cpu_us_per_delivery,
            bp.server_cpu_us_per_delivery,
            1,
        );
        t.row(
            "bench (client+publisher) CPU (s)",
            hp.client_cpu_secs,
            bp.client_cpu_secs,
            2,
        );
    }

    t.header("integrity");
    t.row(
        "connections open at the end",
        hub.open_at_end as f64,
        base.open_at_end as f64,
        0,
    );
    t.row(
        "misdelivered (wrong user)",
        hub.misdelivered as f64,
        base.misdelivered as f64,
        0,
    );
    t.row(
        "unparsed messages",
        hub.unparsed as f64,
        base.unparsed as f64,
        0,
    );
    println!();
    println!("connect failures, hub:       {}", reasons(&h.failures));
    println!("connect failures, baseline:  {}", reasons(&b.failures));
    println!("ended early, hub:            {}", reasons(&hub.ended_early));
    println!(
        "ended early, baseline:       {}",
        reasons(&base.ended_early)
    );
    Ok(())
}
