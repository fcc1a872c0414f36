//! Upload batches: creating presigned uploads, and confirming what clients put in the bucket.
//!
//! Confirm never trusts the upload itself: it reads the object back and checks size, MD5 and
//! magic numbers, because an S3-compatible server may not enforce `Content-MD5` (or may keep the
//! bytes of a PUT it refused).

use crate::domain::{
    Service,
    error::{DomainError, DomainResult},
    file::{
        self, FileRecord, FileStatus, Md5Digest, NewUpload, check_batch_size, check_id_count,
        check_upload,
    },
    files::FileView,
    ids::{FileId, HangoutId, MemoryId, UserId},
    image::ImageType,
    objects::{ObjectStorage, PresignedRequest, UploadBinding},
    store::{FileScope, FileStore},
    time::Timestamp,
};

/// A created upload: the PENDING record and the request the client must send.
#[derive(Clone, Debug)]
pub struct CreatedUpload {
    pub file: FileRecord,
    pub request: PresignedRequest,
}

/// Why a file could not be confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadFailureReason {
    /// There is no object for the file.
    NotUploaded,
    /// The object's size differs from the declared size.
    SizeMismatch,
    /// The object's MD5 differs from the declared MD5.
    ChecksumMismatch,
    /// The object's first bytes are not an image of the declared type.
    ContentMismatch,
}

/// A file that stays PENDING, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadFailure {
    pub file: FileId,
    pub reason: UploadFailureReason,
    pub message: String,
}

/// The result of a confirm: UPLOADED files and failures, each in request order.
#[derive(Clone, Debug, Default)]
pub struct ConfirmOutcome {
    pub confirmed: Vec<FileView>,
    pub failures: Vec<UploadFailure>,
}

/// Compares an object with what was declared for `file`.
fn inspect(file: &FileRecord, bytes: &[u8]) -> Option<UploadFailure> {
    let failure = |reason, message: String| {
        Some(UploadFailure {
            file: file.id,
            reason,
            message,
        })
    };
    if u64::try_from(bytes.len()).ok() != Some(file.size) {
        return failure(
            UploadFailureReason::SizeMismatch,
            format!("expected {} bytes, found {}", file.size, bytes.len()),
        );
    }
    if Md5Digest::of(bytes) != file.md5 {
        return failure(
            UploadFailureReason::ChecksumMismatch,
            "the MD5 of the uploaded bytes differs from the declared one".to_owned(),
        );
    }
    if ImageType::sniff(bytes) != Some(file.image) {
        return failure(
            UploadFailureReason::ContentMismatch,
            format!("the uploaded bytes are not {}", file.image.content_type()),
        );
    }
    None
}

/// Drops repeated ids, keeping the first occurrence.
pub(crate) fn distinct(ids: &[FileId]) -> Vec<FileId> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

impl<S: FileStore, O: ObjectStorage> Service<S, O> {
    /// Creates PENDING records and presigned uploads for a batch of files, all or nothing.
    ///
    /// # Errors
    /// `Invalid` naming the file index and field; internal ones.
    pub async fn create_uploads(
        &self,
        owner: UserId,
        hangout: HangoutId,
        uploads: Vec<NewUpload>,
    ) -> DomainResult<Vec<CreatedUpload>> {
        check_batch_size(uploads.len())?;
        let now = Timestamp::now();
        let mut records: Vec<FileRecord> = Vec::with_capacity(uploads.len());
        for (index, upload) in uploads.into_iter().enumerate() {
            let memory = MemoryId::parse(&upload.memory_id).ok_or_else(|| {
                DomainError::invalid(format!("files[{index}].memoryId"), "is not a valid id")
            })?;
            if records.iter().any(|record| record.memory == memory) {
                return Err(DomainError::invalid(
                    format!("files[{index}].memoryId"),
                    "is given more than once",
                ));
            }
            let checked = check_upload(index, upload)?;
            let id = FileId::generate();
            records.push(FileRecord {
                id,
                owner,
                hangout,
                memory,
                file_name: checked.file_name,
                image: checked.image,
                size: checked.size,
                md5: checked.md5,
                object_key: file::object_key(hangout, memory, id, checked.image),
                status: FileStatus::Pending,
                created_at: now,
                upload_expires_at: now.plus(self.settings.upload_url_ttl),
                processing: None,
                facts: None,
            });
        }
        // Presign first: it is local and cannot leave anything behind, so a failure here
        // writes nothing.
        let mut created = Vec::with_capacity(records.len());
        for record in records {
            let binding = UploadBinding {
                image: record.image,
                size: record.size,
                md5: record.md5,
            };
            let request = self
                .objects
                .presign_put(&record.object_key, binding, self.settings.upload_url_ttl)
                .await?;
            created.push(CreatedUpload {
                file: record,
                request,
            });
        }
        let records: Vec<FileRecord> = created.iter().map(|upload| upload.file.clone()).collect();
        self.store.insert_files(&records).await?;
        Ok(created)
    }

