//! SQL adapter implementing the domain's storage port ([`crate::domain::store`]).
//!
//! Production MySQL and embedded SQLite run the same statements, built as `sql_pools`
//! [`Statement`]s and read back through `sql_pools::FromRow`: ids are stored as UUID text and
//! instants as integer milliseconds, so one set of statements serves both. Connecting, the
//! drivers, per-backend tuning and migrating belong to the shared `sql-pools` crate; this
//! service's migrations are listed in `migrations`, and the integration tests in `tests/it` run
//! against both backends.
//!
//! Conventions: every statement filters by owner where the port says so; every multi-row change
//! runs in one transaction on the write pool; unique violations become `StoreError::Conflict`.

mod files;
mod jobs;
mod migrations;
mod rows;

use std::sync::Arc;

use sql_pools::{Database, DbError, Statement};
use tokio::sync::Notify;

use crate::domain::store::StoreError;

pub use sql_pools::{Backend, OpenError};

/// The SQL store over the service's [`Database`].
#[derive(Clone, Debug)]
pub struct SqlStore {
    database: Database,
    /// Woken when this process queues a processing job (see `JobStore::jobs_queued`).
    jobs_queued: Arc<Notify>,
    /// Woken when this process records a processing report (`JobStore::reports_recorded`).
    reports_recorded: Arc<Notify>,
}

impl SqlStore {
    /// Connects to `url` and applies the service's embedded migrations.
    ///
    /// # Errors
    /// When the URL is unknown, the database unreachable or a migration fails.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, OpenError> {
        let database = Database::open(url, max_connections, &migrations::MIGRATIONS).await?;
        Ok(Self {
            database,
            jobs_queued: Arc::new(Notify::new()),
            reports_recorded: Arc::new(Notify::new()),
        })
    }

    /// The backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.database.backend()
    }

    /// Each pool's connections, for the metrics endpoint.
    #[must_use]
    pub fn pool_snapshots(&self) -> Vec<telemetry::metrics::PoolSnapshot> {
        self.database.snapshots()
    }

    /// The database, for its availability probe.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Closes both pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.database.close().await;
    }
}

/// Maps a database error to the port's error: unique violations become `Conflict`, an
/// unreachable database `Unavailable`.
fn store_error(error: DbError) -> StoreError {
    match error.unique_violation() {
        Some(message) => StoreError::Conflict(message),
        None if error.is_unavailable() => StoreError::Unavailable(Box::new(error)),
        None => StoreError::Backend(Box::new(error)),
    }
}

/// A row held something the domain cannot represent (a corrupt id or enum).
fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt row: {what}").into())
}

/// Appends `(?, ?, …)` binding each id's text; an empty list yields `(NULL)`, which matches
/// nothing.
fn push_id_list<T: ToString>(statement: &mut Statement, ids: &[T]) {
    statement.push_list(ids.iter().map(ToString::to_string));
}
