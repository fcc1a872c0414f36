//! What the kernel says about a process: CPU time (`/proc/<pid>/stat` utime + stime) and
//! resident memory (`/proc/<pid>/status` VmRSS, and VmHWM, its peak, which writing `5` to
//! `/proc/<pid>/clear_refs` resets so each scenario gets its own peak).

use anyhow::Context as _;

/// A process to watch, by name.
#[derive(Clone, Debug)]
pub struct Watched {
    pub name: &'static str,
    pub pid: u32,
}

/// CPU seconds used so far by each watched process, in their order.
#[derive(Clone, Debug)]
pub struct CpuSnapshot(Vec<f64>);

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime, in ticks, from the text of `/proc/<pid>/stat`. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name come state (field 3) … utime (field 14) and stime (field 15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` line of `/proc/<pid>/status`, in bytes.
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    })
}

fn cpu_seconds(pid: u32, ticks_per_second: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&stat).context("unexpected /proc/<pid>/stat format")?;
    #[allow(clippy::cast_precision_loss, reason = "ticks stay far below 2^52")]
    Ok(ticks as f64 / ticks_per_second)
}

/// Resident bytes now (`VmRSS`) and at peak (`VmHWM`).
pub fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let rss = parse_status_kib(&status, "VmRSS").context("no VmRSS")?;
    let peak = parse_status_kib(&status, "VmHWM").context("no VmHWM")?;
    Ok((rss, peak))
}

/// Resets the peak resident size of `pid` to its current size; false when the kernel refused
/// (then peaks are since the process started).
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// CPU seconds of each watched process now.
pub fn snapshot(watched: &[Watched], ticks_per_second: f64) -> anyhow::Result<CpuSnapshot> {
    watched
        .iter()
        .map(|process| cpu_seconds(process.pid, ticks_per_second))
        .collect::<anyhow::Result<_>>()
        .map(CpuSnapshot)
}

impl CpuSnapshot {
    /// CPU seconds each process used since `earlier`.
    pub fn since(&self, earlier: &Self) -> Vec<f64> {
        self.0
            .iter()
            .zip(&earlier.0)
            .map(|(now, then)| now - then)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_are_utime_plus_stime_even_with_odd_names() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
                    731 269 0 0 20 0 9 0 12345 123456789 4321 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(1000));
    }

    #[test]
    fn stat_without_enough_fields_is_none() {
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn status_lines_are_read_in_bytes() {
        let status = "Name:\tgateway\nVmHWM:\t   24576 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(24 * 1024 * 1024));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(20 * 1024 * 1024));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }
}
