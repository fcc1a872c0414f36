//! The gRPC transport: the tonic implementation of `file.v1.FileService`, turning prost messages
//! into domain calls and domain values back into prost messages. Errors are mapped once, in
//! [`status`].

mod files;
mod status;

use std::sync::Arc;

use tonic::{Request, Status};

pub use files::FileGrpc;

use crate::{
    domain::{Service, ids::UserId, time::Timestamp},
    s3::S3Objects,
    store::SqlStore,
};

/// The domain service as every handler shares it.
pub type SharedService = Arc<Service<SqlStore, S3Objects>>;

/// The calling user, from request metadata. Trusted because only allow-listed mTLS clients can
/// reach the server at all.
fn caller<T>(request: &Request<T>) -> Result<UserId, Status> {
    proto::metadata::user_id(request.metadata())
        .and_then(UserId::parse)
        .ok_or_else(|| Status::unauthenticated("missing or invalid caller identity"))
}

fn timestamp(instant: Timestamp) -> Option<prost_types::Timestamp> {
    Some(proto::timestamp_from_millis(instant.as_millis()))
}
