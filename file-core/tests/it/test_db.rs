//! A fresh database per test (`test_support::TestDatabase`: a SQLite file in the test's temp
//! folder, or an `fc_test_<uuid>` database on `TEST_MYSQL_URL`, dropped with the test), and
//! the statements the tests read it with.

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use test_support::{Db, TestDatabase};

/// A fresh database, dropped with it on MariaDB.
pub struct TestDb {
    database: TestDatabase,
}

impl TestDb {
    pub async fn create(db: Db, dir: &Path) -> Self {
        // The tests reach the database through sqlx's `Any`; the service does not use it.
        sqlx::any::install_default_drivers();
        let database = TestDatabase::create(db, dir, "file-core.db", "fc_test")
            .await
            .expect("TEST_MYSQL_URL is set for a MariaDB test");
        Self { database }
    }

    /// The URL the service opens.
    pub fn url(&self) -> &str {
        self.database.url()
    }

    /// Runs `sql` (with `?` for each of `texts`), as an operator or a dying process would.
    pub async fn execute(&self, sql: &str, texts: &[&str]) {
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(self.url())
            .await
            .expect("open the test database");
        let mut query = sqlx::query(sql);
        for text in texts {
            query = query.bind(*text);
        }
        query.execute(&pool).await.expect("run the statement");
        pool.close().await;
    }

    /// The state, attempts and last error of the processing job of `file_id`, if it has one.
    pub async fn job(&self, file_id: &str) -> Option<(String, i64, Option<String>)> {
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(self.url())
            .await
            .expect("open the test database");
        let job = sqlx::query_as(
            "select state, attempts, last_error from processing_jobs where file_id = ?",
        )
        .bind(file_id)
        .fetch_optional(&pool)
        .await
        .expect("read the job");
        pool.close().await;
        job
    }

    /// The memory id of the recorded report that `file_id`'s processing ended, if one waits.
    pub async fn report(&self, file_id: &str) -> Option<String> {
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(self.url())
            .await
            .expect("open the test database");
        let report: Option<(String,)> =
            sqlx::query_as("select memory_id from processing_reports where file_id = ?")
                .bind(file_id)
                .fetch_optional(&pool)
                .await
                .expect("read the report");
        pool.close().await;
        report.map(|(memory,)| memory)
    }

    /// How many `files` rows exist, for one id or in all.
    pub async fn count(&self, file_id: Option<&str>) -> i64 {
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(self.url())
            .await
            .expect("open the test database");
        let (count,): (i64,) = match file_id {
            Some(id) => sqlx::query_as("select count(*) from files where id = ?").bind(id),
            None => sqlx::query_as("select count(*) from files"),
        }
        .fetch_one(&pool)
        .await
        .expect("count records");
        pool.close().await;
        count
    }
}