    /// Checks each file's object with S3 and marks matching files UPLOADED. Files already
    /// UPLOADED are confirmed again without a check.
    ///
    /// # Errors
    /// `Invalid` for too many ids; `NotFound` when an id is not one of the caller's files (and
    /// then nothing is confirmed); internal ones, including S3 being unreachable.
    pub async fn confirm_uploads(
        &self,
        owner: UserId,
        ids: &[FileId],
    ) -> DomainResult<ConfirmOutcome> {
        check_id_count(ids.len(), "fileIds")?;
        let ids = distinct(ids);
        if ids.is_empty() {
            return Ok(ConfirmOutcome::default());
        }
        let records = self
            .store
            .files_by_ids(FileScope::Owner(owner), &ids)
            .await?;
        let mut ordered = Vec::with_capacity(ids.len());
        for id in &ids {
            match records.iter().find(|record| record.id == *id) {
                Some(record) if record.status != FileStatus::Deleting => ordered.push(record),
                _ => return Err(DomainError::NotFound),
            }
        }
        let mut failures = Vec::new();
        let mut passed = Vec::new();
        for record in ordered {
            if record.status == FileStatus::Uploaded {
                passed.push(record.id);
                continue;
            }
            match self.check_object(record).await? {
                Some(failure) => failures.push(failure),
                None => passed.push(record.id),
            }
        }
        if !passed.is_empty() {
            self.store.mark_uploaded(owner, &passed).await?;
        }
        // Read back: a file deleted or swept meanwhile is not confirmed after all.
        let after = self
            .store
            .files_by_ids(FileScope::Owner(owner), &passed)
            .await?;
        let mut confirmed = Vec::with_capacity(passed.len());
        let signing = self.download_signing();
        for id in passed {
            match after.iter().find(|record| record.id == id) {
                Some(record) if record.status == FileStatus::Uploaded => {
                    confirmed.push(self.view(record.clone(), owner, &[], true, signing).await?);
                }
                _ => failures.push(UploadFailure {
                    file: id,
                    reason: UploadFailureReason::NotUploaded,
                    message: "the file was deleted meanwhile".to_owned(),
                }),
            }
        }
        Ok(ConfirmOutcome {
            confirmed,
            failures,
        })
    }

    /// `None` when the object matches the record.
    async fn check_object(&self, record: &FileRecord) -> DomainResult<Option<UploadFailure>> {
        let not_uploaded = || {
            Some(UploadFailure {
                file: record.id,
                reason: UploadFailureReason::NotUploaded,
                message: "no object was uploaded for this file".to_owned(),
            })
        };
        // The size comes first so an oversized object is never downloaded.
        let Some(size) = self.objects.object_size(&record.object_key).await? else {
            return Ok(not_uploaded());
        };
        if size != record.size {
            return Ok(Some(UploadFailure {
                file: record.id,
                reason: UploadFailureReason::SizeMismatch,
                message: format!("expected {} bytes, found {size}", record.size),
            }));
        }
        let Some(bytes) = self.objects.fetch(&record.object_key).await? else {
            return Ok(not_uploaded());
        };
        Ok(inspect(record, &bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];

    fn record(bytes: &[u8], image: ImageType) -> FileRecord {
        let now = Timestamp::now();
        FileRecord {
            id: FileId::generate(),
            owner: UserId::generate(),
            hangout: HangoutId::generate(),
            memory: MemoryId::generate(),
            file_name: "a.jpg".to_owned(),
            image,
            size: u64::try_from(bytes.len()).unwrap_or(0),
            md5: Md5Digest::of(bytes),
            object_key: "k".to_owned(),
            status: FileStatus::Pending,
            created_at: now,
            upload_expires_at: now,
            processing: None,
            facts: None,
        }
    }

    fn reason(file: &FileRecord, bytes: &[u8]) -> Option<UploadFailureReason> {
        inspect(file, bytes).map(|failure| failure.reason)
    }

    #[test]
    fn matching_bytes_pass() {
        assert_eq!(reason(&record(JPEG, ImageType::Jpeg), JPEG), None);
    }

    #[test]
    fn each_mismatch_has_its_reason() {
        let file = record(JPEG, ImageType::Jpeg);
        assert_eq!(
            reason(&file, &JPEG[..4]),
            Some(UploadFailureReason::SizeMismatch)
        );
        let mut other = JPEG.to_vec();
        other[6] = 9;
        assert_eq!(
            reason(&file, &other),
            Some(UploadFailureReason::ChecksumMismatch)
        );
        let text = b"hello, world";
        assert_eq!(
            reason(&record(text, ImageType::Jpeg), text),
            Some(UploadFailureReason::ContentMismatch)
        );
        assert_eq!(
            reason(&record(JPEG, ImageType::Png), JPEG),
            Some(UploadFailureReason::ContentMismatch)
        );
    }

    #[test]
    fn repeated_ids_are_dropped_in_order() {
        let (a, b) = (FileId::generate(), FileId::generate());
        assert_eq!(distinct(&[a, b, a, b]), vec![a, b]);
    }
}
