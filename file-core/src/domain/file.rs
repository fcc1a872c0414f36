//! File records and the rules of an upload batch.
//!
//! A file starts PENDING when its upload is created, becomes UPLOADED once confirm has checked
//! the object, and is DELETING from the moment a delete (or the sweeper) claims it until both the
//! object and the record are gone. DELETING files are invisible to callers.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};

use crate::domain::{
    error::{DomainError, DomainResult},
    ids::{FileId, HangoutId, MemoryId, UserId},
    image::{ImageType, normalise_content_type},
    processing::{ImageFacts, Processing},
    time::Timestamp,
};

/// Files in one upload batch, at most.
pub const MAX_FILES_PER_BATCH: usize = 10;
/// Bytes of one file, at most (10 MiB).
pub const MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;
/// Characters of a file name, at most.
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Ids in one confirm or delete call, at most.
pub const MAX_IDS_PER_CALL: usize = 100;
/// Ids in one get call, at most: every download URL of a page of 100 hangouts with 5 memories
/// each, so that page costs one call (presigning is local and cheap).
pub const MAX_IDS_PER_READ: usize = 500;

/// Where a file is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileStatus {
    /// The upload was created; the bytes are not confirmed yet.
    Pending,
    /// Confirm checked the object: it exists with the declared size, checksum and type.
    Uploaded,
    /// Claimed for deletion; the object (then the record) is being removed, retried until done.
    Deleting,
}

impl FileStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Uploaded => "UPLOADED",
            Self::Deleting => "DELETING",
        }
    }

    #[must_use]
    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "PENDING" => Some(Self::Pending),
            "UPLOADED" => Some(Self::Uploaded),
            "DELETING" => Some(Self::Deleting),
            _ => None,
        }
    }
}

/// An MD5 digest, as declared for an upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Md5Digest([u8; 16]);

impl Md5Digest {
    /// Parses base64 (standard alphabet, padded) of exactly 16 bytes, as in `Content-MD5`.
    #[must_use]
    pub fn parse_base64(text: &str) -> Option<Self> {
        let bytes = BASE64.decode(text.trim()).ok()?;
        <[u8; 16]>::try_from(bytes.as_slice()).ok().map(Self)
    }

    /// The digest of `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        use md5::Digest as _;
        Self(md5::Md5::digest(bytes).into())
    }

    /// Base64, as sent in `Content-MD5`.
    #[must_use]
    pub fn to_base64(self) -> String {
        BASE64.encode(self.0)
    }
}

/// A file record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub id: FileId,
    pub owner: UserId,
    pub hangout: HangoutId,
    pub memory: MemoryId,
    /// The name the client gave; shown back, never used in the object key.
    pub file_name: String,
    pub image: ImageType,
    pub size: u64,
    pub md5: Md5Digest,
    /// Made by the service: `quarantine/hangouts/{hangout}/memories/{memory}/{file}.{ext}`
    /// (files uploaded before processing existed have no `quarantine/` prefix).
    pub object_key: String,
    pub status: FileStatus,
    pub created_at: Timestamp,
    /// When the presigned upload stops working; PENDING files are swept a grace period later.
    pub upload_expires_at: Timestamp,
    /// Where processing is; `None` until the file is UPLOADED.
    pub processing: Option<Processing>,
    /// What processing learned; `Some` once it is READY.
    pub facts: Option<ImageFacts>,
}

/// The object key of an upload: built from ids only, so client input never reaches a key, and
/// in the quarantine prefix, which only the uploader's own download URLs point into (every
/// other member sees renditions, from the media prefix: see `processing`).
#[must_use]
pub fn object_key(hangout: HangoutId, memory: MemoryId, file: FileId, image: ImageType) -> String {
    format!(
        "quarantine/hangouts/{hangout}/memories/{memory}/{file}.{}",
        image.extension()
    )
}

/// One file of an upload batch, as given (ids already parsed by the transport).
#[derive(Clone, Debug)]
pub struct NewUpload {
    /// Parsed by the domain so its error names the file index like every other rule.
    pub memory_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub md5: String,
}

/// One file of an upload batch, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedUpload {
    pub file_name: String,
    pub image: ImageType,
    pub size: u64,
    pub md5: Md5Digest,
}

/// Checks the batch size rule: 1 to [`MAX_FILES_PER_BATCH`] files.
///
/// # Errors
/// `Invalid` naming `files`.
pub fn check_batch_size(count: usize) -> DomainResult<()> {
    if count == 0 || count > MAX_FILES_PER_BATCH {
        return Err(DomainError::invalid(
            "files",
            format!("must hold 1 to {MAX_FILES_PER_BATCH} files"),
        ));
    }
    Ok(())
}

