//! Photo memories: the `Memory` type, its connection, `memory`, and `deleteMemory`. The upload
//! flow lives in [`super::uploads`].

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Context, Enum, ID, InputObject, Object, SimpleObject, Value, parser::types::Field,
    resolver_utils::enum_value,
};
use proto::hangout::v1 as pb;

use crate::graphql::{
    backends,
    connection::{OrderDirection, Page, connection},
    error::{ApiError, ApiResult},
    hangout::{self, Hangout},
    ids::{self, Kind},
    loaders::{FileKey, HangoutKey, MemoryKey},
    ready::{self, ReadyFields},
    scalars::DateTime,
    signed_in, user,
    user::User,
};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryStatus {
    /// Upload URL issued; bytes not yet confirmed.
    Pending,
    /// Confirmed: the object exists with the declared size, checksum and type.
    Uploaded,
}

impl MemoryStatus {
    pub(super) fn from_proto(value: i32) -> Self {
        match pb::MemoryStatus::try_from(value) {
            Ok(pb::MemoryStatus::Uploaded) => Self::Uploaded,
            _ => Self::Pending,
        }
    }

    pub(super) fn to_proto(self) -> pb::MemoryStatus {
        match self {
            Self::Pending => pb::MemoryStatus::Pending,
            Self::Uploaded => pb::MemoryStatus::Uploaded,
        }
    }
}

#[derive(InputObject, Clone, Copy)]
pub struct MemoryOrder {
    #[graphql(default_with = "OrderDirection::Desc")]
    pub direction: OrderDirection,
}

/// A memory as the API shows it.
#[derive(Clone, Debug)]
pub struct Memory {
    pub id: String,
    pub hangout_id: String,
    pub uploaded_by: String,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub status: MemoryStatus,
    pub file_id: String,
    pub created_at: DateTime,
    /// The stored file when it was fetched with the page: `Some(None)` means fetched and
    /// absent, `None` means not fetched (then it is loaded on demand).
    pub prefetched_file: Option<Option<Arc<proto::file::v1::File>>>,
}

impl From<pb::Memory> for Memory {
    fn from(memory: pb::Memory) -> Self {
        Self {
            status: MemoryStatus::from_proto(memory.status),
            created_at: DateTime::from_proto(memory.created_at.as_ref()),
            id: memory.id,
            hangout_id: memory.hangout_id,
            uploaded_by: memory.uploaded_by,
            file_name: memory.file_name,
            content_type: memory.content_type,
            size: memory.size,
            file_id: memory.file_id,
            prefetched_file: None,
        }
    }
}

impl Memory {
    /// The stored file, when the memory is uploaded, if that is known without loading it:
    /// `Some(None)` for none, `None` when it would have to be loaded.
    fn ready_file(&self) -> Option<Option<&Arc<proto::file::v1::File>>> {
        if self.status != MemoryStatus::Uploaded || self.file_id.is_empty() {
            return Some(None);
        }
        self.prefetched_file.as_ref().map(Option::as_ref)
    }

    /// The stored file, when the memory is uploaded.
    async fn file(&self, ctx: &Context<'_>) -> ApiResult<Option<Arc<proto::file::v1::File>>> {
        if let Some(file) = self.ready_file() {
            return Ok(file.cloned());
        }
        let request = signed_in(ctx)?;
        Ok(request
            .loader
            .load_one(FileKey(self.file_id.clone()))
            .await?)
    }
}

#[Object]
impl Memory {
    pub(super) async fn id(&self) -> ID {
        ids::encode(Kind::Memory, &self.id)
    }

    async fn file_name(&self) -> &str {
        &self.file_name
    }

    async fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Bytes.
    async fn size(&self) -> i32 {
        i32::try_from(self.size).unwrap_or(i32::MAX)
    }

    async fn status(&self) -> MemoryStatus {
        self.status
    }

    async fn hangout(&self, ctx: &Context<'_>) -> ApiResult<Arc<Hangout>> {
        let request = signed_in(ctx)?;
        request
            .loader
            .load_one(HangoutKey(self.hangout_id.clone()))
            .await?
            .ok_or_else(ApiError::not_found)
    }

