//! `cargo xtask certs`: a development CA and certificates for every party.
//!
//! Server certificates carry the service's DNS name, `localhost` and `127.0.0.1`, and serve as
//! the service's client certificate too (file-core calls hangout-core); the gateway's client
//! certificate carries only `gateway`, the name the services allow by default. The edge
//! certificate is nginx's for `localhost`. `jwt-ed25519.pem` is a gateway JWT signing key for
//! compose. Keys are written with mode 0600.

use std::path::Path;

use proto::dev_certs::{DevCa, write_pair};

/// Where certificates go, relative to the workspace root.
pub const CERTS_DIR: &str = ".certs";

/// Servers of the internal gRPC network.
const SERVERS: [&str; 2] = ["hangout-core", "file-core"];

/// What the certificates written now are like; folders of an older kind are made anew by
/// [`ensure`] (version 2: server certificates also allow client authentication).
const GENERATION: &str = "2";
const GENERATION_FILE: &str = "generation";

#[derive(clap::Args)]
pub struct Certs {
    /// Replace existing certificates (every party must then restart).
    #[arg(long)]
    force: bool,
}

impl Certs {
    pub fn run(self, root: &Path) -> anyhow::Result<()> {
        let dir = root.join(CERTS_DIR);
        if !self.force && dir.join("ca.pem").is_file() {
            println!(
                "certificates exist in {} (use --force to replace them)",
                dir.display()
            );
            return Ok(());
        }
        write_all(&dir)?;
        println!(
            "wrote a development CA and certificates to {}",
            dir.display()
        );
        Ok(())
    }
}

/// Makes certificates unless they exist; for commands that need them.
pub fn ensure(root: &Path) -> anyhow::Result<()> {
    let dir = root.join(CERTS_DIR);
    if dir.join("ca.pem").is_file() {
        let generation = std::fs::read_to_string(dir.join(GENERATION_FILE)).unwrap_or_default();
        if generation.trim() == GENERATION {
            return Ok(());
        }
        println!(
            "development certificates in {} are of an older kind; making new ones",
            dir.display()
        );
    }
    write_all(&dir)?;
    println!("made development certificates in {}", dir.display());
    Ok(())
}

fn write_all(dir: &Path) -> anyhow::Result<()> {
    let ca = DevCa::new("Hangout Planner development CA")?;
    for server in SERVERS {
        write_pair(dir, &ca, server, &ca.issue_server(server)?)?;
    }
    write_pair(dir, &ca, "gateway", &ca.issue_client("gateway")?)?;
    write_pair(dir, &ca, "edge", &ca.issue_server("edge")?)?;
    proto::dev_certs::write_private(
        &dir.join("jwt-ed25519.pem"),
        &proto::dev_certs::ed25519_key_pem()?,
    )?;
    std::fs::write(dir.join(GENERATION_FILE), GENERATION)?;
    Ok(())
}
