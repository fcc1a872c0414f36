//! hangout-core as file-core reaches it: [`MemoryReports`] over gRPC with mutual TLS (file-core
//! calls with its own certificate, which hangout-core serves `FileReportService` only), and the
//! relay that sends the recorded reports of ended processing (see [`crate::domain::report`]),
//! and [`MemoryFiles`] with the loop that cleans up after deleted memories (see
//! [`crate::domain::cleanup`]).

use std::time::Duration;

use proto::hangout::v1::{self as pb, file_report_service_client::FileReportServiceClient};
use tonic::transport::{Channel, Endpoint};

use crate::{
    domain::{
        cleanup::{AskError, CleanupError, MemoryFiles},
        ids::FileId,
        report::{MemoryReports, ProcessedFile, ReportError},
        time::Timestamp,
    },
    grpc::SharedService,
    metrics::Metrics,
};

/// How long one report call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot load TLS material")]
    Tls(#[from] proto::tls::TlsError),
    #[error("FILE_CORE_HANGOUT_CORE_URL is not a usable endpoint")]
    Endpoint(#[source] tonic::transport::Error),
}

/// hangout-core's `FileReportService`, over a lazily connecting channel.
#[derive(Clone, Debug)]
pub struct HangoutCore {
    reports: FileReportServiceClient<Channel>,
}

impl HangoutCore {
    /// A client of `url` whose server certificate must carry `server_name`; `tls` is
    /// file-core's own CA, certificate and key.
    ///
    /// # Errors
    /// When the TLS files are unusable or the URL is malformed.
    pub fn new(
        url: &str,
        server_name: &str,
        tls: &proto::tls::TlsFiles,
    ) -> Result<Self, ClientError> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(ClientError::Endpoint)?
            .tls_config(proto::tls::client_config(tls, server_name)?)
            .map_err(ClientError::Endpoint)?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .connect_lazy();
        Ok(Self {
            reports: FileReportServiceClient::new(channel),
        })
    }
}

/// A request of this service's own (no user), with a fresh request id and the current trace.
fn outgoing<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let request_id = uuid::Uuid::new_v4().to_string();
    proto::metadata::set_caller(request.metadata_mut(), None, Some(&request_id));
    telemetry::propagation::inject(&tracing::Span::current(), request.metadata_mut());
    request
}

impl MemoryReports for HangoutCore {
    #[tracing::instrument(name = "grpc", skip_all, fields(otel.name = "hangout.v1.FileReportService/ReportProcessed", files = files.len()))]
    async fn report_processed(&self, files: &[ProcessedFile]) -> Result<(), ReportError> {
        let request = outgoing(pb::ReportProcessedRequest {
            files: files
                .iter()
                .map(|file| pb::ProcessedFile {
                    memory_id: file.memory.to_string(),
                    file_id: file.file.to_string(),
                })
                .collect(),
        });
        self.reports
            .clone()
            .report_processed(request)
            .await
            .map(|_| ())
            .map_err(|status| ReportError(Box::new(status)))
    }
}

/// Sends recorded reports as they are recorded (at once for this process's workers, within
/// `poll` for worker processes'), retrying with backoff while hangout-core does not take them,
/// until `stopping` turns true.
pub async fn report_forever(
    service: SharedService,
    reports: HangoutCore,
    metrics: Metrics,
    poll: Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = proto::process::Backoff::default();
    loop {
        match service.relay_reports(&reports).await {
            Ok(sent) => {
                if sent > 0 {
                    metrics.reports_sent(sent);
                    tracing::debug!(sent, "reported processed photos to hangout-core");
                }
                backoff.reset();
                tokio::select! {
                    () = service.reports_recorded() => {}
                    () = tokio::time::sleep(poll) => {}
                    _ = stopping.wait_for(|stopping| *stopping) => return,
                }
            }
            Err(error) => {
                tracing::warn!(
                    error = %telemetry::ErrorChain(&error),
                    "reporting processed photos to hangout-core failed; retrying"
                );
                if !backoff.wait(&mut stopping).await {
                    return;
                }
            }
        }
    }
}

fn ask_error(status: tonic::Status) -> AskError {
    AskError(Box::new(status))
}

fn file_ids(files: &[FileId]) -> Vec<String> {
    files.iter().map(ToString::to_string).collect()
}