/// Checks one file of a batch (all but its memory id, which the caller parses); `index` names
/// it in errors (`files[2].size`).
///
/// # Errors
/// `Invalid` naming the first offending field.
pub fn check_upload(index: usize, upload: NewUpload) -> DomainResult<CheckedUpload> {
    let field = |name: &str| format!("files[{index}].{name}");
    let name = &upload.file_name;
    let length = name.chars().count();
    if length == 0 || length > MAX_FILE_NAME_CHARS {
        return Err(DomainError::invalid(
            field("fileName"),
            format!("must be 1 to {MAX_FILE_NAME_CHARS} characters"),
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
    let Some(image) = name
        .rsplit_once('.')
        .and_then(|(_, extension)| ImageType::from_extension(extension))
    else {
        return Err(DomainError::invalid(
            field("fileName"),
            "must end in .jpg, .jpeg, .png, .gif or .webp",
        ));
    };
    if normalise_content_type(&upload.content_type) != image.content_type() {
        return Err(DomainError::invalid(
            field("contentType"),
            format!("must be {} for this file name", image.content_type()),
        ));
    }
    if upload.size == 0 || upload.size > MAX_FILE_SIZE {
        return Err(DomainError::invalid(
            field("size"),
            format!("must be 1 to {MAX_FILE_SIZE} bytes"),
        ));
    }
    let Some(md5) = Md5Digest::parse_base64(&upload.md5) else {
        return Err(DomainError::invalid(
            field("md5"),
            "must be the base64 of a 16-byte MD5 digest",
        ));
    };
    Ok(CheckedUpload {
        file_name: upload.file_name,
        image,
        size: upload.size,
        md5,
    })
}

/// Checks the number of ids of a confirm or delete call ([`MAX_IDS_PER_CALL`]).
///
/// # Errors
/// `Invalid` naming `field`.
pub fn check_id_count(count: usize, field: &str) -> DomainResult<()> {
    check_ids_at_most(count, MAX_IDS_PER_CALL, field)
}

/// Checks the number of ids of a get call ([`MAX_IDS_PER_READ`]).
///
/// # Errors
/// `Invalid` naming `field`.
pub fn check_read_id_count(count: usize, field: &str) -> DomainResult<()> {
    check_ids_at_most(count, MAX_IDS_PER_READ, field)
}

fn check_ids_at_most(count: usize, limit: usize, field: &str) -> DomainResult<()> {
    if count > limit {
        return Err(DomainError::invalid(
            field,
            format!("must hold at most {limit} ids"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_MD5: &str = "1B2M2Y8AsgTpgAmY7PhCfg==";

    fn upload(name: &str, content_type: &str, size: u64, md5: &str) -> NewUpload {
        NewUpload {
            memory_id: MemoryId::generate().to_string(),
            file_name: name.to_owned(),
            content_type: content_type.to_owned(),
            size,
            md5: md5.to_owned(),
        }
    }

    fn field_of(result: DomainResult<CheckedUpload>) -> Option<String> {
        match result {
            Err(DomainError::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn md5_is_base64_of_sixteen_bytes() {
        assert_eq!(Md5Digest::of(b"").to_base64(), EMPTY_MD5);
        assert_eq!(Md5Digest::parse_base64(EMPTY_MD5), Some(Md5Digest::of(b"")));
        assert_eq!(Md5Digest::parse_base64("AAAA"), None);
        assert_eq!(Md5Digest::parse_base64("not base64!"), None);
        assert_eq!(Md5Digest::parse_base64(&BASE64.encode([0u8; 17])), None);
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
            let checked = check_upload(0, upload(name, content_type, 1, EMPTY_MD5));
            assert!(checked.is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_mismatched_or_unknown_types() {
        let cases = [
            (
                upload("a.jpg", "image/png", 1, EMPTY_MD5),
                "files[2].contentType",
            ),
            (
                upload("a.jpg", "image/jpegfoo", 1, EMPTY_MD5),
                "files[2].contentType",
            ),
            (
                upload("a.bmp", "image/bmp", 1, EMPTY_MD5),
                "files[2].fileName",
            ),
            (
                upload("jpg", "image/jpeg", 1, EMPTY_MD5),
                "files[2].fileName",
            ),
            (upload("a.jpg", "image/jpeg", 1, "AAAA"), "files[2].md5"),
        ];
        for (given, field) in cases {
            assert_eq!(field_of(check_upload(2, given)), Some(field.to_owned()));
        }
    }

    #[test]
    fn size_bounds() {
        let at_limit = upload("a.png", "image/png", MAX_FILE_SIZE, EMPTY_MD5);
        assert!(check_upload(0, at_limit).is_ok());
        let over = upload("a.png", "image/png", MAX_FILE_SIZE + 1, EMPTY_MD5);
        assert_eq!(
            field_of(check_upload(1, over)),
            Some("files[1].size".to_owned())
        );
        let empty = upload("a.png", "image/png", 0, EMPTY_MD5);
        assert_eq!(
            field_of(check_upload(1, empty)),
            Some("files[1].size".to_owned())
        );
    }

    #[test]
    fn names_without_paths_or_control_characters() {
        for bad in ["../a.png", "a\\b.png", "a\nb.png", "a\u{7f}.png", ""] {
            let result = check_upload(0, upload(bad, "image/png", 1, EMPTY_MD5));
            assert_eq!(
                field_of(result),
                Some("files[0].fileName".to_owned()),
                "{bad:?}"
            );
        }
        let longest = format!("{}.png", "é".repeat(251));
        assert!(check_upload(0, upload(&longest, "image/png", 1, EMPTY_MD5)).is_ok());
        let too_long = format!("{}.png", "a".repeat(252));
        assert!(check_upload(0, upload(&too_long, "image/png", 1, EMPTY_MD5)).is_err());
    }

    #[test]
    fn batch_sizes() {
        assert!(check_batch_size(0).is_err());
        assert!(check_batch_size(1).is_ok());
        assert!(check_batch_size(MAX_FILES_PER_BATCH).is_ok());
        assert!(check_batch_size(MAX_FILES_PER_BATCH + 1).is_err());
    }

    #[test]
    fn object_keys_come_from_ids_only() {
        let hangout = HangoutId::generate();
        let memory = MemoryId::generate();
        let file = FileId::generate();
        assert_eq!(
            object_key(hangout, memory, file, ImageType::Jpeg),
            format!("quarantine/hangouts/{hangout}/memories/{memory}/{file}.jpg")
        );
    }
}
