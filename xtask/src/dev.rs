//! `cargo xtask dev`: the whole system on embedded defaults, in the foreground.
//!
//! Makes certificates if missing, builds the service binaries, starts each with its local
//! defaults (SQLite files and the embedded S3 folder under `data/`), waits until each listens,
//! prints the endpoints, and on Ctrl-C (or when any service exits) stops them all with SIGTERM
//! so they drain cleanly.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use tokio::process::{Child, Command};
use xshell::{Shell, cmd};

/// One process of the system.
struct Service {
    package: &'static str,
    /// Where it listens once ready.
    listens_on: SocketAddr,
    /// What to tell the user about it.
    describe: &'static str,
}

fn services() -> Vec<Service> {
    vec![Service {
        package: "hangout-core",
        listens_on: SocketAddr::from(([127, 0, 0, 1], 50051)),
        describe: "gRPC (mTLS) for users, sessions, hangouts, activities and memories",
    }]
}

#[derive(clap::Args)]
pub struct Dev {
    /// Build and run optimised binaries.
    #[arg(long)]
    release: bool,
}

impl Dev {
    pub fn run(self, shell: &Shell, root: &Path) -> anyhow::Result<()> {
        crate::certs::ensure(root)?;
        let services = services();
        let mut build = vec!["build".to_owned()];
        for service in &services {
            build.push("-p".to_owned());
            build.push(service.package.to_owned());
        }
        if self.release {
            build.push("--release".to_owned());
        }
        cmd!(shell, "cargo {build...}").run()?;
        let profile = if self.release { "release" } else { "debug" };
        let binaries = target_dir(root).join(profile);
        std::fs::create_dir_all(root.join("data"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(supervise(&services, &binaries))
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

async fn supervise(services: &[Service], binaries: &Path) -> anyhow::Result<()> {
    let mut children = Vec::new();
    for service in services {
        let child = Command::new(binaries.join(service.package))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", service.package))?;
        children.push((service.package, child));
        wait_until_listening(service).await?;
        println!(
            "{:<13} {}  {}",
            service.package, service.listens_on, service.describe
        );
    }
    println!("\nRunning. Ctrl-C stops everything.");

    let exited = wait_for_any_exit(&mut children);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("\nstopping…"),
        name = exited => println!("{name} exited; stopping the rest…"),
    }
    for (name, child) in &mut children {
        stop(name, child).await;
    }
    Ok(())
}

async fn wait_until_listening(service: &Service) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(service.listens_on)
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "{} did not listen on {}",
                service.package,
                service.listens_on
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_any_exit(children: &mut [(&'static str, Child)]) -> &'static str {
    loop {
        for (name, child) in children.iter_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                return name;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
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
