//! Nothing orphaned (ARCHITECTURE.md, decision 20): the deletions hangout-core owes, carried
//! out, and a reconciliation that finds what slipped past every other path.
//!
//! - **Owed deletions.** hangout-core records the file of every memory it deletes, in the
//!   deleting transaction. [`Service::carry_out_owed_deletions`] takes them over the mTLS
//!   channel ([`MemoryFiles`]), deletes the files as `DeleteFiles` does, and confirms them, so
//!   a deletion whose call from the gateway failed (file-core down) still happens.
//! - **Reconciliation** ([`Service::reconcile`]), every `FILE_CORE_RECONCILE_INTERVAL`:
//!   1. UPLOADED files older than the settling time whose memory hangout-core no longer holds
//!      are deleted (batched questions, never hangout-core's tables);
//!   2. objects in the bucket older than the settling time whose file has no record at all
//!      (a rendition a worker wrote after its file's record was removed, say) are deleted.
//!
//! The settling time keeps both passes off work in progress: a file is created a moment
//! before its memory holds it, and an object is written a moment before or after its record
//! changes.

use std::{collections::HashSet, future::Future};

use crate::domain::{
    Service,
    error::DomainError,
    file::{FileStatus, MAX_IDS_PER_CALL, MAX_IDS_PER_READ},
    ids::FileId,
    objects::{ObjectError, ObjectStorage},
    store::{FileScope, FileStore, JobStore, StoreError},
    time::Timestamp,
};

/// Files asked about per [`MemoryFiles::held_files`] call (hangout-core's limit).
pub const HELD_FILES_PER_CALL: u32 = 500;

/// Objects listed per page of the bucket pass.
const OBJECTS_PER_PAGE: u32 = 1_000;

/// hangout-core did not answer (unreachable, or it answered with an error).
#[derive(Debug, thiserror::Error)]
#[error("hangout-core did not answer")]
pub struct AskError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// What hangout-core knows of the files of memories (implemented over gRPC by
/// `crate::hangout_core`).
pub trait MemoryFiles: Send + Sync + 'static {
    /// Up to `limit` files whose memories were deleted, oldest first.
    fn owed_deletions(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<FileId>, AskError>> + Send;

    /// Tells hangout-core these deletions are done.
    fn confirm_deletions(
        &self,
        files: &[FileId],
    ) -> impl Future<Output = Result<(), AskError>> + Send;

    /// The files among `files` that a memory still holds.
    fn held_files(
        &self,
        files: &[FileId],
    ) -> impl Future<Output = Result<Vec<FileId>, AskError>> + Send;
}

