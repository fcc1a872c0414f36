//! Reading rows of either backend: a row type reads its columns in select order from
//! [`Columns`], which decodes straight from the driver's own row (no copy into a common row
//! type first, as sqlx's `Any` did).

use sqlx::{Row as _, mysql::MySqlRow};

use crate::DbError;

/// A value one column decodes to on both backends: `String`, `i64` and their `Option`s.
pub trait Column: Sized {
    #[doc(hidden)]
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self>;
    #[doc(hidden)]
    fn from_mysql(row: &MySqlRow, index: usize) -> Result<Self, sqlx::Error>;
}

impl Column for i64 {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
        row.get(index)
    }

    fn from_mysql(row: &MySqlRow, index: usize) -> Result<Self, sqlx::Error> {
        row.try_get(index)
    }
}

impl Column for Option<i64> {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
        row.get(index)
    }

    fn from_mysql(row: &MySqlRow, index: usize) -> Result<Self, sqlx::Error> {
        row.try_get(index)
    }
}

impl Column for String {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
        row.get(index)
    }

    fn from_mysql(row: &MySqlRow, index: usize) -> Result<Self, sqlx::Error> {
        utf8(row.try_get(index)?, index)
    }
}

impl Column for Option<String> {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Self> {
        row.get(index)
    }

    fn from_mysql(row: &MySqlRow, index: usize) -> Result<Self, sqlx::Error> {
        row.try_get::<Option<Vec<u8>>, _>(index)?
            .map(|bytes| utf8(bytes, index))
            .transpose()
    }
}

/// Text read as bytes: sqlx refuses to decode a `String` from a column with a binary
/// collation (the ids' `ascii_bin`), though its bytes are text.
fn utf8(bytes: Vec<u8>, index: usize) -> Result<String, sqlx::Error> {
    String::from_utf8(bytes).map_err(|error| sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source: Box::new(error),
    })
}

enum Source<'a, 'stmt> {
    Sqlite(&'a rusqlite::Row<'stmt>),
    MySql(&'a MySqlRow),
}

/// The columns of one result row, read left to right.
pub struct Columns<'a, 'stmt> {
    source: Source<'a, 'stmt>,
    next: usize,
}

impl<'a, 'stmt> Columns<'a, 'stmt> {
    pub(crate) fn sqlite(row: &'a rusqlite::Row<'stmt>) -> Self {
        Self {
            source: Source::Sqlite(row),
            next: 0,
        }
    }

    pub(crate) fn mysql(row: &'a MySqlRow) -> Self {
        Self {
            source: Source::MySql(row),
            next: 0,
        }
    }

    /// Decodes the next column.
    ///
    /// # Errors
    /// When there is no next column or it holds another type.
    pub fn read<T: Column>(&mut self) -> Result<T, DbError> {
        let index = self.next;
        self.next += 1;
        match &self.source {
            Source::Sqlite(row) => T::from_sqlite(row, index).map_err(DbError::Sqlite),
            Source::MySql(row) => T::from_mysql(row, index).map_err(DbError::MySql),
        }
    }
}

/// A type built from one result row, its fields in the statement's column order.
pub trait FromRow: Sized {
    /// Reads the row.
    ///
    /// # Errors
    /// When a column is missing or of another type.
    fn from_row(columns: &mut Columns<'_, '_>) -> Result<Self, DbError>;
}

impl<A: Column> FromRow for (A,) {
    fn from_row(columns: &mut Columns<'_, '_>) -> Result<Self, DbError> {
        Ok((columns.read()?,))
    }
}

impl<A: Column, B: Column> FromRow for (A, B) {
    fn from_row(columns: &mut Columns<'_, '_>) -> Result<Self, DbError> {
        Ok((columns.read()?, columns.read()?))
    }
}

impl<A: Column, B: Column, C: Column> FromRow for (A, B, C) {
    fn from_row(columns: &mut Columns<'_, '_>) -> Result<Self, DbError> {
        Ok((columns.read()?, columns.read()?, columns.read()?))
    }
}

/// Implements [`FromRow`] for a struct whose fields are listed in the statement's column order:
/// `impl_from_row!(UserRow { id, name, email, created_at });`.
#[macro_export]
macro_rules! impl_from_row {
    ($row:ty { $($field:ident),+ $(,)? }) => {
        impl $crate::FromRow for $row {
            fn from_row(columns: &mut $crate::Columns<'_, '_>) -> Result<Self, $crate::DbError> {
                Ok(Self { $($field: columns.read()?),+ })
            }
        }
    };
}
