//! The contract crate: the protobuf messages and tonic services of `hangout.v1` and `file.v1`,
//! generated at build time, plus the transport conventions every party shares:
//!
//! - [`tls`]: mutual TLS from PEM files, with an allow-list of client certificate names;
//! - [`metadata`]: the request metadata keys for the caller's identity and the request id;
//! - `broker` (feature `broker`): how the live-update events travel through RabbitMQ;
//! - `dev_certs` (feature `dev-certs`): a throw-away CA for local runs and tests.

#[cfg(feature = "broker")]
pub mod broker;
pub mod metadata;
pub mod process;
pub mod tls;

#[cfg(feature = "dev-certs")]
pub mod dev_certs;

/// `hangout.v1`: users, sessions, hangouts, activities and memory records.
pub mod hangout {
    #[allow(clippy::all, reason = "generated code")]
    pub mod v1 {
        tonic::include_proto!("hangout.v1");
    }
}

/// `file.v1`: the photo file lifecycle.
pub mod file {
    #[allow(clippy::all, reason = "generated code")]
    pub mod v1 {
        tonic::include_proto!("file.v1");
    }
}

/// Converts milliseconds since the Unix epoch to a protobuf timestamp.
#[must_use]
pub fn timestamp_from_millis(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        // The remainder is within 0..1000, so the product fits an i32.
        nanos: i32::try_from(millis.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// Converts a protobuf timestamp to milliseconds since the Unix epoch, truncating below a
/// millisecond. `None` when it lies outside the range of an `i64` of milliseconds.
#[must_use]
pub fn timestamp_to_millis(timestamp: &prost_types::Timestamp) -> Option<i64> {
    let seconds = timestamp.seconds.checked_mul(1000)?;
    seconds.checked_add(i64::from(timestamp.nanos.div_euclid(1_000_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_at_millisecond_precision() {
        for millis in [0, 1, 999, 1_000, 1_764_000_000_123, -1, -1_001] {
            assert_eq!(
                timestamp_to_millis(&timestamp_from_millis(millis)),
                Some(millis)
            );
        }
    }
}
