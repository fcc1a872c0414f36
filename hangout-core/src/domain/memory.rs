//! Memories: photo records of a hangout. The bytes belong to file-core; here live the name,
//! type, size, status and the id of the file that holds them.
//!
//! A memory starts PENDING with an upload window. Once its file is confirmed it becomes
//! UPLOADED. PENDING memories whose window ended more than a grace period ago are swept.

use crate::domain::{
    Service,
    error::{DomainError, DomainResult},
    ids::{FileId, HangoutId, MemoryId, UserId},
    page::{self, Cursor, Direction, Page, PageSize},
    policy::Action,
    store::{Store, StoreError},
    time::Timestamp,
};

/// Files in one upload batch, at most.
pub const MAX_FILES_PER_BATCH: usize = 10;
/// Bytes of one file, at most (10 MiB).
pub const MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;
/// Files one report of ended processing may name.
pub const MAX_PROCESSED_PER_REPORT: usize = 100;

const MEMORIES_ORDER: &str = "memories.created_at";

/// Whether the bytes were confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MemoryStatus {
    Pending,
    #[default]
    Uploaded,
}

impl MemoryStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Uploaded => "UPLOADED",
        }
    }

    #[must_use]
    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "PENDING" => Some(Self::Pending),
            "UPLOADED" => Some(Self::Uploaded),
            _ => None,
        }
    }
}

/// A memory record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memory {
    pub id: MemoryId,
    pub hangout: HangoutId,
    pub uploaded_by: UserId,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub status: MemoryStatus,
    pub file: Option<FileId>,
    pub created_at: Timestamp,
    pub upload_expires_at: Timestamp,
}

/// A file of an upload batch, as given.
#[derive(Clone, Debug)]
pub struct NewMemoryFile {
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
}

/// A request for one page of one hangout's memories, as given.
#[derive(Clone, Debug)]
pub struct MemoryPageRequest {
    pub hangout: HangoutId,
    pub first: u32,
    pub after: String,
    pub status: MemoryStatus,
    pub direction: Direction,
}

/// A validated page query for the store.
#[derive(Clone, Debug)]
pub struct MemoryListQuery {
    pub status: MemoryStatus,
    pub direction: Direction,
    pub after: Option<Cursor<i64>>,
    pub fetch: u32,
}

/// The image types we accept: extension(s) and the one content type that goes with them.
const IMAGE_TYPES: [(&[&str], &str); 4] = [
    (&["jpg", "jpeg"], "image/jpeg"),
    (&["png"], "image/png"),
    (&["gif"], "image/gif"),
    (&["webp"], "image/webp"),
];

