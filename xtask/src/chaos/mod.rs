//! `cargo xtask chaos`: breaks each part of the production topology under the mixed load
//! (`crate::mixed`), one after the other, then checks that nothing was left inconsistent.
//!
//! The system: the services with compose's production settings and a photo worker, on a
//! MariaDB of their own (a private `mariadbd` on a temporary folder, so it can be killed; with
//! `--sqlite`, on SQLite files instead, and no `mariadb` fault),
//! moto's S3 server behind a TCP link that can be cut, this machine's RabbitMQ and Redis.
//! The faults, each for a few seconds after a calm stretch:
//! - hangout-core, file-core, the photo worker and the gateway: SIGKILL, then started again;
//! - `mariadb`: SIGKILL of the server, then started again on the same data;
//! - `s3`: every connection to moto cut and new ones refused (moto keeps its objects only in
//!   memory, so killing it would lose them: the link is what fails), then restored;
//! - `broker`: RabbitMQ's application stopped (`rabbitmqctl stop_app`), then started.
//!
//! Reported: outcomes by error code per phase, the recovery time after each fault (from the
//! restart to the end of the first flow with every step ok), and, once the sweepers' window
//! has passed, the inconsistencies between the two databases and the bucket (target 0), see
//! [`consistency`]. The run fails on any inconsistency, on INTERNAL_SERVER_ERROR, or when a
//! fault is never recovered from. `--short` (CI) keeps every fault but shortens the phases.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use test_support::{CuttableLink, MotoServer};
use xshell::Shell;

use crate::{
    mixed::MixedLoad,
    system::{self, Ports, Spec, System, set_env},
};

mod consistency;
mod databases;
mod mariadb;

use databases::Databases;

#[derive(clap::Args)]
pub struct Chaos {
    /// Short phases (CI): 3 s calm, 3 s down per fault.
    #[arg(long)]
    pub short: bool,
    /// Only these faults (hangout-core, file-core, photo-worker, gateway, mariadb, s3,
    /// broker); all by default.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Users of the mixed load.
    #[arg(long, default_value_t = 4)]
    pub users: usize,
    /// Both services on SQLite files (the embedded default) instead of a private MariaDB;
    /// the `mariadb` fault is left out.
    #[arg(long)]
    pub sqlite: bool,
}

/// What a chaos run needs that this machine lacks, if anything: moto, MariaDB's server
/// programs (for a private server), `rabbitmqctl` (see [`rabbitmqctl_command`]), and
/// RabbitMQ and Redis answering.
pub fn missing_parts() -> Option<String> {
    let broker_control = rabbitmqctl_command().remove(0);
    for program in [
        "moto_server",
        "mariadb-install-db",
        "mariadbd",
        "sqlite3",
        "mariadb",
        &broker_control,
    ] {
        let found = std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths)
                .chain([PathBuf::from("/usr/sbin")])
                .any(|dir| dir.join(program).is_file())
        });
        if !found {
            return Some(format!("{program} is not installed"));
        }
    }
    for (name, address) in [("RabbitMQ", "127.0.0.1:5672"), ("Redis", "127.0.0.1:6379")] {
        let answers = address.parse().is_ok_and(|address| {
            std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok()
        });
        if !answers {
            return Some(format!("no {name} on {address}"));
        }
    }
    None
}

const FAULTS: [&str; 7] = [
    "hangout-core",
    "file-core",
    "photo-worker",
    "gateway",
    "mariadb",
    "s3",
    "broker",
];

/// The bucket of the run.
const BUCKET: &str = "chaos-files";

/// What one fault did.
struct FaultReport {
    name: &'static str,
    recovery: Option<Duration>,
}

/// What the recovery time of `fault` measures.
fn measured_by(fault: &str) -> &'static str {
    match fault {
        "photo-worker" => " (the new worker's first photo rendered)",
        // The flows use no live updates; their return after a broker restart is the gateway's
        // broker tests' (`rabbitmqctl stop_app`/`start_app`).
        "broker" => " (flows only: they use no live updates)",
        _ => "",
    }
}

/// Where the parts of the system run.
struct Parts<'a> {
    system: System,
    specs: &'a [Spec],
    binaries: &'a Path,
    output: system::Output,
    database: Databases,
    link: CuttableLink,
}

