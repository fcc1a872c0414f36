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
    #[error("the database did not answer its last probe")]
    Unreachable,
}

impl DbError {
    /// Whether the database could not be reached (no connection in time, a closed pool, a
    /// broken or refused connection), rather than refusing the statement: the caller should
    /// say "unavailable, retry", not "internal error".
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::PoolTimedOut | Self::PoolClosed | Self::Unreachable => true,
            Self::MySql(error) => matches!(
                error,
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            ),
            Self::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::CannotOpen
            ),
            Self::Sqlite(_) | Self::RowNotFound => false,
        }
    }

    /// Whether MySQL rolled the transaction back because it waited on another one (a
    /// deadlock, 1213, or a lock wait timeout, 1205): InnoDB picks one of two transactions
    /// that lock rows in opposite orders and asks the client to run it again. SQLite has one
    /// writer, so it never reports this.
    #[must_use]
    pub fn is_retryable_conflict(&self) -> bool {
        match self {
            Self::MySql(sqlx::Error::Database(database)) => database
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|mysql| matches!(mysql.number(), 1205 | 1213)),
            _ => false,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_databases_are_told_from_refused_statements() {
        assert!(DbError::PoolTimedOut.is_unavailable());
        assert!(DbError::PoolClosed.is_unavailable());
        assert!(DbError::Unreachable.is_unavailable());
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(DbError::from(sqlx::Error::Io(reset)).is_unavailable());
        assert!(!DbError::RowNotFound.is_unavailable());
        assert!(!DbError::from(sqlx::Error::ColumnNotFound("x".to_owned())).is_unavailable());
    }
}
