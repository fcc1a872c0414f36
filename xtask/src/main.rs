//! Developer automation, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! Every command runs from the workspace root, whatever the current directory.
#![allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

mod certs;
mod ci;
mod dev;

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
    /// Run every test of the workspace (MySQL variants too when MariaDB answers).
    Test(ci::Test),
    /// Exactly what `.ci/run` runs: format check, clippy, then the tests.
    Ci(ci::Ci),
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
        Command::Test(command) => command.run(&shell),
        Command::Ci(command) => command.run(&shell),
    }
}

/// The workspace root: the parent of this crate's folder.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