/// Parses hangout-core's file ids; one it should never send is skipped with a warning.
fn parse_file_ids(texts: Vec<String>) -> Vec<FileId> {
    texts
        .into_iter()
        .filter_map(|text| {
            let parsed = FileId::parse(&text);
            if parsed.is_none() {
                tracing::warn!(id = %text, "hangout-core sent a malformed file id");
            }
            parsed
        })
        .collect()
}

impl MemoryFiles for HangoutCore {
    #[tracing::instrument(name = "grpc", skip_all, fields(otel.name = "hangout.v1.FileReportService/OwedFileDeletions"))]
    async fn owed_deletions(&self, limit: u32) -> Result<Vec<FileId>, AskError> {
        let request = outgoing(pb::OwedFileDeletionsRequest { limit });
        let response = self
            .reports
            .clone()
            .owed_file_deletions(request)
            .await
            .map_err(ask_error)?;
        Ok(parse_file_ids(response.into_inner().file_ids))
    }

    #[tracing::instrument(name = "grpc", skip_all, fields(otel.name = "hangout.v1.FileReportService/ConfirmFileDeletions", files = files.len()))]
    async fn confirm_deletions(&self, files: &[FileId]) -> Result<(), AskError> {
        let request = outgoing(pb::ConfirmFileDeletionsRequest {
            file_ids: file_ids(files),
        });
        self.reports
            .clone()
            .confirm_file_deletions(request)
            .await
            .map(|_| ())
            .map_err(ask_error)
    }

    #[tracing::instrument(name = "grpc", skip_all, fields(otel.name = "hangout.v1.FileReportService/HeldFiles", files = files.len()))]
    async fn held_files(&self, files: &[FileId]) -> Result<Vec<FileId>, AskError> {
        let request = outgoing(pb::HeldFilesRequest {
            file_ids: file_ids(files),
        });
        let response = self
            .reports
            .clone()
            .held_files(request)
            .await
            .map_err(ask_error)?;
        Ok(parse_file_ids(response.into_inner().file_ids))
    }
}

/// What the cleanup loop is given.
pub struct Cleanup {
    /// How often owed deletions are asked for.
    pub poll: Duration,
    /// How often the reconciliation runs.
    pub reconcile_every: Duration,
    /// How old a file or object must be before the reconciliation may delete it.
    pub settle: Duration,
}

/// Carries out the deletions hangout-core owes every `poll`, and reconciles every
/// `reconcile_every` (the first time one interval after start), retrying with backoff while
/// hangout-core does not answer, until `stopping` turns true.
pub async fn clean_up_forever(
    service: SharedService,
    memories: HangoutCore,
    metrics: Metrics,
    cleanup: Cleanup,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = proto::process::Backoff::default();
    let mut next_reconcile = tokio::time::Instant::now() + cleanup.reconcile_every;
    loop {
        let round = async {
            let deleted = service.carry_out_owed_deletions(&memories).await?;
            if deleted > 0 {
                metrics.files_cleaned_up("owed", deleted);
                tracing::info!(deleted, "deleted the files of deleted memories");
            }
            if tokio::time::Instant::now() >= next_reconcile {
                let settled_before = Timestamp::now().minus(cleanup.settle);
                let reconciled = service.reconcile(&memories, settled_before).await?;
                metrics.files_cleaned_up("unheld", reconciled.files);
                metrics.files_cleaned_up("unrecorded_object", reconciled.objects);
                tracing::info!(
                    files = reconciled.files,
                    objects = reconciled.objects,
                    "reconciled files with hangout-core and objects with records"
                );
                next_reconcile = tokio::time::Instant::now() + cleanup.reconcile_every;
            }
            Ok::<(), CleanupError>(())
        };
        match round.await {
            Ok(()) => {
                backoff.reset();
                tokio::select! {
                    () = tokio::time::sleep(cleanup.poll) => {}
                    _ = stopping.wait_for(|stopping| *stopping) => return,
                }
            }
            Err(error) => {
                tracing::warn!(
                    error = %telemetry::ErrorChain(&error),
                    "cleaning up files failed; retrying"
                );
                if !backoff.wait(&mut stopping).await {
                    return;
                }
            }
        }
    }
}
