//! The Prometheus side: a registry per service `App` (so services started in one test process
//! never share counters), the internal `/metrics` endpoint serving it, standard latency
//! buckets, and the database pool collector.

use std::{fmt, future::Future, net::SocketAddr, sync::Arc};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{
        gauge::ConstGauge,
        histogram::{Histogram, exponential_buckets},
    },
};
use tokio::net::TcpListener;

pub use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Buckets for durations in seconds: 0.25 ms to about 8 s, doubling.
#[must_use]
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Buckets for small counts (batch sizes, calls per request): 1, 2, 4 ... 512.
#[must_use]
pub fn count_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

/// A histogram family with [`latency_histogram`] buckets.
pub type LatencyFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A new, empty [`LatencyFamily`].
#[must_use]
pub fn latency_family<L: Clone + std::hash::Hash + Eq>() -> LatencyFamily<L> {
    Family::new_with_constructor(latency_histogram)
}

/// A new, empty family of [`count_histogram`]s.
#[must_use]
pub fn count_family<L: Clone + std::hash::Hash + Eq>() -> LatencyFamily<L> {
    Family::new_with_constructor(count_histogram)
}

/// The registry in the OpenMetrics text format.
#[must_use]
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(%error, "encoding metrics failed");
    }
    text
}

/// The metrics endpoint's address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind the metrics endpoint {addr}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// The bound, not yet serving, internal metrics endpoint.
pub struct MetricsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn bind(addr: SocketAddr) -> Result<Self, BindError> {
        let bound = async {
            let listener = TcpListener::bind(addr).await?;
            let local_addr = listener.local_addr()?;
            Ok(Self {
                listener,
                local_addr,
            })
        };
        bound.await.map_err(|source| BindError { addr, source })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `GET /metrics` from `registry` until `shutdown` completes.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn serve(
        self,
        registry: Arc<Registry>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = Router::new()
            .route("/metrics", get(scrape))
            .with_state(registry);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

async fn scrape(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        encode(&registry),
    )
}

/// One connection pool's state at scrape time.
#[derive(Clone, Copy, Debug)]
pub struct PoolSnapshot {
    /// Which pool (`main`, `read`, `write`).
    pub pool: &'static str,
    /// Open connections.
    pub open: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The pool's limit.
    pub max: u32,
}

/// Reports database pools as `db_pool_connections{pool, state}` and
/// `db_pool_max_connections{pool}`, read on every scrape.
pub struct PoolCollector(Box<dyn Fn() -> Vec<PoolSnapshot> + Send + Sync>);

impl PoolCollector {
    /// A collector reading the pools through `snapshot`.
    pub fn new(snapshot: impl Fn() -> Vec<PoolSnapshot> + Send + Sync + 'static) -> Self {
        Self(Box::new(snapshot))
    }
}

impl fmt::Debug for PoolCollector {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PoolCollector")
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let pools = (self.0)();
        let gauge = ConstGauge::new(0_i64);
        let mut connections = encoder.encode_descriptor(
            "db_pool_connections",
            "Database connections by pool and state (busy or idle)",
            None,
            gauge.metric_type(),
        )?;
        for pool in &pools {
            let busy = i64::from(pool.open.saturating_sub(pool.idle));
            for (state, value) in [("busy", busy), ("idle", i64::from(pool.idle))] {
                ConstGauge::new(value)
                    .encode(connections.encode_family(&[("pool", pool.pool), ("state", state)])?)?;
            }
        }
        let mut max = encoder.encode_descriptor(
            "db_pool_max_connections",
            "The most connections each pool opens",
            None,
            gauge.metric_type(),
        )?;
        for pool in &pools {
            ConstGauge::new(i64::from(pool.max))
                .encode(max.encode_family(&[("pool", pool.pool)])?)?;
        }
        Ok(())
    }
}
