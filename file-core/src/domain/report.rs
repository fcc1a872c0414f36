//! Telling hangout-core that a photo's processing ended, so that the memory's subscribers hear
//! of it through hangout-core's one ordered stream of events (ARCHITECTURE.md, decision 19).
//!
//! The report is recorded with the file's new processing state, in the transaction that ends
//! the job (the `processing_reports` outbox: [`JobStore::finish_job`],
//! [`JobStore::dead_letter`]), so no outcome goes unreported when a process dies. A relay in
//! the service process then sends the recorded reports to hangout-core ([`MemoryReports`]) and
//! forgets each batch once hangout-core has taken it. A batch whose answer was lost is sent
//! again, which records the memory's `MemoryUpdated` event twice: subscribers then load the
//! memory twice, which is harmless.

use std::future::Future;

use crate::domain::{
    Service,
    error::DomainError,
    ids::{FileId, MemoryId},
    objects::ObjectStorage,
    store::{FileStore, JobStore},
};

/// Reports sent to hangout-core in one call, at most (its limit per call).
pub const REPORTS_PER_CALL: u32 = 100;

/// The memory of a file whose processing ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessedFile {
    pub file: FileId,
    pub memory: MemoryId,
}

/// hangout-core did not take a report (unreachable, or it answered with an error).
#[derive(Debug, thiserror::Error)]
#[error("hangout-core did not take the report")]
pub struct ReportError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Where reports go: hangout-core, which keeps the memories (implemented over gRPC by
/// `crate::hangout_core`).
pub trait MemoryReports: Send + Sync + 'static {
    /// Tells hangout-core that these files' processing ended.
    fn report_processed(
        &self,
        files: &[ProcessedFile],
    ) -> impl Future<Output = Result<(), ReportError>> + Send;
}

/// Why a round of the relay stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("reading or forgetting reports failed")]
    Store(#[from] DomainError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl<S: FileStore + JobStore, O: ObjectStorage> Service<S, O> {
    /// Sends every recorded report to `reports`, a batch at a time, forgetting each batch once
    /// it is taken; returns how many were sent.
    ///
    /// # Errors
    /// When the database fails or hangout-core does not take a batch (what is left stays
    /// recorded for the next round).
    pub async fn relay_reports<R: MemoryReports>(&self, reports: &R) -> Result<usize, RelayError> {
        let mut sent = 0;
        loop {
            let batch = self
                .store
                .processing_reports(REPORTS_PER_CALL)
                .await
                .map_err(DomainError::from)?;
            if batch.is_empty() {
                return Ok(sent);
            }
            reports.report_processed(&batch).await?;
            let files: Vec<FileId> = batch.iter().map(|report| report.file).collect();
            self.store
                .reports_delivered(&files)
                .await
                .map_err(DomainError::from)?;
            sent += batch.len();
        }
    }

    /// Resolves once this process has recorded a report (see [`JobStore::reports_recorded`]).
    pub async fn reports_recorded(&self) {
        self.store.reports_recorded().await;
    }
}
