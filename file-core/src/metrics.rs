//! file-core's Prometheus metrics, registered in the App's own registry and recorded at the
//! edges: gRPC calls by the server layer, S3 calls by the S3 adapter, upload outcomes by the
//! gRPC handlers, sweeps by the sweeper. The domain stays free of them.

use std::time::Duration;

use telemetry::{
    grpc::{RpcMetrics, Side},
    metrics::{
        Counter, EncodeLabelSet, Family, LatencyFamily, PoolCollector, Registry, latency_family,
    },
};

use crate::{
    domain::{files::SweepReport, uploads::UploadFailureReason, worker::JobReport},
    store::SqlStore,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct S3CallLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// S3 calls by operation and outcome (`ok`, `not_found`, `error`), and their latency.
#[derive(Clone, Debug)]
pub struct S3Metrics {
    requests: Family<S3CallLabels, Counter>,
    seconds: LatencyFamily<OperationLabels>,
}

impl S3Metrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            seconds: latency_family(),
        };
        registry.register(
            "s3_requests",
            "S3 calls by operation and outcome (ok, not_found, error)",
            metrics.requests.clone(),
        );
        registry.register(
            "s3_request_duration_seconds",
            "S3 call latency in seconds, retries included",
            metrics.seconds.clone(),
        );
        metrics
    }

    /// Records one S3 call.
    pub fn observe(&self, operation: &'static str, outcome: &'static str, elapsed: Duration) {
        self.requests
            .get_or_create(&S3CallLabels { operation, outcome })
            .inc();
        self.seconds
            .get_or_create(&OperationLabels { operation })
            .observe(elapsed.as_secs_f64());
    }
}

/// The `reason` label of each [`UploadFailureReason`].
const FAILURE_REASONS: [&str; 4] = [
    "not_uploaded",
    "size_mismatch",
    "checksum_mismatch",
    "content_mismatch",
];

/// The `reason` label of each figure of a [`SweepReport`].
const SWEEP_REASONS: [&str; 3] = ["expired", "removed", "failed"];

/// Upload batches created, confirmed (every file) or failed (some file), and failed files by
/// reason.
#[derive(Clone, Debug, Default)]
pub struct UploadMetrics {
    batches: Family<OutcomeLabels, Counter>,
    failed_files: Family<ReasonLabels, Counter>,
}

impl UploadMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        // Known label sets start at zero, so that rates and dashboards work from the start.
        for outcome in ["created", "confirmed", "failed"] {
            metrics
                .batches
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(0);
        }
        for reason in FAILURE_REASONS {
            metrics
                .failed_files
                .get_or_create(&ReasonLabels { reason })
                .inc_by(0);
        }
        registry.register(
            "file_upload_batches",
            "Upload batches by outcome: created, confirmed (all files), failed (some file)",
            metrics.batches.clone(),
        );
        registry.register(
            "file_uploads_failed",
            "Files that failed confirmation, by reason",
            metrics.failed_files.clone(),
        );
        metrics
    }

    /// A batch of upload URLs was handed out.
    pub fn created(&self) {
        self.batches
            .get_or_create(&OutcomeLabels { outcome: "created" })
            .inc();
    }

    /// A confirm call finished with these failures.
    pub fn confirmed(&self, failures: impl IntoIterator<Item = UploadFailureReason>) {
        let mut failed = false;
        for reason in failures {
            failed = true;
            let reason = match reason {
                UploadFailureReason::NotUploaded => FAILURE_REASONS[0],
                UploadFailureReason::SizeMismatch => FAILURE_REASONS[1],
                UploadFailureReason::ChecksumMismatch => FAILURE_REASONS[2],
                UploadFailureReason::ContentMismatch => FAILURE_REASONS[3],
            };
            self.failed_files
                .get_or_create(&ReasonLabels { reason })
                .inc();
        }
        let outcome = if failed { "failed" } else { "confirmed" };
        self.batches.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

/// Every outcome of a processing job, registered at zero.
const PROCESSING_OUTCOMES: [JobReport; 5] = [
    JobReport::Ready,
    JobReport::Failed,
    JobReport::Retried,
    JobReport::DeadLettered,
    JobReport::Discarded,
];

/// Everything file-core measures.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub rpc: RpcMetrics,
    pub s3: S3Metrics,
    pub uploads: UploadMetrics,
    swept: Family<ReasonLabels, Counter>,
    processed: Family<OutcomeLabels, Counter>,
    reports_sent: Counter,
    cleaned_up: Family<ReasonLabels, Counter>,
}

