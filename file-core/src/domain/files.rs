//! Reading and deleting files, and the sweeper's work.
//!
//! Deletion is recorded before the object is touched: a file is first marked DELETING (hidden
//! from then on), then its object is deleted, then its record. When object storage fails, the
//! record stays DELETING and [`Service::sweep`] retries until both are gone, so nothing is left
//! behind in the bucket or the table.
//!
//! A presigned upload cannot be revoked: until its window ends, a client may still PUT the
//! object of a file that was just deleted. So the DELETING record of such a file stays, as a
//! tombstone, until the window has ended; then the sweeper deletes the object once more and only
//! then the record.

use std::collections::HashMap;

use crate::domain::{
    Service,
    download::DownloadSigning,
    error::DomainResult,
    file::{FileRecord, FileStatus, check_id_count, check_read_id_count},
    ids::{FileId, UserId},
    objects::{ObjectStorage, PresignedRequest},
    processing::{ImageSize, Processing, object_keys, rendition_key},
    store::{FileScope, FileStore},
    time::Timestamp,
    uploads::distinct,
};

/// Removal failures in a row after which a sweep gives up until the next one.
const MAX_FAILURES_IN_A_ROW: u32 = 3;

/// A file as one caller sees it: UPLOADED files carry a presigned download (the exact upload
/// for its uploader, the FULL rendition for everyone else, once READY), READY ones the
/// renditions asked for.
#[derive(Clone, Debug)]
pub struct FileView {
    pub file: FileRecord,
    pub download: Option<PresignedRequest>,
    pub images: Vec<(ImageSize, PresignedRequest)>,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// PENDING files past their upload window and grace, now claimed for deletion.
    pub expired: u64,
    /// Files whose object and record were removed.
    pub removed: u64,
    /// Files whose removal failed and will be retried by the next sweep.
    pub failed: u64,
}

impl<S: FileStore, O: ObjectStorage> Service<S, O> {
    /// The signing of downloads handed out now.
    pub(crate) fn download_signing(&self) -> DownloadSigning {
        DownloadSigning::at(Timestamp::now(), self.settings.download_url_ttl)
    }

    /// `file` as `viewer` sees it, with the renditions of `sizes` when it is READY, and its
    /// download unless `downloads` is false. The original, still in quarantine, is only ever
    /// signed for its uploader.
    pub(crate) async fn view(
        &self,
        file: FileRecord,
        viewer: UserId,
        sizes: &[ImageSize],
        downloads: bool,
        signing: DownloadSigning,
    ) -> DomainResult<FileView> {
        let ready =
            file.status == FileStatus::Uploaded && file.processing == Some(Processing::Ready);
        let download = if file.status != FileStatus::Uploaded || !downloads {
            None
        } else if file.owner == viewer {
            Some(self.objects.presign_get(&file.object_key, signing).await?)
        } else if ready {
            let full = rendition_key(&file, ImageSize::Full);
            Some(self.objects.presign_get(&full, signing).await?)
        } else {
            None
        };
        let mut images = Vec::new();
        if ready {
            for size in sizes {
                let key = rendition_key(&file, *size);
                images.push((*size, self.objects.presign_get(&key, signing).await?));
            }
        }
        Ok(FileView {
            file,
            download,
            images,
        })
    }

