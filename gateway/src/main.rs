//! The gateway binary: configuration, logging, then the server until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use gateway::{App, Config, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    tracing::info!(?config, "starting gateway");
    let app = App::build(config)
        .await
        .context("gateway failed to start")?;
    tracing::info!(
        graphql = %format!("http://{}/graphql", app.local_addr()),
        graphiql = %format!("http://{}/graphiql", app.local_addr()),
        "listening"
    );
    app.run_until(proto::signal::shutdown_signal())
        .await
        .context("gateway failed")?;
    Ok(())
}
