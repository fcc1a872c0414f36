//! The statement and row layer against real databases: a SQLite file, and MariaDB when
//! `TEST_MYSQL_URL` names a server (as in CI).

use std::sync::atomic::{AtomicU32, Ordering};

use sql_pools::{Backend, Database, DbError, Migrations, Statement, impl_from_row};
use test_support::MariaDbDatabase;

const SQLITE_SCHEMA: &[(i64, &str, &str)] = &[(
    1,
    "things",
    "create table things (id text not null primary key, label text, size integer not null);",
)];

const MYSQL_SCHEMA: &[(i64, &str, &str)] = &[(
    1,
    "things",
    "create table things (id char(36) character set ascii collate ascii_bin not null primary key, \
     label varchar(64) null, size bigint not null) engine = InnoDB default charset = utf8mb4 \
     collate = utf8mb4_bin;",
)];

const MIGRATIONS: Migrations = Migrations {
    sqlite: SQLITE_SCHEMA,
    mysql: MYSQL_SCHEMA,
};

#[derive(Debug, PartialEq)]
struct Thing {
    id: String,
    label: Option<String>,
    size: i64,
}

impl_from_row!(Thing { id, label, size });

/// A fresh database of each backend available here, with what removes it afterwards.
async fn databases() -> Vec<(Database, Option<MariaDbDatabase>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Database::open(
        &format!("sqlite:{}", dir.path().join("things.db").display()),
        4,
        &MIGRATIONS,
    )
    .await
    .expect("open SQLite");
    let mut databases = vec![(sqlite, None, dir)];
    if let Some(mariadb) = MariaDbDatabase::create("sqlpools").await {
        let mysql = Database::open(&mariadb.url(), 4, &MIGRATIONS)
            .await
            .expect("open MariaDB");
        databases.push((mysql, Some(mariadb), tempfile::tempdir().expect("dir")));
    }
    databases
}

fn insert(things: &[(&str, Option<&str>, i64)]) -> Statement {
    let mut statement = Statement::new("insert into things (id, label, size) ");
    statement.push_values(things, |tuple, (id, label, size)| {
        tuple.push_bind(*id).push_bind(*label).push_bind(*size);
    });
    statement
}

#[tokio::test]
async fn statements_round_trip_text_integers_and_nulls() {
    for (database, _mariadb, _dir) in databases().await {
        let changed = database
            .execute(&insert(&[("a", Some("first"), 1), ("b", None, -7)]))
            .await
            .expect("insert");
        assert_eq!(changed, 2, "{:?}", database.backend());
        let mut query = Statement::new("select id, label, size from things where id in ");
        query.push_list(["a", "b", "c"]).push(" order by id");
        let things: Vec<Thing> = database.fetch_all(&query).await.expect("select");
        assert_eq!(
            things,
            [
                Thing {
                    id: "a".into(),
                    label: Some("first".into()),
                    size: 1
                },
                Thing {
                    id: "b".into(),
                    label: None,
                    size: -7
                },
            ]
        );
        let (count,): (i64,) = database
            .read()
            .await
            .expect("connection")
            .fetch_one(&Statement::new("select count(*) from things"))
            .await
            .expect("count");
        assert_eq!(count, 2);
        let none: Option<Thing> = database
            .fetch_optional(
                &Statement::new("select id, label, size from things where id = ?").bind("z"),
            )
            .await
            .expect("select none");
        assert_eq!(none, None);
        // Closed first: a rollback still owed would hold the table the drop needs.
        database.close().await;
    }
}

#[tokio::test]
async fn unique_violations_are_recognised() {
    for (database, _mariadb, _dir) in databases().await {
        database
            .execute(&insert(&[("a", None, 1)]))
            .await
            .expect("insert");
        let error = database
            .execute(&insert(&[("a", None, 2)]))
            .await
            .expect_err("duplicate key");
        assert!(error.unique_violation().is_some(), "{error}");
        let other = database
            .execute(&Statement::new("insert into missing values (1)"))
            .await
            .expect_err("no such table");
        assert!(other.unique_violation().is_none());
        // Closed first: a rollback still owed would hold the table the drop needs.
        database.close().await;
    }
}

#[tokio::test]
async fn transactions_apply_on_commit_only() {
    for (database, _mariadb, _dir) in databases().await {
        let mut committed = database.begin().await.expect("begin");
        committed
            .execute(&insert(&[("kept", None, 1)]))
            .await
            .expect("insert");
        committed.commit().await.expect("commit");

        let mut dropped = database.begin().await.expect("begin");
        dropped
            .execute(&insert(&[("lost", None, 1)]))
            .await
            .expect("insert");
        let (inside,): (i64,) = dropped
            .fetch_one(&Statement::new("select count(*) from things"))
            .await
            .expect("count inside");
        assert_eq!(inside, 2, "a transaction sees its own changes");
        drop(dropped);

        // The connection went back to the pool rolled back, and still works.
        let mut again = database
            .begin()
            .await
            .expect("begin after a dropped transaction");
        let ids: Vec<(String,)> = again
            .fetch_all(&Statement::new("select id from things order by id"))
            .await
            .expect("select");
        assert_eq!(ids, [("kept".to_owned(),)], "{:?}", database.backend());
        again.commit().await.expect("commit");
        // Closed first: a rollback still owed would hold the table the drop needs.
        database.close().await;
    }
}