/// Normalises a content type: lower case, parameters (`; charset=…`) and spaces dropped.
fn normalise_content_type(text: &str) -> String {
    text.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Validates one file of a batch; `index` names it in errors. Returns the normalised
/// content type.
fn check_file(index: usize, file: &NewMemoryFile) -> DomainResult<String> {
    let field = |name: &str| format!("files[{index}].{name}");
    let name = &file.file_name;
    let length = name.chars().count();
    if length == 0 || length > 255 {
        return Err(DomainError::invalid(
            field("fileName"),
            "must be 1 to 255 characters",
        ));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(DomainError::invalid(
            field("fileName"),
            "must not contain path separators or control characters",
        ));
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    let Some((_, expected_type)) = IMAGE_TYPES
        .iter()
        .find(|(extensions, _)| extensions.contains(&extension.as_str()))
    else {
        return Err(DomainError::invalid(
            field("fileName"),
            "must end in .jpg, .jpeg, .png, .gif or .webp",
        ));
    };
    let content_type = normalise_content_type(&file.content_type);
    if content_type != *expected_type {
        return Err(DomainError::invalid(
            field("contentType"),
            format!("must be {expected_type} for a .{extension} file"),
        ));
    }
    if file.size == 0 || file.size > MAX_FILE_SIZE {
        return Err(DomainError::invalid(
            field("size"),
            format!("must be 1 to {MAX_FILE_SIZE} bytes"),
        ));
    }
    Ok(content_type)
}

fn memory_cursor(memory: &Memory, direction: Direction) -> String {
    Cursor {
        key: memory.created_at.as_millis(),
        id: memory.id.to_string(),
    }
    .encode(MEMORIES_ORDER, direction)
}

/// Batches one sweep deletes at most; the rest waits for the next sweep.
const MAX_SWEEP_BATCHES: usize = 100;

impl<S: Store> Service<S> {
    /// Creates PENDING memories, uploaded by the caller, for a batch of files of a hangout they
    /// are a member of (any role), all or nothing.
    ///
    /// # Errors
    /// `Invalid` naming the file and field; `NotFound` for a hangout the caller cannot see;
    /// `AlreadyExists` when a file name is in use among the hangout's memories.
    pub async fn create_memories(
        &self,
        owner: UserId,
        hangout: HangoutId,
        files: Vec<NewMemoryFile>,
    ) -> DomainResult<Vec<Memory>> {
        if files.is_empty() || files.len() > MAX_FILES_PER_BATCH {
            return Err(DomainError::invalid(
                "files",
                format!("must hold 1 to {MAX_FILES_PER_BATCH} files"),
            ));
        }
        self.authorize(owner, hangout, Action::AddMemories).await?;
        let now = Timestamp::now();
        let mut memories: Vec<Memory> = Vec::with_capacity(files.len());
        for (index, file) in files.into_iter().enumerate() {
            let content_type = check_file(index, &file)?;
            if memories.iter().any(|m| m.file_name == file.file_name) {
                return Err(DomainError::invalid(
                    format!("files[{index}].fileName"),
                    "is given more than once",
                ));
            }
            memories.push(Memory {
                id: MemoryId::generate(),
                hangout,
                uploaded_by: owner,
                file_name: file.file_name,
                content_type,
                size: file.size,
                status: MemoryStatus::Pending,
                file: None,
                created_at: now,
                upload_expires_at: now.plus(self.settings.upload_window),
            });
        }
        match self.store.insert_memories(owner, &memories).await {
            Ok(()) => Ok(memories),
            Err(StoreError::NotFound) => Err(DomainError::NotFound),
            Err(StoreError::Conflict(_)) => Err(DomainError::AlreadyExists(
                "a memory of this hangout already has this file name".to_owned(),
            )),
            Err(error) => Err(error.into()),
        }
    }

    /// Records the file id of each memory.
    ///
    /// # Errors
    /// `NotFound` (and nothing recorded) when a memory is not the owner's.
    pub async fn attach_memory_files(
        &self,
        owner: UserId,
        links: &[(MemoryId, FileId)],
    ) -> DomainResult<()> {
        match self.store.attach_memory_files(owner, links).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(DomainError::NotFound),
            Err(error) => Err(error.into()),
        }
    }

    /// Marks the owner's memories among `ids` UPLOADED; already uploaded ones stay as they are.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn mark_memories_uploaded(
        &self,
        owner: UserId,
        ids: &[MemoryId],
    ) -> DomainResult<Vec<Memory>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.mark_memories_uploaded(owner, ids).await?)
    }

    /// # Errors
    /// Only internal ones.
    pub async fn memories_by_ids(
        &self,
        owner: UserId,
        ids: &[MemoryId],
    ) -> DomainResult<Vec<Memory>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.memories_by_ids(owner, ids).await?)
    }

    /// One page for each of the owner's hangouts among the requests; others are left out.
    ///
    /// # Errors
    /// `Invalid` for a bad page size or cursor, naming the request's index.
    pub async fn memories_of_hangouts(
        &self,
        owner: UserId,
        requests: Vec<MemoryPageRequest>,
    ) -> DomainResult<Vec<(HangoutId, Page<Memory>)>> {
        // The common case (a dataloader asking for the first page of many hangouts, all alike)
        // is answered with one round of statements instead of one per hangout.
        if let Some(first) = requests.first()
            && requests.len() > 1
            && requests.iter().all(|request| {
                request.after.is_empty()
                    && request.first == first.first
                    && request.status == first.status
                    && request.direction == first.direction
            })
        {
            let size = PageSize::parse(first.first, "pages[0].first")?;
            let query = MemoryListQuery {
                status: first.status,
                direction: first.direction,
                after: None,
                fetch: size.get() + 1,
            };
            let hangouts: Vec<HangoutId> = requests.iter().map(|request| request.hangout).collect();
            let direction = first.direction;
            let found = self
                .store
                .first_memories_of_hangouts(owner, &hangouts, &query)
                .await?;
            return Ok(found
                .into_iter()
                .map(|(hangout, rows)| {
                    let page = Page::from_rows(rows.rows, size, rows.total_count, |memory| {
                        memory_cursor(memory, direction)
                    });
                    (hangout, page)
                })
                .collect());
        }
        let mut pages = Vec::with_capacity(requests.len());
        for (index, request) in requests.into_iter().enumerate() {
            let size = PageSize::parse(request.first, &format!("pages[{index}].first"))?;
            let after = page::decode_after(
                &request.after,
                MEMORIES_ORDER,
                request.direction,
                &format!("pages[{index}].after"),
            )?;
            let query = MemoryListQuery {
                status: request.status,
                direction: request.direction,
                after,
                fetch: size.get() + 1,
            };
            let rows = match self
                .store
                .list_memories(owner, request.hangout, &query)
                .await
            {
                Ok(rows) => rows,
                Err(StoreError::NotFound) => continue,
                Err(error) => return Err(error.into()),
            };
            let direction = request.direction;
            let page = Page::from_rows(rows.rows, size, rows.total_count, |memory| {
                memory_cursor(memory, direction)
            });
            pages.push((request.hangout, page));
        }
        Ok(pages)
    }

    /// Deletes the memories among `ids` the caller can see: their own, or any as OWNER or
    /// CO_HOST. Returns the deleted ones with their file ids; ids the caller cannot see are
    /// left out.
    ///
    /// # Errors
    /// `Forbidden` (and nothing deleted) when one is another member's and the caller a GUEST.
    pub async fn delete_memories(
        &self,
        caller: UserId,
        ids: &[MemoryId],
    ) -> DomainResult<Vec<(MemoryId, Option<FileId>)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let memories = self.store.memories_by_ids(caller, ids).await?;
        let roles = self
            .roles_in(caller, memories.iter().map(|memory| memory.hangout))
            .await?;
        for memory in &memories {
            let own = memory.uploaded_by == caller;
            Action::DeleteMemory { own }.check(roles.get(&memory.hangout).copied())?;
        }
        let allowed: Vec<MemoryId> = memories.iter().map(|memory| memory.id).collect();
        if allowed.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.delete_memories(&allowed).await?)
    }

    /// file-core's report that photo processing of these memories' files ended: each memory
    /// still UPLOADED with that file gets a `MemoryUpdated` event, so its subscribers load its
    /// new state. Not on behalf of a user; only file-core is served this call.
    ///
    /// # Errors
    /// `Invalid` for more than [`MAX_PROCESSED_PER_REPORT`] files.
    pub async fn record_memories_processed(
        &self,
        files: &[(MemoryId, FileId)],
    ) -> DomainResult<u32> {
        if files.len() > MAX_PROCESSED_PER_REPORT {
            return Err(DomainError::invalid(
                "files",
                format!("must hold at most {MAX_PROCESSED_PER_REPORT} files"),
            ));
        }
        if files.is_empty() {
            return Ok(0);
        }
        Ok(self.store.record_memories_processed(files).await?)
    }

    /// Removes PENDING memories whose upload window ended more than the grace period ago.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn sweep_expired_memories(&self) -> DomainResult<u64> {
        let before = Timestamp::now().minus(self.settings.pending_grace);
        let mut swept = 0;
        // The store deletes a bounded batch per call; a backlog takes a few calls.
        for _ in 0..MAX_SWEEP_BATCHES {
            let deleted = self.store.delete_expired_pending_memories(before).await?;
            swept += deleted;
            if deleted == 0 {
                break;
            }
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, content_type: &str, size: u64) -> NewMemoryFile {
        NewMemoryFile {
            file_name: name.to_owned(),
            content_type: content_type.to_owned(),
            size,
        }
    }

    fn field_of(result: DomainResult<String>) -> Option<String> {
        match result {
            Err(DomainError::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn accepts_each_image_type_case_insensitively() {
        for (name, content_type) in [
            ("a.jpg", "image/jpeg"),
            ("a.JPEG", "IMAGE/JPEG"),
            ("a.png", "image/png; charset=binary"),
            ("a.gif", "image/gif"),
            ("a.WebP", " image/webp "),
        ] {
            assert!(
                check_file(0, &file(name, content_type, 1)).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn refuses_mismatched_or_unknown_types() {
        assert_eq!(
            field_of(check_file(2, &file("a.jpg", "image/png", 1))),
            Some("files[2].contentType".to_owned())
        );
        assert_eq!(
            field_of(check_file(0, &file("a.jpg", "image/jpegfoo", 1))),
            Some("files[0].contentType".to_owned())
        );
        assert_eq!(
            field_of(check_file(0, &file("a.bmp", "image/bmp", 1))),
            Some("files[0].fileName".to_owned())
        );
        assert_eq!(
            field_of(check_file(0, &file("jpg", "image/jpeg", 1))),
            Some("files[0].fileName".to_owned())
        );
    }

    #[test]
    fn size_bounds() {
        assert!(check_file(0, &file("a.png", "image/png", MAX_FILE_SIZE)).is_ok());
        assert_eq!(
            field_of(check_file(
                1,
                &file("a.png", "image/png", MAX_FILE_SIZE + 1)
            )),
            Some("files[1].size".to_owned())
        );
        assert!(check_file(0, &file("a.png", "image/png", 0)).is_err());
    }

    #[test]
    fn names_without_paths_or_control_characters() {
        for bad in ["../a.png", "a\\b.png", "a\nb.png", ""] {
            assert!(
                check_file(0, &file(bad, "image/png", 1)).is_err(),
                "{bad:?}"
            );
        }
        assert!(
            check_file(
                0,
                &file(&format!("{}.png", "a".repeat(251)), "image/png", 1)
            )
            .is_ok()
        );
        assert!(
            check_file(
                0,
                &file(&format!("{}.png", "a".repeat(252)), "image/png", 1)
            )
            .is_err()
        );
    }
}
