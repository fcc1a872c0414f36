//! `cargo xtask bench --soak MINUTES`: the mixed load (`crate::mixed`) at half of its peak
//! for that long, each process's resident size sampled every 10 s. Reported: every outcome
//! that was not `ok` (target 0), and per process its resident size at the start and end and
//! the slope of a least-squares line through the samples of the last 10 minutes (or of the
//! second half, when shorter), as the growth it predicts over 10 minutes (target: at most
//! 2 MB). A leak grows steadily; a cache filling up flattens out before the window.

use std::{
    fmt::Write as _,
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use crate::{
    bench::procs,
    mixed::MixedLoad,
    system::{Ports, System},
};

/// Users of the mixed load.
const USERS: usize = 8;
/// How long the peak is measured for.
const PEAK_RUN: Duration = Duration::from_secs(15);
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// The window whose growth is judged.
const WINDOW: Duration = Duration::from_secs(10 * 60);

/// One process's resident size over the soak.
struct Series {
    name: &'static str,
    /// Seconds since the soak began, and bytes.
    samples: Vec<(f64, f64)>,
}

impl Series {
    /// Bytes per second of a least-squares line through the samples at or after `from`.
    fn slope_since(&self, from: f64) -> Option<f64> {
        let window: Vec<&(f64, f64)> = self.samples.iter().filter(|(at, _)| *at >= from).collect();
        if window.len() < 3 {
            return None;
        }
        let count = window.len() as f64;
        let mean_at = window.iter().map(|(at, _)| at).sum::<f64>() / count;
        let mean_bytes = window.iter().map(|(_, bytes)| bytes).sum::<f64>() / count;
        let spread: f64 = window.iter().map(|(at, _)| (at - mean_at).powi(2)).sum();
        let joint: f64 = window
            .iter()
            .map(|(at, bytes)| (at - mean_at) * (bytes - mean_bytes))
            .sum();
        (spread > 0.0).then(|| joint / spread)
    }
}

/// Runs the soak against a running system; returns the report's Markdown.
///
/// # Errors
/// When the load cannot sign up its users or a process cannot be sampled.
pub async fn run(
    system: &System,
    ports: Ports,
    minutes: u64,
    database: &str,
) -> anyhow::Result<String> {
    let load = MixedLoad::sign_up(ports.gateway, USERS, crate::mixed::photo_jpeg()?).await?;

    load.tally.set_phase("peak");
    let stop = Arc::new(AtomicBool::new(false));
    let before = load.tally.clean_flows();
    let peak_run = tokio::spawn({
        let (load, stop) = (Arc::clone(&load), Arc::clone(&stop));
        async move { load.run_closed(stop).await }
    });
    tokio::time::sleep(PEAK_RUN).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = peak_run.await;
    let peak = (load.tally.clean_flows() - before) as f64 / PEAK_RUN.as_secs_f64();
    let rate = peak / 2.0;
    println!("soak: peak {peak:.1} flows/s; {minutes} minutes at {rate:.1} flows/s");

    load.tally.set_phase("soak");
    let flows_before = load.tally.flows();
    let stop = Arc::new(AtomicBool::new(false));
    let soak_run = tokio::spawn({
        let (load, stop) = (Arc::clone(&load), Arc::clone(&stop));
        async move { load.run_open(rate, stop).await }
    });
    let pids = system.pids();
    let mut series: Vec<Series> = pids
        .iter()
        .map(|(name, _)| Series {
            name,
            samples: Vec::new(),
        })
        .collect();
    let started = Instant::now();
    let length = Duration::from_secs(minutes * 60);
    loop {
        let at = started.elapsed().as_secs_f64();
        for ((_, pid), line) in pids.iter().zip(&mut series) {
            let (rss, _) = procs::memory(*pid)?;
            line.samples.push((at, rss as f64));
        }
        if started.elapsed() >= length {
            break;
        }
        let elapsed = started.elapsed();
        if elapsed.as_secs() % 60 < SAMPLE_EVERY.as_secs() {
            println!("soak: {} of {minutes} minutes", elapsed.as_secs() / 60);
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = soak_run.await;
    let run = Run {
        peak,
        rate,
        minutes,
        length,
        database,
        flows: load.tally.flows() - flows_before,
    };
    Ok(report(&load, &series, &run))
}

/// What the soak was.
#[derive(Clone, Copy)]
struct Run<'a> {
    /// Flows per second, closed loop, and the open-loop rate (half of it).
    peak: f64,
    rate: f64,
    minutes: u64,
    length: Duration,
    database: &'a str,
    /// Flows run during the soak.
    flows: u64,
}

fn report(load: &MixedLoad, series: &[Series], run: &Run<'_>) -> String {
    let counts = load.tally.counts();
    let soak = counts.get("soak").cloned().unwrap_or_default();
    let ok = soak.get("ok").copied().unwrap_or(0);
    let unexpected: Vec<String> = soak
        .iter()
        .filter(|(outcome, _)| !matches!(outcome.as_str(), "ok" | crate::mixed::SKIPPED))
        .map(|(outcome, count)| format!("{outcome} {count}"))
        .collect();
    let skipped = soak.get(crate::mixed::SKIPPED).copied().unwrap_or(0);
    let Run {
        peak,
        rate,
        minutes,
        length,
        database,
        flows,
    } = *run;
    let achieved = flows as f64 / length.as_secs_f64();
    let from = length.saturating_sub(WINDOW).max(length / 2).as_secs_f64();
    let window_minutes = (length.as_secs_f64() - from) / 60.0;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "## Soak: {minutes} minutes of the mixed load at half of peak ({database})\n"
    );
    let _ = writeln!(
        text,
        "Peak {peak:.1} flows/s (closed loop, {USERS} users, {} s); soak at {rate:.1} flows/s \
         (open loop). A flow: maybe a new hangout, a photo uploaded and confirmed, a page of \
         hangouts with their photos' URLs, every third photo deleted, the oldest hangout \
         deleted once there are four.\n",
        PEAK_RUN.as_secs()
    );
    let _ = writeln!(
        text,
        "Flows run: {flows} ({achieved:.1}/s; starts skipped because all {USERS} users were \
         still busy: {skipped}).\n"
    );
    let _ = writeln!(
        text,
        "Operations ok: {ok}; anything else: {}.\n",
        if unexpected.is_empty() {
            "none".to_owned()
        } else {
            unexpected.join(", ")
        }
    );
    let _ = writeln!(
        text,
        "| process | RSS at start | RSS at end | slope over the last {window_minutes:.1} min | growth per 10 min |"
    );
    let _ = writeln!(text, "|---|---|---|---|---|");
    for line in series {
        const MB: f64 = 1024.0 * 1024.0;
        let first = line.samples.first().map_or(0.0, |(_, bytes)| *bytes);
        let last = line.samples.last().map_or(0.0, |(_, bytes)| *bytes);
        let slope = line.slope_since(from);
        let _ = writeln!(
            text,
            "| {} | {:.1} MB | {:.1} MB | {} | {} |",
            line.name,
            first / MB,
            last / MB,
            slope.map_or_else(
                || "n/a".to_owned(),
                |bytes| format!("{:.1} kB/min", bytes * 60.0 / 1024.0)
            ),
            slope.map_or_else(
                || "n/a".to_owned(),
                |bytes| format!("{:.2} MB", bytes * WINDOW.as_secs_f64() / MB)
            ),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::Series;

    #[test]
    fn the_slope_is_the_least_squares_line() {
        let series = Series {
            name: "p",
            samples: (0..10)
                .map(|at| (f64::from(at) * 10.0, 1000.0 + f64::from(at) * 5.0))
                .collect(),
        };
        let slope = series.slope_since(0.0).expect("enough samples");
        assert!((slope - 0.5).abs() < 1e-9, "{slope}");
        assert!(series.slope_since(85.0).is_none(), "too few samples");
    }
}
