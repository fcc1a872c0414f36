//! The photo upload flow across both services.
//!
//! `createMemoryUploads`: hangout-core creates PENDING memories, file-core creates the file
//! records and presigned uploads, hangout-core records each memory's file id. A failure after
//! the first step undoes what was done, so no memory is left without its file and no file
//! without its memory; what a crash leaves behind is removed by the services' sweepers.
//!
//! `confirmMemoryUploads`: file-core checks the objects, then hangout-core marks the confirmed
//! memories UPLOADED; the others are reported as per-memory failures.

use std::collections::HashMap;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use proto::{file::v1 as file_pb, hangout::v1 as pb};

use crate::{
    backend::{Backends, CallContext},
    graphql::{
        backends,
        error::{ApiError, ApiResult},
        hangout,
        ids::{self, Kind},
        memory::Memory,
        scalars::DateTime,
        signed_in,
    },
};

#[derive(InputObject)]
pub struct MemoryFileInput {
    /// A name ending in .jpg, .jpeg, .png, .gif or .webp; unique among the hangout's memories.
    file_name: String,
    /// Must match the extension: image/jpeg, image/png, image/gif or image/webp.
    content_type: String,
    /// Bytes, 1 to 10485760.
    size: i32,
    /// Base64 of the MD5 digest of the bytes, as in a Content-MD5 header.
    md5: String,
}

#[derive(InputObject)]
pub struct CreateMemoryUploadsInput {
    hangout_id: ID,
    /// 1 to 10 files.
    files: Vec<MemoryFileInput>,
}

#[derive(SimpleObject)]
pub struct HttpHeader {
    name: String,
    value: String,
}

#[derive(SimpleObject)]
pub struct MemoryUpload {
    memory: Memory,
    /// Where to send the bytes.
    url: String,
    /// Always PUT.
    method: String,
    /// Headers the request must carry exactly as given; they are part of the signature.
    headers: Vec<HttpHeader>,
    expires_at: DateTime,
}

#[derive(SimpleObject)]
pub struct CreateMemoryUploadsPayload {
    /// In the order of input.files.
    uploads: Vec<MemoryUpload>,
}

