//! The rules of hangout-core, free of transport and SQL: no tonic, prost or sqlx here.
//!
//! [`Service`] holds every operation; it talks to storage only through the [`store::Store`]
//! port, which `crate::store` implements.

pub mod activity;
pub mod error;
pub mod event;
pub mod file_deletion;
pub mod hangout;
pub mod hashing;
pub mod ids;
pub mod invitation;
pub mod membership;
pub mod memory;
pub mod page;
pub mod password;
pub mod policy;
pub mod session;
pub mod store;
pub mod text;
pub mod time;
pub mod user;

use std::time::Duration;

/// Tunables of the domain, from configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a refresh token stays valid.
    pub refresh_token_ttl: Duration,
    /// How long a client has to upload a memory's bytes.
    pub upload_window: Duration,
    /// How long after its upload window a PENDING memory is swept.
    pub pending_grace: Duration,
    /// Password hashes that may wait for a hashing thread; more are refused at once.
    pub hashing_queue: usize,
    /// How long recorded live-update events are kept for relays that fell behind.
    pub event_retention: Duration,
    /// What link invitation codes are derived from.
    pub code_key: invitation::CodeKey,
}

/// The operations of hangout-core over a store `S`.
pub struct Service<S> {
    store: S,
    settings: Settings,
    /// A real argon2id hash of a random password: unknown emails are verified against it so
    /// they take as long as wrong passwords.
    dummy_hash: String,
    /// Threads that hash passwords, one per two cores.
    hashing: hashing::HashingPool,
}

impl<S: store::Store> Service<S> {
    /// # Errors
    /// `Hashing` if the dummy hash cannot be made.
    pub fn new(store: S, settings: Settings) -> error::DomainResult<Self> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        // Half the cores (at least one): a flood of sign-ins, each tens of milliseconds of
        // argon2, must leave cores to everything else (BENCHMARKS.md, `abuse`).
        let hashing = hashing::HashingPool::new((cores / 2).max(1), settings.hashing_queue)?;
        // On a hashing thread: a thread that hashes keeps 19 MiB of argon2 memory for life
        // (see `password`), and the calling thread would never hash again.
        let dummy_hash =
            hashing.run_blocking(|| password::hash(&ids::SessionId::generate().to_string()))??;
        Ok(Self {
            store,
            settings,
            dummy_hash,
            hashing,
        })
    }
}
