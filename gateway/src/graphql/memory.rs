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

/// The size of a photo's rendition.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageSize {
    /// At most 320 pixels on the longer side.
    Thumbnail,
    /// At most 1600 pixels on the longer side.
    Preview,
    /// The full size, re-encoded.
    Full,
}

impl ImageSize {
    const ALL: [Self; 3] = [Self::Thumbnail, Self::Preview, Self::Full];

    /// The size named `name` in a document or in variables (`THUMBNAIL`, …).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "THUMBNAIL" => Some(Self::Thumbnail),
            "PREVIEW" => Some(Self::Preview),
            "FULL" => Some(Self::Full),
            _ => None,
        }
    }

    fn to_proto(self) -> proto::file::v1::ImageSize {
        match self {
            Self::Thumbnail => proto::file::v1::ImageSize::Thumbnail,
            Self::Preview => proto::file::v1::ImageSize::Preview,
            Self::Full => proto::file::v1::ImageSize::Full,
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Thumbnail => 1,
            Self::Preview => 2,
            Self::Full => 4,
        }
    }
}

/// The URLs an operation's `Memory` fields need file-core to sign: the download URL
/// (`downloadUrl`, `downloadUrlExpiresAt`) and the renditions of its `imageUrl` sizes. Found
/// by the cost analysis (which walks every field anyway) and cached with the document: every
/// file load of the request signs these and only these, so all its URL fields are answered
/// from the one batch and nothing unselected is signed or sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileUrls {
    sizes: u8,
    downloads: bool,
}

impl FileUrls {
    /// What the walk starts from: nothing.
    pub const NONE: Self = Self {
        sizes: 0,
        downloads: false,
    };

    /// With the rendition of `size`.
    #[must_use]
    pub fn with(self, size: ImageSize) -> Self {
        Self {
            sizes: self.sizes | size.bit(),
            ..self
        }
    }

    /// With every rendition (when a size comes from somewhere the analysis cannot read).
    #[must_use]
    pub fn with_all_sizes(self) -> Self {
        Self { sizes: 7, ..self }
    }

    /// With the download URL.
    #[must_use]
    pub fn with_downloads(self) -> Self {
        Self {
            downloads: true,
            ..self
        }
    }

    /// Whether download URLs are signed.
    #[must_use]
    pub fn downloads(self) -> bool {
        self.downloads
    }

    /// The rendition sizes to ask file-core for.
    #[must_use]
    pub fn sizes_to_proto(self) -> Vec<i32> {
        ImageSize::ALL
            .into_iter()
            .filter(|size| self.sizes & size.bit() != 0)
            .map(|size| size.to_proto() as i32)
            .collect()
    }
}

impl Default for FileUrls {
    /// When nothing was analysed: download URLs, as before renditions existed.
    fn default() -> Self {
        Self::NONE.with_downloads()
    }
}

/// Where an uploaded photo is in processing.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryProcessing {
    /// Confirmed; renditions not made yet.
    Queued,
    Ready,
    /// The bytes could not be decoded as an image, or the image is too large to decode safely.
    Failed,
}

impl MemoryProcessing {
    fn from_proto(value: i32) -> Option<Self> {
        match proto::file::v1::Processing::try_from(value) {
            Ok(proto::file::v1::Processing::Queued) => Some(Self::Queued),
            Ok(proto::file::v1::Processing::Ready) => Some(Self::Ready),
            Ok(proto::file::v1::Processing::Failed) => Some(Self::Failed),
            _ => None,
        }
    }
}

#[derive(InputObject, Clone, Copy)]
pub struct MemoryOrder {
    #[graphql(default_with = "OrderDirection::Desc")]
    pub direction: OrderDirection,
}

/// The fields of `Memory` that come from its file in file-core: a page of memories selecting
/// any of them fetches the files with the page.
pub(super) const FILE_FIELDS: [&str; 7] = [
    "downloadUrl",
    "downloadUrlExpiresAt",
    "processing",
    "width",
    "height",
    "takenAt",
    "imageUrl",
];

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
    /// The stored file, as far as the page that carried the memory fetched it.
    pub prefetched_file: PrefetchedFile,
}