impl Chaos {
    pub fn run(self, shell: &Shell, root: &Path) -> anyhow::Result<()> {
        if let Some(missing) = missing_parts() {
            anyhow::bail!("chaos cannot run: {missing}");
        }
        crate::certs::ensure(root)?;
        let binaries = system::build(shell, root, false)?;
        let dir = std::env::temp_dir().join(format!("hangout-chaos-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let result = runtime.block_on(self.run_in(root, &binaries, &dir));
        match &result {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(_) => println!("chaos: logs kept in {}", dir.join("logs").display()),
        }
        result
    }

    async fn run_in(&self, root: &Path, binaries: &Path, dir: &Path) -> anyhow::Result<()> {
        let Some(moto) = MotoServer::start().await else {
            anyhow::bail!("chaos needs moto: pip install 'moto[server]'");
        };
        let database = Databases::start(&dir.join("databases"), self.sqlite).await?;
        println!("chaos: on {}", database.backend());
        let link = CuttableLink::to(([127, 0, 0, 1], moto.port()).into()).await;
        let s3 = format!("http://{}", link.addr());
        let ports = Ports::free()?;
        let mut specs = system::specs(ports, dir);
        system::production_settings(&mut specs, root, &s3);
        system::unlimit_gateway(&mut specs);
        short_windows(&mut specs, &database)?;
        system::add_photo_worker(&mut specs, "photo-worker", link.addr().port(), 1)?;
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let output = system::Output::Files(logs);
        let system = System::start(&specs, binaries, output.clone())
            .await
            .context("the system did not start")?;
        let mut parts = Parts {
            system,
            specs: &specs,
            binaries,
            output,
            database,
            link,
        };
        let outcome = self.break_things(&mut parts, ports, &moto).await;
        parts.system.stop().await;
        if let Some(server) = parts.database.server() {
            server.stop().await;
        }
        outcome
    }

    async fn break_things(
        &self,
        parts: &mut Parts<'_>,
        ports: Ports,
        moto: &MotoServer,
    ) -> anyhow::Result<()> {
        crate::e2e::wait_ready(ports.gateway).await?;
        let (calm, down) = if self.short {
            (Duration::from_secs(3), Duration::from_secs(3))
        } else {
            (Duration::from_secs(10), Duration::from_secs(5))
        };
        let load =
            MixedLoad::sign_up(ports.gateway, self.users, crate::mixed::photo_jpeg()?).await?;
        let stop = Arc::new(AtomicBool::new(false));
        load.tally.set_phase("calm");
        let running = tokio::spawn({
            let load = Arc::clone(&load);
            let stop = Arc::clone(&stop);
            async move { load.run_closed(stop).await }
        });
        let mut reports = Vec::new();
        for fault in FAULTS {
            if !self.only.is_empty() && !self.only.iter().any(|name| name == fault) {
                continue;
            }
            // SQLite has no server: nothing to kill.
            if fault == "mariadb" && self.sqlite {
                continue;
            }
            load.tally.set_phase("calm");
            tokio::time::sleep(calm).await;
            println!("chaos: {fault} down for {} s", down.as_secs());
            load.tally.set_phase(fault);
            inject(parts, fault).await?;
            tokio::time::sleep(down).await;
            restore(parts, fault).await?;
            let restored = Instant::now();
            let recovery = match fault {
                // No flow waits for the worker: recovered when the new process has rendered a
                // photo (the queue it finds holds those confirmed while it was down).
                "photo-worker" => {
                    let metrics = spec_named(parts.specs, fault)?.listens_on;
                    rendered(metrics, restored, Duration::from_secs(60)).await
                }
                _ => recovered(&load, restored, Duration::from_secs(60)).await,
            };
            match recovery {
                Some(took) => println!("chaos: {fault} recovered in {} ms", took.as_millis()),
                None => println!("chaos: {fault} NOT recovered within 60 s"),
            }
            reports.push(FaultReport {
                name: fault,
                recovery,
            });
        }
        load.tally.set_phase("calm");
        tokio::time::sleep(calm).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = running.await;
        println!("chaos: load stopped; waiting for the sweepers' window");
        let settle = if self.short {
            Duration::from_secs(90)
        } else {
            Duration::from_secs(180)
        };
        let found = consistency::settle(&parts.database, moto, BUCKET, settle).await?;
        print_report(
            &load.tally.counts(),
            &reports,
            &found,
            load.tally.clean_flows(),
        );
        let internal: u64 = load
            .tally
            .counts()
            .values()
            .filter_map(|outcomes| outcomes.get("INTERNAL_SERVER_ERROR"))
            .sum();
        anyhow::ensure!(
            found.inconsistencies() == 0,
            "chaos: {} inconsistencies",
            found.inconsistencies()
        );
        anyhow::ensure!(
            internal == 0,
            "chaos: {internal} INTERNAL_SERVER_ERROR answers"
        );
        anyhow::ensure!(
            reports.iter().all(|report| report.recovery.is_some()),
            "chaos: a fault was never recovered from"
        );
        Ok(())
    }
}

/// Windows short enough that the sweepers and the reconciliation finish within the settle
/// time: uploads expire after 10 s and are swept 5 s later, and files without a memory are
/// found by a reconciliation every 5 s once 20 s old.
fn short_windows(specs: &mut [Spec], database: &Databases) -> anyhow::Result<()> {
    for spec in specs.iter_mut() {
        match spec.name {
            "hangout-core" => {
                set_env(
                    spec,
                    "HANGOUT_CORE_DATABASE_URL",
                    database.url("chaos_hangout"),
                );
                set_env(spec, "HANGOUT_CORE_UPLOAD_WINDOW", "10s");
                set_env(spec, "HANGOUT_CORE_PENDING_GRACE", "5s");
                set_env(spec, "HANGOUT_CORE_SWEEP_INTERVAL", "2s");
            }
            "file-core" => {
                set_env(spec, "FILE_CORE_DATABASE_URL", database.url("chaos_file"));
                set_env(spec, "FILE_CORE_S3_BUCKET", BUCKET);
                set_env(spec, "FILE_CORE_UPLOAD_URL_TTL", "10s");
                set_env(spec, "FILE_CORE_PENDING_GRACE", "5s");
                set_env(spec, "FILE_CORE_SWEEP_INTERVAL", "1s");
                set_env(spec, "FILE_CORE_DELETION_POLL", "1s");
                set_env(spec, "FILE_CORE_RECONCILE_INTERVAL", "5s");
                set_env(spec, "FILE_CORE_RECONCILE_SETTLE", "20s");
            }
            _ => {}
        }
    }
    database.create(&["chaos_hangout", "chaos_file"])
}

async fn inject(parts: &mut Parts<'_>, fault: &str) -> anyhow::Result<()> {
    match fault {
        "mariadb" => {
            if let Some(server) = parts.database.server() {
                server.kill().await;
            }
        }
        "s3" => parts.link.cut(),
        "broker" => rabbitmqctl("stop_app").await?,
        name => {
            let spec = spec_named(parts.specs, name)?;
            parts.system.kill(spec).await;
        }
    }
    Ok(())
}

async fn restore(parts: &mut Parts<'_>, fault: &str) -> anyhow::Result<()> {
    match fault {
        "mariadb" => {
            if let Some(server) = parts.database.server() {
                server.restart().await?;
            }
        }
        "s3" => parts.link.restore(),
        "broker" => rabbitmqctl("start_app").await?,
        name => {
            let spec = spec_named(parts.specs, name)?;
            parts
                .system
                .restart(spec, parts.binaries, &parts.output)
                .await?;
        }
    }
    Ok(())
}

fn spec_named<'a>(specs: &'a [Spec], name: &str) -> anyhow::Result<&'a Spec> {
    specs
        .iter()
        .find(|spec| spec.name == name)
        .with_context(|| format!("no process named {name}"))
}

