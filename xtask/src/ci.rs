//! `cargo xtask test` and `cargo xtask ci`.

use std::{net::TcpStream, time::Duration};

use xshell::{Shell, cmd};

/// A server some tests need, as every machine of this project runs it.
struct TestServer {
    name: &'static str,
    /// The variable the tests read its URL from.
    variable: &'static str,
    address: &'static str,
    local_url: &'static str,
    /// What runs against it.
    tests: &'static str,
}

const MYSQL: TestServer = TestServer {
    name: "MySQL",
    variable: "TEST_MYSQL_URL",
    address: "127.0.0.1:3306",
    local_url: "mysql://root@127.0.0.1:3306",
    tests: "the MySQL variants",
};

const REDIS: TestServer = TestServer {
    name: "Redis",
    variable: "TEST_REDIS_URL",
    address: "127.0.0.1:6379",
    local_url: "redis://127.0.0.1:6379",
    tests: "the shared rate-limit tests",
};

const AMQP: TestServer = TestServer {
    name: "RabbitMQ",
    variable: "TEST_AMQP_URL",
    address: "127.0.0.1:5672",
    local_url: "amqp://guest:guest@127.0.0.1:5672/%2f",
    tests: "the broker tests",
};

/// Sets `server.variable` for the tests while the guard lives: its value when set, else the
/// local server when it answers; without either, an error when everything must run, else
/// the tests that need it skip.
fn test_service<'a>(
    shell: &'a Shell,
    require_all: bool,
    server: &TestServer,
) -> anyhow::Result<Option<xshell::PushEnv<'a>>> {
    let url = match std::env::var(server.variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if answers(server.address) => Some(server.local_url.to_owned()),
        _ => None,
    };
    match url {
        // URLs can hold passwords: only the name is printed.
        Some(url) => {
            println!("{} run against {}", server.tests, server.name);
            Ok(Some(shell.push_env(server.variable, url)))
        }
        None if require_all => anyhow::bail!(
            "no {} at {} and {} is unset",
            server.name,
            server.address,
            server.variable
        ),
        None => {
            println!(
                "no {} at {}: {} are skipped",
                server.name, server.address, server.tests
            );
            Ok(None)
        }
    }
}

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
        let _mysql = test_service(shell, require_all, &MYSQL)?;
        let _redis = test_service(shell, require_all, &REDIS)?;
        let _amqp = test_service(shell, require_all, &AMQP)?;
        run_counting(cmd!(shell, "cargo test --workspace --all-targets").into())?;
        if self.no_e2e {
            return Ok(());
        }
        crate::e2e::E2e {
            require_all,
            only: Vec::new(),
        }
        .run(shell, root)?;
        // The short chaos run on each backend: every fault once, then the consistency check.
        if let Some(missing) = crate::chaos::missing_parts()
            && !require_all
        {
            println!("chaos skipped: {missing}");
            return Ok(());
        }
        for sqlite in [false, true] {
            crate::chaos::Chaos {
                short: true,
                only: Vec::new(),
                users: 4,
                sqlite,
            }
            .run(shell, root)?;
        }
        Ok(())
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
