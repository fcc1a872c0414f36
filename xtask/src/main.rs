//! Developer automation, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! Every command runs from the workspace root, whatever the current directory.
#![allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

mod bench;
mod certs;
mod chaos;
mod ci;
mod dev;
mod e2e;
mod hooks;
mod mixed;
mod schema;
mod system;
mod trusted;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Hangout Planner developer automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a development CA and per-service certificates in `.certs/` (git-ignored).
    Certs(certs::Certs),
    /// Run the whole system on embedded defaults (SQLite, local folders) until Ctrl-C.
    Dev(dev::Dev),
    /// Run every test: `cargo test` (MySQL variants too when MariaDB answers), then the
    /// end-to-end checks of the real binaries.
    Test(ci::Test),
    /// Run the real binaries and check them as users meet them: GraphiQL in a browser, the
    /// nginx edge over HTTP/2, the GraphQL-over-HTTP audit.
    E2e(e2e::E2e),
    /// Rewrite `schema/schema.graphql` from the gateway (`--check`: fail when it is stale).
    Schema(schema::Schema),
    /// Write the trusted-documents manifest from the frontend's `.graphql` documents.
    TrustedDocuments(trusted::TrustedDocuments),
    /// Exactly what `.ci/run` runs: format check, clippy, then the tests.
    Ci(ci::Ci),
    /// Speed and memory of the release build against its floor; writes `BENCHMARKS.md`.
    Bench(bench::Bench),
    /// Break each part of the production topology under a mixed load (kill and restart the
    /// services, the database, cut S3, stop the broker), then check both databases and the
    /// bucket agree; `--short` for CI.
    Chaos(chaos::Chaos),
    /// Install (or `--remove`) an optional git pre-commit hook: fmt check, clippy on the
    /// crates a commit touches.
    Hooks(hooks::Hooks),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    let shell = xshell::Shell::new()?;
    shell.change_dir(&root);
    match cli.command {
        Command::Certs(command) => command.run(&root),
        Command::Dev(command) => command.run(&shell, &root),
        Command::Test(command) => command.run(&shell, &root),
        Command::E2e(command) => command.run(&shell, &root),
        Command::Schema(command) => command.run(&shell, &root),
        Command::TrustedDocuments(command) => command.run(),
        Command::Ci(command) => command.run(&shell, &root),
        Command::Bench(command) => command.run(&shell, &root),
        Command::Chaos(command) => command.run(&shell, &root),
        Command::Hooks(command) => command.run(&root),
    }
}

/// The workspace root: the parent of this crate's folder.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
