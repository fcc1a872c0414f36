//! SQLite, the embedded default: a file under the data folder, in WAL mode so readers never
//! wait for the writer, reached through rusqlite on the calling task.
//!
//! Why not sqlx here: sqlx runs each SQLite connection on a thread of its own and ships every
//! statement and every row across channels to it. Measured on the benchmark's database, that
//! cost 4 times SQLite's own work on the page's memory read (330 against 80 µs of CPU) and 15
//! times on a user lookup (50 against 3.3 µs). The statements here are index lookups over
//! pages in memory, shorter than the 100 µs a task may hold a worker thread, so they run on
//! the task itself. sqlx still applies the migrations, so its checksums keep guarding them.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rusqlite::{OpenFlags, params_from_iter, types::ToSqlOutput};
use sqlx::{ConnectOptions as _, Connection as _, sqlite::SqliteConnectOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    Backend, DbError, Migrations, OpenError, Pools,
    row::{Columns, FromRow},
    statement::{Statement, Value},
};

/// How long a caller waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection: every statement the services run, including the
/// page read's variants by hangout count, without re-preparing.
const STATEMENT_CACHE: usize = 256;

/// The file path of a `sqlite:` URL, if it names a file (not `:memory:`).
fn file_path(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| Path::new(path))
}

