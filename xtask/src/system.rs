//! Running the system's binaries as real processes: build them, start them in dependency
//! order, wait until each listens, stop them all with SIGTERM so they drain.
//! Shared by `cargo xtask dev` (default ports, `data/`) and `cargo xtask e2e` (free ports, a
//! temporary folder).

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use tokio::process::{Child, Command};
use xshell::{Shell, cmd};

/// Every package with a service binary, in start order.
pub const PACKAGES: [&str; 3] = ["hangout-core", "file-core", "gateway"];

/// Where each process listens.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub hangout_core: u16,
    pub file_core: u16,
    pub s3: u16,
    pub gateway: u16,
    /// The internal metrics endpoints, in [`PACKAGES`] order.
    pub metrics: [u16; 3],
}

impl Ports {
    /// The defaults of the services' own configuration.
    pub const DEFAULT: Self = Self {
        hangout_core: 50051,
        file_core: 50052,
        s3: 9000,
        gateway: 8080,
        metrics: [9181, 9182, 9180],
    };

    /// Ports the OS says are free now, all different.
    pub fn free() -> anyhow::Result<Self> {
        let [
            hangout_core,
            file_core,
            s3,
            gateway,
            metrics_0,
            metrics_1,
            metrics_2,
        ] = free_ports::<7>()?;
        Ok(Self {
            hangout_core,
            file_core,
            s3,
            gateway,
            metrics: [metrics_0, metrics_1, metrics_2],
        })
    }
}

/// `N` different ports free at this moment. Every listener is held until all are bound: a
/// port released at once can be handed out again by the next bind (it happened: the same
/// port for a service and its metrics endpoint).
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// A port free at this moment.
pub fn free_port() -> anyhow::Result<u16> {
    let [port] = free_ports::<1>()?;
    Ok(port)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One process to start.
pub struct Spec {
    /// The binary.
    pub package: &'static str,
    /// What the process is called in output and logs (the package, unless one package runs
    /// twice, as file-core does with a photo worker in the bench).
    pub name: &'static str,
    pub listens_on: SocketAddr,
    pub describe: String,
    pub env: Vec<(String, String)>,
}

/// Runtime threads of each service. Three services on one machine, each with a thread per CPU,
/// spend CPU on threads waking each other to share work; one each cut the CPU per `me` of the
/// gateway and hangout-core by a fifth on the 2-CPU benchmark host (BENCHMARKS.md, item 25).
const WORKER_THREADS: &str = "1";

/// The three services wired to each other on `ports`, with their data under `data`.
pub fn specs(ports: Ports, data: &Path) -> Vec<Spec> {
    let env = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect()
    };
    let sqlite = |name: &str| format!("sqlite:{}", data.join(name).display());
    vec![
        Spec {
            package: "hangout-core",
            name: "hangout-core",
            listens_on: loopback(ports.hangout_core),
            describe: "gRPC (mTLS): users, sessions, hangouts, activities, memories".to_owned(),
            env: env(&[
                (
                    "HANGOUT_CORE_LISTEN_ADDR",
                    loopback(ports.hangout_core).to_string(),
                ),
                ("HANGOUT_CORE_DATABASE_URL", sqlite("hangout-core.db")),
                // Freed memory back to the OS at once (see hangout-core's main.rs).
                ("MIMALLOC_PURGE_DELAY", "0".to_owned()),
                // The three services share this machine's CPUs (BENCHMARKS.md, item 25).
                ("HANGOUT_CORE_WORKER_THREADS", WORKER_THREADS.to_owned()),
                (
                    "HANGOUT_CORE_METRICS_ADDR",
                    loopback(ports.metrics[0]).to_string(),
                ),
            ]),
        },
        Spec {
            package: "file-core",
            name: "file-core",
            listens_on: loopback(ports.file_core),
            describe: format!(
                "gRPC (mTLS): photo files; embedded S3 at http://127.0.0.1:{}",
                ports.s3
            ),
            env: env(&[
                (
                    "FILE_CORE_LISTEN_ADDR",
                    loopback(ports.file_core).to_string(),
                ),
                ("FILE_CORE_DATABASE_URL", sqlite("file-core.db")),
                // The three services share this machine's CPUs (BENCHMARKS.md, item 25).
                ("FILE_CORE_WORKER_THREADS", WORKER_THREADS.to_owned()),
                (
                    "FILE_CORE_METRICS_ADDR",
                    loopback(ports.metrics[1]).to_string(),
                ),
                (
                    "FILE_CORE_S3_EMBEDDED_DIR",
                    data.join("s3").display().to_string(),
                ),
                ("FILE_CORE_S3_EMBEDDED_ADDR", loopback(ports.s3).to_string()),
                (
                    "FILE_CORE_HANGOUT_CORE_URL",
                    format!("https://127.0.0.1:{}", ports.hangout_core),
                ),
            ]),
        },
        Spec {
            package: "gateway",
            name: "gateway",
            listens_on: loopback(ports.gateway),
            describe: format!(
                "GraphQL http://127.0.0.1:{0}/graphql  GraphiQL http://127.0.0.1:{0}/graphiql",
                ports.gateway
            ),
            env: env(&[
                ("GATEWAY_LISTEN_ADDR", loopback(ports.gateway).to_string()),
                (
                    "GATEWAY_HANGOUT_CORE_URL",
                    format!("https://127.0.0.1:{}", ports.hangout_core),
                ),
                (
                    "GATEWAY_FILE_CORE_URL",
                    format!("https://127.0.0.1:{}", ports.file_core),
                ),
                ("GATEWAY_DEV_MODE", "true".to_owned()),
                // The three services share this machine's CPUs (BENCHMARKS.md, item 25).
                ("GATEWAY_WORKER_THREADS", WORKER_THREADS.to_owned()),
                (
                    "GATEWAY_METRICS_ADDR",
                    loopback(ports.metrics[2]).to_string(),
                ),
            ]),
        },
    ]
}

