//! `cargo xtask bench`: speed and memory of the whole system, against its floor.
//!
//! Builds the services in release mode, starts them on free ports with a temporary data folder
//! (SQLite, or fresh MariaDB databases with `--mysql`), seeds a data set over gRPC, signs every
//! virtual user in through the gateway, then for each scenario runs a warm-up and a timed,
//! fixed-concurrency run through the gateway and the same run of bare gRPC calls (the floor).
//! It samples each process's CPU time and peak resident size around every timed run, runs `me`
//! and `page` again at half their peak rate for latency, counts backend calls per request
//! from the gateway's own metrics, and writes `BENCHMARKS.md`.
//!
//! Layout: `seed` (the data set), `load` (closed and open loops, percentiles), `scenarios`
//! (the GraphQL and floor requests), `procs` (`/proc` sampling), `metrics` (scrapes),
//! `grpc` (direct clients), `report` (Markdown and JSON).

mod abuse;
mod grpc;
mod live;
mod load;
mod metrics;
mod peer;
mod process;
mod procs;
mod report;
mod scenarios;
mod seed;
mod soak;

pub use seed::content_md5;

use std::{
    future::Future,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use xshell::{Shell, cmd};

use crate::system::{self, Ports, System};
use load::Stats;
use procs::Watched;
use report::{Calls, Measured, ProcessFigures, Report, Target};
use scenarios::{FloorClient, GraphqlClient, Scenario, VirtualUser};

#[derive(clap::Args)]
pub struct Bench {
    /// Run against fresh databases on the MariaDB at mysql://root@127.0.0.1:3306 instead of
    /// SQLite.
    #[arg(long)]
    mysql: bool,
    /// Virtual users (and concurrent requests) of every closed-loop run.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Requests in flight at once in the open-loop runs, and so connections to the gateway:
    /// the edge's pool of upstream connections (`keepalive 64` in nginx/). A client that opens
    /// a connection for every queued request turns a short stall into a storm of connections.
    #[arg(long, default_value_t = 64)]
    open_loop_connections: usize,
    /// Seconds of each timed run.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Seconds of warm-up before each timed run.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seeded users; the first `concurrency` of them are the active ones.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Hangouts of each user that takes no part in the load.
    #[arg(long, default_value_t = 50)]
    hangouts: usize,
    /// Hangouts of each active user (enough for the page of 100 of the scaling run).
    #[arg(long, default_value_t = 110)]
    active_hangouts: usize,
    /// The most memories a hangout of an active user has (counts spread from 0 to this).
    #[arg(long, default_value_t = 20)]
    memories: usize,
    /// Run only these scenarios (me, page, thumbnails, detail, upload, scaling, abuse,
    /// process, live); all by default.
    /// `abuse` and `live` run `page` too, for its rate.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Use debug binaries (to develop the benchmark; the figures mean little).
    #[arg(long)]
    debug: bool,
    /// Use the service binaries already built in this folder instead of building them (for
    /// example a patched gateway built elsewhere).
    #[arg(long)]
    binaries: Option<PathBuf>,
    /// The binaries the debug build of xtask built before it handed over to its release build.
    #[arg(long, hide = true)]
    built: Option<PathBuf>,
    /// Where to write the report; `BENCHMARKS.md` at the workspace root by default (the
    /// soak's report is printed, and written only here).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Instead of the scenarios: the mixed load at half of its peak for this many minutes,
    /// each process's resident size sampled (see `bench/soak.rs`).
    #[arg(long, value_name = "MINUTES")]
    soak: Option<u64>,
}

impl Bench {
    pub fn run(self, shell: &Shell, root: &Path) -> anyhow::Result<()> {
        crate::certs::ensure(root)?;
        let binaries = match self.binaries.as_ref().or(self.built.as_ref()) {
            Some(folder) => folder.clone(),
            None => system::build(shell, root, !self.debug)?,
        };
        if cfg!(debug_assertions) && !self.debug {
            return rerun_released(shell, root, &binaries);
        }
        if let Some(minutes) = self.soak {
            return self.soak(shell, &binaries, minutes);
        }
        let Prepared {
            data,
            ports,
            specs,
            databases,
            worker_metrics,
        } = self.prepare(shell, "bench", process::WORKER_JOBS)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let outcome = runtime.block_on(async {
            let mut system = System::start(&specs, &binaries, system::Output::Quiet).await?;
            let outcome = self
                .run_system(
                    shell,
                    root,
                    &data,
                    ports,
                    worker_metrics,
                    &system,
                    &binaries,
                )
                .await;
            system.stop().await;
            outcome
        });
        if let Some(databases) = databases {
            databases.drop(shell);
        }
        let written = outcome.and_then(|mut report| {
            report.commit = commit(shell);
            self.write(root, &report)
        });
        // Tens of thousands of small S3 objects: this takes a while, so after the report.
        let _ = std::fs::remove_dir_all(&data);
        written
    }

    /// Writes `BENCHMARKS.md` (keeping its hand-written notes) and the JSON, and prints the
    /// summary.
    fn write(&self, root: &Path, report: &Report) -> anyhow::Result<()> {
        let output = self
            .output
            .clone()
            .unwrap_or_else(|| root.join("BENCHMARKS.md"));
        let previous = std::fs::read_to_string(&output).ok();
        std::fs::write(&output, report.to_markdown(previous.as_deref()))?;
        let json_path = if self.output.is_some() {
            output.with_extension("json")
        } else {
            root.join("target/bench/results.json")
        };
        std::fs::create_dir_all(json_path.parent().context("no parent")?)?;
        std::fs::write(&json_path, serde_json::to_string_pretty(&report.to_json())?)?;
        println!("\n{}", report.summary_markdown());
        println!("wrote {} and {}", output.display(), json_path.display());
        Ok(())
    }

    fn wants(&self, name: &str) -> bool {
        self.only.is_empty()
            || self.only.iter().any(|wanted| {
                wanted == name || (name == "page" && (wanted == "abuse" || wanted == "live"))
            })
    }

    fn plan(&self) -> seed::Plan {
        seed::Plan {
            users: self.users.max(self.concurrency),
            hangouts_per_user: self.hangouts,
            active_users: self.concurrency,
            hangouts_per_active_user: self.active_hangouts,
            activities_per_user: 8,
            activities_per_hangout: 5,
            max_memories_per_hangout: self.memories,
            detail_memories: 24,
        }
    }

    #[allow(clippy::too_many_arguments, reason = "the state of one bench run")]
    async fn run_system(
        &self,
        shell: &Shell,
        root: &Path,
        data: &Path,
        ports: Ports,
        worker_metrics: u16,
        system: &System,
        binaries: &Path,
    ) -> anyhow::Result<Report> {
        let http = reqwest::Client::builder()
            .timeout(scenarios::REQUEST_TIMEOUT)
            .pool_idle_timeout(scenarios::IDLE_CONNECTION_TIMEOUT)
            .build()?;
        wait_ready(&http, ports.gateway).await?;
        let mut watched: Vec<Watched> = system
            .pids()
            .into_iter()
            .map(|(name, pid)| Watched { name, pid })
            .collect();
        watched.push(Watched {
            name: "load generator",
            pid: std::process::id(),
        });
        let idle = watched
            .iter()
            .map(|process| Ok((process.name, procs::memory(process.pid)?.0)))
            .collect::<anyhow::Result<Vec<_>>>()?;

        let backends = grpc::Backends::connect(root, ports.hangout_core, ports.file_core).await?;
        let (plan, seeded) = self
            .seed_and_settle(&backends, &http, ports, worker_metrics)
            .await?;
        let users = sign_in_all(&http, ports.gateway, &seeded.active).await?;
        let loaded = watched
            .iter()
            .map(|process| Ok((process.name, procs::memory(process.pid)?.0)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let graphql = GraphqlClient::new(ports.gateway, users.clone())?;
        let floor = FloorClient::new(backends.clone(), users.clone());

        let load_average = std::fs::read_to_string("/proc/loadavg")
            .map(|text| {
                text.split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let ticks = procs::clock_ticks();
        let (mut runs, answered, failed_probes) =
            self.closed_runs(&watched, ticks, &graphql, &floor).await?;
        self.half_peak_runs(&watched, ticks, &graphql, &floor, &mut runs)
            .await?;
        let live = self
            .live_run(&watched, ports, &graphql, &users, &runs)
            .await?;
        let process = self
            .process_run(&watched, ticks, &backends, &http, &users)
            .await?;
        let abuse = match runs
            .iter()
            .find(|run| run.scenario == Scenario::Page(20) && run.target == Target::Gateway)
            .map(|run| run.stats.per_second())
        {
            Some(peak) if self.wants("abuse") => {
                let settings = abuse::Settings {
                    binaries,
                    ports,
                    data,
                    window: Duration::from_secs(self.seconds.min(10)),
                    in_flight: self.open_loop_connections,
                    ticks,
                };
                Some(abuse::run(&settings, &watched, &seeded.active, (peak / 2.0).max(1.0)).await?)
            }
            _ => None,
        };
        let peer_not_measured = if self.wants("me") || self.wants("page") {
            self.run_peer(shell, root, data, ports, &watched, ticks, &users, &mut runs)
                .await
                .err()
                .map(|error| format!("{error:#}"))
        } else {
            Some("neither `me` nor `page` was run".to_owned())
        };
        if let Some(reason) = &peer_not_measured {
            println!("\n== peer (Hive Gateway) not measured: {reason}");
        }
        let calls = self
            .count_calls(ports.metrics[2], &graphql, &answered)
            .await?;
        Ok(Report {
            machine: report::Machine::detect(),
            date: now_utc(),
            commit: String::new(),
            database: if self.mysql { "MariaDB" } else { "SQLite" },
            command: self.command_line(),
            concurrency: self.concurrency,
            seconds: self.seconds,
            warmup: self.warmup,
            plan,
            seeded,
            idle,
            loaded,
            release: !self.debug,
            runs,
            calls,
            failed_probes,
            load_average,
            peer_not_measured,
            abuse,
            process,
            live,
        })
    }

    /// Seeds the plan's data, then waits until the seeded photos are processed and their
    /// outcomes reported, so that nothing of the seeding is still on the way when the timed
    /// runs begin.
    async fn seed_and_settle(
        &self,
        backends: &grpc::Backends,
        http: &reqwest::Client,
        ports: Ports,
        worker_metrics: u16,
    ) -> anyhow::Result<(seed::Plan, seed::Seeded)> {
        let plan = self.plan();
        println!(
            "seeding {} users ({} active with {} hangouts, the others {} hangouts), \
             memories up to {} per hangout…",
            plan.users,
            plan.active_users,
            plan.hangouts_per_active_user,
            plan.hangouts_per_user,
            plan.max_memories_per_hangout
        );
        let seeded = seed::seed(backends, plan, 8).await?;
        println!(
            "seeded {} users, {} activities, {} hangouts, {} memories in {:.1} s",
            seeded.users, seeded.activities, seeded.hangouts, seeded.memories, seeded.seconds
        );
        let waited = process::wait_for_seeded(http, worker_metrics, seeded.memories).await?;
        println!("the photo worker processed the seeded photos in {waited:.1} s more");
        // Their outcomes go on to hangout-core as events; none may still be on the way when
        // the timed runs begin.
        let relayed = process::wait_for_reports(http, ports.metrics[1], seeded.memories).await?;
        println!("file-core reported them to hangout-core in {relayed:.1} s more");
        Ok((plan, seeded))
    }

    /// Each wanted scenario at full concurrency, through the gateway (after a probe request:
    /// a scenario it cannot answer is reported, not timed) and through the floor: the runs,
    /// the scenarios the gateway answered, and the refused probes.
    async fn closed_runs(
        &self,
        watched: &[Watched],
        ticks: f64,
        graphql: &GraphqlClient,
        floor: &FloorClient,
    ) -> anyhow::Result<(Vec<Measured>, Vec<Scenario>, Vec<(Scenario, String)>)> {
        let mut runs = Vec::new();
        let mut scenarios = Vec::new();
        for (name, scenario) in [
            ("me", Scenario::Me),
            ("page", Scenario::Page(20)),
            ("thumbnails", Scenario::Thumbnails),
            ("detail", Scenario::Detail),
        ] {
            if self.wants(name) {
                scenarios.push(scenario);
            }
        }
        if self.wants("scaling") {
            scenarios.extend([Scenario::Page(1), Scenario::Page(100)]);
        }
        // Last: it adds rows.
        if self.wants("upload") {
            scenarios.push(Scenario::Upload);
        }
        let mut answered = Vec::new();
        let mut failed_probes = Vec::new();
        for &scenario in &scenarios {
            // One request first: a scenario the gateway cannot answer is reported, not timed.
            match graphql.send(scenario, 0).await {
                Ok(body) => {
                    println!("\n== {scenario}: probe answered {} bytes", body.len());
                    answered.push(scenario);
                    let client = graphql.clone();
                    let (stats, processes) = self
                        .measure(watched, ticks, move |user| {
                            let client = client.clone();
                            async move { client.send(scenario, user).await.map(drop) }
                        })
                        .await?;
                    print_run(scenario, "gateway", &stats);
                    runs.push(Measured::closed(
                        scenario,
                        Target::Gateway,
                        self.concurrency,
                        stats,
                        processes,
                    ));
                }
                Err(error) => {
                    println!("\n== {scenario}: the gateway failed the probe: {error:#}");
                    failed_probes.push((scenario, format!("{error:#}")));
                }
            }
            let client = floor.clone();
            let (stats, processes) = self
                .measure(watched, ticks, move |user| {
                    let client = client.clone();
                    async move { client.send(scenario, user).await }
                })
                .await?;
            print_run(scenario, "floor", &stats);
            runs.push(Measured::closed(
                scenario,
                Target::Floor,
                self.concurrency,
                stats,
                processes,
            ));
        }
        Ok((runs, answered, failed_probes))
    }

    /// `me` and `page` open-loop at half of the gateway's peak, through it and through the
    /// floor at the same rate.
    async fn half_peak_runs(
        &self,
        watched: &[Watched],
        ticks: f64,
        graphql: &GraphqlClient,
        floor: &FloorClient,
        runs: &mut Vec<Measured>,
    ) -> anyhow::Result<()> {
        for scenario in [Scenario::Me, Scenario::Page(20)] {
            let Some(peak) = runs
                .iter()
                .find(|run| run.scenario == scenario && run.target == Target::Gateway)
                .map(|run| run.stats.per_second())
            else {
                continue;
            };
            let rate = (peak / 2.0).max(1.0);
            let client = graphql.clone();
            runs.push(
                self.at_rate(
                    watched,
                    ticks,
                    scenario,
                    Target::HalfPeak,
                    rate,
                    move |user| {
                        let client = client.clone();
                        async move { client.send(scenario, user).await.map(drop) }
                    },
                )
                .await?,
            );
            let client = floor.clone();
            runs.push(
                self.at_rate(
                    watched,
                    ticks,
                    scenario,
                    Target::FloorAtHalfPeak,
                    rate,
                    move |user| {
                        let client = client.clone();
                        async move { client.send(scenario, user).await }
                    },
                )
                .await?,
            );
        }
        Ok(())
    }

    /// The `live` scenario, when wanted: sockets and events while `page` runs at half peak.
    async fn live_run(
        &self,
        watched: &[Watched],
        ports: Ports,
        graphql: &GraphqlClient,
        users: &[VirtualUser],
        runs: &[Measured],
    ) -> anyhow::Result<Option<live::LiveRun>> {
        if !self.wants("live") {
            return Ok(None);
        }
        {
            println!(
                "\n== live: {} sockets over {} hangouts…",
                live::SOCKETS,
                live::HANGOUTS
            );
            let gateway_pid = watched
                .iter()
                .find(|process| process.name == "gateway")
                .context("the gateway is not watched")?
                .pid;
            let peak = runs
                .iter()
                .find(|run| run.scenario == Scenario::Page(20) && run.target == Target::Gateway)
                .map(|run| run.stats.per_second())
                .context("`live` runs with `page`, whose peak it loads at half")?;
            let page_alone = runs
                .iter()
                .find(|run| run.scenario == Scenario::Page(20) && run.target == Target::HalfPeak)
                .map(|run| live::PageFigures::of(&run.stats));
            let rate = (peak / 2.0).max(1.0);
            let client = graphql.clone();
            let (concurrency, in_flight) = (self.concurrency, self.open_loop_connections);
            let window = Duration::from_secs(self.seconds.min(10));
            let page_load = async move {
                let stats = load::open_loop(rate, concurrency, in_flight, window, move |user| {
                    let client = client.clone();
                    async move { client.send(Scenario::Page(20), user).await.map(drop) }
                })
                .await?;
                print_run(
                    Scenario::Page(20),
                    &format!("gateway at half peak ({rate:.0}/s), with live"),
                    &stats,
                );
                Ok(live::PageFigures::of(&stats))
            };
            let settings = live::Settings {
                gateway: ports.gateway,
                gateway_pid,
                users,
                page_alone,
            };
            let run = live::run(settings, page_load).await?;
            println!(
                "   {} mutations, {} of {} events delivered: p50 {:.1} ms, p99 {:.1} ms; \
                 {:.1} kB of gateway memory per idle socket",
                run.mutations,
                run.delivered,
                run.expected,
                run.percentile_ms(0.5),
                run.percentile_ms(0.99),
                run.bytes_per_socket() / 1024.0
            );
            Ok(Some(run))
        }
    }

    /// The `process` scenario, when wanted: photos through the worker.
    async fn process_run(
        &self,
        watched: &[Watched],
        ticks: f64,
        backends: &grpc::Backends,
        http: &reqwest::Client,
        users: &[VirtualUser],
    ) -> anyhow::Result<Option<process::ProcessRun>> {
        if !self.wants("process") {
            return Ok(None);
        }
        {
            let worker = watched
                .iter()
                .find(|process| process.name == process::WORKER)
                .context("the photo worker is not watched")?
                .pid;
            let user = users.first().context("no signed-in user")?;
            let run = process::run(
                backends,
                http,
                worker,
                ticks,
                &user.user_id,
                &user.upload_hangout,
            )
            .await?;
            println!(
                "\n== process: {} photos of {:.1} MB: {:.0} ms of the worker's CPU each, {:.1} \
                 renditions per CPU second, worker peak RSS {:.1} MB, {:.1} s",
                run.photos,
                run.photo_bytes as f64 / 1_048_576.0,
                run.cpu_ms_per_photo(),
                run.renditions_per_cpu_second(),
                run.peak_rss as f64 / 1_048_576.0,
                run.seconds
            );
            Ok(Some(run))
        }
    }

    /// Starts the peer, runs `me` and `page` through it like through the gateway, stops it.
    #[allow(clippy::too_many_arguments, reason = "the state of one bench run")]
    async fn run_peer(
        &self,
        shell: &Shell,
        root: &Path,
        data: &Path,
        ports: Ports,
        watched: &[Watched],
        ticks: f64,
        users: &[VirtualUser],
        runs: &mut Vec<Measured>,
    ) -> anyhow::Result<()> {
        println!("\n== peer: starting Hive Gateway…");
        let peer = peer::Peer::start(shell, root, ports, data).await?;
        let outcome = self.measure_peer(&peer, watched, ticks, users, runs).await;
        peer.stop().await;
        outcome
    }

    async fn measure_peer(
        &self,
        peer: &peer::Peer,
        watched: &[Watched],
        ticks: f64,
        users: &[VirtualUser],
        runs: &mut Vec<Measured>,
    ) -> anyhow::Result<()> {
        let client = peer::PeerClient::new(peer.port, users.to_vec())?;
        for (name, scenario) in [("me", Scenario::Me), ("page", Scenario::Page(20))] {
            if !self.wants(name) {
                continue;
            }
            // Like the gateway's probe: a peer that cannot answer is reported, not timed.
            client
                .send(scenario, 0)
                .await
                .with_context(|| format!("the peer failed the {scenario} probe"))?;
            let sender = client.clone();
            let (stats, processes) = self
                .measure(watched, ticks, move |user| {
                    let sender = sender.clone();
                    async move { sender.send(scenario, user).await }
                })
                .await?;
            print_run(scenario, "Hive Gateway", &stats);
            runs.push(Measured::closed(
                scenario,
                Target::Peer,
                self.concurrency,
                stats,
                processes,
            ));
        }
        Ok(())
    }

    /// A timed open-loop run of `operation` at `rate`, with each process's CPU time and peak
    /// RSS sampled around it.
    async fn at_rate<F, Fut>(
        &self,
        watched: &[Watched],
        ticks: f64,
        scenario: Scenario,
        target: Target,
        rate: f64,
        operation: F,
    ) -> anyhow::Result<Measured>
    where
        F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let in_flight = self.open_loop_connections;
        let window = Duration::from_secs(self.seconds.min(10));
        let users = self.concurrency;
        let (stats, processes) = sampled(
            watched,
            ticks,
            load::open_loop(rate, users, in_flight, window, operation),
        )
        .await?;
        print_run(
            scenario,
            &format!("{} ({rate:.0}/s)", target.name()),
            &stats,
        );
        Ok(Measured::at_rate(
            scenario,
            target,
            (rate, in_flight),
            stats,
            processes,
        ))
    }

    /// A warm-up, then a timed closed-loop run with each process's CPU time and peak RSS
    /// sampled around it.
    async fn measure<F, Fut>(
        &self,
        watched: &[Watched],
        ticks: f64,
        operation: F,
    ) -> anyhow::Result<(Stats, Vec<ProcessFigures>)>
    where
        F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        load::closed_loop(
            self.concurrency,
            Duration::from_secs(self.warmup),
            operation.clone(),
        )
        .await;
        sampled(watched, ticks, async {
            Ok(load::closed_loop(
                self.concurrency,
                Duration::from_secs(self.seconds),
                operation,
            )
            .await)
        })
        .await
    }

    /// Backend calls per request of each scenario, from the gateway's own counters: a short
    /// closed-loop run per scenario between two scrapes of its metrics endpoint; requests are
    /// the GraphQL operations it counted, calls its gRPC client calls by backend.
    async fn count_calls(
        &self,
        metrics_port: u16,
        client: &GraphqlClient,
        scenarios: &[Scenario],
    ) -> anyhow::Result<Vec<Calls>> {
        let http = reqwest::Client::new();
        let mut calls = Vec::new();
        for &scenario in scenarios {
            let before = metrics::scrape(&http, metrics_port).await?;
            let sender = client.clone();
            load::closed_loop(self.concurrency, Duration::from_secs(3), move |user| {
                let sender = sender.clone();
                async move { sender.send(scenario, user).await.map(drop) }
            })
            .await;
            let after = metrics::scrape(&http, metrics_port).await?;
            let moved = |name: &str, label: &str| after.sum(name, label) - before.sum(name, label);
            let operations = moved("gateway_graphql_operations_total", "");
            let per_request = |calls: f64| calls / operations.max(1.0);
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a count"
            )]
            let counted = Calls {
                scenario,
                hangout_core: per_request(moved(
                    "grpc_client_handled_total",
                    "grpc_service=\"hangout.v1.",
                )),
                file_core: per_request(moved(
                    "grpc_client_handled_total",
                    "grpc_service=\"file.v1.",
                )),
                requests: operations as u64,
            };
            println!(
                "{scenario}: {:.2} hangout-core + {:.2} file-core calls per request ({} requests)",
                counted.hangout_core, counted.file_core, counted.requests
            );
            calls.push(counted);
        }
        Ok(calls)
    }

    fn command_line(&self) -> String {
        let mut command = "cargo xtask bench".to_owned();
        if self.mysql {
            command.push_str(" --mysql");
        }
        if self.debug {
            command.push_str(" --debug");
        }
        if let Some(folder) = &self.binaries {
            command.push_str(&format!(" --binaries {}", folder.display()));
        }
        if !self.only.is_empty() {
            command.push_str(&format!(" --only {}", self.only.join(",")));
        }
        command
    }
}

/// The bench's system before it starts.
struct Prepared {
    /// Where its data lives (removed afterwards).
    data: PathBuf,
    ports: Ports,
    specs: Vec<system::Spec>,
    databases: Option<system::MariaDbDatabases>,
    /// The photo worker's metrics port.
    worker_metrics: u16,
}

impl Bench {
    /// The three services with their rate limits raised and a photo worker running
    /// `worker_jobs` at once, on SQLite or `--mysql`, with their data in a fresh folder named
    /// for `purpose`.
    fn prepare(&self, shell: &Shell, purpose: &str, worker_jobs: u32) -> anyhow::Result<Prepared> {
        let data = std::env::temp_dir().join(format!("hangout-{purpose}-{}", std::process::id()));
        std::fs::create_dir_all(&data)?;
        let ports = Ports::free()?;
        let mut specs = system::specs(ports, &data);
        system::unlimit_gateway(&mut specs);
        let databases = if self.mysql {
            Some(system::MariaDbDatabases::create(
                shell, &mut specs, purpose,
            )?)
        } else {
            None
        };
        // After the databases: the worker uses file-core's.
        let worker_metrics =
            system::add_photo_worker(&mut specs, process::WORKER, ports.s3, worker_jobs)?;
        Ok(Prepared {
            data,
            ports,
            specs,
            databases,
            worker_metrics,
        })
    }

    /// The soak: the bench's system with its photo worker, on SQLite or `--mysql`.
    fn soak(&self, shell: &Shell, binaries: &Path, minutes: u64) -> anyhow::Result<()> {
        let Prepared {
            data,
            ports,
            specs,
            databases,
            ..
        } = self.prepare(shell, "soak", 1)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let outcome = runtime.block_on(async {
            let mut system = System::start(&specs, binaries, system::Output::Quiet).await?;
            crate::e2e::wait_ready(ports.gateway).await?;
            let database = if self.mysql { "MariaDB" } else { "SQLite" };
            let report = soak::run(&system, ports, minutes, database).await;
            system.stop().await;
            report
        });
        if let Some(databases) = databases {
            databases.drop(shell);
        }
        let _ = std::fs::remove_dir_all(&data);
        let report = outcome?;
        println!("\n{report}");
        if let Some(output) = &self.output {
            std::fs::write(output, &report)?;
        }
        Ok(())
    }
}

/// Runs this same command again from a release build of xtask, with the binaries just built.
///
/// The load generator shares the machine's two cores with the system it measures: unoptimised,
/// it took about an eighth of the CPU during `page` (parsing every response), and so stole it
/// from the services and the peer alike.
fn rerun_released(shell: &Shell, root: &Path, binaries: &Path) -> anyhow::Result<()> {
    // Built on its own, so that xtask's dependency features do not change the services' build.
    cmd!(shell, "cargo build --quiet --release -p xtask").run()?;
    let xtask = system::target_dir(root).join("release/xtask");
    let status = std::process::Command::new(&xtask)
        .args(std::env::args_os().skip(1))
        .arg("--built")
        .arg(binaries)
        .current_dir(root)
        .status()
        .with_context(|| format!("running {}", xtask.display()))?;
    anyhow::ensure!(
        status.success(),
        "the release build of the bench failed: {status}"
    );
    Ok(())
}

fn print_run(scenario: Scenario, target: &str, stats: &Stats) {
    println!(
        "{scenario} {target}: {:.0} req/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, {} errors{}",
        stats.per_second(),
        stats.percentile_ms(0.5),
        stats.percentile_ms(0.9),
        stats.percentile_ms(0.99),
        stats.errors,
        stats
            .first_error
            .as_deref()
            .map(|error| format!(" (first: {error})"))
            .unwrap_or_default()
    );
}

/// Signs each active user in through the gateway.
async fn sign_in_all(
    http: &reqwest::Client,
    port: u16,
    active: &[seed::ActiveUser],
) -> anyhow::Result<Vec<VirtualUser>> {
    let mut users = Vec::with_capacity(active.len());
    for user in active {
        let access_token = scenarios::sign_in(http, port, &user.email, seed::PASSWORD).await?;
        users.push(VirtualUser {
            user_id: user.user_id.clone(),
            access_token,
            detail_hangout: user.detail_hangout.clone(),
            upload_hangout: user.upload_hangout.clone(),
        });
    }
    Ok(users)
}

/// Polls `/readyz` until the gateway says both backends answer.
async fn wait_ready(http: &reqwest::Client, port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
        if ready {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the gateway did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn commit(shell: &Shell) -> String {
    let head = cmd!(shell, "git rev-parse --short HEAD")
        .quiet()
        .read()
        .unwrap_or_else(|_| "unknown".to_owned());
    let dirty = cmd!(shell, "git status --porcelain")
        .quiet()
        .read()
        .is_ok_and(|status| !status.trim().is_empty());
    if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    }
}

fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |text| text.trim().to_owned())
}

/// Runs `load` with each process's CPU time and peak RSS sampled around it.
async fn sampled(
    watched: &[Watched],
    ticks: f64,
    load: impl Future<Output = anyhow::Result<Stats>>,
) -> anyhow::Result<(Stats, Vec<ProcessFigures>)> {
    let peaks_reset = watched.iter().all(|process| procs::reset_peak(process.pid));
    let before = procs::snapshot(watched, ticks)?;
    let stats = load.await?;
    let cpu = procs::snapshot(watched, ticks)?.since(&before);
    let processes = watched
        .iter()
        .zip(cpu)
        .map(|(process, cpu_seconds)| {
            Ok(ProcessFigures {
                name: process.name,
                cpu_seconds,
                peak_rss: procs::memory(process.pid)?.1,
                peak_since_start: !peaks_reset,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((stats, processes))
}
