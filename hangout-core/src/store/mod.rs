//! SQL adapters implementing the domain's storage port ([`crate::domain::store`]).
//!
//! Production MySQL and embedded SQLite run the same statements, built as `sql_pools`
//! [`Statement`]s and read back through `sql_pools::FromRow`: ids are stored as UUID text and
//! instants as integer milliseconds, so one set of statements serves both; the exceptions are
//! two page reads whose fastest shape differs between the engines' planners. Connecting, the
//! drivers, per-backend tuning and migrating belong to the shared `sql-pools` crate; this
//! service's migrations are listed in `migrations`, and the storage contract tests in
//! `tests/it` run against both backends.
//!
//! Conventions: every statement filters by owner where the port says so; every multi-row change
//! runs in one transaction on the write pool; a read of several statements holds one connection
//! for all of them, since on SQLite each checkout and each return is a round trip to the
//! connection's own thread; unique violations become `StoreError::Conflict`.

mod activities;
mod events;
mod file_deletions;
mod hangouts;
mod invitations;
mod members;
mod memories;
mod migrations;
mod rows;
mod sessions;
mod users;

use std::sync::Arc;

use sql_pools::{Database, DbError, Statement, Transaction, Value};

use crate::domain::store::StoreError;

pub use sql_pools::{Backend, OpenError};

/// The SQL store over the service's [`Database`].
#[derive(Clone, Debug)]
pub struct SqlStore {
    database: Database,
    /// Bumped after each commit that recorded events, waking this process's event watches.
    recorded: Arc<tokio::sync::watch::Sender<u64>>,
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
            recorded: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// Commits a transaction that recorded events (`events::record`), then wakes the event
    /// watches of this process.
    async fn commit_recorded(&self, transaction: Transaction) -> Result<(), StoreError> {
        transaction.commit().await.map_err(store_error)?;
        self.recorded
            .send_modify(|commits| *commits = commits.wrapping_add(1));
        Ok(())
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

/// `>` or `<` for rows after a cursor in ascending or descending order.
fn after_operator(direction: crate::domain::page::Direction) -> &'static str {
    match direction {
        crate::domain::page::Direction::Asc => ">",
        crate::domain::page::Direction::Desc => "<",
    }
}

/// Appends `and (key > k or (key = k and id > i))` (with `<` when descending): the rows after
/// a cursor in `(key, id)` order.
fn push_after_cursor<K>(
    query: &mut Statement,
    key_column: &str,
    id_column: &str,
    direction: crate::domain::page::Direction,
    cursor: &crate::domain::page::Cursor<K>,
) where
    K: Clone + Into<Value>,
{
    let operator = after_operator(direction);
    query
        .push(&format!(" and ({key_column} {operator} "))
        .push_bind(cursor.key.clone())
        .push(&format!(" or ({key_column} = "))
        .push_bind(cursor.key.clone())
        .push(&format!(" and {id_column} {operator} "))
        .push_bind(cursor.id.clone())
        .push("))");
}

fn order_keyword(direction: crate::domain::page::Direction) -> &'static str {
    match direction {
        crate::domain::page::Direction::Asc => "asc",
        crate::domain::page::Direction::Desc => "desc",
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
