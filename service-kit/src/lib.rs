//! What the services share below their layers, in one place instead of a copy per service:
//!
//! - [`ids`] and [`time`]: the typed identifiers and millisecond instants of the domains. They
//!   depend on nothing but `uuid`, so a domain module may use them and still import no
//!   transport or SQL code.
//! - [`config`]: the configuration error every service's `Config::validate` returns, its
//!   common checks, and values that keep a secret out of `Debug` output.
//! - [`listen`]: binding a service's listener (port 0 in tests) and its error.

pub mod config;
pub mod ids;
pub mod listen;
pub mod time;

#[doc(hidden)]
pub use uuid;
