//! Instants as UTC milliseconds: the precision the API promises and both databases store.

pub use service_kit::time::Timestamp;
