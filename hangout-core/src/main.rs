//! The hangout-core binary: configuration, logging, then the service until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use hangout_core::{App, Config};

// glibc's malloc (arena locks, consolidation) took about a fifth of hangout-core's CPU on
// `page` (perf), SQLite's allocations included; mimalloc, which the workspace makes `malloc`
// too, cut its CPU per page by about 15 % (BENCHMARKS.md). Run it with
// `MIMALLOC_PURGE_DELAY=0` (as `cargo xtask` and compose.yaml do): with mimalloc's default,
// freed memory stays committed for a second and the peak resident size passed 80 MB; with
// immediate purging it is that of glibc. (Setting the option from here would need `unsafe`.)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    proto::process::runtime(config.worker_threads)
        .context("cannot start the async runtime")?
        .block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let _telemetry = telemetry::Telemetry::init("hangout-core", config.log_format)
        .context("cannot set up logging and tracing")?;
    tracing::info!(?config, "starting hangout-core");
    let app = App::build(config)
        .await
        .context("hangout-core failed to start")?;
    tracing::info!(addr = %app.local_addr(), "listening (gRPC over mutual TLS)");
    tracing::info!(addr = %app.metrics_addr(), "serving metrics at /metrics");
    app.run_until(proto::process::shutdown_signal())
        .await
        .context("hangout-core failed")?;
    Ok(())
}
