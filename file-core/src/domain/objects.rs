//! The object-storage port: what the domain needs from S3, declared here so the dependency
//! points into the domain. `crate::s3` implements it with aws-sdk-s3.
//!
//! Contract for every implementation:
//! - Presigning is local computation: it never makes a network round trip.
//! - [`ObjectStorage::delete`] is idempotent: deleting a missing object succeeds.
//! - A missing object is `Ok(None)`, never an error.

use std::{future::Future, time::Duration};

use crate::domain::{
    download::DownloadSigning, file::Md5Digest, image::ImageType, time::Timestamp,
};

/// Object storage failed (unreachable, refused the credentials, answered nonsense).
#[derive(Debug, thiserror::Error)]
#[error("object storage error during {operation}")]
pub struct ObjectError {
    /// What was attempted, for logs (`delete`, `presign put`, …).
    pub operation: &'static str,
    /// Storage could not be reached or did not answer in time (not a refusal): the caller
    /// may try again shortly.
    pub unreachable: bool,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// An HTTP request a client can send straight to object storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignedRequest {
    pub url: String,
    pub method: String,
    /// Headers the client must send exactly as given (they are part of the signature).
    pub headers: Vec<(String, String)>,
    pub expires_at: Timestamp,
}

/// What a presigned upload binds: anything else fails at object storage.
#[derive(Clone, Copy, Debug)]
pub struct UploadBinding {
    pub image: ImageType,
    pub size: u64,
    pub md5: Md5Digest,
}

/// Access to the bucket.
pub trait ObjectStorage: Send + Sync + 'static {
    /// A PUT of `key` that only succeeds with the bound content type, `Content-MD5`, length and
    /// the configured `x-amz-server-side-encryption`, if any, valid for `expires_in` from now.
    fn presign_put(
        &self,
        key: &str,
        binding: UploadBinding,
        expires_in: Duration,
    ) -> impl Future<Output = Result<PresignedRequest, ObjectError>> + Send;

    /// A GET of `key` signed at `signing.signed_at`, valid for `signing.expires_in` from then.
    /// The URL is a function of `key` and `signing` only (the same for equal arguments).
    fn presign_get(
        &self,
        key: &str,
        signing: DownloadSigning,
    ) -> impl Future<Output = Result<PresignedRequest, ObjectError>> + Send;

    /// The size of the object, or `None` when there is none.
    fn object_size(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<u64>, ObjectError>> + Send;

    /// The whole object, or `None` when there is none. Callers check the size first.
    fn fetch(&self, key: &str)
    -> impl Future<Output = Result<Option<Vec<u8>>, ObjectError>> + Send;

    /// Writes `bytes` as the object `key` with `content_type`, replacing any object there (so
    /// writing the same rendition twice is harmless).
    fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &'static str,
    ) -> impl Future<Output = Result<(), ObjectError>> + Send;

    /// Deletes the object; succeeds when there is none.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), ObjectError>> + Send;

    /// One page of at most `limit` objects of the bucket in key order, from the start or from
    /// where the page before ended (its `next`).
    fn list(
        &self,
        continuation: Option<String>,
        limit: u32,
    ) -> impl Future<Output = Result<ObjectPage, ObjectError>> + Send;
}

/// An object as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    /// When it was last written.
    pub modified: Timestamp,
}

/// One page of a listing of the bucket.
#[derive(Clone, Debug, Default)]
pub struct ObjectPage {
    pub objects: Vec<ListedObject>,
    /// Where the next page starts; `None` after the last one.
    pub next: Option<String>,
}