/// Adds a photo worker named `name` to `specs` (file-core in the worker role, running `jobs`
/// at once), on file-core's database and the S3 server at `s3_port`, and leaves processing to
/// it; returns the worker's metrics port.
///
/// # Errors
/// When there is no file-core spec, or no port is free.
pub fn add_photo_worker(
    specs: &mut Vec<Spec>,
    name: &'static str,
    s3_port: u16,
    jobs: u32,
) -> anyhow::Result<u16> {
    let metrics_port = free_port()?;
    let file_core = specs
        .iter_mut()
        .find(|spec| spec.package == "file-core")
        .context("no file-core to add a worker to")?;
    set_env(file_core, "FILE_CORE_PROCESSING_WORKERS", "0");
    // file-core's own settings (database, bucket, credentials, windows), then the worker's.
    let mut worker = Spec {
        package: "file-core",
        name,
        listens_on: loopback(metrics_port),
        describe: "photo worker (file-core in the worker role)".to_owned(),
        env: file_core.env.clone(),
    };
    worker.env.retain(|(key, _)| {
        !key.starts_with("FILE_CORE_S3_EMBEDDED_")
            && key != "FILE_CORE_S3_CREATE_BUCKET"
            && key != "FILE_CORE_S3_CORS_ORIGINS"
    });
    for (variable, value) in [
        ("FILE_CORE_ROLE", "worker".to_owned()),
        ("FILE_CORE_S3_MODE", "external".to_owned()),
        (
            "FILE_CORE_S3_ENDPOINT",
            format!("http://127.0.0.1:{s3_port}"),
        ),
        ("FILE_CORE_PROCESSING_WORKERS", jobs.to_string()),
        ("FILE_CORE_WORKER_THREADS", "1".to_owned()),
        ("FILE_CORE_METRICS_ADDR", loopback(metrics_port).to_string()),
    ] {
        set_env(&mut worker, variable, value);
    }
    specs.push(worker);
    Ok(metrics_port)
}

/// Sets `variable` of `spec` to `value`, replacing what it had.
pub fn set_env(spec: &mut Spec, variable: &str, value: impl Into<String>) {
    spec.env.retain(|(key, _)| key != variable);
    spec.env.push((variable.to_owned(), value.into()));
}

