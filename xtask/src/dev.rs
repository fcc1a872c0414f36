//! `cargo xtask dev`: the whole system on embedded defaults, in the foreground.
//!
//! Makes certificates if missing, builds the service binaries and installs the GraphiQL
//! assets, starts every service with its local defaults (SQLite files and the embedded S3
//! folder under `data/`), prints the endpoints, and on Ctrl-C (or when any service exits)
//! stops them all with SIGTERM so they drain cleanly.

use std::path::Path;

use xshell::Shell;

use crate::system::{self, Ports, System};

#[derive(clap::Args)]
pub struct Dev {
    /// Build and run optimised binaries.
    #[arg(long)]
    release: bool,
}

impl Dev {
    pub fn run(self, shell: &Shell, root: &Path) -> anyhow::Result<()> {
        crate::certs::ensure(root)?;
        let binaries = system::build(shell, root, self.release)?;
        let data = root.join("data");
        std::fs::create_dir_all(&data)?;
        let specs = system::specs(Ports::DEFAULT, &data);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let mut system = System::start(&specs, &binaries, system::Output::Inherit).await?;
            println!();
            for spec in &specs {
                println!("{:<13} {}", spec.package, spec.describe);
            }
            println!("\nRunning on embedded defaults (data in ./data). Ctrl-C stops everything.");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => println!("\nstopping…"),
                name = system.any_exit() => println!("{name} exited; stopping the rest…"),
            }
            system.stop().await;
            anyhow::Ok(())
        })
    }
}