#[derive(InputObject)]
pub struct ConfirmMemoryUploadsInput {
    /// 1 to 10 memories of one or more upload batches.
    memory_ids: Vec<ID>,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryUploadFailureReason {
    /// No object was uploaded (or the upload URL expired first).
    NotUploaded,
    SizeMismatch,
    ChecksumMismatch,
    /// The bytes are not an image of the declared type.
    ContentMismatch,
}

impl MemoryUploadFailureReason {
    fn from_proto(value: i32) -> Self {
        match file_pb::UploadFailureReason::try_from(value) {
            Ok(file_pb::UploadFailureReason::SizeMismatch) => Self::SizeMismatch,
            Ok(file_pb::UploadFailureReason::ChecksumMismatch) => Self::ChecksumMismatch,
            Ok(file_pb::UploadFailureReason::ContentMismatch) => Self::ContentMismatch,
            _ => Self::NotUploaded,
        }
    }
}

#[derive(SimpleObject)]
pub struct MemoryUploadFailure {
    memory_id: ID,
    reason: MemoryUploadFailureReason,
    message: String,
}

#[derive(SimpleObject)]
pub struct ConfirmMemoryUploadsPayload {
    /// Memories now UPLOADED, in the order asked.
    memories: Vec<Memory>,
    /// Memories that could not be confirmed; they stay PENDING and can be uploaded again until
    /// they expire.
    failures: Vec<MemoryUploadFailure>,
}

/// Undoes the memories of a batch whose later step failed; a failure here is logged and left
/// to hangout-core's sweeper of expired PENDING memories.
async fn undo_memories(backends: &Backends, call: &CallContext, memory_ids: Vec<String>) {
    if let Err(error) = backends
        .hangout
        .delete_memories(call, pb::DeleteMemoriesRequest { ids: memory_ids })
        .await
    {
        tracing::error!(
            request_id = %call.request_id,
            error = %telemetry::ErrorChain(&error),
            "undoing the memories of a failed upload batch failed; the sweeper will remove them"
        );
    }
}

#[derive(Default)]
pub struct UploadMutation;

#[Object]
impl UploadMutation {
    /// Starts a batch of photo uploads to a hangout: at most 10 files of at most 10 MiB each,
    /// of type JPEG, PNG, GIF or WebP. All or nothing: one invalid file rejects the batch.
    /// Each upload is a presigned PUT straight to object storage; the file bytes never pass
    /// through the API.
    async fn create_memory_uploads(
        &self,
        ctx: &Context<'_>,
        input: CreateMemoryUploadsInput,
    ) -> ApiResult<CreateMemoryUploadsPayload> {
        let request = signed_in(ctx)?;
        let backends = backends(ctx)?;
        let call = &request.call;
        let hangout_id = ids::parse_input(Kind::Hangout, &input.hangout_id, "hangoutId")?;
        let mut sizes = Vec::with_capacity(input.files.len());
        for (index, file) in input.files.iter().enumerate() {
            let size = u64::try_from(file.size).map_err(|_| {
                ApiError::bad_input(format!("files[{index}].size"), "must be positive")
            })?;
            sizes.push(size);
        }
        let memories = backends
            .hangout
            .create_memories(
                call,
                pb::CreateMemoriesRequest {
                    hangout_id: hangout_id.clone(),
                    files: input
                        .files
                        .iter()
                        .zip(&sizes)
                        .map(|(file, size)| pb::MemoryFile {
                            file_name: file.file_name.clone(),
                            content_type: file.content_type.clone(),
                            size: *size,
                        })
                        .collect(),
                },
            )
            .await?
            .memories;
        let memory_ids: Vec<String> = memories.iter().map(|memory| memory.id.clone()).collect();
        if memories.len() != input.files.len() {
            tracing::error!(request_id = %call.request_id, "hangout-core created a different number of memories");
            undo_memories(backends, call, memory_ids).await;
            return Err(ApiError::internal());
        }
        let uploads = match backends
            .file
            .create_uploads(
                call,
                file_pb::CreateUploadsRequest {
                    hangout_id,
                    files: input
                        .files
                        .into_iter()
                        .zip(&memories)
                        .zip(sizes)
                        .map(|((file, memory), size)| file_pb::UploadFile {
                            memory_id: memory.id.clone(),
                            file_name: file.file_name,
                            content_type: file.content_type,
                            size,
                            md5: file.md5,
                        })
                        .collect(),
                },
            )
            .await
        {
            Ok(response) => response.uploads,
            Err(error) => {
                undo_memories(backends, call, memory_ids).await;
                return Err(error.into());
            }
        };
        let links = uploads
            .iter()
            .map(|upload| pb::MemoryFileLink {
                memory_id: upload.memory_id.clone(),
                file_id: upload.file_id.clone(),
            })
            .collect();
        if let Err(error) = backends
            .hangout
            .attach_memory_files(call, pb::AttachMemoryFilesRequest { links })
            .await
        {
            let file_ids = uploads
                .iter()
                .map(|upload| upload.file_id.clone())
                .collect();
            hangout::delete_files(backends, call, file_ids).await;
            undo_memories(backends, call, memory_ids).await;
            return Err(error.into());
        }
        let mut by_memory: HashMap<String, file_pb::Upload> = uploads
            .into_iter()
            .map(|upload| (upload.memory_id.clone(), upload))
            .collect();
        let mut result = Vec::with_capacity(memories.len());
        for memory in memories {
            let Some(upload) = by_memory.remove(&memory.id) else {
                tracing::error!(request_id = %call.request_id, "file-core left out an upload");
                return Err(ApiError::internal());
            };
            let mut memory = Memory::from(memory);
            memory.file_id.clone_from(&upload.file_id);
            result.push(MemoryUpload {
                memory,
                url: upload.url,
                method: upload.method,
                headers: upload
                    .headers
                    .into_iter()
                    .map(|header| HttpHeader {
                        name: header.name,
                        value: header.value,
                    })
                    .collect(),
                expires_at: DateTime::from_proto(upload.expires_at.as_ref()),
            });
        }
        Ok(CreateMemoryUploadsPayload { uploads: result })
    }