    /// The files among `ids` as `viewer` sees them, in request order, with the renditions of
    /// `sizes` and (when `downloads`) the download URLs; unknown and DELETING ones are left
    /// out. Who may see them was decided by
    /// hangout-core (see [`FileScope::Named`]). URLs are presigned locally, without a round
    /// trip to S3.
    ///
    /// # Errors
    /// `Invalid` for too many ids; internal ones.
    pub async fn files_by_ids(
        &self,
        viewer: UserId,
        ids: &[FileId],
        sizes: &[ImageSize],
        downloads: bool,
    ) -> DomainResult<Vec<FileView>> {
        check_read_id_count(ids.len(), "ids")?;
        let ids = distinct(ids);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut records = self.store.files_by_ids(FileScope::Named, &ids).await?;
        records.retain(|record| record.status != FileStatus::Deleting);
        // In the order asked: a position per id, so the sort is O(n log n), not O(n²).
        let positions: HashMap<FileId, usize> = ids
            .iter()
            .enumerate()
            .map(|(index, id)| (*id, index))
            .collect();
        records.sort_by_key(|record| positions.get(&record.id).copied());
        let signing = self.download_signing();
        let mut views = Vec::with_capacity(records.len());
        for record in records {
            views.push(self.view(record, viewer, sizes, downloads, signing).await?);
        }
        Ok(views)
    }

    /// Deletes the files among `ids` (whose memories hangout-core has deleted): objects and
    /// records. Idempotent: unknown ids are ignored. When object storage fails, the files stay claimed for deletion (hidden) and the
    /// sweeper finishes the job; the call still succeeds.
    ///
    /// # Errors
    /// `Invalid` for too many ids; internal ones when the database fails.
    pub async fn delete_files(&self, ids: &[FileId]) -> DomainResult<()> {
        check_id_count(ids.len(), "ids")?;
        let ids = distinct(ids);
        if ids.is_empty() {
            return Ok(());
        }
        let claimed = self.store.mark_deleting(FileScope::Named, &ids).await?;
        let now = Timestamp::now();
        for (index, file) in claimed.iter().enumerate() {
            if let Err(error) = self.remove(file, now).await {
                // Most likely S3 is unreachable, and each further attempt would wait for the
                // same timeouts: leave the rest to the sweeper and answer now.
                tracing::warn!(
                    error = %telemetry::ErrorChain(&error),
                    file = %file.id,
                    left = claimed.len() - index,
                    "removing files failed; the sweeper will retry"
                );
                break;
            }
        }
        Ok(())
    }

    /// Removes the objects (the original and, once it was UPLOADED, the renditions), then the
    /// record, of a DELETING file. The record stays while its upload window is open, since a
    /// late PUT could still create the object again.
    async fn remove(&self, file: &FileRecord, now: Timestamp) -> DomainResult<()> {
        if file.processing.is_some() {
            for key in object_keys(file) {
                self.objects.delete(&key).await?;
            }
        } else {
            self.objects.delete(&file.object_key).await?;
        }
        if file.upload_expires_at < now {
            self.store.remove_deleted(file.id).await?;
        }
        Ok(())
    }

    /// Claims PENDING files whose upload window ended more than the grace period ago, then
    /// removes DELETING files whose upload window has ended (these, deletions that failed
    /// before, and tombstones of files deleted within their window), up to a batch.
    ///
    /// # Errors
    /// Internal ones when the database fails; object-storage failures are counted and logged.
    pub async fn sweep(&self) -> DomainResult<SweepReport> {
        let now = Timestamp::now();
        let before = now.minus(self.settings.pending_grace);
        let expired = self.store.mark_expired_pending_deleting(before).await?;
        let mut report = SweepReport {
            expired,
            ..SweepReport::default()
        };
        let due = self
            .store
            .deleting_files(now, self.settings.sweep_batch)
            .await?;
        let mut failed_in_a_row = 0;
        for file in due {
            match self.remove(&file, now).await {
                Ok(()) => {
                    report.removed += 1;
                    failed_in_a_row = 0;
                }
                Err(error) => {
                    report.failed += 1;
                    failed_in_a_row += 1;
                    tracing::warn!(
                        error = %telemetry::ErrorChain(&error),
                        file = %file.id,
                        "removing a file failed; will retry"
                    );
                    // Several failures in a row mean S3 is down: stop waiting on its timeouts
                    // until the next sweep.
                    if failed_in_a_row >= MAX_FAILURES_IN_A_ROW {
                        break;
                    }
                }
            }
        }
        Ok(report)
    }
}
