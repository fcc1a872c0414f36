//! `topology`: compose.yaml's production topology as processes on this machine, without
//! Docker: MariaDB (this machine's, with two fresh databases), an external S3 server (moto's,
//! a separate process, as MinIO is in compose), RabbitMQ and Redis (this machine's), the three
//! services with compose's production settings (no dev mode, a JWT signing key from a file,
//! JSON logs, live updates through the broker, shared rate limits in Redis, photos rendered by
//! a separate photo worker), and nginx in front from the production template. `topology.mjs`
//! then drives sign-up, a hangout, an upload, its download, its rendition and its deletion
//! through nginx; last, the gateway's log is read: with `GATEWAY_REQUEST_LOG=errors`, only
//! the requests that failed have their line.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use test_support::MotoServer;
use xshell::Shell;

use super::{Outcome, node_script, start_nginx, stop_nginx, which, write_nginx_config};
use crate::system::{self, MariaDbDatabases, Ports, System, free_ports, set_env};

pub async fn run(shell: &Shell, root: &Path, binaries: &Path, data: &Path) -> Outcome {
    if let Some(missing) = missing_parts().await {
        return Outcome::Skipped(missing);
    }
    let Some(nginx) = super::nginx_binary() else {
        return Outcome::Skipped("nginx is not installed".to_owned());
    };
    let Some(moto) = MotoServer::start().await else {
        return Outcome::Skipped("moto is not installed".to_owned());
    };
    let dir = data.join("topology");
    match run_with(shell, root, binaries, &dir, &nginx, &moto).await {
        Ok(outcome) => outcome,
        Err(error) => Outcome::Failed(format!("{error:#}")),
    }
}

/// What the topology needs that this machine lacks, if anything.
async fn missing_parts() -> Option<String> {
    if which("node").is_none() {
        return Some("node is not installed".to_owned());
    }
    if which("moto_server").is_none() {
        return Some("moto is not installed (pip install 'moto[server]')".to_owned());
    }
    if which("mariadb").is_none() {
        return Some("the mariadb client is not installed".to_owned());
    }
    for (name, port) in [("MariaDB", 3306), ("RabbitMQ", 5672), ("Redis", 6379)] {
        let answers = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        .is_ok_and(|connected| connected.is_ok());
        if !answers {
            return Some(format!("no {name} on 127.0.0.1:{port}"));
        }
    }
    None
}

async fn run_with(
    shell: &Shell,
    root: &Path,
    binaries: &Path,
    dir: &Path,
    nginx: &Path,
    moto: &MotoServer,
) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(dir)?;
    let ports = Ports::free()?;
    let [https, http] = free_ports::<2>()?;
    let mut specs = system::specs(ports, dir);
    let databases = MariaDbDatabases::create(shell, &mut specs, "topology")?;
    production_settings(&mut specs, root, moto, https);
    system::add_photo_worker(&mut specs, "photo-worker", moto.port(), 1)?;

    let outcome = async {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let mut system = System::start(&specs, binaries, system::Output::Files(logs.clone()))
            .await
            .context("the services did not start (logs in the topology folder)")?;
        super::wait_ready(ports.gateway).await?;
        let prefix = dir.join("nginx");
        write_nginx_config(root, &prefix, ports.gateway, https, http)?;
        let mut edge = start_nginx(nginx, &prefix).await?;
        let photo = dir.join("photo.jpg");
        std::fs::write(&photo, crate::mixed::photo_jpeg()?)?;
        let driven = node_script(
            root,
            "topology.mjs",
            &[
                format!("https://localhost:{https}"),
                root.join(".certs/ca.pem").display().to_string(),
                photo.display().to_string(),
            ],
        )
        .await;
        stop_nginx(&mut edge).await;
        system.stop().await;
        let logged = check_request_log(&logs.join("gateway.log"));
        anyhow::Ok(match (driven, logged) {
            (Outcome::Passed, Ok(())) => Outcome::Passed,
            (Outcome::Passed, Err(error)) => Outcome::Failed(format!("{error:#}")),
            (driven, _) => driven,
        })
    }
    .await;
    databases.drop(shell);
    if matches!(outcome, Ok(Outcome::Passed)) {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        println!("topology: logs kept in {}", dir.display());
    }
    outcome
}

/// compose.yaml's settings, plus what this check looks at: the bucket's CORS rules for the
/// edge's origin, deletions carried out within a second, and only failed requests logged.
fn production_settings(specs: &mut [system::Spec], root: &Path, moto: &MotoServer, https: u16) {
    system::production_settings(specs, root, &moto.endpoint());
    for spec in specs.iter_mut() {
        match spec.package {
            "file-core" => {
                set_env(
                    spec,
                    "FILE_CORE_S3_CORS_ORIGINS",
                    format!("https://localhost:{https}"),
                );
                set_env(spec, "FILE_CORE_DELETION_POLL", "1s");
            }
            "gateway" => set_env(spec, "GATEWAY_REQUEST_LOG", "errors"),
            _ => {}
        }
    }
}

/// With `GATEWAY_REQUEST_LOG=errors`, the gateway's `graphql request` lines are those of the
/// requests that failed, and there is at least one (the anonymous `me`).
fn check_request_log(log: &PathBuf) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("cannot read {}", log.display()))?;
    let mut failed = 0;
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if entry["fields"]["message"] != "graphql request" && entry["message"] != "graphql request"
        {
            continue;
        }
        let errors = entry["fields"]["errors"]
            .as_u64()
            .or_else(|| entry["errors"].as_u64())
            .context("a request line without its error count")?;
        anyhow::ensure!(
            errors > 0,
            "GATEWAY_REQUEST_LOG=errors logged a request without errors: {line}"
        );
        failed += 1;
    }
    anyhow::ensure!(
        failed > 0,
        "GATEWAY_REQUEST_LOG=errors logged no failed request"
    );
    Ok(())
}
