//! The database pools both services open: production MySQL or embedded SQLite, reached through
//! sqlx's `Any` driver, tuned per backend and migrated at start-up.
//!
//! Each service owns its database and its SQL; what they share is how a URL becomes a pair of
//! pools (reads and writes), the per-backend tuning ([`sqlite`], [`mysql`]), the embedded
//! migrations' shape, and the pools' metrics. The services' `store` modules hold the SQL.

mod mysql;
mod sqlite;

use std::borrow::Cow;

use sqlx::{
    AnyPool,
    any::AnyPoolOptions,
    migrate::{Migration, MigrationType, Migrator},
};

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

/// Why the pools could not be opened.
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

/// A pool for reads and one for writes. On MySQL both are the same pool; on SQLite writes go
/// through a single connection, because SQLite allows one writer at a time and a transaction
/// that must wait to upgrade its lock fails instead of waiting.
#[derive(Clone, Debug)]
pub struct Pools {
    pub read: AnyPool,
    pub write: AnyPool,
    pub backend: Backend,
}

impl Pools {
    /// Connects to `url` and applies the backend's embedded `migrations`.
    ///
    /// # Errors
    /// When the URL is unknown, the database unreachable or a migration fails.
    pub async fn open(
        url: &str,
        max_connections: u32,
        migrations: &Migrations,
    ) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let pools = match Backend::of_url(url).ok_or(OpenError::UnknownScheme)? {
            Backend::MySql => mysql::open(url, max_connections).await?,
            Backend::Sqlite => sqlite::open(url, max_connections).await?,
        };
        migrations
            .migrator(pools.backend)
            .run(&pools.write)
            .await
            .map_err(OpenError::Migrate)?;
        Ok(pools)
    }

    /// Each pool's connections, for the metrics endpoint. On MySQL reads and writes share one
    /// pool, reported once as `main`.
    #[must_use]
    pub fn snapshots(&self) -> Vec<telemetry::metrics::PoolSnapshot> {
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