/// How to run `rabbitmqctl` for the broker this machine's tests use: `CHAOS_RABBITMQCTL`
/// (say `docker exec <container> rabbitmqctl` where the broker is a container), else
/// `rabbitmqctl`.
fn rabbitmqctl_command() -> Vec<String> {
    std::env::var("CHAOS_RABBITMQCTL")
        .ok()
        .filter(|command| !command.trim().is_empty())
        .unwrap_or_else(|| "rabbitmqctl".to_owned())
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

async fn rabbitmqctl(action: &str) -> anyhow::Result<()> {
    let command = rabbitmqctl_command();
    let status = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .arg(action)
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .context("cannot run rabbitmqctl")?;
    anyhow::ensure!(status.success(), "rabbitmqctl {action} failed");
    Ok(())
}

/// How long after `restored` the photo worker whose metrics are at `metrics` counted its
/// first photo rendered; `None` when it did not within `limit`.
async fn rendered(
    metrics: std::net::SocketAddr,
    restored: Instant,
    limit: Duration,
) -> Option<Duration> {
    let http = reqwest::Client::new();
    let url = format!("http://{metrics}/metrics");
    loop {
        let text = match http.get(&url).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let rendered = text
            .lines()
            .find_map(|line| line.strip_prefix("photos_processed_total{outcome=\"ready\"} "))
            .and_then(|count| count.trim().parse::<f64>().ok())
            .is_some_and(|count| count > 0.0);
        if rendered {
            return Some(restored.elapsed());
        }
        if restored.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long after `restored` the first flow with every step ok ended; `None` when none did
/// within `limit`.
async fn recovered(load: &MixedLoad, restored: Instant, limit: Duration) -> Option<Duration> {
    loop {
        if let Some(at) = load.tally.last_clean()
            && at > restored
        {
            return Some(at - restored);
        }
        if restored.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn print_report(
    counts: &BTreeMap<String, BTreeMap<String, u64>>,
    reports: &[FaultReport],
    found: &consistency::Found,
    clean_flows: u64,
) {
    println!("\n## chaos\n");
    println!("| phase | outcomes | recovery |");
    println!("|---|---|---|");
    let recovery = |phase: &str| {
        reports
            .iter()
            .find(|report| report.name == phase)
            .map_or_else(String::new, |report| {
                let took = report.recovery.map_or_else(
                    || "none in 60 s".to_owned(),
                    |took| format!("{} ms", took.as_millis()),
                );
                format!("{took}{}", measured_by(phase))
            })
    };
    for (phase, outcomes) in counts {
        let text = outcomes
            .iter()
            .map(|(outcome, count)| format!("{outcome} {count}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!("| {phase} | {text} | {} |", recovery(phase));
    }
    println!("\nflows with every step ok: {clean_flows}");
    println!("{found}");
}
