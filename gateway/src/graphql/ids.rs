//! Relay global ids: base64 of `Type:uuid`. Clients treat them as opaque; the backends only
//! ever see the bare UUID.

use async_graphql::ID;
use base64::{Engine as _, engine::general_purpose::STANDARD};

use crate::graphql::error::{ApiError, ApiResult};

/// The object types that have global ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User,
    Hangout,
    Activity,
    Memory,
    Invitation,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Hangout => "Hangout",
            Self::Activity => "Activity",
            Self::Memory => "Memory",
            Self::Invitation => "Invitation",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Self::User,
            Self::Hangout,
            Self::Activity,
            Self::Memory,
            Self::Invitation,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }
}

/// The global id of a `kind` object with backend id `uuid`.
#[must_use]
pub fn encode(kind: Kind, uuid: &str) -> ID {
    // Joined by hand: every id of a response is encoded, and `format!` was most of the cost
    // (a page of 20 hangouts encodes some 250 ids).
    let name = kind.name();
    let mut plain = Vec::with_capacity(name.len() + 1 + uuid.len());
    plain.extend_from_slice(name.as_bytes());
    plain.push(b':');
    plain.extend_from_slice(uuid.as_bytes());
    ID(STANDARD.encode(plain))
}

/// The kind and backend id of a global id; `None` when it is not one of ours.
#[must_use]
pub fn decode(id: &str) -> Option<(Kind, String)> {
    let bytes = STANDARD.decode(id).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, uuid) = text.split_once(':')?;
    let uuid = uuid::Uuid::parse_str(uuid).ok()?;
    Some((Kind::from_name(name)?, uuid.hyphenated().to_string()))
}

/// The backend id of a global id that must be of `kind`, for lookups: anything else names
/// nothing.
#[must_use]
pub fn decode_kind(kind: Kind, id: &str) -> Option<String> {
    decode(id).and_then(|(found, uuid)| (found == kind).then_some(uuid))
}

/// The backend id of an input global id that must be of `kind`.
///
/// # Errors
/// BAD_USER_INPUT naming `field` when the id is malformed or of another type.
pub fn parse_input(kind: Kind, id: &str, field: &str) -> ApiResult<String> {
    decode_kind(kind, id)
        .ok_or_else(|| ApiError::bad_input(field, format!("is not a valid {} id", kind.name())))
}

/// Backend ids of a list of input global ids, naming `field[index]` on failure.
///
/// # Errors
/// BAD_USER_INPUT naming the first bad element.
pub fn parse_inputs(kind: Kind, ids: &[ID], field: &str) -> ApiResult<Vec<String>> {
    ids.iter()
        .enumerate()
        .map(|(index, id)| parse_input(kind, id, &format!("{field}[{index}]")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_keep_their_type() {
        let uuid = "0190f3c4-1b2a-7c3d-8e4f-5a6b7c8d9e0f";
        let id = encode(Kind::Hangout, uuid);
        assert_eq!(decode(&id), Some((Kind::Hangout, uuid.to_owned())));
        assert_eq!(decode_kind(Kind::Memory, &id), None);
        assert!(parse_input(Kind::Activity, &id, "activityIds[0]").is_err());
        assert_eq!(decode("not base64!"), None);
        assert_eq!(decode(&STANDARD.encode("Hangout:not-a-uuid")), None);
    }

    #[test]
    fn ids_are_base64_of_type_colon_uuid() {
        let uuid = "0190f3c4-1b2a-7c3d-8e4f-5a6b7c8d9e0f";
        assert_eq!(
            encode(Kind::Activity, uuid).0,
            STANDARD.encode(format!("Activity:{uuid}"))
        );
        assert_eq!(
            encode(Kind::User, uuid).0,
            "VXNlcjowMTkwZjNjNC0xYjJhLTdjM2QtOGU0Zi01YTZiN2M4ZDllMGY="
        );
    }
}
