//! hangout-core as file-core reaches it: [`MemoryReports`] over gRPC with mutual TLS (file-core
//! calls with its own certificate, which hangout-core serves `FileReportService` only), and the
//! relay that sends the recorded reports of ended processing (see [`crate::domain::report`]).

use std::time::Duration;

use proto::hangout::v1::{self as pb, file_report_service_client::FileReportServiceClient};
use tonic::transport::{Channel, Endpoint};

use crate::{
    domain::report::{MemoryReports, ProcessedFile, ReportError},
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

impl MemoryReports for HangoutCore {
    #[tracing::instrument(name = "grpc", skip_all, fields(otel.name = "hangout.v1.FileReportService/ReportProcessed", files = files.len()))]
    async fn report_processed(&self, files: &[ProcessedFile]) -> Result<(), ReportError> {
        let mut request = tonic::Request::new(pb::ReportProcessedRequest {
            files: files
                .iter()
                .map(|file| pb::ProcessedFile {
                    memory_id: file.memory.to_string(),
                    file_id: file.file.to_string(),
                })
                .collect(),
        });
        let request_id = uuid::Uuid::new_v4().to_string();
        proto::metadata::set_caller(request.metadata_mut(), None, Some(&request_id));
        telemetry::propagation::inject(&tracing::Span::current(), request.metadata_mut());
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
                    error = &error as &dyn std::error::Error,
                    "reporting processed photos to hangout-core failed; retrying"
                );
                if !backoff.wait(&mut stopping).await {
                    return;
                }
            }
        }
    }
}
