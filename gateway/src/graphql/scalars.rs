//! The `DateTime` scalar: RFC 3339, always written in UTC with a `Z`.
//!
//! Two Rust types share the GraphQL name: [`DateTime`] for output, always valid, and
//! [`DateTimeInput`] for input, which keeps the text so the resolver can reject a malformed
//! one as BAD_USER_INPUT naming its field (async-graphql's own coercion errors do not say which
//! input field failed).

use async_graphql::{Description, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};

use crate::graphql::error::{ApiError, ApiResult};

/// An RFC 3339 timestamp in UTC, e.g. "2026-12-01T18:30:00Z". Input may carry any offset; it
/// is converted to UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Description)]
pub struct DateTime(pub OffsetDateTime);

#[Scalar(
    name = "DateTime",
    use_type_description,
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => OffsetDateTime::parse(text, &Rfc3339)
                .map(|instant| Self(instant.to_offset(UtcOffset::UTC)))
                .map_err(|_| {
                    InputValueError::custom(
                        "must be an RFC 3339 timestamp, e.g. 2026-12-01T18:30:00Z",
                    )
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format(&Rfc3339).unwrap_or_default())
    }
}

fn parse_rfc3339(text: &str) -> Option<DateTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|instant| DateTime(instant.to_offset(UtcOffset::UTC)))
}

const FORMAT_HINT: &str = "must be an RFC 3339 timestamp, e.g. 2026-12-01T18:30:00Z";

/// An RFC 3339 timestamp in UTC, e.g. "2026-12-01T18:30:00Z". Input may carry any offset; it
/// is converted to UTC.
#[derive(Clone, Debug, PartialEq, Eq, Description)]
pub struct DateTimeInput(String);

#[Scalar(
    name = "DateTime",
    use_type_description,
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for DateTimeInput {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) => Ok(Self(text)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

impl DateTimeInput {
    /// The instant, in UTC.
    ///
    /// # Errors
    /// BAD_USER_INPUT naming `field` when the text is not RFC 3339.
    pub fn parse(&self, field: &str) -> ApiResult<DateTime> {
        parse_rfc3339(&self.0).ok_or_else(|| ApiError::bad_input(field, FORMAT_HINT))
    }
}

impl DateTime {
    /// From a protobuf timestamp; a missing or out-of-range one reads as the epoch, which the
    /// backends never send.
    #[must_use]
    pub fn from_proto(timestamp: Option<&prost_types::Timestamp>) -> Self {
        let instant = timestamp
            .and_then(|timestamp| {
                let nanos =
                    i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos);
                OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
            })
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Self(instant)
    }

    /// To a protobuf timestamp.
    #[must_use]
    pub fn to_proto(self) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: self.0.unix_timestamp(),
            nanos: i32::try_from(self.0.nanosecond()).unwrap_or(0),
        }
    }

    /// From a system time (token expiry).
    #[must_use]
    pub fn from_system(instant: std::time::SystemTime) -> Self {
        Self(OffsetDateTime::from(instant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_utc_and_offsets_are_converted() {
        let parsed =
            DateTime::parse(Value::String("2026-12-01T19:30:00+01:00".to_owned())).expect("valid");
        assert_eq!(
            parsed.to_value(),
            Value::String("2026-12-01T18:30:00Z".to_owned())
        );
        assert!(DateTime::parse(Value::String("yesterday".to_owned())).is_err());
        let input = DateTimeInput("yesterday".to_owned());
        assert!(input.parse("date").is_err());
        let back = DateTime::from_proto(Some(&parsed.to_proto()));
        assert_eq!(back, parsed);
    }
}
