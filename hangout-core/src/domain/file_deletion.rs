//! The files hangout-core owes file-core a deletion of, and which files memories still hold
//! (ARCHITECTURE.md, decision 20).
//!
//! Every change that deletes memories (`deleteMemory`, `deleteHangout`, the sweeper of
//! abandoned uploads) records their files as owed deletions in its own transaction. file-core
//! takes the owed deletions over its mTLS channel, deletes the files, and confirms them, which
//! forgets them here; until it confirms, they are handed out again. The gateway still asks
//! file-core to delete at once after a deletion, so this path matters when that call fails or
//! a process dies between the two services: it makes the deletion certain, not fast.
//!
//! [`Service::held_files`] answers file-core's reconciliation, which looks for files whose
//! memory is gone by any other way (a record from before the owed deletions existed, say).

use std::future::Future;

use crate::domain::{
    Service,
    error::{DomainError, DomainResult},
    ids::FileId,
    store::{Store, StoreResult},
};

/// Owed deletions handed out, or confirmed, per call at most.
pub const MAX_FILE_DELETIONS_PER_CALL: usize = 100;

/// Files asked about per [`Service::held_files`] call at most.
pub const MAX_HELD_FILES_PER_CALL: usize = 500;

/// Storage of the owed deletions; the rows are written by the changes that delete memories.
pub trait FileDeletionStore: Send + Sync + 'static {
    /// Up to `limit` owed deletions, oldest first.
    fn owed_file_deletions(
        &self,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<FileId>>> + Send;

    /// Forgets the owed deletions of `files` (file-core deleted them); unknown ones are ignored.
    fn forget_file_deletions(
        &self,
        files: &[FileId],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The files among `files` that a memory (PENDING or UPLOADED) holds.
    fn held_files(&self, files: &[FileId])
    -> impl Future<Output = StoreResult<Vec<FileId>>> + Send;
}

fn check_count(count: usize, limit: usize, field: &str) -> DomainResult<()> {
    if count > limit {
        return Err(DomainError::invalid(
            field,
            format!("must hold at most {limit} ids"),
        ));
    }
    Ok(())
}

impl<S: Store> Service<S> {
    /// Up to `limit` (at most [`MAX_FILE_DELETIONS_PER_CALL`]; 0 means that many) owed file
    /// deletions, oldest first.
    ///
    /// # Errors
    /// `Invalid` for a larger limit; internal ones.
    pub async fn owed_file_deletions(&self, limit: usize) -> DomainResult<Vec<FileId>> {
        check_count(limit, MAX_FILE_DELETIONS_PER_CALL, "limit")?;
        let limit = if limit == 0 {
            MAX_FILE_DELETIONS_PER_CALL
        } else {
            limit
        };
        Ok(self.store.owed_file_deletions(limit).await?)
    }

    /// Forgets owed deletions that file-core carried out. Idempotent.
    ///
    /// # Errors
    /// `Invalid` for more than [`MAX_FILE_DELETIONS_PER_CALL`] ids; internal ones.
    pub async fn confirm_file_deletions(&self, files: &[FileId]) -> DomainResult<()> {
        check_count(files.len(), MAX_FILE_DELETIONS_PER_CALL, "file_ids")?;
        if files.is_empty() {
            return Ok(());
        }
        Ok(self.store.forget_file_deletions(files).await?)
    }

    /// The files among `files` that some memory holds: file-core may delete the others.
    ///
    /// # Errors
    /// `Invalid` for more than [`MAX_HELD_FILES_PER_CALL`] ids; internal ones.
    pub async fn held_files(&self, files: &[FileId]) -> DomainResult<Vec<FileId>> {
        check_count(files.len(), MAX_HELD_FILES_PER_CALL, "file_ids")?;
        if files.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.held_files(files).await?)
    }
}
