//! The two databases of a chaos run: on a private MariaDB server (which the `mariadb` fault
//! kills), or SQLite files (the embedded default, which has no server to kill). Read by the
//! consistency check with each one's command-line client.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::mariadb::PrivateMariaDb;

pub enum Databases {
    MariaDb(PrivateMariaDb),
    /// The folder of `<name>.db` files.
    Sqlite(PathBuf),
}

impl Databases {
    /// A private MariaDB under `dir`, or SQLite files there.
    ///
    /// # Errors
    /// When the MariaDB server does not start.
    pub async fn start(dir: &Path, sqlite: bool) -> anyhow::Result<Self> {
        if sqlite {
            std::fs::create_dir_all(dir)?;
            Ok(Self::Sqlite(dir.to_owned()))
        } else {
            Ok(Self::MariaDb(PrivateMariaDb::start(dir).await?))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::MariaDb(_) => "MariaDB",
            Self::Sqlite(_) => "SQLite",
        }
    }

    /// The URL a service opens the database `name` by.
    pub fn url(&self, name: &str) -> String {
        match self {
            Self::MariaDb(server) => server.url(name),
            Self::Sqlite(dir) => format!("sqlite:{}", dir.join(format!("{name}.db")).display()),
        }
    }

    /// Creates the databases `names` (SQLite files are created by the services).
    ///
    /// # Errors
    /// When the MariaDB client fails.
    pub fn create(&self, names: &[&str]) -> anyhow::Result<()> {
        match self {
            Self::MariaDb(server) => server.create(names),
            Self::Sqlite(_) => Ok(()),
        }
    }

    /// Runs `sql` on the database `name`; its rows, tab-separated.
    ///
    /// # Errors
    /// When the client fails.
    pub fn query(&self, name: &str, sql: &str) -> anyhow::Result<String> {
        match self {
            Self::MariaDb(server) => server.query(name, sql),
            Self::Sqlite(dir) => {
                let output = std::process::Command::new("sqlite3")
                    .args(["-batch", "-noheader", "-separator", "\t"])
                    .arg(dir.join(format!("{name}.db")))
                    .arg(sql)
                    .output()
                    .context("cannot run sqlite3 (is it installed?)")?;
                anyhow::ensure!(
                    output.status.success(),
                    "{sql}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                Ok(String::from_utf8_lossy(&output.stdout).into_owned())
            }
        }
    }

    /// The MariaDB server, for the `mariadb` fault.
    pub fn server(&mut self) -> Option<&mut PrivateMariaDb> {
        match self {
            Self::MariaDb(server) => Some(server),
            Self::Sqlite(_) => None,
        }
    }
}
