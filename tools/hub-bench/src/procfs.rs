//! What the kernel says about a process: resident memory and CPU time, from `/proc`.

use anyhow::{Context, bail};

/// `VmRSS` of `pid` in KiB (`/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kib = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .with_context(|| format!("parsing VmRSS {rest:?}"))?;
            return Ok(kib);
        }
    }
    bail!("{path} has no VmRSS line")
}

/// User + system CPU seconds `pid` has used so far (`/proc/<pid>/stat`, fields 14 and 15, in
/// clock ticks of `1/clk_tck` s). `None` for the calling process reads `/proc/self/stat`.
pub fn cpu_secs(pid: Option<u32>, clk_tck: u32) -> anyhow::Result<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces; everything after its closing ')' splits cleanly.
    let after = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path} has no ')'"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("{path} is too short"))?
            .parse::<u64>()
            .with_context(|| format!("parsing {path} field {}", i + 3))
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / f64::from(clk_tck.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(cpu_secs(Some(pid), 100).unwrap() >= 0.0);
        assert!(cpu_secs(None, 100).unwrap() >= 0.0);
    }
}
