//! hangout-core's Prometheus metrics, registered in the App's own registry and recorded at the
//! edges: gRPC calls by the server layer, sweeps by the sweeper, pools read at scrape time.

use telemetry::{
    grpc::{RpcMetrics, Side},
    metrics::{Counter, PoolCollector, Registry},
};

use crate::store::SqlStore;

/// Everything hangout-core measures.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub rpc: RpcMetrics,
    memories_swept: Counter,
}

impl Metrics {
    /// Registers every metric in `registry`, with the pools of `store`.
    pub fn register(registry: &mut Registry, store: &SqlStore) -> Self {
        let memories_swept = Counter::default();
        registry.register(
            "hangout_memories_swept",
            "Unconfirmed memories removed by the sweeper",
            memories_swept.clone(),
        );
        let pools = store.clone();
        registry.register_collector(Box::new(PoolCollector::new(move || pools.pool_snapshots())));
        Self {
            rpc: RpcMetrics::register(registry, Side::Server),
            memories_swept,
        }
    }

    /// Records one sweep.
    pub fn swept(&self, removed: u64) {
        self.memories_swept.inc_by(removed);
    }
}
