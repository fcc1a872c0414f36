//! `cargo xtask test` and `cargo xtask ci`.

use std::{net::TcpStream, time::Duration};

use xshell::{Shell, cmd};

/// The MariaDB every machine of this project runs.
const LOCAL_MYSQL: &str = "mysql://root@127.0.0.1:3306";

/// The Redis every machine of this project runs.
const LOCAL_REDIS: &str = "redis://127.0.0.1:6379";

/// The RabbitMQ every machine of this project runs.
const LOCAL_AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[derive(clap::Args)]
pub struct Test {
    /// Fail instead of skipping what cannot run here: the MySQL variants without a MySQL, the
    /// end-to-end checks without node, chromium or nginx. Implied when `CI` is set.
    #[arg(long)]
    require_all: bool,
    /// Only `cargo test`, without the end-to-end checks of the real binaries.
    #[arg(long)]
    no_e2e: bool,
}

impl Test {
    pub fn run(self, shell: &Shell, root: &std::path::Path) -> anyhow::Result<()> {
        let require_all = self.require_all || std::env::var_os("CI").is_some();
        // The gateway's tests serve GraphiQL from its npm packages.
        if which_node() {
            crate::system::npm_ci(shell, &root.join("gateway/graphiql"))?;
        }
        let url = match std::env::var("TEST_MYSQL_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if answers("127.0.0.1:3306") => Some(LOCAL_MYSQL.to_owned()),
            _ => None,
        };
        match &url {
            Some(url) => println!("MySQL tests run against {url}"),
            None if require_all => {
                anyhow::bail!("no MySQL at 127.0.0.1:3306 and TEST_MYSQL_URL is unset")
            }
            None => println!("no MySQL at 127.0.0.1:3306: MySQL variants are skipped"),
        }
        let _mysql = url.map(|url| shell.push_env("TEST_MYSQL_URL", url));
        let redis = match std::env::var("TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if answers("127.0.0.1:6379") => Some(LOCAL_REDIS.to_owned()),
            _ => None,
        };
        match &redis {
            Some(url) => println!("shared rate-limit tests run against {url}"),
            None if require_all => {
                anyhow::bail!("no Redis at 127.0.0.1:6379 and TEST_REDIS_URL is unset")
            }
            None => println!("no Redis at 127.0.0.1:6379: the shared rate-limit tests are skipped"),
        }
        let _redis = redis.map(|url| shell.push_env("TEST_REDIS_URL", url));
        let amqp = match std::env::var("TEST_AMQP_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if answers("127.0.0.1:5672") => Some(LOCAL_AMQP.to_owned()),
            _ => None,
        };
        match &amqp {
            Some(_) => println!("broker tests run against RabbitMQ"),
            None if require_all => {
                anyhow::bail!("no RabbitMQ at 127.0.0.1:5672 and TEST_AMQP_URL is unset")
            }
            None => println!("no RabbitMQ at 127.0.0.1:5672: the broker tests are skipped"),
        }
        let _amqp = amqp.map(|url| shell.push_env("TEST_AMQP_URL", url));
        run_counting(cmd!(shell, "cargo test --workspace --all-targets").into())?;
        if self.no_e2e {
            return Ok(());
        }
        crate::e2e::E2e {
            require_all,
            only: Vec::new(),
        }
        .run(shell, root)
    }
}

fn which_node() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs a `cargo test` command, passing its output through, and ends with one summary line
/// over all test binaries (`N passed, N failed`), so the last line speaks for the whole run
/// rather than for whichever binary happened to run last.
fn run_counting(mut command: std::process::Command) -> anyhow::Result<()> {
    use std::io::{BufRead as _, BufReader};
    let mut child = command.stdout(std::process::Stdio::piped()).spawn()?;
    let (mut passed, mut failed) = (0_u64, 0_u64);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            if let Some(summary) = line.strip_prefix("test result: ") {
                passed += count_before(summary, " passed");
                failed += count_before(summary, " failed");
            }
        }
    }
    let status = child.wait()?;
    println!("\ntests: {passed} passed, {failed} failed");
    anyhow::ensure!(status.success(), "tests failed ({status})");
    Ok(())
}

/// The number just before `label` in a `test result:` line.
fn count_before(summary: &str, label: &str) -> u64 {
    summary
        .split(';')
        .find_map(|part| part.trim().split_once(label).map(|(number, _)| number))
        .and_then(|number| number.rsplit(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::count_before;

    #[test]
    fn reads_counts_of_a_summary_line() {
        let line = "FAILED. 55 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(count_before(line, " passed"), 55);
        assert_eq!(count_before(line, " failed"), 2);
        assert_eq!(count_before("ok. 0 passed; 0 failed", " passed"), 0);
    }
}

/// Whether something accepts connections on `address`.
fn answers(address: &str) -> bool {
    let Ok(address) = address.parse() else {
        return false;
    };
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

#[derive(clap::Args)]
pub struct Ci;

impl Ci {
    pub fn run(self, shell: &Shell, root: &std::path::Path) -> anyhow::Result<()> {
        cmd!(shell, "cargo fmt --all --check").run()?;
        cmd!(
            shell,
            "cargo clippy --workspace --all-targets -- -D warnings"
        )
        .run()?;
        Test {
            require_all: true,
            no_e2e: false,
        }
        .run(shell, root)
    }
}
