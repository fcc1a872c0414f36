//! `cargo xtask test` and `cargo xtask ci`.

use std::{net::TcpStream, time::Duration};

use xshell::{Shell, cmd};

/// The MariaDB every machine of this project runs.
const LOCAL_MYSQL: &str = "mysql://root@127.0.0.1:3306";

#[derive(clap::Args)]
pub struct Test {
    /// Fail instead of skipping the MySQL variants when no MySQL answers.
    #[arg(long)]
    require_mysql: bool,
}

impl Test {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let url = match std::env::var("TEST_MYSQL_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if mysql_answers() => Some(LOCAL_MYSQL.to_owned()),
            _ => None,
        };
        match &url {
            Some(url) => println!("MySQL tests run against {url}"),
            None if self.require_mysql => {
                anyhow::bail!("no MySQL at 127.0.0.1:3306 and TEST_MYSQL_URL is unset")
            }
            None => println!("no MySQL at 127.0.0.1:3306: MySQL variants are skipped"),
        }
        let _mysql = url.map(|url| shell.push_env("TEST_MYSQL_URL", url));
        cmd!(shell, "cargo test --workspace --all-targets").run()?;
        Ok(())
    }
}

fn mysql_answers() -> bool {
    let Ok(address) = "127.0.0.1:3306".parse() else {
        return false;
    };
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

#[derive(clap::Args)]
pub struct Ci;

impl Ci {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        cmd!(shell, "cargo fmt --all --check").run()?;
        cmd!(
            shell,
            "cargo clippy --workspace --all-targets -- -D warnings"
        )
        .run()?;
        Test {
            require_mysql: true,
        }
        .run(shell)
    }
}