#[tokio::test]
async fn a_row_of_another_shape_is_an_error_not_a_panic() {
    for (database, _mariadb, _dir) in databases().await {
        database
            .execute(&insert(&[("a", Some("x"), 1)]))
            .await
            .expect("insert");
        let wrong: Result<Vec<(i64, i64)>, DbError> = database
            .fetch_all(&Statement::new("select label, size from things"))
            .await;
        assert!(wrong.is_err(), "{:?}", database.backend());
        let short: Result<Vec<Thing>, DbError> = database
            .fetch_all(&Statement::new("select id, label from things"))
            .await;
        assert!(short.is_err());
        // Closed first: a rollback still owed would hold the table the drop needs.
        database.close().await;
    }
}

#[tokio::test]
async fn in_memory_sqlite_is_refused() {
    let error = Database::open("sqlite::memory:", 1, &MIGRATIONS)
        .await
        .expect_err("in-memory");
    assert!(matches!(error, sql_pools::OpenError::InMemory));
    assert_eq!(Backend::of_url("postgres://x"), None);
}

#[tokio::test]
async fn a_percent_encoded_sqlite_path_names_one_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}/my%20things.db", dir.path().display());
    let database = Database::open(&url, 2, &MIGRATIONS)
        .await
        .expect("open the decoded path");
    database
        .execute(&insert(&[("a", None, 1)]))
        .await
        .expect("the pools see the migrated file");
    database.close().await;
    assert!(dir.path().join("my things.db").exists());
    assert!(!dir.path().join("my%20things.db").exists());
}

/// Waits (bounded) until the probe's finding is `up`.
async fn until_availability(database: &Database, up: bool) {
    let mut availability = database.availability();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        availability.wait_for(|now| *now == up),
    )
    .await
    .expect("the probe never saw the change")
    .expect("the database is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_mysql_fails_fast_while_down_and_recovers() {
    let Some(mariadb) = MariaDbDatabase::create("sqlpools_down").await else {
        return;
    };
    let mariadb = mariadb.linked().await;
    let link = mariadb.link().expect("linked");
    let database = Database::open(&mariadb.url(), 4, &MIGRATIONS)
        .await
        .expect("open MariaDB through the link");
    let probing = tokio::spawn({
        let database = database.clone();
        async move { database.probe_forever().await }
    });
    database
        .execute(&insert(&[("a", None, 1)]))
        .await
        .expect("up");

    link.cut();
    // A checkout that finds the database gone wakes the probe at once.
    let first = database.read().await.expect_err("the link is cut");
    assert!(first.is_unavailable(), "{first}");
    until_availability(&database, false).await;
    // While the probe finds it down, checkouts fail at once, without waiting for the pool.
    for checkout in [
        database.read().await.map(drop),
        database.write().await.map(drop),
        database.begin().await.map(drop),
    ] {
        assert!(
            matches!(checkout, Err(DbError::Unreachable)),
            "{checkout:?}"
        );
    }

    link.restore();
    until_availability(&database, true).await;
    let things: Vec<Thing> = database
        .fetch_all(&Statement::new("select id, label, size from things"))
        .await
        .expect("the pool reconnects");
    assert_eq!(things.len(), 1);
    probing.abort();
    database.close().await;
}

/// Two transactions that lock the same rows in opposite orders: InnoDB rolls one back as a
/// deadlock, and `retry_conflicts` runs it again, so both end committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlocked_transaction_is_run_again() {
    let Some(mariadb) = MariaDbDatabase::create("sqlpools_deadlock").await else {
        return;
    };
    let database = Database::open(&mariadb.url(), 4, &MIGRATIONS)
        .await
        .expect("open MariaDB");
    database
        .execute(&insert(&[("a", None, 0), ("b", None, 0)]))
        .await
        .expect("rows");
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let attempts = std::sync::Arc::new(AtomicU32::new(0));
    let transfer = |first: &'static str, second: &'static str| {
        let (database, barrier, attempts) = (database.clone(), barrier.clone(), attempts.clone());
        async move {
            sql_pools::retry_conflicts(|| async {
                let attempt = attempts.fetch_add(1, Ordering::SeqCst);
                let mut transaction = database.begin().await?;
                let bump = |id: &str| {
                    let mut statement =
                        Statement::new("update things set size = size + 1 where id = ");
                    statement.push_bind(id.to_owned());
                    statement
                };
                transaction.execute(&bump(first)).await?;
                // Only the first two attempts meet: each holds one row and asks for the other.
                if attempt < 2 {
                    barrier.wait().await;
                }
                transaction.execute(&bump(second)).await?;
                transaction.commit().await
            })
            .await
        }
    };
    let (one, two) = tokio::join!(transfer("a", "b"), transfer("b", "a"));
    one.expect("the first transfer commits");
    two.expect("the second transfer commits");
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "one of them ran twice");
    let things: Vec<Thing> = database
        .fetch_all(&Statement::new(
            "select id, label, size from things order by id",
        ))
        .await
        .expect("read");
    assert!(things.iter().all(|thing| thing.size == 2), "{things:?}");
    database.close().await;
}

#[test]
fn only_mysql_lock_conflicts_are_retried() {
    assert!(!DbError::PoolTimedOut.is_retryable_conflict());
    assert!(!DbError::RowNotFound.is_retryable_conflict());
    assert!(!DbError::from(sqlx::Error::ColumnNotFound("x".to_owned())).is_retryable_conflict());
}
