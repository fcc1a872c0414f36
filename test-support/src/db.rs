//! The database a test runs on: a SQLite file of its own, or a MariaDB database of its own that
//! is dropped with it.

use std::path::Path;

use crate::CuttableLink;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Mysql,
}

/// The MariaDB server of `TEST_MYSQL_URL` (`mysql://root@127.0.0.1:3306`), without a trailing
/// slash; `None` when it is unset, and the MariaDB variants of tests return at once (CI sets it).
#[must_use]
pub fn mysql_admin_url() -> Option<String> {
    std::env::var("TEST_MYSQL_URL")
        .ok()
        .map(|url| url.trim_end_matches('/').to_owned())
        .filter(|url| !url.is_empty())
}

/// The fixture of a test that takes the backend itself: `db`, or `None` for MariaDB when
/// `TEST_MYSQL_URL` is unset.
pub async fn backend(db: Db, _args: &[&str]) -> Option<Db> {
    match db {
        Db::Sqlite => Some(db),
        Db::Mysql => mysql_admin_url().map(|_| db),
    }
}

/// A MariaDB database made for one test, dropped with it: a passing or failing test leaves no
/// database behind (`TEST_KEEP_DATABASES=1` keeps a failed test's, to look at).
pub struct MariaDbDatabase {
    admin_url: String,
    name: String,
    /// The path the service reaches the server by, when a test cuts it.
    link: Option<CuttableLink>,
}

impl MariaDbDatabase {
    /// A fresh database named `<prefix>_<uuid>` on `TEST_MYSQL_URL`; `None` when it is unset.
    ///
    /// # Panics
    /// When `TEST_MYSQL_URL` is set but the server cannot be reached or refuses.
    pub async fn create(prefix: &str) -> Option<Self> {
        use sqlx::{Connection as _, Executor as _};
        let admin_url = mysql_admin_url()?;
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut connection = sqlx::MySqlConnection::connect(&admin_url)
            .await
            .expect("TEST_MYSQL_URL is set but MariaDB is unreachable");
        connection
            .execute(format!("create database `{name}`").as_str())
            .await
            .expect("create the test database");
        let _ = connection.close().await;
        Some(Self {
            admin_url,
            name,
            link: None,
        })
    }

    /// The same database, reached through a link that the test can cut.
    pub async fn linked(mut self) -> Self {
        self.link = Some(CuttableLink::to_server_of(&self.admin_url).await);
        self
    }

    /// The URL a service opens it by (through the link, when there is one).
    #[must_use]
    pub fn url(&self) -> String {
        let server = match &self.link {
            Some(link) => link.url_for(&self.admin_url),
            None => self.admin_url.clone(),
        };
        format!("{}/{}", server.trim_end_matches('/'), self.name)
    }

    /// The cuttable link, when [`Self::linked`] made one.
    #[must_use]
    pub fn link(&self) -> Option<&CuttableLink> {
        self.link.as_ref()
    }
}

impl Drop for MariaDbDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("TEST_KEEP_DATABASES").is_some() {
            eprintln!("keeping database {} of the failed test", self.name);
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: use a fresh one.
        let dropped = std::thread::spawn(move || {
            use sqlx::{Connection as _, Executor as _};
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                eprintln!("cannot drop test database {name}: no runtime");
                return;
            };
            runtime.block_on(async {
                // A transaction the test left open holds a metadata lock the drop would wait
                // on for good (its rollback runs on the test's runtime, blocked right here):
                // wait 10 s at most, then leave the database and say so.
                let dropped = match sqlx::MySqlConnection::connect(&admin_url).await {
                    Ok(mut connection) => {
                        let statements = [
                            "set session lock_wait_timeout = 10".to_owned(),
                            format!("drop database if exists `{name}`"),
                        ];
                        let mut result = Ok(());
                        for statement in statements {
                            result = connection.execute(statement.as_str()).await.map(|_| ());
                            if result.is_err() {
                                break;
                            }
                        }
                        result
                    }
                    Err(error) => Err(error),
                };
                if let Err(error) = dropped {
                    eprintln!("cannot drop test database {name}: {error}");
                }
            });
        });
        let _ = dropped.join();
    }
}

/// A fresh database of one service for one test: a SQLite file in the test's folder, or a
/// [`MariaDbDatabase`].
pub struct TestDatabase {
    url: String,
    /// Held so the MariaDB database is dropped with it.
    _mariadb: Option<MariaDbDatabase>,
}

impl TestDatabase {
    /// `file` in `dir` on SQLite; a database named `<prefix>_<uuid>` on MariaDB, `None` when
    /// `TEST_MYSQL_URL` is unset.
    pub async fn create(db: Db, dir: &Path, file: &str, prefix: &str) -> Option<Self> {
        match db {
            Db::Sqlite => Some(Self {
                url: format!("sqlite:{}", dir.join(file).display()),
                _mariadb: None,
            }),
            Db::Mysql => {
                let database = MariaDbDatabase::create(prefix).await?;
                Some(Self {
                    url: database.url(),
                    _mariadb: Some(database),
                })
            }
        }
    }

    /// The URL the service opens.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}
