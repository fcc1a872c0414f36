//! SQL adapters implementing the domain's storage port ([`crate::domain::store`]).
//!
//! Both production MySQL and embedded SQLite are reached through sqlx's `Any` driver with
//! runtime queries: ids are stored as UUID text and instants as integer milliseconds, the types
//! `Any` carries, so one set of statements serves both. What differs per backend (connection
//! tuning, migrations) lives in [`mysql`] and [`sqlite`]. The storage contract tests in
//! `tests/it` run against both.
//!
//! Conventions: every statement filters by owner where the port says so; every multi-row change
//! runs in one transaction on the write pool; unique violations become `StoreError::Conflict`.

mod activities;
mod hangouts;
mod memories;
mod migrations;
pub mod mysql;
mod rows;
mod sessions;
pub mod sqlite;
mod users;

use sqlx::{Any, AnyPool, QueryBuilder, any::AnyPoolOptions};

use crate::domain::store::StoreError;

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    MySql,
    Sqlite,
}

impl Backend {
    /// The OpenTelemetry `db.system` name.
    #[must_use]
    pub fn system_name(self) -> &'static str {
        match self {
            Self::MySql => "mysql",
            Self::Sqlite => "sqlite",
        }
    }

    /// The backend of a database URL, from its scheme.
    #[must_use]
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Some(Self::MySql)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the database URL must start with mysql:// or sqlite:")]
    UnknownScheme,
    #[error("cannot create the folder of the SQLite database")]
    CreateFolder(#[source] std::io::Error),
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// The SQL store: a pool for reads and one for writes. On MySQL both are the same pool; on
/// SQLite writes go through a single connection, because SQLite allows one writer at a time and
/// a transaction that must wait to upgrade its lock fails instead of waiting.
#[derive(Clone, Debug)]
pub struct SqlStore {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
}

impl SqlStore {
    /// Connects to `url` and applies the backend's embedded migrations.
    ///
    /// # Errors
    /// When the URL is unknown, the database unreachable or a migration fails.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let store = match Backend::of_url(url).ok_or(OpenError::UnknownScheme)? {
            Backend::MySql => mysql::open(url, max_connections).await?,
            Backend::Sqlite => sqlite::open(url, max_connections).await?,
        };
        migrations::migrator(store.backend)
            .run(&store.write)
            .await
            .map_err(OpenError::Migrate)?;
        Ok(store)
    }

    /// The backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Each pool's connections, for the metrics endpoint. On MySQL reads and writes share one
    /// pool, reported once as `main`.
    #[must_use]
    pub fn pool_snapshots(&self) -> Vec<telemetry::metrics::PoolSnapshot> {
        let snapshot =
            |pool: &'static str, connections: &AnyPool| telemetry::metrics::PoolSnapshot {
                pool,
                open: connections.size(),
                idle: u32::try_from(connections.num_idle()).unwrap_or(u32::MAX),
                max: connections.options().get_max_connections(),
            };
        match self.backend {
            Backend::MySql => vec![snapshot("main", &self.write)],
            Backend::Sqlite => vec![snapshot("read", &self.read), snapshot("write", &self.write)],
        }
    }

    /// Closes both pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

fn pool_options(max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(std::time::Duration::from_secs(10))
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