/// The RabbitMQ and Redis this machine runs for tests (CI starts them).
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// compose.yaml's production settings on loopback, where they differ from `cargo xtask dev`:
/// no dev mode (a JWT signing key from `.certs/`, so tokens outlive a gateway restart; no
/// GraphiQL), JSON logs, live updates through RabbitMQ, rate limits in Redis, and file-core on
/// the external S3 at `s3_endpoint` (creating its bucket, as compose's job does).
pub fn production_settings(specs: &mut [Spec], root: &Path, s3_endpoint: &str) {
    let signing_key = root.join(".certs/jwt-ed25519.pem");
    for spec in specs.iter_mut() {
        match spec.package {
            "hangout-core" => {
                set_env(spec, "HANGOUT_CORE_LOG_FORMAT", "json");
                set_env(spec, "HANGOUT_CORE_BROKER_URL", AMQP_URL);
            }
            "file-core" => {
                spec.env
                    .retain(|(key, _)| !key.starts_with("FILE_CORE_S3_EMBEDDED_"));
                set_env(spec, "FILE_CORE_LOG_FORMAT", "json");
                set_env(spec, "FILE_CORE_S3_MODE", "external");
                set_env(spec, "FILE_CORE_S3_ENDPOINT", s3_endpoint);
                set_env(spec, "FILE_CORE_S3_CREATE_BUCKET", "true");
                set_env(spec, "FILE_CORE_S3_SERVER_SIDE_ENCRYPTION", "none");
            }
            _ => {
                spec.env.retain(|(key, _)| key != "GATEWAY_DEV_MODE");
                set_env(
                    spec,
                    "GATEWAY_JWT_SIGNING_KEY",
                    signing_key.display().to_string(),
                );
                set_env(spec, "GATEWAY_LOG_FORMAT", "json");
                set_env(spec, "GATEWAY_REDIS_URL", REDIS_URL);
                set_env(spec, "GATEWAY_BROKER_URL", AMQP_URL);
                set_env(spec, "GATEWAY_TRUSTED_PROXIES", "127.0.0.1/32,::1/128");
            }
        }
    }
}

/// Raises the gateway's rate limits far above what one load generator sends (all from one
/// address): the limiter still runs, and its cost is measured, but it never refuses.
pub fn unlimit_gateway(specs: &mut [Spec]) {
    for spec in specs.iter_mut().filter(|spec| spec.package == "gateway") {
        for variable in [
            "GATEWAY_RATE_LIMIT_PER_ADDRESS",
            "GATEWAY_RATE_LIMIT_PER_USER",
            "GATEWAY_RATE_LIMIT_AUTH_PER_ADDRESS",
        ] {
            set_env(spec, variable, "1000000/s,1000000");
        }
        // The `live` scenario's sockets all come from this machine, some 60 per user.
        for (variable, value) in [
            ("GATEWAY_WS_MAX_SOCKETS_PER_ADDRESS", "100000"),
            ("GATEWAY_WS_MAX_SOCKETS_PER_USER", "10000"),
            ("GATEWAY_WS_MAX_SUBSCRIPTIONS_PER_USER", "10000"),
        ] {
            set_env(spec, variable, value);
        }
        // Estimated cost: a page of 20 is about 1,300 of it.
        for variable in [
            "GATEWAY_COST_LIMIT_PER_ADDRESS",
            "GATEWAY_COST_LIMIT_PER_USER",
        ] {
            set_env(spec, variable, "1000000000/s,1000000000");
        }
    }
}

/// The MariaDB this machine runs for tests and benchmarks.
pub const MARIADB: &str = "mysql://root@127.0.0.1:3306";

/// Fresh MariaDB databases on [`MARIADB`], one per backend, dropped by [`Self::drop`].
pub struct MariaDbDatabases {
    names: Vec<String>,
}

impl MariaDbDatabases {
    /// Creates `<prefix>_hangout_<pid>` and `<prefix>_file_<pid>` and points hangout-core's
    /// and file-core's specs at them.
    ///
    /// # Errors
    /// When the `mariadb` client cannot create them.
    pub fn create(shell: &Shell, specs: &mut [Spec], prefix: &str) -> anyhow::Result<Self> {
        let suffix = std::process::id();
        let mut databases = Self { names: Vec::new() };
        for spec in specs.iter_mut() {
            let (variable, name) = match spec.package {
                "hangout-core" => (
                    "HANGOUT_CORE_DATABASE_URL",
                    format!("{prefix}_hangout_{suffix}"),
                ),
                "file-core" if spec.name == "file-core" => {
                    ("FILE_CORE_DATABASE_URL", format!("{prefix}_file_{suffix}"))
                }
                _ => continue,
            };
            let sql = format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}");
            cmd!(shell, "mariadb -h 127.0.0.1 -u root -e {sql}")
                .quiet()
                .run()
                .with_context(|| format!("cannot create a database on {MARIADB}"))?;
            set_env(spec, variable, format!("{MARIADB}/{name}"));
            databases.names.push(name);
        }
        Ok(databases)
    }

    /// Drops the databases.
    pub fn drop(self, shell: &Shell) {
        for name in self.names {
            let sql = format!("DROP DATABASE IF EXISTS {name}");
            let _ = cmd!(shell, "mariadb -h 127.0.0.1 -u root -e {sql}")
                .quiet()
                .run();
        }
    }
}