    async fn uploaded_by(&self, ctx: &Context<'_>) -> ApiResult<Arc<User>> {
        user::load_existing(ctx, &self.uploaded_by).await
    }

    /// Presigned GET URL; null while PENDING.
    async fn download_url(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        Ok(self.file(ctx).await?.as_deref().and_then(download_url))
    }

    async fn download_url_expires_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime>> {
        Ok(self
            .file(ctx)
            .await?
            .as_deref()
            .and_then(download_url_expires_at))
    }

    async fn created_at(&self) -> DateTime {
        self.created_at
    }
}

fn download_url(file: &proto::file::v1::File) -> Option<String> {
    (!file.download_url.is_empty()).then(|| file.download_url.clone())
}

fn download_url_expires_at(file: &proto::file::v1::File) -> Option<DateTime> {
    file.download_url_expires_at
        .as_ref()
        .map(|expires_at| DateTime::from_proto(Some(expires_at)))
}

impl ReadyFields for Memory {
    fn ready_field(&self, field: &Field) -> Option<Value> {
        Some(match field.name.node.as_str() {
            "id" => ready::scalar(&ids::encode(Kind::Memory, &self.id)),
            "fileName" => Value::String(self.file_name.clone()),
            "contentType" => Value::String(self.content_type.clone()),
            "size" => ready::scalar(&i32::try_from(self.size).unwrap_or(i32::MAX)),
            "status" => enum_value(self.status),
            "createdAt" => ready::scalar(&self.created_at),
            "downloadUrl" => ready::optional(
                self.ready_file()?
                    .and_then(|file| download_url(file))
                    .as_ref(),
            ),
            "downloadUrlExpiresAt" => ready::optional(
                self.ready_file()?
                    .and_then(|file| download_url_expires_at(file))
                    .as_ref(),
            ),
            _ => return None,
        })
    }
}

connection!(MemoryConnection, MemoryEdge, Memory);

/// A backend page of memories as a connection; `files`, when given, are the prefetched files
/// by id.
pub(super) fn memory_connection(
    page: pb::HangoutMemoriesPage,
    had_after: bool,
    files: Option<&HashMap<String, Arc<proto::file::v1::File>>>,
) -> MemoryConnection {
    let edges = page
        .edges
        .into_iter()
        .filter_map(|edge| {
            let mut memory = Memory::from(edge.memory?);
            if let Some(files) = files {
                memory.prefetched_file = Some(files.get(&memory.file_id).cloned());
            }
            Some((edge.cursor, memory))
        })
        .collect();
    Page::new(edges, page.page_info.as_ref(), had_after).into()
}

#[derive(InputObject)]
pub struct DeleteMemoryInput {
    id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteMemoryPayload {
    deleted_id: ID,
}

#[derive(Default)]
pub struct MemoryQuery;

#[Object]
impl MemoryQuery {
    async fn memory(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Arc<Memory>>> {
        let request = signed_in(ctx)?;
        let Some(id) = ids::decode_kind(Kind::Memory, &id) else {
            return Ok(None);
        };
        Ok(request.loader.load_one(MemoryKey(id)).await?)
    }
}

#[derive(Default)]
pub struct MemoryMutation;

#[Object]
impl MemoryMutation {
    /// Deletes the memory and its stored file.
    async fn delete_memory(
        &self,
        ctx: &Context<'_>,
        input: DeleteMemoryInput,
    ) -> ApiResult<DeleteMemoryPayload> {
        let request = signed_in(ctx)?;
        let backends = backends(ctx)?;
        let id = ids::parse_input(Kind::Memory, &input.id, "id")?;
        let deleted = backends
            .hangout
            .delete_memories(&request.call, pb::DeleteMemoriesRequest { ids: vec![id] })
            .await?
            .deleted;
        let Some(link) = deleted.into_iter().next() else {
            return Err(ApiError::not_found());
        };
        if !link.file_id.is_empty() {
            hangout::delete_files(backends, &request.call, vec![link.file_id]).await;
        }
        Ok(DeleteMemoryPayload {
            deleted_id: ids::encode(Kind::Memory, &link.memory_id),
        })
    }
}
