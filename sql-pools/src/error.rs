//! The one error of a database call, whichever backend served it.

/// Why a statement or a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("SQLite: {0}")]
    Sqlite(#[source] rusqlite::Error),
    #[error("MySQL: {0}")]
    MySql(#[source] sqlx::Error),
    #[error("the statement returned no row")]
    RowNotFound,
    #[error("no database connection became free in time")]
    PoolTimedOut,
    #[error("the database pool is closed")]
    PoolClosed,
}

impl DbError {
    /// The database's message when a unique index or primary key refused the change.
    #[must_use]
    pub fn unique_violation(&self) -> Option<String> {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(failure, message))
                if matches!(
                    failure.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                Some(message.clone().unwrap_or_else(|| failure.to_string()))
            }
            Self::MySql(sqlx::Error::Database(database)) if database.is_unique_violation() => {
                Some(database.message().to_owned())
            }
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error)
    }
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => Self::RowNotFound,
            sqlx::Error::PoolTimedOut => Self::PoolTimedOut,
            sqlx::Error::PoolClosed => Self::PoolClosed,
            other => Self::MySql(other),
        }
    }
}
