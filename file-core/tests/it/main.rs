//! The one integration-test binary of file-core: the real service in-process over real mTLS,
//! with a real S3-protocol server and real HTTP to presigned URLs. Every test runs on SQLite,
//! and on MariaDB when `TEST_MYSQL_URL` is set (`mysql://root@127.0.0.1:3306`). `TEST_LOG=1`
//! shows the service's logs.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod files;
mod helpers;
mod lifecycle;
mod photos;
mod processing;
mod rendering;
mod samples;
mod second_s3;
mod test_db;
mod transport;
mod uploads;
mod validation;
