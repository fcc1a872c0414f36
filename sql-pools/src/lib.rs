//! The databases both services open: production MySQL through sqlx, or embedded SQLite through
//! rusqlite, tuned per backend and migrated at start-up, behind one statement type.
//!
//! Each service owns its database and its SQL; what they share is how a URL becomes a
//! [`Database`] (a pool for reads and one for writes), the per-backend tuning ([`sqlite`],
//! [`mysql`]), the embedded migrations' shape, the pools' metrics, and the statement and row
//! types ([`Statement`], [`FromRow`]) that let one `store` module serve both backends. The
//! services' `store` modules hold the SQL.

mod availability;
mod error;
mod mysql;
mod row;
mod sqlite;
mod statement;

use std::borrow::Cow;

use sqlx::{
    MySql, MySqlPool,
    migrate::{Migration, MigrationType, Migrator},
    pool::PoolConnection,
};

pub use error::DbError;
pub use row::{Column, Columns, FromRow};
pub use statement::{Statement, Tuple, Value};

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

/// The checks every service's `Config::validate` makes of its database settings: a URL of a
/// known backend, and a pool of at least one connection. `url_variable` and `max_variable`
/// name the settings; the URL itself is never in the error (it may hold a password).
///
/// # Errors
/// The first setting that is unusable.
pub fn check_settings(
    (url_variable, url): (&'static str, &str),
    (max_variable, max_connections): (&'static str, u32),
) -> Result<(), service_kit::config::ConfigError> {
    use service_kit::config::ConfigError;
    if Backend::of_url(url).is_none() {
        return Err(ConfigError::new(
            url_variable,
            "must start with mysql:// or sqlite:",
        ));
    }
    if max_connections == 0 {
        return Err(ConfigError::new(max_variable, "must be at least 1"));
    }
    Ok(())
}

/// Why the pools could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the database URL must start with mysql:// or sqlite:")]
    UnknownScheme,
    #[error("cannot create the folder of the SQLite database")]
    CreateFolder(#[source] std::io::Error),
    #[error("an in-memory SQLite database is not supported: each connection would see its own")]
    InMemory,
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("cannot open the SQLite database")]
    ConnectSqlite(#[source] rusqlite::Error),
    #[error("cannot apply migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// One embedded migration: version, description, SQL.
pub type MigrationSource = (i64, &'static str, &'static str);

/// A service's embedded migrations for each backend, listed by hand rather than with
/// `sqlx::migrate!` so the build needs no proc-macro copy of both database drivers. They are
/// append-only: add a file and a line, never edit one that shipped (sqlx checks each applied
/// migration's checksum).
#[derive(Clone, Copy, Debug)]
pub struct Migrations {
    pub sqlite: &'static [MigrationSource],
    pub mysql: &'static [MigrationSource],
}

impl Migrations {
    /// The migrator of `backend`.
    #[must_use]
    pub fn migrator(&self, backend: Backend) -> Migrator {
        let sources = match backend {
            Backend::MySql => self.mysql,
            Backend::Sqlite => self.sqlite,
        };
        let migrations = sources
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect::<Vec<_>>();
        Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        }
    }
}

/// The pools of one backend. On MySQL one pool serves reads and writes; on SQLite writes go
/// through a single connection, because SQLite allows one writer at a time and a transaction
/// that must wait to upgrade its lock fails instead of waiting.
#[derive(Clone, Debug)]
enum Pools {
    MySql(MySqlPool),
    Sqlite {
        read: sqlite::Pool,
        write: sqlite::Pool,
    },
}

/// A service's database: connections for reads, a transaction or connection for writes, and
/// shortcuts for single statements.
#[derive(Clone, Debug)]
pub struct Database {
    pools: Pools,
    availability: availability::Availability,
}

impl Database {
    /// Connects to `url` and applies the backend's embedded `migrations`.
    ///
    /// # Errors
    /// When the URL is unknown, the database unreachable or a migration fails.
    pub async fn open(
        url: &str,
        max_connections: u32,
        migrations: &Migrations,
    ) -> Result<Self, OpenError> {
        let pools = match Backend::of_url(url).ok_or(OpenError::UnknownScheme)? {
            Backend::MySql => mysql::open(url, max_connections, migrations).await?,
            Backend::Sqlite => sqlite::open(url, max_connections, migrations).await?,
        };
        Ok(Self {
            pools,
            availability: availability::Availability::default(),
        })
    }

    /// Whether the database answers, as the last probe found (`true` until a probe says
    /// otherwise; always `true` for embedded SQLite, which has no server to lose). Follows
    /// [`probe_forever`](Self::probe_forever)'s findings.
    #[must_use]
    pub fn availability(&self) -> tokio::sync::watch::Receiver<bool> {
        self.availability.subscribe()
    }

    /// Probes the database for as long as it is polled (run it beside the server): while a
    /// probe finds it down, checkouts fail at once as unavailable. Never completes; on SQLite
    /// it only waits.
    pub async fn probe_forever(&self) {
        match &self.pools {
            Pools::MySql(pool) => self.availability.probe_mysql(pool).await,
            Pools::Sqlite { .. } => std::future::pending().await,
        }
    }

    /// A checkout's error as a `DbError`; one that says the database is unreachable asks for
    /// a probe now.
    fn checked<T>(&self, checkout: Result<T, sqlx::Error>) -> Result<T, DbError> {
        checkout.map_err(|error| {
            let error = DbError::from(error);
            if error.is_unavailable() {
                self.availability.suspect();
            }
            error
        })
    }

    /// Fails at once while the probe finds the database down.
    fn fail_fast(&self) -> Result<(), DbError> {
        if self.availability.is_up() {
            Ok(())
        } else {
            Err(DbError::Unreachable)
        }
    }

    /// The backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::MySql(_) => Backend::MySql,
            Pools::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// A connection for reads: hold it for a read of several statements, since each checkout
    /// has a cost.
    ///
    /// # Errors
    /// When no connection becomes free in time or the pool is closed.
    pub async fn read(&self) -> Result<Connection, DbError> {
        Ok(Connection(match &self.pools {
            Pools::MySql(pool) => {
                self.fail_fast()?;
                Link::MySql(self.checked(pool.acquire().await)?)
            }
            Pools::Sqlite { read, .. } => Link::Sqlite(read.acquire().await?),
        }))
    }

    /// The write connection, outside a transaction: for single statements, and for reading
    /// what was just written.
    ///
    /// # Errors
    /// When no connection becomes free in time or the pool is closed.
    pub async fn write(&self) -> Result<Connection, DbError> {
        Ok(Connection(match &self.pools {
            Pools::MySql(pool) => {
                self.fail_fast()?;
                Link::MySql(self.checked(pool.acquire().await)?)
            }
            Pools::Sqlite { write, .. } => Link::Sqlite(write.acquire().await?),
        }))
    }

    /// A transaction on the write connection, rolled back unless committed.
    ///
    /// # Errors
    /// When no connection becomes free in time, the pool is closed or `begin` fails.
    pub async fn begin(&self) -> Result<Transaction, DbError> {
        Ok(Transaction(Connection(match &self.pools {
            Pools::MySql(pool) => {
                self.fail_fast()?;
                Link::MySqlTransaction(self.checked(pool.begin().await)?)
            }
            Pools::Sqlite { write, .. } => {
                let mut connection = write.acquire().await?;
                connection.begin()?;
                Link::Sqlite(connection)
            }
        })))
    }

    /// Runs one read statement on a read connection.
    ///
    /// # Errors
    /// When the statement fails or a row does not decode.
    pub async fn fetch_all<R: FromRow>(&self, statement: &Statement) -> Result<Vec<R>, DbError> {
        self.read().await?.fetch_all(statement).await
    }

    /// Runs one read statement on a read connection, keeping its first row.
    ///
    /// # Errors
    /// When the statement fails or the row does not decode.
    pub async fn fetch_optional<R: FromRow>(
        &self,
        statement: &Statement,
    ) -> Result<Option<R>, DbError> {
        self.read().await?.fetch_optional(statement).await
    }

    /// Runs one change on the write connection; returns the rows it changed.
    ///
    /// # Errors
    /// When the statement fails.
    pub async fn execute(&self, statement: &Statement) -> Result<u64, DbError> {
        self.write().await?.execute(statement).await
    }

    /// Each pool's connections, for the metrics endpoint. On MySQL reads and writes share one
    /// pool, reported once as `main`.
    #[must_use]
    pub fn snapshots(&self) -> Vec<telemetry::metrics::PoolSnapshot> {
        match &self.pools {
            Pools::MySql(pool) => vec![telemetry::metrics::PoolSnapshot {
                pool: "main",
                open: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }],
            Pools::Sqlite { read, write } => [("read", read), ("write", write)]
                .into_iter()
                .map(|(name, pool)| telemetry::metrics::PoolSnapshot {
                    pool: name,
                    open: pool.size(),
                    idle: pool.idle(),
                    max: pool.size(),
                })
                .collect(),
        }
    }

    /// Closes the pools: MySQL waits for connections to be returned; SQLite closes its idle
    /// connections now and the others as they come back.
    pub async fn close(&self) {
        match &self.pools {
            Pools::MySql(pool) => pool.close().await,
            Pools::Sqlite { read, write } => {
                write.close();
                read.close();
            }
        }
    }
}

#[derive(Debug)]
enum Link {
    MySql(PoolConnection<MySql>),
    MySqlTransaction(sqlx::Transaction<'static, MySql>),
    Sqlite(sqlite::Pooled),
}

/// A connection checked out of a pool, returned when dropped.
#[derive(Debug)]
pub struct Connection(Link);

impl Connection {
    /// Runs a statement and decodes every row.
    ///
    /// # Errors
    /// When the statement fails or a row does not decode.
    pub async fn fetch_all<R: FromRow>(
        &mut self,
        statement: &Statement,
    ) -> Result<Vec<R>, DbError> {
        match &mut self.0 {
            Link::MySql(connection) => mysql::fetch_all(connection, statement).await,
            Link::MySqlTransaction(transaction) => mysql::fetch_all(transaction, statement).await,
            Link::Sqlite(connection) => connection.fetch_all(statement),
        }
    }

    /// Runs a statement and decodes its first row, if any.
    ///
    /// # Errors
    /// When the statement fails or the row does not decode.
    pub async fn fetch_optional<R: FromRow>(
        &mut self,
        statement: &Statement,
    ) -> Result<Option<R>, DbError> {
        match &mut self.0 {
            Link::MySql(connection) => mysql::fetch_optional(connection, statement).await,
            Link::MySqlTransaction(transaction) => {
                mysql::fetch_optional(transaction, statement).await
            }
            Link::Sqlite(connection) => connection.fetch_optional(statement),
        }
    }

    /// Runs a statement that returns exactly one row (a count) and decodes it.
    ///
    /// # Errors
    /// When the statement fails, returns no row or the row does not decode.
    pub async fn fetch_one<R: FromRow>(&mut self, statement: &Statement) -> Result<R, DbError> {
        self.fetch_optional(statement)
            .await?
            .ok_or(DbError::RowNotFound)
    }

    /// Runs a change; returns the rows it changed.
    ///
    /// # Errors
    /// When the statement fails.
    pub async fn execute(&mut self, statement: &Statement) -> Result<u64, DbError> {
        match &mut self.0 {
            Link::MySql(connection) => mysql::execute(connection, statement).await,
            Link::MySqlTransaction(transaction) => mysql::execute(transaction, statement).await,
            Link::Sqlite(connection) => connection.execute(statement),
        }
    }
}

/// A transaction: a [`Connection`] (through `Deref`) whose changes apply only on
/// [`commit`](Self::commit); dropped uncommitted, it rolls back.
#[derive(Debug)]
pub struct Transaction(Connection);

/// Tries of [`retry_conflicts`]: a deadlock twice in a row is rare, three times a sign of a
/// real problem worth its error.
const CONFLICT_TRIES: u32 = 3;

/// Runs `attempt` (a whole transaction: begin, statements, commit) again when MySQL rolled it
/// back for a deadlock or a lock wait timeout ([`DbError::is_retryable_conflict`]), up to
/// three tries, after a short random pause so the two transactions do not meet again.
///
/// # Errors
/// The last attempt's error.
pub async fn retry_conflicts<T, F, Fut>(mut attempt: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(error) if error.is_retryable_conflict() && tries < CONFLICT_TRIES => {
                tracing::debug!(error = %error, tries, "transaction rolled back by a conflict; again");
                let pause = 5 + u64::from(rand_below(20));
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A number below `bound`, from the clock: only to spread retries apart.
fn rand_below(bound: u32) -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos() % bound.max(1))
}

impl Transaction {
    /// Commits the changes.
    ///
    /// # Errors
    /// When the commit fails; the changes are then rolled back.
    pub async fn commit(self) -> Result<(), DbError> {
        match self.0.0 {
            Link::MySqlTransaction(transaction) => Ok(transaction.commit().await?),
            Link::Sqlite(mut connection) => connection.commit(),
            // Not built by `Database::begin`: no transaction is open, so nothing to commit.
            Link::MySql(_) => Ok(()),
        }
    }
}

impl std::ops::Deref for Transaction {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl std::ops::DerefMut for Transaction {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0
    }
}
