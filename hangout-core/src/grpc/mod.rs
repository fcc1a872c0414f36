//! The gRPC transport: tonic service implementations that turn prost messages into domain
//! calls and domain values back into prost messages. Errors are mapped once, in [`status`].

mod activities;
mod auth;
mod events;
mod hangouts;
mod membership;
mod memories;
mod status;

use std::sync::Arc;

use proto::hangout::v1 as pb;
use tonic::{Request, Status};

pub use activities::ActivityGrpc;
pub use auth::{AuthGrpc, UserGrpc};
pub use events::{EventGrpc, event_message};
pub use hangouts::HangoutGrpc;
pub use membership::MembershipGrpc;
pub use memories::{FileReportGrpc, MemoryGrpc};

use crate::{
    domain::{Service, error::DomainError, ids::UserId, page::Page, time::Timestamp},
    store::SqlStore,
};

/// The domain service as every handler shares it.
pub type SharedService = Arc<Service<SqlStore>>;

/// The calling user, from request metadata. Trusted because only allow-listed mTLS clients can
/// reach the server at all.
fn caller<T>(request: &Request<T>) -> Result<UserId, Status> {
    proto::metadata::user_id(request.metadata())
        .and_then(UserId::parse)
        .ok_or_else(|| Status::unauthenticated("missing or invalid caller identity"))
}

/// Parses an id field; a malformed id is an invalid argument naming the field.
fn parse_id<T>(text: &str, field: &str, parse: fn(&str) -> Option<T>) -> Result<T, Status> {
    parse(text).ok_or_else(|| DomainError::invalid(field, "is not a valid id").into())
}

/// Parses a list of ids for a batch read; malformed ids cannot name anything, so they are
/// dropped like unknown ones.
fn parse_ids<T>(texts: &[String], parse: fn(&str) -> Option<T>) -> Vec<T> {
    texts.iter().filter_map(|text| parse(text)).collect()
}

fn timestamp(instant: Timestamp) -> Option<prost_types::Timestamp> {
    Some(proto::timestamp_from_millis(instant.as_millis()))
}

/// A required timestamp field.
fn parse_timestamp(
    value: Option<&prost_types::Timestamp>,
    field: &str,
) -> Result<Option<Timestamp>, Status> {
    value
        .map(|value| {
            proto::timestamp_to_millis(value)
                .map(Timestamp::from_millis)
                .ok_or_else(|| DomainError::invalid(field, "is out of range").into())
        })
        .transpose()
}

fn page_info<T>(page: &Page<T>) -> pb::PageInfo {
    pb::PageInfo {
        has_next_page: page.has_next_page,
        end_cursor: page
            .edges
            .last()
            .map(|edge| edge.cursor.clone())
            .unwrap_or_default(),
        total_count: page.total_count,
    }
}

fn page_request(page: Option<&pb::PageRequest>) -> (u32, String) {
    page.map_or((0, String::new()), |page| (page.first, page.after.clone()))
}

fn direction(value: i32) -> crate::domain::page::Direction {
    match pb::OrderDirection::try_from(value) {
        Ok(pb::OrderDirection::Asc) => crate::domain::page::Direction::Asc,
        _ => crate::domain::page::Direction::Desc,
    }
}
