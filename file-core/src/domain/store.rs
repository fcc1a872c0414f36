//! The storage port: what the domain needs from the `file` database, declared here so the
//! dependency points into the domain. `crate::store` implements it for MySQL and SQLite.
//!
//! Contract for every implementation:
//! - Each method that changes more than one row is one transaction: after an error nothing of it
//!   is visible.
//! - Methods taking a [`FileScope::Owner`] only ever see that user's rows; another user's row
//!   is treated exactly like a missing one. [`FileScope::Named`] sees every file named.
//! - Status changes are conditional on the current status, so concurrent confirms, deletes and
//!   sweeps never move a file backwards (a DELETING file never becomes UPLOADED again).

use std::future::Future;

use crate::domain::{
    file::FileRecord,
    ids::{FileId, UserId},
    processing::{Job, JobOutcome},
    report::ProcessedFile,
    time::Timestamp,
};

/// Whose files an operation may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileScope {
    /// Only files this user uploaded: confirming an upload is the uploader's.
    Owner(UserId),
    /// Any file named. Who may see or delete a memory's file is decided by hangout-core (the
    /// members of its hangout), and the gateway names only files whose memories hangout-core
    /// showed or deleted for the caller: file-core holds no notion of membership.
    Named,
}

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (a file id generated twice).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached (down, or no connection free in time).
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database failed or returned something unreadable.
    #[error("database error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Persistence of file records.
pub trait FileStore: Send + Sync + 'static {
    /// Inserts the records of one upload batch, all or none.
    fn insert_files(&self, files: &[FileRecord]) -> impl Future<Output = StoreResult<()>> + Send;

    /// The files among `ids` in `scope`, in any status, in no particular order.
    fn files_by_ids(
        &self,
        scope: FileScope,
        ids: &[FileId],
    ) -> impl Future<Output = StoreResult<Vec<FileRecord>>> + Send;

    /// Marks the owner's PENDING files among `ids` UPLOADED with processing QUEUED, and queues
    /// a processing job for each, in one transaction; files in another status are left as they
    /// are.
    fn mark_uploaded(
        &self,
        owner: UserId,
        ids: &[FileId],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Marks the files among `ids` in `scope` DELETING, whatever their status, drops their
    /// processing jobs, and returns them; one transaction.
    fn mark_deleting(
        &self,
        scope: FileScope,
        ids: &[FileId],
    ) -> impl Future<Output = StoreResult<Vec<FileRecord>>> + Send;

    /// Marks PENDING files whose upload window ended before `before` DELETING; returns how many.
    fn mark_expired_pending_deleting(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Up to `limit` DELETING files whose upload window ended before `window_ended_before`,
    /// oldest first.
    fn deleting_files(
        &self,
        window_ended_before: Timestamp,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<FileRecord>>> + Send;

    /// Removes the record of a DELETING file (once its object is gone); no-op when it is not
    /// DELETING or not there.
    fn remove_deleted(&self, id: FileId) -> impl Future<Output = StoreResult<()>> + Send;

    /// Up to `limit` UPLOADED files created before `created_before`, by id, after `after`.
    fn uploaded_files(
        &self,
        created_before: Timestamp,
        after: Option<FileId>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<FileId>>> + Send;
}

/// The processing job queue, in the same database as the files (a job is queued in the
/// transaction that marks its file UPLOADED, so no confirmed file is left without one).
///
/// Contract: a claim is exclusive until its lease ends, also between processes; a job of a file
/// that is no longer UPLOADED is never claimed; finishing is conditional on the file being
/// UPLOADED, so a deletion always wins over a worker.
pub trait JobStore: Send + Sync + 'static {
    /// Claims the oldest due job (QUEUED, its `not_before` passed, no lease running at `now`)
    /// until `lease_until`, counting the attempt; `None` when no job is due.
    fn claim_job(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> impl Future<Output = StoreResult<Option<Job>>> + Send;

    /// Claims the job of `file` as [`JobStore::claim_job`] would, if it is due.
    fn claim_job_of(
        &self,
        file: FileId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> impl Future<Output = StoreResult<Option<Job>>> + Send;

    /// Up to `limit` due jobs (as for a claim at `now`) whose message has not gone out, or went
    /// out before `published_before`, oldest first.
    fn unpublished_jobs(
        &self,
        now: Timestamp,
        published_before: Timestamp,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<FileId>>> + Send;

    /// Forgets that the message of `file`'s job went out, so it is published again once the
    /// job is due (its message reached a worker that could not claim it).
    fn unpublish_job(&self, file: FileId) -> impl Future<Output = StoreResult<()>> + Send;

    /// Records that the messages of these jobs went out at `at`.
    fn jobs_published(
        &self,
        files: &[FileId],
        at: Timestamp,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Ends a job with `outcome`: the file becomes READY with its facts, or FAILED, the job is
    /// removed and the report to hangout-core recorded (see [`crate::domain::report`]).
    /// Returns whether the file was still UPLOADED (when not, it was deleted meanwhile and the
    /// renditions just written must go).
    fn finish_job(
        &self,
        file: FileId,
        outcome: &JobOutcome,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Releases a job for another attempt from `not_before` (to be published again), recording
    /// why this one failed.
    fn retry_job(
        &self,
        file: FileId,
        not_before: Timestamp,
        error: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Moves a job out of attempts to the dead letters (kept, DEAD, with its last error, for an
    /// operator), marks its file FAILED and records the report to hangout-core.
    fn dead_letter(
        &self,
        file: FileId,
        error: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Resolves once this process has queued a job since the last time it resolved (jobs
    /// queued by other processes are found by polling).
    fn jobs_queued(&self) -> impl Future<Output = ()> + Send;

    /// Up to `limit` recorded reports of ended processing, oldest first.
    fn processing_reports(
        &self,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<ProcessedFile>>> + Send;

    /// Forgets the reports of these files (hangout-core has taken them).
    fn reports_delivered(&self, files: &[FileId]) -> impl Future<Output = StoreResult<()>> + Send;

    /// Resolves once this process has recorded a report since the last time it resolved
    /// (reports of worker processes are found by polling).
    fn reports_recorded(&self) -> impl Future<Output = ()> + Send;
}
