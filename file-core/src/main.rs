//! The file-core binary: configuration, logging, then the service until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use file_core::{App, Config};

// glibc's malloc, its arena locks and consolidation took about a sixth of the backends' CPU
// (perf, `page`); mimalloc cut file-core's CPU per page by 19 % (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    proto::process::runtime(config.worker_threads)
        .context("cannot start the async runtime")?
        .block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let _telemetry = telemetry::Telemetry::init("file-core", config.log_format)
        .context("cannot set up logging and tracing")?;
    tracing::info!(?config, "starting file-core");
    let app = App::build(config)
        .await
        .context("file-core failed to start")?;
    if let Some(addr) = app.local_addr() {
        tracing::info!(%addr, "listening (gRPC over mutual TLS)");
    }
    tracing::info!(addr = %app.metrics_addr(), "serving metrics at /metrics");
    app.run_until(proto::process::shutdown_signal())
        .await
        .context("file-core failed")?;
    Ok(())
}
