//! The figures as Markdown (`BENCHMARKS.md`) and JSON, and the targets of issue 7 checked
//! against them.

use std::fmt::Write as _;

use serde_json::json;

use crate::bench::{
    load::Stats,
    scenarios::Scenario,
    seed::{Plan, Seeded},
};

/// Hand-written notes below this line in `BENCHMARKS.md` survive a new run.
pub const NOTES_MARKER: &str =
    "<!-- Hand-written notes below this line are kept by cargo xtask bench. -->";

/// Which path a run went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// GraphQL through the gateway, closed loop.
    Gateway,
    /// Bare gRPC calls to the backends, closed loop.
    Floor,
    /// GraphQL through the gateway, open loop at half the closed-loop throughput.
    HalfPeak,
    /// Bare gRPC calls to the backends, open loop at the rate of [`Self::HalfPeak`]: the
    /// backends' own share of that latency.
    FloorAtHalfPeak,
    /// The same data through Hive Gateway over the same backends, closed loop.
    Peer,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Floor => "floor",
            Self::HalfPeak => "gateway at half peak",
            Self::FloorAtHalfPeak => "floor at the gateway's half peak",
            Self::Peer => "Hive Gateway",
        }
    }
}

/// One process during one timed run.
#[derive(Clone, Debug)]
pub struct ProcessFigures {
    pub name: &'static str,
    pub cpu_seconds: f64,
    pub peak_rss: u64,
    /// The kernel refused to reset the peak, so it is the peak since the process started.
    pub peak_since_start: bool,
}

/// One timed run.
#[derive(Clone, Debug)]
pub struct Measured {
    pub scenario: Scenario,
    pub target: Target,
    pub concurrency: usize,
    /// Requests started per second, for open-loop runs.
    pub rate: Option<f64>,
    pub stats: Stats,
    pub processes: Vec<ProcessFigures>,
}

impl Measured {
    pub fn closed(
        scenario: Scenario,
        target: Target,
        concurrency: usize,
        stats: Stats,
        processes: Vec<ProcessFigures>,
    ) -> Self {
        Self {
            scenario,
            target,
            concurrency,
            rate: None,
            stats,
            processes,
        }
    }

    /// An open-loop run at `rate` with at most `in_flight` requests at once.
    pub fn at_rate(
        scenario: Scenario,
        target: Target,
        (rate, in_flight): (f64, usize),
        stats: Stats,
        processes: Vec<ProcessFigures>,
    ) -> Self {
        Self {
            rate: Some(rate),
            ..Self::closed(scenario, target, in_flight, stats, processes)
        }
    }

    /// CPU milliseconds per successful request of process `name`.
    fn cpu_ms_per_request(&self, name: &str) -> Option<f64> {
        let process = self.processes.iter().find(|process| process.name == name)?;
        #[allow(clippy::cast_precision_loss, reason = "counts stay far below 2^52")]
        let requests = self.stats.requests.max(1) as f64;
        Some(process.cpu_seconds * 1000.0 / requests)
    }

    fn peak_mib(&self, name: &str) -> Option<f64> {
        self.processes
            .iter()
            .find(|process| process.name == name)
            .map(|process| mib(process.peak_rss))
    }
}

/// Backend calls per request of one scenario.
#[derive(Clone, Debug)]
pub struct Calls {
    pub scenario: Scenario,
    pub hangout_core: f64,
    pub file_core: f64,
    pub requests: u64,
}

impl Calls {
    fn total(&self) -> f64 {
        self.hangout_core + self.file_core
    }
}

/// The machine the figures come from.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

impl Machine {
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, name)| name.trim().to_owned());
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        #[allow(
            clippy::cast_precision_loss,
            reason = "memory sizes stay far below 2^52"
        )]
        let memory_gib = crate::bench::procs::parse_status_kib(&meminfo, "MemTotal")
            .map_or(0.0, |bytes| bytes as f64 / f64::from(1 << 30));
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |text| text.trim().to_owned());
        Self {
            cpu,
            cores,
            memory_gib,
            kernel,
        }
    }
}

/// Everything one `cargo xtask bench` measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub machine: Machine,
    pub date: String,
    pub commit: String,
    pub database: &'static str,
    pub command: String,
    pub concurrency: usize,
    pub seconds: u64,
    pub warmup: u64,
    pub plan: Plan,
    pub seeded: Seeded,
    /// Resident bytes of each process right after start.
    pub idle: Vec<(&'static str, u64)>,
    /// Resident bytes of each process after seeding and signing in, before the load.
    pub loaded: Vec<(&'static str, u64)>,
    pub release: bool,
    pub runs: Vec<Measured>,
    pub calls: Vec<Calls>,
    /// Scenarios the gateway could not answer once, so they were not timed, with the error.
    pub failed_probes: Vec<(Scenario, String)>,
    /// The machine's load average (1, 5, 15 minutes) when the timed runs began: other work on
    /// a shared machine skews every figure.
    pub load_average: String,
    /// Why the peer (Hive Gateway) was not measured; `None` when it was.
    pub peer_not_measured: Option<String>,
    /// The `abuse` scenario, when it ran.
    pub abuse: Option<super::abuse::AbuseFigures>,
    /// The `process` measurement, when it ran.
    pub process: Option<super::process::ProcessRun>,
    /// The `live` scenario, when it ran.
    pub live: Option<super::live::LiveRun>,
}

#[allow(
    clippy::cast_precision_loss,
    reason = "memory sizes stay far below 2^52"
)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.decimals$}"))
}

