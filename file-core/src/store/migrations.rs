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
            "processing",
            include_str!("../../migrations/sqlite/0002_processing.sql"),
        ),
        (
            3,
            "job delivery",
            include_str!("../../migrations/sqlite/0003_job_delivery.sql"),
        ),
        (
            4,
            "processing reports",
            include_str!("../../migrations/sqlite/0004_processing_reports.sql"),
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
            "processing",
            include_str!("../../migrations/mysql/0002_processing.sql"),
        ),
        (
            3,
            "job delivery",
            include_str!("../../migrations/mysql/0003_job_delivery.sql"),
        ),
        (
            4,
            "processing reports",
            include_str!("../../migrations/mysql/0004_processing_reports.sql"),
        ),
    ],
};
