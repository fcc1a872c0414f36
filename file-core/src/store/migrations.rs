//! The embedded migrations of each backend, applied at start-up.
//!
//! Listed by hand rather than with `sqlx::migrate!` so the build needs no proc-macro copy of
//! both database drivers. Migrations are append-only: add a file and a line, never edit one that
//! shipped (sqlx checks each applied migration's checksum).

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::store::Backend;

type Source = (i64, &'static str, &'static str);

const SQLITE: &[Source] = &[(
    1,
    "initial",
    include_str!("../../migrations/sqlite/0001_initial.sql"),
)];

const MYSQL: &[Source] = &[(
    1,
    "initial",
    include_str!("../../migrations/mysql/0001_initial.sql"),
)];

/// The migrator of `backend`.
pub(super) fn migrator(backend: Backend) -> Migrator {
    let sources = match backend {
        Backend::MySql => MYSQL,
        Backend::Sqlite => SQLITE,
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