const PROCESSES: [&str; 4] = ["gateway", "hangout-core", "file-core", "load generator"];

/// A checked target.
struct Check {
    target: String,
    measured: String,
    met: Option<bool>,
}

/// How a measured figure compares with its target's number.
#[derive(Clone, Copy)]
enum Bound {
    Below(f64),
    AtMost(f64),
    AtLeast(f64),
}

/// The unit a bound is written in; a figure is measured in the same unit.
#[derive(Clone, Copy)]
enum Unit {
    Count,
    Megabytes,
    Kilobytes,
    Milliseconds,
    /// Written as a percentage, compared as a fraction.
    Percent,
    Times,
}

impl Bound {
    fn holds(self, value: f64) -> bool {
        match self {
            Self::Below(limit) => value < limit,
            Self::AtMost(limit) => value <= limit,
            Self::AtLeast(limit) => value >= limit,
        }
    }

    /// The bound as the report writes it: `< 40 MB`, `≥ 50 %`.
    fn text(self, unit: Unit) -> String {
        let (sign, limit) = match self {
            Self::Below(limit) => ("<", limit),
            Self::AtMost(limit) => ("≤", limit),
            Self::AtLeast(limit) => ("≥", limit),
        };
        match unit {
            Unit::Count => format!("{sign} {limit}"),
            Unit::Megabytes => format!("{sign} {limit} MB"),
            Unit::Kilobytes => format!("{sign} {limit} KB"),
            Unit::Milliseconds => format!("{sign} {limit} ms"),
            Unit::Percent => format!("{sign} {} %", (limit * 100.0).round()),
            Unit::Times => format!("{sign} {limit} ×"),
        }
    }
}

/// One target: what is measured, its bounds (each written once, as the number the check
/// compares with and, from it, the report's text), and the figures.
struct Goal {
    what: &'static str,
    unit: Unit,
    /// Each bound with the label it is written with (empty for a single bound) and the
    /// measured value it is compared with.
    bounds: Vec<(&'static str, Bound, f64)>,
    /// Conditions the text states in words (no failed request, every event delivered).
    and: bool,
    suffix: &'static str,
}

impl Goal {
    fn new(what: &'static str, unit: Unit, bound: Bound, value: f64) -> Self {
        Self {
            what,
            unit,
            bounds: vec![("", bound, value)],
            and: true,
            suffix: "",
        }
    }

    /// As [`Goal::new`], its first bound written after `label`.
    fn labeled(
        what: &'static str,
        unit: Unit,
        label: &'static str,
        bound: Bound,
        value: f64,
    ) -> Self {
        let mut goal = Self::new(what, unit, bound, value);
        goal.bounds[0].0 = label;
        goal
    }

    fn with(mut self, label: &'static str, bound: Bound, value: f64) -> Self {
        self.bounds.push((label, bound, value));
        self
    }

    /// A condition the suffix names, e.g. ", no honest request fails".
    fn also(mut self, holds: bool, suffix: &'static str) -> Self {
        self.and = holds;
        self.suffix = suffix;
        self
    }

    fn check(self, measured: String) -> Check {
        let bounds: Vec<String> = self
            .bounds
            .iter()
            .map(|(label, bound, _)| {
                let text = bound.text(self.unit);
                if label.is_empty() {
                    text
                } else {
                    format!("{label} {text}")
                }
            })
            .collect();
        let separator = if self.bounds.iter().any(|(label, ..)| !label.is_empty()) {
            ": "
        } else {
            " "
        };
        let met = self.and
            && self
                .bounds
                .iter()
                .all(|(_, bound, value)| bound.holds(*value));
        Check {
            target: format!(
                "{}{separator}{}{}",
                self.what,
                bounds.join(", "),
                self.suffix
            ),
            measured,
            met: Some(met),
        }
    }
}

impl Report {
    fn run(&self, scenario: Scenario, target: Target) -> Option<&Measured> {
        self.runs
            .iter()
            .find(|run| run.scenario == scenario && run.target == target)
    }

    fn calls(&self, scenario: Scenario) -> Option<&Calls> {
        self.calls.iter().find(|calls| calls.scenario == scenario)
    }

    fn ratio(&self, scenario: Scenario) -> Option<f64> {
        let gateway = self.run(scenario, Target::Gateway)?.stats.per_second();
        let floor = self.run(scenario, Target::Floor)?.stats.per_second();
        (floor > 0.0).then(|| gateway / floor)
    }

    /// Our gateway's throughput as a multiple of the peer's.
    fn peer_multiple(&self, scenario: Scenario) -> Option<f64> {
        let gateway = self.run(scenario, Target::Gateway)?.stats.per_second();
        let peer = self.run(scenario, Target::Peer)?.stats.per_second();
        (peer > 0.0).then(|| gateway / peer)
    }

    fn scenarios(&self) -> Vec<Scenario> {
        let mut scenarios: Vec<Scenario> = Vec::new();
        for run in &self.runs {
            if !scenarios.contains(&run.scenario) {
                scenarios.push(run.scenario);
            }
        }
        scenarios
    }

