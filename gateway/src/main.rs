//! The gateway binary: configuration, logging, then the server until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use gateway::{App, Config};

// About 40 % of the gateway's CPU went to glibc's malloc and free (many small, short-lived
// allocations per resolved field); mimalloc cut CPU per request by 13-22 % (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    proto::process::runtime(config.worker_threads)
        .context("cannot start the async runtime")?
        .block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let _telemetry = telemetry::Telemetry::init("gateway", config.log_format)
        .context("cannot set up logging and tracing")?;
    tracing::info!(?config, "starting gateway");
    let app = App::build(config)
        .await
        .context("gateway failed to start")?;
    tracing::info!(
        graphql = %format!("http://{}/graphql", app.local_addr()),
        graphiql = %format!("http://{}/graphiql", app.local_addr()),
        "listening"
    );
    tracing::info!(addr = %app.metrics_addr(), "serving metrics at /metrics");
    app.run_until(proto::process::shutdown_signal())
        .await
        .context("gateway failed")?;
    Ok(())
}