/// Why files or objects were removed by the cleanup (`crate::domain::cleanup`).
const CLEANUP_REASONS: [&str; 3] = ["owed", "unheld", "unrecorded_object"];

impl Metrics {
    /// Registers every metric in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let swept = Family::<ReasonLabels, Counter>::default();
        for reason in SWEEP_REASONS {
            swept.get_or_create(&ReasonLabels { reason }).inc_by(0);
        }
        registry.register(
            "files_swept",
            "Files handled by the sweeper: expired (claimed), removed, failed (retried later)",
            swept.clone(),
        );
        let processed = Family::<OutcomeLabels, Counter>::default();
        for report in PROCESSING_OUTCOMES {
            processed
                .get_or_create(&OutcomeLabels {
                    outcome: report.as_str(),
                })
                .inc_by(0);
        }
        registry.register(
            "photos_processed",
            "Photo processing jobs by outcome: ready, failed (cannot be rendered), retried, \
             dead_lettered (out of attempts), discarded (file deleted meanwhile)",
            processed.clone(),
        );
        let reports_sent = Counter::default();
        registry.register(
            "processing_reports_sent",
            "Reports of ended photo processing that hangout-core took (so the memories' \
             subscribers heard of them)",
            reports_sent.clone(),
        );
        let cleaned_up = Family::<ReasonLabels, Counter>::default();
        for reason in CLEANUP_REASONS {
            cleaned_up.get_or_create(&ReasonLabels { reason }).inc_by(0);
        }
        registry.register(
            "files_cleaned_up",
            "Files and objects removed by the cleanup: owed (the file of a memory hangout-core \
             deleted), unheld (an UPLOADED file no memory holds), unrecorded_object (an object \
             without a file record)",
            cleaned_up.clone(),
        );
        Self {
            rpc: RpcMetrics::register(registry, Side::Server),
            s3: S3Metrics::register(registry),
            uploads: UploadMetrics::register(registry),
            swept,
            processed,
            reports_sent,
            cleaned_up,
        }
    }

    /// Reports the pools of `store` on every scrape.
    pub fn watch_pools(registry: &mut Registry, store: &SqlStore) {
        let store = store.clone();
        registry.register_collector(Box::new(PoolCollector::new(move || store.pool_snapshots())));
    }

    /// Records one processing job.
    pub fn processed(&self, report: JobReport) {
        self.processed
            .get_or_create(&OutcomeLabels {
                outcome: report.as_str(),
            })
            .inc();
    }

    /// Records reports hangout-core took.
    pub fn reports_sent(&self, count: usize) {
        self.reports_sent
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    /// Records files or objects the cleanup removed, for one of [`CLEANUP_REASONS`].
    pub fn files_cleaned_up(&self, reason: &'static str, count: usize) {
        if count > 0 {
            self.cleaned_up
                .get_or_create(&ReasonLabels { reason })
                .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
        }
    }

    /// Records one sweep.
    pub fn swept(&self, report: SweepReport) {
        for (reason, count) in
            SWEEP_REASONS
                .into_iter()
                .zip([report.expired, report.removed, report.failed])
        {
            if count > 0 {
                self.swept
                    .get_or_create(&ReasonLabels { reason })
                    .inc_by(count);
            }
        }
    }
}