/// A memory's stored file, as far as the page that carried the memory fetched it.
#[derive(Clone, Debug)]
pub enum PrefetchedFile {
    /// Not fetched with the page: loaded on demand.
    NotFetched,
    /// Fetched: the file, or `None` when file-core has none.
    Fetched(Option<Arc<proto::file::v1::File>>),
    /// file-core could not be asked: the file's fields are null, and the response says once
    /// that its URLs are missing ([`FilesUnavailable`]).
    Unavailable,
}

/// The files of a page of memories, as [`memory_connection`] attaches them.
pub(super) enum PageFiles<'a> {
    NotFetched,
    Fetched(&'a HashMap<String, Arc<proto::file::v1::File>>),
    Unavailable,
}

impl<'a> PageFiles<'a> {
    /// What a key that does or does not want files gets of `fetched` (`None`: file-core
    /// was unavailable).
    pub(super) fn of(
        wanted: bool,
        fetched: Option<&'a HashMap<String, Arc<proto::file::v1::File>>>,
    ) -> Self {
        match (wanted, fetched) {
            (false, _) => Self::NotFetched,
            (true, Some(files)) => Self::Fetched(files),
            (true, None) => Self::Unavailable,
        }
    }
}

/// Whether a page's files could not be fetched during the request (file-core unavailable):
/// the page is answered without them, and the response gets one SERVICE_UNAVAILABLE error
/// for the missing URLs rather than losing the page, or an error per memory.
#[derive(Clone, Debug, Default)]
pub struct FilesUnavailable(Arc<std::sync::atomic::AtomicBool>);

impl FilesUnavailable {
    pub(super) fn note(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Adds the one error for the missing URLs to `response`, when a page lacked its files
    /// since the last response (a subscription reports once per response it affects).
    pub fn report(&self, response: &mut async_graphql::Response) {
        if self.0.swap(false, std::sync::atomic::Ordering::Relaxed) {
            response.errors.push(super::error::coded_error(
                "file storage is unavailable: file URLs and photo details are null; the rest \
                 of the data is complete",
                super::error::Code::ServiceUnavailable,
            ));
        }
    }
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
            prefetched_file: PrefetchedFile::NotFetched,
        }
    }
}

/// What is known of a memory's stored file without loading it.
enum StoredFile<'a> {
    /// It has to be loaded.
    ToLoad,
    /// There is none: the memory is not uploaded, file-core has no such file, or file-core
    /// was unavailable when the page was read.
    Absent,
    Present(&'a Arc<proto::file::v1::File>),
}

impl Memory {
    fn stored_file(&self) -> StoredFile<'_> {
        if self.status != MemoryStatus::Uploaded || self.file_id.is_empty() {
            return StoredFile::Absent;
        }
        match &self.prefetched_file {
            PrefetchedFile::NotFetched => StoredFile::ToLoad,
            PrefetchedFile::Fetched(Some(file)) => StoredFile::Present(file),
            PrefetchedFile::Fetched(None) | PrefetchedFile::Unavailable => StoredFile::Absent,
        }
    }

    /// `field` of the stored file (null without one), for the ready pass: `None` when the
    /// file would have to be loaded, which sends the object the ordinary way.
    fn ready_from_file<T>(
        &self,
        field: impl FnOnce(&proto::file::v1::File) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.stored_file() {
            StoredFile::ToLoad => None,
            StoredFile::Absent => Some(None),
            StoredFile::Present(file) => Some(field(file)),
        }
    }

    /// The stored file, when the memory is uploaded.
    async fn file(&self, ctx: &Context<'_>) -> ApiResult<Option<Arc<proto::file::v1::File>>> {
        match self.stored_file() {
            StoredFile::Absent => Ok(None),
            StoredFile::Present(file) => Ok(Some(Arc::clone(file))),
            StoredFile::ToLoad => {
                let request = signed_in(ctx)?;
                Ok(request
                    .loader
                    .load_one(FileKey(self.file_id.clone()))
                    .await?)
            }
        }
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

    async fn processing(&self, ctx: &Context<'_>) -> ApiResult<Option<MemoryProcessing>> {
        Ok(self.file(ctx).await?.as_deref().and_then(processing))
    }

    /// Pixels; null until processed.
    async fn width(&self, ctx: &Context<'_>) -> ApiResult<Option<i32>> {
        Ok(self
            .file(ctx)
            .await?
            .as_deref()
            .and_then(|file| pixels(file, file.width)))
    }

    /// Pixels; null until processed.
    async fn height(&self, ctx: &Context<'_>) -> ApiResult<Option<i32>> {
        Ok(self
            .file(ctx)
            .await?
            .as_deref()
            .and_then(|file| pixels(file, file.height)))
    }

    /// When the photo was taken, read from its metadata before that was removed; null if
    /// unknown.
    async fn taken_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime>> {
        Ok(self.file(ctx).await?.as_deref().and_then(taken_at))
    }

    /// Presigned GET URL of a rendition without any metadata (no location, no camera data);
    /// null until processing is READY. For the uploader, downloadUrl stays the exact uploaded
    /// bytes; for every other member it is this FULL rendition.
    async fn image_url(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "ImageSize::Preview")] size: ImageSize,
    ) -> ApiResult<Option<String>> {
        Ok(self
            .file(ctx)
            .await?
            .as_deref()
            .and_then(|file| image_url(file, size)))
    }
}