/// Adds `mode=rwc` so a missing database file is created.
fn with_create_mode(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

fn connect(path: &Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    // NO_MUTEX: a connection is only ever used by the one task holding it.
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // 1 MiB of page cache per connection instead of 2: the pages are in the OS's cache too,
    // and every pooled connection keeps its cache for life (hangout-core's peak RSS 79 -> 70 MB,
    // BENCHMARKS.md).
    connection.execute_batch(
        "pragma busy_timeout = 10000; pragma journal_mode = wal; pragma synchronous = normal; \
         pragma foreign_keys = on; pragma cache_size = -1024;",
    )?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

/// At most one reader per core, twice: an SQLite read is CPU work on the calling thread, so
/// more readers than that only add page caches.
fn readers() -> u32 {
    std::thread::available_parallelism()
        .map_or(2, |cores| u32::try_from(cores.get()).unwrap_or(u32::MAX))
        .saturating_mul(2)
}

pub(super) async fn open(
    url: &str,
    max_connections: u32,
    migrations: &Migrations,
) -> Result<Pools, OpenError> {
    if file_path(url).is_none() {
        return Err(OpenError::InMemory);
    }
    let options: SqliteConnectOptions =
        with_create_mode(url).parse().map_err(OpenError::Connect)?;
    // The file as sqlx reads the URL (percent-decoded), so migrations and connections agree.
    let path = options.get_filename().to_path_buf();
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(OpenError::CreateFolder)?;
    }
    let mut migrating = options.connect().await.map_err(OpenError::Connect)?;
    migrations
        .migrator(Backend::Sqlite)
        .run(&mut migrating)
        .await
        .map_err(OpenError::Migrate)?;
    migrating.close().await.map_err(OpenError::Connect)?;

    let write = Pool::open(&path, 1)?;
    let read = Pool::open(&path, max_connections.clamp(1, readers()))?;
    Ok(Pools::Sqlite { read, write })
}

/// A fixed set of connections, opened up front, handed out first come first served.
#[derive(Clone, Debug)]
pub(crate) struct Pool(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    idle: Mutex<Vec<rusqlite::Connection>>,
    permits: Arc<Semaphore>,
    size: u32,
    path: PathBuf,
}

impl Pool {
    fn open(path: &Path, size: u32) -> Result<Self, OpenError> {
        let idle = (0..size)
            .map(|_| connect(path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(OpenError::ConnectSqlite)?;
        Ok(Self(Arc::new(Shared {
            idle: Mutex::new(idle),
            permits: Arc::new(Semaphore::new(size as usize)),
            size,
            path: path.to_path_buf(),
        })))
    }

    pub(crate) async fn acquire(&self) -> Result<Pooled, DbError> {
        let permit =
            tokio::time::timeout(ACQUIRE_TIMEOUT, Arc::clone(&self.0.permits).acquire_owned())
                .await
                .map_err(|_| DbError::PoolTimedOut)?
                .map_err(|_| DbError::PoolClosed)?;
        let idle = self
            .0
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        // A permit stands for an idle connection, except one closed after a failed rollback
        // (see `Drop for Pooled`): that one is reopened here.
        let connection = match idle {
            Some(connection) => connection,
            None => connect(&self.0.path)?,
        };
        Ok(Pooled {
            connection: Some(connection),
            shared: Arc::clone(&self.0),
            in_transaction: false,
            _permit: permit,
        })
    }

    pub(crate) fn size(&self) -> u32 {
        self.0.size
    }

    pub(crate) fn idle(&self) -> u32 {
        u32::try_from(self.0.permits.available_permits()).unwrap_or(u32::MAX)
    }

    /// Refuses new checkouts and closes the idle connections; those in use close on return.
    pub(crate) fn close(&self) {
        // Under the lock a returning connection checks for closing (`Drop for Pooled`).
        let mut idle = self.0.idle.lock().unwrap_or_else(PoisonError::into_inner);
        self.0.permits.close();
        idle.clear();
    }
}

/// A connection checked out of a [`Pool`], returned on drop (rolled back first if a
/// transaction was left open, as when a request is cancelled mid-way).
#[derive(Debug)]
pub(crate) struct Pooled {
    connection: Option<rusqlite::Connection>,
    shared: Arc<Shared>,
    in_transaction: bool,
    _permit: OwnedSemaphorePermit,
}

impl Pooled {
    fn connection(&self) -> Result<&rusqlite::Connection, DbError> {
        self.connection.as_ref().ok_or(DbError::PoolClosed)
    }

    pub(crate) fn begin(&mut self) -> Result<(), DbError> {
        // `immediate`: take the write lock now rather than fail to upgrade a read lock later.
        self.connection()?.execute_batch("begin immediate")?;
        self.in_transaction = true;
        Ok(())
    }

    pub(crate) fn commit(&mut self) -> Result<(), DbError> {
        self.connection()?.execute_batch("commit")?;
        self.in_transaction = false;
        Ok(())
    }

    pub(crate) fn fetch_all<R: FromRow>(&self, statement: &Statement) -> Result<Vec<R>, DbError> {
        let mut prepared = self.connection()?.prepare_cached(statement.sql())?;
        let mut rows = prepared.query(params_from_iter(statement.values()))?;
        let mut read = Vec::new();
        while let Some(row) = rows.next()? {
            read.push(R::from_row(&mut Columns::sqlite(row))?);
        }
        Ok(read)
    }

    pub(crate) fn fetch_optional<R: FromRow>(
        &self,
        statement: &Statement,
    ) -> Result<Option<R>, DbError> {
        let mut prepared = self.connection()?.prepare_cached(statement.sql())?;
        let mut rows = prepared.query(params_from_iter(statement.values()))?;
        rows.next()?
            .map(|row| R::from_row(&mut Columns::sqlite(row)))
            .transpose()
    }

    pub(crate) fn execute(&self, statement: &Statement) -> Result<u64, DbError> {
        let mut prepared = self.connection()?.prepare_cached(statement.sql())?;
        let changed = prepared.execute(params_from_iter(statement.values()))?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        if self.in_transaction
            && let Err(error) = connection.execute_batch("rollback")
        {
            // The connection's state is unknown: close it; the next checkout opens another.
            tracing::warn!(error = %telemetry::ErrorChain(&error), "rollback failed");
            return;
        }
        let mut idle = self
            .shared
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !self.shared.permits.is_closed() {
            idle.push(connection);
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Null => ToSqlOutput::from(rusqlite::types::Null),
            Self::Integer(value) => ToSqlOutput::from(*value),
            Self::Text(value) => ToSqlOutput::from(value.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_file_of_a_url() {
        assert_eq!(file_path("sqlite:data/h.db"), Some(Path::new("data/h.db")));
        assert_eq!(
            file_path("sqlite:///tmp/h.db?mode=rwc"),
            Some(Path::new("/tmp/h.db"))
        );
        assert_eq!(file_path("sqlite::memory:"), None);
        assert_eq!(with_create_mode("sqlite:a.db"), "sqlite:a.db?mode=rwc");
        assert_eq!(
            with_create_mode("sqlite:a.db?mode=ro"),
            "sqlite:a.db?mode=ro"
        );
    }
}
