//! Sample bytes and upload declarations.

use file_core::domain::file::Md5Digest;
use proto::file::v1 as pb;

/// Bytes that start like a JPEG, `len` long (at least 4).
pub fn jpeg(len: usize) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..len.saturating_sub(4)).map(|i| (i % 251) as u8));
    bytes
}

/// Bytes that start like a PNG, `len` long (at least 8).
pub fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..len.saturating_sub(8)).map(|i| (i % 241) as u8));
    bytes
}

/// An upload declaration for `bytes`, with a fresh memory id.
pub fn upload_file(file_name: &str, content_type: &str, bytes: &[u8]) -> pb::UploadFile {
    pb::UploadFile {
        memory_id: uuid::Uuid::new_v4().to_string(),
        file_name: file_name.to_owned(),
        content_type: content_type.to_owned(),
        size: bytes.len() as u64,
        md5: Md5Digest::of(bytes).to_base64(),
    }
}

/// A new hangout id.
pub fn hangout() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The object key file-core uses for a file.
pub fn object_key(hangout: &str, memory: &str, file: &str, extension: &str) -> String {
    format!("quarantine/hangouts/{hangout}/memories/{memory}/{file}.{extension}")
}