/// Builds the service binaries and the GraphiQL assets; returns the folder of the binaries.
pub fn build(shell: &Shell, root: &Path, release: bool) -> anyhow::Result<PathBuf> {
    let mut arguments = vec!["build".to_owned()];
    for package in PACKAGES {
        arguments.push("-p".to_owned());
        arguments.push(package.to_owned());
    }
    if release {
        arguments.push("--release".to_owned());
    }
    cmd!(shell, "cargo {arguments...}").run()?;
    npm_ci(shell, &root.join("gateway/graphiql"))?;
    Ok(target_dir(root).join(if release { "release" } else { "debug" }))
}

/// Cargo's target folder: `CARGO_TARGET_DIR`, or `target/` in the workspace.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Installs the npm packages of `folder` from its lock file, unless already installed.
pub fn npm_ci(shell: &Shell, folder: &Path) -> anyhow::Result<()> {
    if !folder.join("package.json").is_file() || folder.join("node_modules").is_dir() {
        return Ok(());
    }
    let _dir = shell.push_dir(folder);
    cmd!(shell, "npm ci --no-audit --no-fund")
        .run()
        .with_context(|| format!("npm ci in {} (is Node.js installed?)", folder.display()))?;
    Ok(())
}

/// Running processes, stopped (SIGTERM, then SIGKILL after 15 s) on [`System::stop`] or drop.
pub struct System {
    children: Vec<(&'static str, Child)>,
}

/// Where the processes' output goes.
#[derive(Clone, Debug)]
pub enum Output {
    /// The terminal, at the services' default levels.
    Inherit,
    /// Warnings and errors only, on stderr.
    Quiet,
    /// `<dir>/<package>.log`, stdout and stderr, at the level `RUST_LOG` of the specs sets.
    Files(PathBuf),
}

impl System {
    /// Starts each spec in order and waits until it listens.
    pub async fn start(specs: &[Spec], binaries: &Path, output: Output) -> anyhow::Result<Self> {
        let mut system = Self {
            children: Vec::new(),
        };
        for spec in specs {
            let child = spawn(spec, binaries, &output)?;
            system.children.push((spec.name, child));
            wait_until_listening(spec).await?;
        }
        Ok(system)
    }

    /// Kills the process of `spec` with SIGKILL, as a crash would: no drain, nothing flushed.
    pub async fn kill(&mut self, spec: &Spec) {
        if let Some((_, child)) = self
            .children
            .iter_mut()
            .find(|(name, _)| *name == spec.name)
        {
            let _ = child.kill().await;
        }
    }

    /// Starts the process of `spec` again (after [`System::kill`]) and waits until it listens;
    /// its output goes where `output` says, after what the killed one wrote.
    pub async fn restart(
        &mut self,
        spec: &Spec,
        binaries: &Path,
        output: &Output,
    ) -> anyhow::Result<()> {
        let child = spawn(spec, binaries, output)?;
        match self
            .children
            .iter_mut()
            .find(|(name, _)| *name == spec.name)
        {
            Some((_, slot)) => *slot = child,
            None => self.children.push((spec.name, child)),
        }
        wait_until_listening(spec).await
    }

    /// The process id of each running process, with its name, in start order.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.children
            .iter()
            .filter_map(|(name, child)| Some((*name, child.id()?)))
            .collect()
    }

    /// Completes when any process exits; returns its package name.
    pub async fn any_exit(&mut self) -> &'static str {
        loop {
            for (name, child) in &mut self.children {
                if let Ok(Some(_)) = child.try_wait() {
                    return name;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops every process, last started first.
    pub async fn stop(&mut self) {
        while let Some((name, mut child)) = self.children.pop() {
            stop(name, &mut child).await;
        }
    }
}

fn spawn(spec: &Spec, binaries: &Path, output: &Output) -> anyhow::Result<Child> {
    let mut command = Command::new(binaries.join(spec.package));
    command.envs(spec.env.iter().cloned()).kill_on_drop(true);
    match output {
        Output::Inherit => {}
        Output::Quiet => {
            command
                .stdout(std::process::Stdio::null())
                .env("RUST_LOG", "warn");
        }
        Output::Files(dir) => {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{}.log", spec.name)))?;
            command.stderr(log.try_clone()?).stdout(log);
        }
    }
    command
        .spawn()
        .with_context(|| format!("cannot start {}", spec.name))
}

async fn wait_until_listening(spec: &Spec) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(spec.listens_on)
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{} did not listen on {}", spec.name, spec.listens_on);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM, then up to 15 s to drain, then SIGKILL.
async fn stop(name: &str, child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
        Ok(_) => println!("{name} stopped"),
        Err(_) => {
            let _ = child.kill().await;
            println!("{name} killed after 15 s");
        }
    }
}