/// Why a round of cleanup stopped early.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("the database or object storage failed")]
    Domain(#[from] DomainError),
    #[error("listing the bucket failed")]
    Objects(#[from] ObjectError),
    #[error(transparent)]
    Ask(#[from] AskError),
}

/// What one reconciliation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// UPLOADED files that no memory held, deleted.
    pub files: usize,
    /// Objects without a file record, deleted.
    pub objects: usize,
}

/// The file an object key belongs to: the segment after `memories/{memory}/`, without its
/// extension (`…/{file}.jpg` for uploads, `…/{file}/{size}.webp` for renditions). `None` for a
/// key this service did not make.
#[must_use]
pub fn file_of_key(key: &str) -> Option<FileId> {
    let (_, rest) = key.split_once("/memories/")?;
    let (_memory, rest) = rest.split_once('/')?;
    let segment = rest.split('/').next()?;
    let stem = segment.split_once('.').map_or(segment, |(stem, _)| stem);
    FileId::parse(stem)
}

impl<S: FileStore + JobStore, O: ObjectStorage> Service<S, O> {
    /// Deletes the files hangout-core owes a deletion of, a batch at a time, confirming each
    /// batch once deleted (or claimed for deletion, when object storage is down: the sweeper
    /// finishes those); returns how many.
    ///
    /// # Errors
    /// When the database fails or hangout-core does not answer (what is left stays owed).
    pub async fn carry_out_owed_deletions<M: MemoryFiles>(
        &self,
        memories: &M,
    ) -> Result<usize, CleanupError> {
        let batch = u32::try_from(MAX_IDS_PER_CALL).unwrap_or(u32::MAX);
        let mut done = 0;
        loop {
            let owed = memories.owed_deletions(batch).await?;
            if owed.is_empty() {
                return Ok(done);
            }
            // Most are being deleted already, by the gateway's call right after the memory's
            // deletion: only the others cost object-storage calls.
            let left: Vec<FileId> = self
                .store
                .files_by_ids(FileScope::Named, &owed)
                .await
                .map_err(DomainError::from)?
                .into_iter()
                .filter(|file| file.status != FileStatus::Deleting)
                .map(|file| file.id)
                .collect();
            if !left.is_empty() {
                self.delete_files(&left).await?;
            }
            memories.confirm_deletions(&owed).await?;
            done += owed.len();
            if owed.len() < MAX_IDS_PER_CALL {
                return Ok(done);
            }
        }
    }

    /// One reconciliation of records and objects settled before `settled_before`.
    ///
    /// # Errors
    /// When the database or object storage fails, or hangout-core does not answer; what was
    /// deleted stays deleted, and the next round goes on from the start.
    pub async fn reconcile<M: MemoryFiles>(
        &self,
        memories: &M,
        settled_before: Timestamp,
    ) -> Result<Reconciled, CleanupError> {
        Ok(Reconciled {
            files: self.delete_unheld_files(memories, settled_before).await?,
            objects: self.delete_unrecorded_objects(settled_before).await?,
        })
    }

    /// Deletes UPLOADED files created before `settled_before` that no memory holds.
    async fn delete_unheld_files<M: MemoryFiles>(
        &self,
        memories: &M,
        settled_before: Timestamp,
    ) -> Result<usize, CleanupError> {
        let mut after = None;
        let mut deleted = 0;
        loop {
            let files = self
                .store
                .uploaded_files(settled_before, after, HELD_FILES_PER_CALL)
                .await
                .map_err(DomainError::from)?;
            let Some(last) = files.last().copied() else {
                return Ok(deleted);
            };
            let held: HashSet<FileId> = memories.held_files(&files).await?.into_iter().collect();
            let unheld: Vec<FileId> = files
                .iter()
                .copied()
                .filter(|file| !held.contains(file))
                .collect();
            for chunk in unheld.chunks(MAX_IDS_PER_CALL) {
                tracing::info!(
                    files = chunk.len(),
                    "deleting files whose memories are gone"
                );
                self.delete_files(chunk).await?;
            }
            deleted += unheld.len();
            after = Some(last);
        }
    }

    /// Deletes objects last written before `settled_before` whose file has no record.
    async fn delete_unrecorded_objects(
        &self,
        settled_before: Timestamp,
    ) -> Result<usize, CleanupError> {
        let mut continuation = None;
        let mut deleted = 0;
        loop {
            let page = self
                .objects
                .list(continuation.take(), OBJECTS_PER_PAGE)
                .await?;
            let settled: Vec<(String, FileId)> = page
                .objects
                .into_iter()
                .filter(|object| object.modified < settled_before)
                .filter_map(|object| Some((file_of_key(&object.key)?, object.key)))
                .map(|(file, key)| (key, file))
                .collect();
            let ids: Vec<FileId> = settled.iter().map(|(_, file)| *file).collect();
            let recorded: HashSet<FileId> =
                self.recorded_files(&ids).await.map_err(DomainError::from)?;
            for (key, file) in settled {
                if !recorded.contains(&file) {
                    tracing::info!(%file, "deleting an object whose file has no record");
                    self.objects.delete(&key).await?;
                    deleted += 1;
                }
            }
            match page.next {
                Some(next) => continuation = Some(next),
                None => return Ok(deleted),
            }
        }
    }

    /// The files among `ids` with a record, in any status.
    async fn recorded_files(&self, ids: &[FileId]) -> Result<HashSet<FileId>, StoreError> {
        let mut unique: Vec<FileId> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut recorded = HashSet::with_capacity(unique.len());
        for chunk in unique.chunks(MAX_IDS_PER_READ) {
            let records = self.store.files_by_ids(FileScope::Named, chunk).await?;
            recorded.extend(records.into_iter().map(|record| record.id));
        }
        Ok(recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        file::{FileRecord, Md5Digest, object_key},
        ids::{HangoutId, MemoryId, UserId},
        image::ImageType,
        processing::object_keys,
    };

    /// Built with the service's own key functions, so a change of layout fails here.
    #[test]
    fn the_file_of_every_key_the_service_makes_is_found() {
        let (hangout, memory, file) = (
            HangoutId::generate(),
            MemoryId::generate(),
            FileId::generate(),
        );
        let now = Timestamp::now();
        let record = FileRecord {
            id: file,
            owner: UserId::generate(),
            hangout,
            memory,
            file_name: "a.jpg".to_owned(),
            image: ImageType::Jpeg,
            size: 1,
            md5: Md5Digest::of(b"a"),
            object_key: object_key(hangout, memory, file, ImageType::Jpeg),
            status: FileStatus::Uploaded,
            created_at: now,
            upload_expires_at: now,
            processing: None,
            facts: None,
        };
        // The upload and its three renditions.
        let keys = object_keys(&record);
        assert_eq!(keys.len(), 4);
        for key in &keys {
            assert_eq!(file_of_key(key), Some(file), "{key}");
        }
        let legacy = format!("hangouts/{hangout}/memories/{memory}/{file}.png");
        assert_eq!(file_of_key(&legacy), Some(file));
        assert_eq!(file_of_key("somebody/else.txt"), None);
        assert_eq!(file_of_key("notes.txt"), None);
        assert_eq!(
            file_of_key(&format!(
                "hangouts/{hangout}/memories/{memory}/not-an-id.jpg"
            )),
            None
        );
    }
}
