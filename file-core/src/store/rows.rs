//! Row types: the shape of the `files` table as read back, converted into domain values here so
//! nothing of the database leaves `store`.

use sql_pools::impl_from_row;

use crate::{
    domain::{
        file::{FileRecord, FileStatus, Md5Digest},
        ids::{FileId, HangoutId, MemoryId, UserId},
        image::ImageType,
        processing::{ImageFacts, Processing},
        store::StoreError,
        time::Timestamp,
    },
    store::corrupt,
};

fn id<T>(text: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| corrupt(what))
}

/// The columns of [`FileRow`], in its order.
pub(super) const FILE_COLUMNS: &str = "id, owner_id, hangout_id, memory_id, file_name, \
     content_type, size, md5, object_key, status, created_at, upload_expires_at, processing, \
     width, height, taken_at";

pub(super) struct FileRow {
    pub id: String,
    pub owner_id: String,
    pub hangout_id: String,
    pub memory_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub md5: String,
    pub object_key: String,
    pub status: String,
    pub created_at: i64,
    pub upload_expires_at: i64,
    pub processing: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub taken_at: Option<i64>,
}

impl_from_row!(FileRow {
    id,
    owner_id,
    hangout_id,
    memory_id,
    file_name,
    content_type,
    size,
    md5,
    object_key,
    status,
    created_at,
    upload_expires_at,
    processing,
    width,
    height,
    taken_at
});

/// What processing stored: `Some` once READY (width and height are set together).
fn facts(row: &FileRow) -> Result<Option<ImageFacts>, StoreError> {
    let (Some(width), Some(height)) = (row.width, row.height) else {
        return Ok(None);
    };
    let pixels = |value: i64| u32::try_from(value).map_err(|_| corrupt("files.width/height"));
    Ok(Some(ImageFacts {
        width: pixels(width)?,
        height: pixels(height)?,
        taken_at: row.taken_at.map(Timestamp::from_millis),
    }))
}

impl TryFrom<FileRow> for FileRecord {
    type Error = StoreError;

    fn try_from(row: FileRow) -> Result<Self, StoreError> {
        let facts = facts(&row)?;
        let processing = match row.processing.as_deref() {
            None => None,
            Some(text) => {
                Some(Processing::from_stored(text).ok_or_else(|| corrupt("files.processing"))?)
            }
        };
        Ok(Self {
            id: id(&row.id, FileId::parse, "files.id")?,
            owner: id(&row.owner_id, UserId::parse, "files.owner_id")?,
            hangout: id(&row.hangout_id, HangoutId::parse, "files.hangout_id")?,
            memory: id(&row.memory_id, MemoryId::parse, "files.memory_id")?,
            file_name: row.file_name,
            image: ImageType::from_content_type(&row.content_type)
                .ok_or_else(|| corrupt("files.content_type"))?,
            size: u64::try_from(row.size).map_err(|_| corrupt("files.size"))?,
            md5: Md5Digest::parse_base64(&row.md5).ok_or_else(|| corrupt("files.md5"))?,
            object_key: row.object_key,
            status: FileStatus::from_stored(&row.status).ok_or_else(|| corrupt("files.status"))?,
            created_at: Timestamp::from_millis(row.created_at),
            upload_expires_at: Timestamp::from_millis(row.upload_expires_at),
            processing,
            facts,
        })
    }
}

/// Converts every row, failing on the first corrupt one.
pub(super) fn convert(rows: Vec<FileRow>) -> Result<Vec<FileRecord>, StoreError> {
    rows.into_iter().map(FileRecord::try_from).collect()
}