    /// Checks that each uploaded object exists with the declared size, checksum and type, and
    /// makes it a visible memory. Idempotent: confirming an uploaded memory again is a no-op.
    async fn confirm_memory_uploads(
        &self,
        ctx: &Context<'_>,
        input: ConfirmMemoryUploadsInput,
    ) -> ApiResult<ConfirmMemoryUploadsPayload> {
        let request = signed_in(ctx)?;
        let backends = backends(ctx)?;
        let call = &request.call;
        if input.memory_ids.is_empty()
            || input.memory_ids.len() as u64 > crate::graphql::cost::MAX_UPLOAD_BATCH
        {
            return Err(ApiError::bad_input(
                "memoryIds",
                format!(
                    "must hold 1 to {} ids",
                    crate::graphql::cost::MAX_UPLOAD_BATCH
                ),
            ));
        }
        let memory_ids = ids::parse_inputs(Kind::Memory, &input.memory_ids, "memoryIds")?;
        let found: HashMap<String, pb::Memory> = backends
            .hangout
            .get_memories(
                call,
                pb::GetMemoriesRequest {
                    ids: memory_ids.clone(),
                },
            )
            .await?
            .memories
            .into_iter()
            // Only the uploader confirms: another member's upload is not found here.
            .filter(|memory| call.user_id.as_deref() == Some(memory.uploaded_by.as_str()))
            .map(|memory| (memory.id.clone(), memory))
            .collect();
        if let Some(index) = memory_ids.iter().position(|id| !found.contains_key(id)) {
            return Err(ApiError::new(
                crate::graphql::error::Code::NotFound,
                format!("memoryIds[{index}]: not found"),
            ));
        }
        let mut failures = Vec::new();
        let mut file_ids = Vec::new();
        let mut memory_of_file = HashMap::new();
        for id in &memory_ids {
            let memory = &found[id];
            if memory.file_id.is_empty() {
                failures.push(MemoryUploadFailure {
                    memory_id: ids::encode(Kind::Memory, id),
                    reason: MemoryUploadFailureReason::NotUploaded,
                    message: "the upload was never started".to_owned(),
                });
            } else {
                file_ids.push(memory.file_id.clone());
                memory_of_file.insert(memory.file_id.clone(), id.clone());
            }
        }
        let mut confirmed_ids = Vec::new();
        if !file_ids.is_empty() {
            let confirmed = backends.file.confirm_uploads_by_ids(call, file_ids).await?;
            for file in confirmed.confirmed {
                if let Some(memory_id) = memory_of_file.get(&file.id) {
                    confirmed_ids.push(memory_id.clone());
                }
            }
            for failure in confirmed.failures {
                if let Some(memory_id) = memory_of_file.get(&failure.file_id) {
                    failures.push(MemoryUploadFailure {
                        memory_id: ids::encode(Kind::Memory, memory_id),
                        reason: MemoryUploadFailureReason::from_proto(failure.reason),
                        message: failure.message,
                    });
                }
            }
        }
        let mut marked: HashMap<String, pb::Memory> = HashMap::new();
        if !confirmed_ids.is_empty() {
            marked = backends
                .hangout
                .mark_memories_uploaded(
                    call,
                    pb::MarkMemoriesUploadedRequest { ids: confirmed_ids },
                )
                .await?
                .memories
                .into_iter()
                .map(|memory| (memory.id.clone(), memory))
                .collect();
        }
        let memories = memory_ids
            .iter()
            .filter_map(|id| marked.remove(id))
            .map(Memory::from)
            .collect();
        Ok(ConfirmMemoryUploadsPayload { memories, failures })
    }
}
