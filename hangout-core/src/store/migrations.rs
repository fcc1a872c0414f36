//! The embedded migrations of each backend, applied at start-up (see [`Migrations`]).

use sql_pools::Migrations;

pub(super) const MIGRATIONS: Migrations = Migrations {
    sqlite: &[
        (
            1,
            "initial",
            include_str!("../../migrations/sqlite/0001_initial.sql"),
        ),
        (
            2,
            "sharing",
            include_str!("../../migrations/sqlite/0002_sharing.sql"),
        ),
        (
            3,
            "events",
            include_str!("../../migrations/sqlite/0003_events.sql"),
        ),
        (
            4,
            "session events",
            include_str!("../../migrations/sqlite/0004_session_events.sql"),
        ),
        (
            5,
            "file deletions",
            include_str!("../../migrations/sqlite/0005_file_deletions.sql"),
        ),
    ],
    mysql: &[
        (
            1,
            "initial",
            include_str!("../../migrations/mysql/0001_initial.sql"),
        ),
        (
            2,
            "sharing",
            include_str!("../../migrations/mysql/0002_sharing.sql"),
        ),
        (
            3,
            "events",
            include_str!("../../migrations/mysql/0003_events.sql"),
        ),
        (
            4,
            "session events",
            include_str!("../../migrations/mysql/0004_session_events.sql"),
        ),
        (
            5,
            "file deletions",
            include_str!("../../migrations/mysql/0005_file_deletions.sql"),
        ),
    ],
};
