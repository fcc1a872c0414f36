//! SQL adapters implementing the domain's storage port ([`crate::domain::store`]).
//!
//! Both production MySQL and embedded SQLite are reached through sqlx's `Any` driver with
//! runtime queries: ids are stored as UUID text and instants as integer milliseconds, the types
//! `Any` carries, so one set of statements serves both; the exceptions are two page reads whose
//! fastest shape differs between the engines' planners. Connecting, per-backend tuning and
//! migrating belong to the shared `sql-pools` crate; this service's migrations are listed in
//! `migrations`, and the storage contract tests in `tests/it` run against both backends.
//!
//! Conventions: every statement filters by owner where the port says so; every multi-row change
//! runs in one transaction on the write pool; a read of several statements holds one connection
//! for all of them, since on SQLite each checkout and each return is a round trip to the
//! connection's own thread; unique violations become `StoreError::Conflict`.

mod activities;
mod hangouts;
mod memories;
mod migrations;
mod rows;
mod sessions;
mod users;

use sql_pools::Pools;
use sqlx::{Any, QueryBuilder};

use crate::domain::store::StoreError;

pub use sql_pools::{Backend, OpenError};

/// The SQL store over the service's pools ([`Pools`]: reads, writes, backend).
#[derive(Clone, Debug)]
pub struct SqlStore {
    pools: Pools,
}

impl SqlStore {
    /// Connects to `url` and applies the service's embedded migrations.
    ///
    /// # Errors
    /// When the URL is unknown, the database unreachable or a migration fails.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, OpenError> {
        let pools = Pools::open(url, max_connections, &migrations::MIGRATIONS).await?;
        Ok(Self { pools })
    }

    /// The backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.pools.backend
    }

    /// Each pool's connections, for the metrics endpoint.
    #[must_use]
    pub fn pool_snapshots(&self) -> Vec<telemetry::metrics::PoolSnapshot> {
        self.pools.snapshots()
    }

    /// Closes both pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pools.close().await;
    }
}

/// Maps a sqlx error to the port's error: unique violations become `Conflict`.
fn store_error(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(database_error) = &error
        && database_error.is_unique_violation()
    {
        return StoreError::Conflict(database_error.message().to_owned());
    }
    StoreError::Backend(Box::new(error))
}

/// A row held something the domain cannot represent (a corrupt id or enum).
fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt row: {what}").into())
}

/// Appends `(?, ?, …)` binding each id's text; an empty list yields `(NULL)`, which matches
/// nothing.
fn push_id_list<T: ToString>(builder: &mut QueryBuilder<'_, Any>, ids: &[T]) {
    if ids.is_empty() {
        builder.push("(NULL)");
        return;
    }
    builder.push("(");
    let mut separated = builder.separated(", ");
    for id in ids {
        separated.push_bind(id.to_string());
    }
    separated.push_unseparated(")");
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
fn push_after_cursor<'q, K>(
    query: &mut QueryBuilder<'q, Any>,
    key_column: &str,
    id_column: &str,
    direction: crate::domain::page::Direction,
    cursor: &crate::domain::page::Cursor<K>,
) where
    K: Clone + Send + sqlx::Encode<'q, Any> + sqlx::Type<Any> + 'q,
{
    let operator = after_operator(direction);
    query
        .push(format!(" and ({key_column} {operator} "))
        .push_bind(cursor.key.clone())
        .push(format!(" or ({key_column} = "))
        .push_bind(cursor.key.clone())
        .push(format!(" and {id_column} {operator} "))
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
