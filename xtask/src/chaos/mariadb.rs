//! A MariaDB server of the chaos run's own, on a temporary folder and a free port, so that it
//! can be killed (SIGKILL, as a crash) and started again on the same data without touching the
//! machine's server that the tests share.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// `--user=root` when running as root (the server refuses root otherwise); nothing for any
/// other user, whom the server runs as anyway.
fn user_argument() -> Option<&'static str> {
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    is_root.then_some("--user=root")
}

pub struct PrivateMariaDb {
    data: std::path::PathBuf,
    port: u16,
    server: Option<Child>,
}

impl PrivateMariaDb {
    /// Initialises a data folder under `dir` (root without a password, over TCP) and starts
    /// the server on it.
    ///
    /// # Errors
    /// When `mariadb-install-db` or the server fails.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let data = dir.join("data");
        std::fs::create_dir_all(dir)?;
        let installed = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .context("cannot run mariadb-install-db (is MariaDB installed?)")?;
        anyhow::ensure!(installed.success(), "mariadb-install-db failed");
        let mut database = Self {
            data,
            port: crate::system::free_port()?,
            server: None,
        };
        database.restart().await?;
        Ok(database)
    }

    /// `mysql://root@127.0.0.1:<port>/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates the databases `names`.
    ///
    /// # Errors
    /// When the client fails.
    pub fn create(&self, names: &[&str]) -> anyhow::Result<()> {
        for name in names {
            self.query("", &format!("create database {name}"))?;
        }
        Ok(())
    }

    /// Runs `sql` in `database` with the `mariadb` client; its rows, tab-separated.
    ///
    /// # Errors
    /// When the client fails.
    pub fn query(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let output = std::process::Command::new("mariadb")
            .args([
                "--protocol=tcp",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "-N",
                "-B",
            ])
            .arg(format!("-P{}", self.port))
            .arg("-e")
            .arg(sql)
            .args((!database.is_empty()).then_some(database))
            .output()
            .context("cannot run the mariadb client")?;
        anyhow::ensure!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// SIGKILL: the server stops at once, as in a crash.
    pub async fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill().await;
        }
    }

    /// Starts the server on its data and port, and waits until it answers.
    ///
    /// # Errors
    /// When it does not answer within 60 s.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        let server = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.data.display()))
            .arg(format!("--port={}", self.port))
            .arg(format!(
                "--socket={}",
                self.data.join("mysqld.sock").display()
            ))
            .args(user_argument())
            .args([
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start mariadbd")?;
        self.server = Some(server);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.query("", "select 1").is_err() {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the private MariaDB did not answer on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops the server for good.
    pub async fn stop(&mut self) {
        self.kill().await;
    }
}