    fn checks(&self) -> Vec<Check> {
        use Bound::{AtLeast, AtMost, Below};
        let mut checks = Vec::new();
        let page = Scenario::Page(20);
        if let Some(ratio) = self.ratio(page) {
            checks.push(
                Goal::new(
                    "`page` gateway throughput, of the floor's:",
                    Unit::Percent,
                    AtLeast(0.5),
                    ratio,
                )
                .check(format!("{:.0} %", ratio * 100.0)),
            );
        }
        if let Some(calls) = self.calls(page) {
            checks.push(
                Goal::new(
                    "`page` backend calls per request",
                    Unit::Count,
                    AtMost(6.0),
                    calls.total(),
                )
                .check(format!("{:.2}", calls.total())),
            );
        }
        let multiples = [Scenario::Me, page].map(|scenario| self.peer_multiple(scenario));
        let (me, page_multiple) = (multiples[0], multiples[1]);
        let mut peer = Goal::new(
            "`me` and `page`, as multiples of Hive Gateway's throughput:",
            Unit::Times,
            AtLeast(10.0),
            me.unwrap_or(0.0).min(page_multiple.unwrap_or(0.0)),
        )
        .check(match &self.peer_not_measured {
            Some(reason) => format!("not measured: {reason}"),
            None => format!(
                "`me` {} ×, `page` {} ×",
                cell(me, 1),
                cell(page_multiple, 1)
            ),
        });
        if self.peer_not_measured.is_some() || me.is_none() || page_multiple.is_none() {
            peer.met = None;
        }
        checks.push(peer);
        for scenario in [Scenario::Me, page] {
            if let Some(run) = self.run(scenario, Target::HalfPeak) {
                let (p50, p99) = (run.stats.percentile_ms(0.5), run.stats.percentile_ms(0.99));
                checks.push(
                    Goal::labeled(
                        if scenario == Scenario::Me {
                            "`me` at half of peak"
                        } else {
                            "`page` at half of peak"
                        },
                        Unit::Milliseconds,
                        "p50",
                        Below(2.0),
                        p50,
                    )
                    .with("p99", Below(10.0), p99)
                    .also(run.stats.errors == 0, ", no request fails")
                    .check(format!("p50 {p50:.2} ms, p99 {p99:.2} ms")),
                );
            }
        }
        if let Some((_, idle)) = self.idle.iter().find(|(name, _)| *name == "gateway") {
            checks.push(
                Goal::new("gateway RSS idle", Unit::Megabytes, Below(40.0), mib(*idle))
                    .check(format!("{:.1} MB", mib(*idle))),
            );
        }
        let peak = |name: &str| {
            self.runs.iter().filter_map(|run| run.peak_mib(name)).fold(
                None,
                |highest: Option<f64>, value| {
                    Some(highest.map_or(value, |highest| highest.max(value)))
                },
            )
        };
        for (name, what, limit) in [
            ("gateway", "gateway RSS at peak", 120.0),
            ("hangout-core", "hangout-core RSS at peak", 80.0),
            ("file-core", "file-core RSS at peak", 80.0),
        ] {
            if let Some(value) = peak(name) {
                checks.push(
                    Goal::new(what, Unit::Megabytes, Below(limit), value)
                        .check(format!("{value:.1} MB")),
                );
            }
        }
        if let Some(process) = &self.process {
            checks.push(
                Goal::new(
                    "`process`: CPU per 12-megapixel JPEG (three renditions)",
                    Unit::Milliseconds,
                    Below(400.0),
                    process.cpu_ms_per_photo(),
                )
                .check(format!(
                    "{:.0} ms per photo ({:.1} renditions per CPU second, {} photos of {:.1} MB \
                     in {:.1} s)",
                    process.cpu_ms_per_photo(),
                    process.renditions_per_cpu_second(),
                    process.photos,
                    mib(process.photo_bytes as u64),
                    process.seconds
                )),
            );
            checks.push(
                Goal::new(
                    "`process`: worker peak RSS",
                    Unit::Megabytes,
                    Below(300.0),
                    mib(process.peak_rss),
                )
                .check(format!("{:.1} MB", mib(process.peak_rss))),
            );
            // A page of 20 hangouts with 5 thumbnails each.
            let page_bytes = process.thumbnail_bytes as u64 * 100;
            checks.push(
                Goal::new(
                    "`process`: 100 THUMBNAILs of 12-megapixel photos",
                    Unit::Megabytes,
                    Below(3.0),
                    mib(page_bytes),
                )
                .check(format!(
                    "{:.2} MB ({:.1} kB each)",
                    mib(page_bytes),
                    process.thumbnail_bytes as f64 / 1024.0
                )),
            );
        }
        if let Some(live) = &self.live {
            let p99 = live.percentile_ms(0.99);
            checks.push(
                Goal::new(
                    "`live`: p99 delivery (commit to client)",
                    Unit::Milliseconds,
                    Below(50.0),
                    p99,
                )
                .also(live.delivered >= live.expected, ", every event delivered")
                .check(format!(
                    "p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms; {} of {} events ({} \
                     mutations, {} sockets over {} hangouts, {:.0} s)",
                    live.percentile_ms(0.5),
                    live.percentile_ms(1.0),
                    live.delivered,
                    live.expected,
                    live.mutations,
                    live.sockets,
                    live.hangouts,
                    live.seconds
                )),
            );
            checks.push(
                Goal::new(
                    "`live`: gateway memory per idle socket",
                    Unit::Kilobytes,
                    Below(20.0),
                    live.bytes_per_socket() / 1024.0,
                )
                .check(format!("{:.1} kB", live.bytes_per_socket() / 1024.0)),
            );
            let with = live.page_with_live;
            checks.push(Check {
                target: "`live`: `page` at half of peak while the sockets and mutations run (no target)"
                    .to_owned(),
                measured: match live.page_alone {
                    Some(alone) => format!(
                        "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms (alone: p50 {:.2} ms, p99 {:.2} ms)",
                        with.per_second, with.p50_ms, with.p99_ms, alone.p50_ms, alone.p99_ms
                    ),
                    None => format!(
                        "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
                        with.per_second, with.p50_ms, with.p99_ms
                    ),
                },
                met: None,
            });
        }
        let thumbnails = self
            .run(Scenario::Thumbnails, Target::Gateway)
            .map(|run| run.stats.per_second());
        let page_rate = self
            .run(Scenario::Page(20), Target::Gateway)
            .map(|run| run.stats.per_second());
        if let (Some(thumbnails), Some(page)) = (thumbnails, page_rate) {
            checks.push(
                Goal::new(
                    "`thumbnails` req/s, of `page`'s:",
                    Unit::Percent,
                    AtLeast(0.95),
                    thumbnails / page,
                )
                .check(format!(
                    "{:.0} % ({thumbnails:.0} vs {page:.0} req/s)",
                    thumbnails / page * 100.0
                )),
            );
        }
        if let Some(abuse) = &self.abuse {
            let ratio = abuse.p99_ratio();
            checks.push(
                Goal::new(
                    "`abuse`: honest p99, as a multiple of unattacked:",
                    Unit::Times,
                    AtMost(2.0),
                    ratio,
                )
                .also(
                    abuse.attacked.errors == 0 && abuse.unattacked.errors == 0,
                    ", no honest request fails",
                )
                .check(format!(
                    "p99 {:.2} ms attacked, {:.2} ms unattacked ({ratio:.2} ×); {} honest errors",
                    abuse.attacked.percentile_ms(0.99),
                    abuse.unattacked.percentile_ms(0.99),
                    abuse.attacked.errors + abuse.unattacked.errors
                )),
            );
            if let Some(gateway) = abuse
                .processes
                .iter()
                .find(|process| process.name == "gateway")
            {
                checks.push(
                    Goal::new(
                        "`abuse`: gateway RSS at peak",
                        Unit::Megabytes,
                        Below(150.0),
                        mib(gateway.peak_rss),
                    )
                    .check(format!("{:.1} MB", mib(gateway.peak_rss))),
                );
            }
        }
        checks
    }