fn processing(file: &proto::file::v1::File) -> Option<MemoryProcessing> {
    MemoryProcessing::from_proto(file.processing)
}

/// A side of a READY file (file-core sends 0 before).
fn pixels(file: &proto::file::v1::File, side: u32) -> Option<i32> {
    (processing(file) == Some(MemoryProcessing::Ready) && side > 0)
        .then(|| i32::try_from(side).unwrap_or(i32::MAX))
}

fn taken_at(file: &proto::file::v1::File) -> Option<DateTime> {
    file.taken_at
        .as_ref()
        .map(|taken| DateTime::from_proto(Some(taken)))
}

/// The rendition of `size`, which the request's loads asked for (see [`FileUrls`]).
fn image_url(file: &proto::file::v1::File, size: ImageSize) -> Option<String> {
    let wanted = size.to_proto() as i32;
    file.images
        .iter()
        .find(|image| image.size == wanted)
        .map(|image| image.url.clone())
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
            "downloadUrl" => ready::optional(self.ready_from_file(download_url)?.as_ref()),
            "downloadUrlExpiresAt" => {
                ready::optional(self.ready_from_file(download_url_expires_at)?.as_ref())
            }
            "processing" => self
                .ready_from_file(processing)?
                .map_or(Value::Null, enum_value),
            "width" => ready::optional(
                self.ready_from_file(|file| pixels(file, file.width))?
                    .as_ref(),
            ),
            "height" => ready::optional(
                self.ready_from_file(|file| pixels(file, file.height))?
                    .as_ref(),
            ),
            "takenAt" => ready::optional(self.ready_from_file(taken_at)?.as_ref()),
            "imageUrl" => {
                // A size from a variable goes the ordinary way.
                let size = match field.get_argument("size").map(|size| &size.node) {
                    None => ImageSize::Preview,
                    Some(async_graphql_value::Value::Enum(name)) => {
                        ImageSize::from_name(name.as_str())?
                    }
                    Some(_) => return None,
                };
                ready::optional(self.ready_from_file(|file| image_url(file, size))?.as_ref())
            }
            _ => return None,
        })
    }
}

connection!(MemoryConnection, MemoryEdge, Memory);

/// A backend page of memories as a connection, with the files fetched with it.
pub(super) fn memory_connection(
    page: pb::HangoutMemoriesPage,
    had_after: bool,
    files: &PageFiles<'_>,
) -> MemoryConnection {
    let edges = page
        .edges
        .into_iter()
        .filter_map(|edge| {
            let mut memory = Memory::from(edge.memory?);
            memory.prefetched_file = match files {
                PageFiles::NotFetched => PrefetchedFile::NotFetched,
                PageFiles::Fetched(files) => {
                    PrefetchedFile::Fetched(files.get(&memory.file_id).cloned())
                }
                PageFiles::Unavailable => PrefetchedFile::Unavailable,
            };
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
