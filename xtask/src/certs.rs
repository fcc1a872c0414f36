//! `cargo xtask certs`: a development CA and certificates for every party.
//!
//! Server certificates carry the service's DNS name, `localhost` and `127.0.0.1`; the gateway's
//! client certificate carries only `gateway`, the name the services allow by default. The edge
//! certificate is nginx's for `localhost`. `jwt-ed25519.pem` is a gateway JWT signing key for
//! compose. Keys are written with mode 0600.

use std::path::Path;

use proto::dev_certs::{DevCa, write_pair};

/// Where certificates go, relative to the workspace root.
pub const CERTS_DIR: &str = ".certs";

/// Servers of the internal gRPC network.
const SERVERS: [&str; 2] = ["hangout-core", "file-core"];

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
        return Ok(());
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
    Ok(())
}
