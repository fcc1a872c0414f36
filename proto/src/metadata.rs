//! Request metadata shared by the gateway and the services.
//!
//! The caller's user id is trusted only because every connection is mutual TLS from an
//! allow-listed client (see [`crate::tls`]); the gateway sets it after verifying the user's JWT.

use tonic::metadata::{MetadataMap, MetadataValue};

/// The id of the user on whose behalf the call runs.
pub const USER_ID: &str = "x-user-id";
/// The id that follows one user action across processes.
pub const REQUEST_ID: &str = "x-request-id";

/// On a `WatchEvents` response: the last `seq` before its first event, so a watcher that was
/// cut off before receiving any resumes from there.
pub const EVENTS_AFTER: &str = "x-events-after";

/// The request id of an incoming call, when it carries a printable one of sane length.
#[must_use]
pub fn request_id(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 128)
}

/// The caller's user id as sent, when present and printable.
#[must_use]
pub fn user_id(metadata: &MetadataMap) -> Option<&str> {
    metadata.get(USER_ID).and_then(|value| value.to_str().ok())
}

/// Sets the caller identity and request id on an outgoing call. Values that cannot be carried
/// as ASCII metadata are left out (ids are UUIDs, so that does not happen in practice).
pub fn set_caller(metadata: &mut MetadataMap, user_id: Option<&str>, request_id: Option<&str>) {
    if let Some(value) = user_id.and_then(|id| MetadataValue::try_from(id).ok()) {
        metadata.insert(USER_ID, value);
    }
    if let Some(value) = request_id.and_then(|id| MetadataValue::try_from(id).ok()) {
        metadata.insert(REQUEST_ID, value);
    }
}
