//! The hangout-core binary: configuration, logging, then the service until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use hangout_core::{App, Config, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    tracing::info!(?config, "starting hangout-core");
    let app = App::build(config)
        .await
        .context("hangout-core failed to start")?;
    tracing::info!(addr = %app.local_addr(), "listening (gRPC over mutual TLS)");
    app.run_until(proto::signal::shutdown_signal())
        .await
        .context("hangout-core failed")?;
    Ok(())
}
