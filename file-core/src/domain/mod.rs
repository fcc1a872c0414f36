//! The rules of file-core, free of transport, SQL and S3 SDK types: no tonic, prost, sqlx or
//! aws-sdk here.
//!
//! [`Service`] holds every operation. It talks to the database only through the
//! [`store::FileStore`] port (implemented by `crate::store`) and to the bucket only through the
//! [`objects::ObjectStorage`] port (implemented by `crate::s3`).
//!
//! S3 and the database cannot share a transaction, so every operation orders its steps such that
//! a failure midway leaves a state the sweeper finishes: records are written before anyone can
//! upload, and a deletion is recorded (DELETING) before the object is touched.

pub mod cleanup;
pub mod download;
pub mod error;
pub mod file;
pub mod files;
pub mod ids;
pub mod image;
pub mod objects;
pub mod processing;
pub mod report;
pub mod store;
pub mod time;
pub mod uploads;
pub mod worker;

use std::time::Duration;

/// Tunables of the domain, from configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a presigned upload stays valid (the upload window).
    pub upload_url_ttl: Duration,
    /// How long a presigned download stays valid at least, from the read that hands it out
    /// (see [`download`] for why it may be a little longer).
    pub download_url_ttl: Duration,
    /// How long after its upload window a PENDING file is swept.
    pub pending_grace: Duration,
    /// Files whose deletion one sweep attempts, at most.
    pub sweep_batch: u32,
    /// How long a worker's claim on a processing job lasts; a worker that dies leaves the job
    /// to be claimed again after it.
    pub job_lease: Duration,
    /// The wait after a processing attempt failed (not by the image's fault); doubled after
    /// each further failure.
    pub job_retry_delay: Duration,
}

/// The operations of file-core over a store `S` and object storage `O`.
pub struct Service<S, O> {
    store: S,
    objects: O,
    settings: Settings,
}

impl<S: store::FileStore, O: objects::ObjectStorage> Service<S, O> {
    #[must_use]
    pub fn new(store: S, objects: O, settings: Settings) -> Self {
        Self {
            store,
            objects,
            settings,
        }
    }
}