    /// The `abuse` scenario's table.
    fn write_abuse(&self, out: &mut String) {
        let Some(abuse) = &self.abuse else {
            return;
        };
        let _ = writeln!(
            out,
            "\n`abuse`: honest `page(20)` at {:.0}/s from {} addresses, against a gateway with \
             the production limits; the attacker, from one address, sends the most expensive \
             document the cost limit allows and floods `signIn`, {} requests at once each.\n",
            abuse.rate,
            self.concurrency.saturating_sub(1),
            8
        );
        let _ = writeln!(
            out,
            "| Honest load | Requests | p50 ms | p90 ms | p99 ms | Errors |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for (name, stats) in [
            ("unattacked", &abuse.unattacked),
            ("attacked", &abuse.attacked),
        ] {
            let _ = writeln!(
                out,
                "| {name} | {} | {:.2} | {:.2} | {:.2} | {} |",
                stats.requests,
                stats.percentile_ms(0.5),
                stats.percentile_ms(0.9),
                stats.percentile_ms(0.99),
                stats.errors
            );
        }
        let _ = writeln!(out, "\n| Attacker | Answered | Refused (429/503) | Other |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for (name, outcomes) in [
            ("most expensive allowed document", &abuse.expensive),
            ("signIn flood", &abuse.sign_ins),
        ] {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} |",
                outcomes.answered, outcomes.refused, outcomes.other
            );
        }
        let _ = writeln!(out, "\n| Process (attacked run) | CPU s | Peak RSS MB |");
        let _ = writeln!(out, "|---|---:|---:|");
        for process in &abuse.processes {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.1} |",
                process.name,
                process.cpu_seconds,
                mib(process.peak_rss)
            );
        }
    }

    /// The tables a terminal shows at the end of a run.
    pub fn summary_markdown(&self) -> String {
        let mut out = String::new();
        self.write_throughput(&mut out);
        self.write_peer(&mut out);
        self.write_abuse(&mut out);
        self.write_targets(&mut out);
        out
    }

    fn write_throughput(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "| Scenario | Gateway req/s | p50 ms | p90 ms | p99 ms | Floor req/s | Floor p50 ms | \
             Floor p99 ms | Gateway / floor | Backend calls per request (hangout-core + \
             file-core) | Errors (gateway / floor) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
        for scenario in self.scenarios() {
            let gateway = self.run(scenario, Target::Gateway);
            let floor = self.run(scenario, Target::Floor);
            let stat = |run: Option<&Measured>, fraction: f64| {
                run.map(|run| run.stats.percentile_ms(fraction))
            };
            let calls = self.calls(scenario).map_or_else(
                || "–".to_owned(),
                |calls| {
                    format!(
                        "{:.2} ({:.2} + {:.2})",
                        calls.total(),
                        calls.hangout_core,
                        calls.file_core
                    )
                },
            );
            let errors = |run: Option<&Measured>| {
                run.map_or_else(|| "–".to_owned(), |run| run.stats.errors.to_string())
            };
            let _ = writeln!(
                out,
                "| {scenario} | {} | {} | {} | {} | {} | {} | {} | {} | {calls} | {} / {} |",
                cell(gateway.map(|run| run.stats.per_second()), 0),
                cell(stat(gateway, 0.5), 2),
                cell(stat(gateway, 0.9), 2),
                cell(stat(gateway, 0.99), 2),
                cell(floor.map(|run| run.stats.per_second()), 0),
                cell(stat(floor, 0.5), 2),
                cell(stat(floor, 0.99), 2),
                self.ratio(scenario)
                    .map_or_else(|| "–".to_owned(), |ratio| format!("{:.0} %", ratio * 100.0)),
                errors(gateway),
                errors(floor),
            );
        }
    }

    /// The peer's runs beside ours, when it was measured.
    fn write_peer(&self, out: &mut String) {
        let scenarios: Vec<Scenario> = [Scenario::Me, Scenario::Page(20)]
            .into_iter()
            .filter(|scenario| self.run(*scenario, Target::Peer).is_some())
            .collect();
        if scenarios.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n| Scenario | Hive Gateway req/s | p50 ms | p99 ms | Errors | Gateway req/s | \
             Gateway / Hive Gateway |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        for scenario in scenarios {
            let peer = self.run(scenario, Target::Peer);
            let _ = writeln!(
                out,
                "| {scenario} | {} | {} | {} | {} | {} | {} |",
                cell(peer.map(|run| run.stats.per_second()), 0),
                cell(peer.map(|run| run.stats.percentile_ms(0.5)), 2),
                cell(peer.map(|run| run.stats.percentile_ms(0.99)), 2),
                peer.map_or_else(|| "–".to_owned(), |run| run.stats.errors.to_string()),
                cell(
                    self.run(scenario, Target::Gateway)
                        .map(|run| run.stats.per_second()),
                    0
                ),
                self.peer_multiple(scenario)
                    .map_or_else(|| "–".to_owned(), |multiple| format!("{multiple:.1} ×")),
            );
        }
    }

    fn write_targets(&self, out: &mut String) {
        let _ = writeln!(out, "\n| Target | Measured | Met |");
        let _ = writeln!(out, "|---|---|---|");
        for check in self.checks() {
            let met = match check.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            let _ = writeln!(out, "| {} | {} | {met} |", check.target, check.measured);
        }
    }

    /// The whole `BENCHMARKS.md`, keeping the hand-written notes of `previous`.
    pub fn to_markdown(&self, previous: Option<&str>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "Written by `{}` (`xtask/src/bench/`); every figure is from one run on one machine, \
             so across machines compare CPU per request first (the most stable figure) and ratios, not absolute throughput.\n",
            self.command
        );
        let _ = writeln!(out, "- Date: {}", self.date);
        let _ = writeln!(out, "- Commit: {}", self.commit);
        let _ = writeln!(
            out,
            "- Machine: {}, {} cores, {:.1} GiB memory, Linux {}; the load generator shares it; \
             load average {} when the timed runs began",
            self.machine.cpu,
            self.machine.cores,
            self.machine.memory_gib,
            self.machine.kernel,
            self.load_average
        );
        let _ = writeln!(
            out,
            "- Database: {}; {} build; mutual TLS between the gateway and the backends",
            self.database,
            if self.release { "release" } else { "debug" }
        );
        let _ = writeln!(
            out,
            "- Load: {} virtual users (each a different user with its own access token from \
             `signIn`), {} s warm-up then {} s timed per run",
            self.concurrency, self.warmup, self.seconds
        );
        let _ = writeln!(
            out,
            "- Data set: {} users, {} activities, {} hangouts, {} uploaded memories (seeded in \
             {:.0} s). The {} active users (one per virtual user) have {} hangouts each \
             with 0 to {} memories each, plus one hangout with {} memories; the others have {} \
             hangouts without memories. Each hangout carries {} of its owner's {} activities.\n",
            self.seeded.users,
            self.seeded.activities,
            self.seeded.hangouts,
            self.seeded.memories,
            self.seeded.seconds,
            self.plan.active_users,
            self.plan.hangouts_per_active_user,
            self.plan.max_memories_per_hangout,
            self.plan.detail_memories,
            self.plan.hangouts_per_user,
            self.plan.activities_per_hangout,
            self.plan.activities_per_user,
        );
        let _ = writeln!(
            out,
            "## Throughput and latency ({} virtual users, closed loop)\n",
            self.concurrency
        );
        self.write_throughput(&mut out);
        self.write_peer(&mut out);
        if self.abuse.is_some() {
            let _ = writeln!(out, "\n## Abuse (issue 20)");
            self.write_abuse(&mut out);
        }
        let _ = writeln!(out, "\n## Targets (issues 7 and 20)");
        self.write_targets(&mut out);

        let _ = writeln!(out, "\n## CPU per request and peak memory\n");
        let _ = writeln!(
            out,
            "CPU milliseconds per request of each process (utime + stime from `/proc/<pid>/stat` \
             around the timed run), and each process's peak resident size during the run \
             (`VmHWM`, reset through `/proc/<pid>/clear_refs` before it).\n"
        );
        let _ = writeln!(
            out,
            "| Scenario | Run | gateway CPU ms | hangout-core CPU ms | file-core CPU ms | load \
             generator CPU ms | gateway peak MB | hangout-core peak MB | file-core peak MB |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for run in &self.runs {
            let cpu: Vec<String> = PROCESSES
                .iter()
                .map(|name| cell(run.cpu_ms_per_request(name), 3))
                .collect();
            let peaks: Vec<String> = PROCESSES[..3]
                .iter()
                .map(|name| cell(run.peak_mib(name), 1))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                run.scenario,
                run.target.name(),
                cpu.join(" | "),
                peaks.join(" | ")
            );
        }
        let sizes = |list: &[(&str, u64)]| {
            list.iter()
                .map(|(name, bytes)| format!("{name} {:.1} MB", mib(*bytes)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "\nResident size right after start: {}. After seeding and signing in, before the \
             load: {}.",
            sizes(&self.idle),
            sizes(&self.loaded)
        );

        let half: Vec<&Measured> = self.runs.iter().filter(|run| run.rate.is_some()).collect();
        if let Some(in_flight) = half.first().map(|run| run.concurrency) {
            let _ = writeln!(out, "\n## Latency at half of peak throughput (open loop)\n");
            let _ = writeln!(
                out,
                "Requests start on a fixed schedule at half the gateway's closed-loop \
                 throughput; latency counts from the scheduled start, so stalls are not hidden. \
                 At most {in_flight} requests are in flight at once, over as many keep-alive \
                 connections: the edge's upstream pool (`keepalive 64` in `nginx/`); a request \
                 due while all are busy waits for one, and its wait counts. The floor runs the \
                 same scenario's gRPC calls at the same rate: the latency of the backends \
                 alone, which the gateway's adds to.\n"
            );
            let _ = writeln!(
                out,
                "| Scenario | Run | Rate req/s | Achieved req/s | p50 ms | p90 ms | p99 ms | Errors |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
            for run in half {
                let path = match run.target {
                    Target::FloorAtHalfPeak => "floor",
                    _ => "gateway",
                };
                let _ = writeln!(
                    out,
                    "| {} | {path} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                    run.scenario,
                    cell(run.rate, 0),
                    run.stats.per_second(),
                    run.stats.percentile_ms(0.5),
                    run.stats.percentile_ms(0.9),
                    run.stats.percentile_ms(0.99),
                    run.stats.errors
                );
            }
        }

        let sizes: Vec<Scenario> = [1, 20, 100]
            .into_iter()
            .map(Scenario::Page)
            .filter(|scenario| self.run(*scenario, Target::Gateway).is_some())
            .collect();
        if sizes.len() > 1 {
            let _ = writeln!(out, "\n## Scaling: `page` at page sizes 1, 20 and 100\n");
            let _ = writeln!(
                out,
                "| Page size | Gateway req/s | p50 ms | p99 ms | Floor req/s | Gateway / floor | \
                 Backend calls per request | Gateway errors |"
            );
            let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
            for scenario in sizes {
                let Scenario::Page(size) = scenario else {
                    continue;
                };
                let gateway = self.run(scenario, Target::Gateway);
                let _ = writeln!(
                    out,
                    "| {size} | {} | {} | {} | {} | {} | {} | {} |",
                    cell(gateway.map(|run| run.stats.per_second()), 0),
                    cell(gateway.map(|run| run.stats.percentile_ms(0.5)), 2),
                    cell(gateway.map(|run| run.stats.percentile_ms(0.99)), 2),
                    cell(
                        self.run(scenario, Target::Floor)
                            .map(|run| run.stats.per_second()),
                        0
                    ),
                    self.ratio(scenario)
                        .map_or_else(|| "–".to_owned(), |ratio| format!("{:.0} %", ratio * 100.0)),
                    cell(self.calls(scenario).map(Calls::total), 2),
                    gateway.map_or_else(|| "–".to_owned(), |run| run.stats.errors.to_string()),
                );
            }
        }

        let errors: Vec<String> = self
            .runs
            .iter()
            .filter_map(|run| {
                run.stats
                    .first_error
                    .as_ref()
                    .map(|error| format!("- {} {}: {}", run.scenario, run.target.name(), error))
            })
            .collect();
        if !self.failed_probes.is_empty() {
            let _ = writeln!(
                out,
                "\n## Scenarios the gateway failed (not timed through the gateway)\n"
            );
            for (scenario, error) in &self.failed_probes {
                let _ = writeln!(out, "- {scenario}: {error}");
            }
        }
        if !errors.is_empty() {
            let _ = writeln!(out, "\n## First error of each run that had errors\n");
            let _ = writeln!(out, "{}", errors.join("\n"));
        }

        let _ = writeln!(out, "\n## How it is measured\n");
        let _ = writeln!(
            out,
            "- Scenarios: `me` is `{{ me {{ id name }} }}`; `page` is `hangouts(first: 20)` with \
             each hangout's owner, activities and first 5 memories with download URLs; `detail` \
             is one hangout with `memories(first: 24)` and their download URLs; `upload` is \
             `createMemoryUploads` with 10 files (PENDING rows in both databases, 10 presigned \
             PUTs). Responses with GraphQL errors count as errors, not requests.\n\
             - Closed loop: each virtual user sends its next request when the previous one \
             answers. The load generator (HTTP/1.1 keep-alive, one connection per virtual user) \
             runs on one thread on the same machine, from a release build of xtask, and its \
             CPU is reported too.\n\
             - Floor: the same data fetched by a bare tonic client straight from the backends, \
             with the gateway's client certificate and `x-user-id`, over one HTTP/2 \
             connection per backend (as the gateway has), every independent call in parallel \
             (`page`: ListHangouts, then GetUsers, ListActivitiesOfHangouts and \
             ListMemoriesOfHangouts together, then GetFiles in chunks of at most 500 ids; \
             `detail`: GetHangouts with ListMemoriesOfHangouts, then GetFiles; `upload`: \
             CreateMemories, CreateUploads, AttachMemoryFiles; `me`: GetUsers). The gateway / \
             floor ratio is the gateway's overhead.\n\
             - Backend calls per request: from the gateway's own metrics endpoint: each \
             scenario runs 3 s more at the same concurrency between two scrapes; the figure \
             is the increase of `grpc_client_handled_total` (by backend) over the increase \
             of `gateway_graphql_operations_total`.\n\
             - Peer (Hive Gateway): {}",
            self.peer_method()
        );
        let _ = writeln!(out, "\n## Reproduce\n");
        let _ = writeln!(
            out,
            "```sh\ncargo xtask bench                 # SQLite\ncargo xtask bench --mysql         \
             # fresh databases on mysql://root@127.0.0.1:3306\ncargo xtask bench --only \
             page,scaling --seconds 10\n```\n\nThe JSON of the last run is in \
             `target/bench/results.json`.\n"
        );
        let _ = writeln!(out, "<details><summary>JSON of this run</summary>\n");
        let _ = writeln!(
            out,
            "```json\n{}\n```\n\n</details>\n",
            serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
        );
        let _ = writeln!(out, "{NOTES_MARKER}");
        if let Some(notes) = previous
            .and_then(|text| text.split_once(NOTES_MARKER))
            .map(|(_, notes)| notes.trim_start_matches('\n'))
        {
            out.push_str(notes);
        }
        out
    }

    fn peer_method(&self) -> String {
        let method = "`@graphql-hive/gateway` (Node.js, one process: its default `--fork 1`; \
             versions pinned in `xtask/bench-peer/package-lock.json`) serving a supergraph \
             composed by `@graphql-mesh/compose-cli` with the gRPC source `@omnigraph/grpc` \
             from the same protos, over the same backends with the gateway's client \
             certificate. Hive Gateway's JWT plugin cannot verify EdDSA (it uses \
             `jsonwebtoken`), so a small plugin in `xtask/bench-peer/gateway.config.ts` does: \
             the JWKS fetched once from our gateway, the Ed25519 signature checked with \
             Node's crypto, `exp` checked (not `iss`/`aud`, which ours also checks), and the \
             `sub` claim forwarded as `x-user-id`. The gRPC source exposes each RPC as a root \
             field without joins, so `me` is one request (GetUsers of the caller) but one \
             `page` is three sequential requests, timed together: ListHangouts; then \
             GetUsers, ListActivitiesOfHangouts and ListMemoriesOfHangouts in one document; \
             then GetFiles. The same closed loop, concurrency, warm-up, seconds and users as \
             the gateway runs, after them. The CPU figures of its runs are the backends' and \
             the load generator's; Hive Gateway's own CPU and memory are not sampled.";
        match &self.peer_not_measured {
            Some(reason) => format!("not measured: {reason}. When measured: {method}"),
            None => method.to_owned(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let runs: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|run| {
                let processes: serde_json::Map<String, serde_json::Value> = run
                    .processes
                    .iter()
                    .map(|process| {
                        (
                            process.name.to_owned(),
                            json!({
                                "cpu_ms_per_request": run.cpu_ms_per_request(process.name),
                                "peak_rss_mib": mib(process.peak_rss),
                                "peak_since_start": process.peak_since_start,
                            }),
                        )
                    })
                    .collect();
                json!({
                    "scenario": run.scenario.to_string(),
                    "target": run.target.name(),
                    "concurrency": run.concurrency,
                    "rate": run.rate,
                    "requests": run.stats.requests,
                    "errors": run.stats.errors,
                    "first_error": run.stats.first_error,
                    "seconds": run.stats.elapsed.as_secs_f64(),
                    "requests_per_second": run.stats.per_second(),
                    "p50_ms": run.stats.percentile_ms(0.5),
                    "p90_ms": run.stats.percentile_ms(0.9),
                    "p99_ms": run.stats.percentile_ms(0.99),
                    "max_ms": run.stats.percentile_ms(1.0),
                    "processes": processes,
                })
            })
            .collect();
        let calls: Vec<serde_json::Value> = self
            .calls
            .iter()
            .map(|calls| {
                json!({
                    "scenario": calls.scenario.to_string(),
                    "hangout_core": calls.hangout_core,
                    "file_core": calls.file_core,
                    "total": calls.total(),
                    "requests_counted": calls.requests,
                })
            })
            .collect();
        let idle: serde_json::Map<String, serde_json::Value> = self
            .idle
            .iter()
            .map(|(name, bytes)| ((*name).to_owned(), json!(mib(*bytes))))
            .collect();
        let peer_multiples: Vec<serde_json::Value> = [Scenario::Me, Scenario::Page(20)]
            .into_iter()
            .filter_map(|scenario| {
                self.peer_multiple(scenario).map(
                    |multiple| json!({ "scenario": scenario.to_string(), "multiple": multiple }),
                )
            })
            .collect();
        let abuse = self.abuse.as_ref().map(|abuse| {
            let stats = |stats: &Stats| {
                json!({
                    "requests": stats.requests,
                    "errors": stats.errors,
                    "p50_ms": stats.percentile_ms(0.5),
                    "p99_ms": stats.percentile_ms(0.99),
                })
            };
            let outcomes = |outcomes: &super::abuse::Outcomes| {
                json!({
                    "answered": outcomes.answered,
                    "refused": outcomes.refused,
                    "other": outcomes.other,
                })
            };
            json!({
                "rate": abuse.rate,
                "unattacked": stats(&abuse.unattacked),
                "attacked": stats(&abuse.attacked),
                "p99_ratio": abuse.p99_ratio(),
                "expensive": outcomes(&abuse.expensive),
                "sign_ins": outcomes(&abuse.sign_ins),
                "peak_rss_mib": abuse.processes.iter()
                    .map(|process| (process.name.to_owned(), json!(mib(process.peak_rss))))
                    .collect::<serde_json::Map<_, _>>(),
            })
        });
        json!({
            "abuse": abuse,
            "process": self.process.as_ref().map(super::process::ProcessRun::to_json),
            "live": self.live.as_ref().map(super::live::LiveRun::to_json),
            "date": self.date,
            "commit": self.commit,
            "command": self.command,
            "machine": {
                "cpu": self.machine.cpu,
                "cores": self.machine.cores,
                "memory_gib": self.machine.memory_gib,
                "kernel": self.machine.kernel,
            },
            "database": self.database,
            "load_average": self.load_average,
            "concurrency": self.concurrency,
            "seconds": self.seconds,
            "warmup_seconds": self.warmup,
            "data_set": {
                "users": self.seeded.users,
                "activities": self.seeded.activities,
                "hangouts": self.seeded.hangouts,
                "memories": self.seeded.memories,
                "seed_seconds": self.seeded.seconds,
            },
            "failed_probes": self.failed_probes.iter().map(|(scenario, error)| json!({ "scenario": scenario.to_string(), "error": error })).collect::<Vec<_>>(),
            "idle_rss_mib": idle,
            "before_load_rss_mib": self.loaded.iter().map(|(name, bytes)| ((*name).to_owned(), json!(mib(*bytes)))).collect::<serde_json::Map<_, _>>(),
            "build": if self.release { "release" } else { "debug" },
            "runs": runs,
            "peer": {
                "name": "Hive Gateway",
                "not_measured": self.peer_not_measured,
                "gateway_over_peer": peer_multiples,
            },
            "backend_calls_per_request": calls,
            "gateway_over_floor": self.scenarios().into_iter().filter_map(|scenario| {
                self.ratio(scenario).map(|ratio| json!({ "scenario": scenario.to_string(), "ratio": ratio }))
            }).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_goal_writes_its_bound_from_the_number_it_checks() {
        let idle = Goal::new(
            "gateway RSS idle",
            Unit::Megabytes,
            Bound::Below(40.0),
            12.3,
        )
        .check("12.3 MB".to_owned());
        assert_eq!(idle.target, "gateway RSS idle < 40 MB");
        assert_eq!(idle.met, Some(true));
        let share = Goal::new(
            "`thumbnails` req/s, of `page`'s:",
            Unit::Percent,
            Bound::AtLeast(0.95),
            0.9,
        )
        .check(String::new());
        assert_eq!(share.target, "`thumbnails` req/s, of `page`'s: ≥ 95 %");
        assert_eq!(share.met, Some(false));
        let latency = Goal::labeled(
            "`me` at half of peak",
            Unit::Milliseconds,
            "p50",
            Bound::Below(2.0),
            0.6,
        )
        .with("p99", Bound::Below(10.0), 14.1)
        .also(true, ", no request fails")
        .check(String::new());
        assert_eq!(
            latency.target,
            "`me` at half of peak: p50 < 2 ms, p99 < 10 ms, no request fails"
        );
        assert_eq!(latency.met, Some(false), "p99 is over its bound");
        let failed = Goal::new("`abuse`", Unit::Times, Bound::AtMost(2.0), 1.5)
            .also(false, ", no honest request fails")
            .check(String::new());
        assert_eq!(failed.target, "`abuse` ≤ 2 ×, no honest request fails");
        assert_eq!(failed.met, Some(false), "the condition in words fails it");
    }
}
