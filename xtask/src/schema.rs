//! `cargo xtask schema [--check]`: the gateway's sorted SDL at `schema/schema.graphql`.
//! The gateway's own test `schema_is_up_to_date` fails when the committed file is stale.

use std::path::Path;

use xshell::{Shell, cmd};

const SCHEMA: &str = "schema/schema.graphql";

#[derive(clap::Args)]
pub struct Schema {
    /// Fail when the committed file differs instead of rewriting it.
    #[arg(long)]
    check: bool,
}

impl Schema {
    pub fn run(self, shell: &Shell, root: &Path) -> anyhow::Result<()> {
        let sdl = cmd!(shell, "cargo run --quiet -p gateway --bin export-schema").read()?;
        let sdl = format!("{}\n", sdl.trim_end());
        let path = root.join(SCHEMA);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == sdl {
            println!("{SCHEMA} is up to date");
            return Ok(());
        }
        anyhow::ensure!(
            !self.check,
            "{SCHEMA} is stale: run `cargo xtask schema` and commit"
        );
        std::fs::write(&path, sdl)?;
        println!("wrote {SCHEMA}");
        Ok(())
    }
}
