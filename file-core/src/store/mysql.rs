//! MySQL 8 / MariaDB, the production backend: one pool serves reads and writes.

use crate::store::{Backend, OpenError, SqlStore, pool_options};

pub(super) async fn open(url: &str, max_connections: u32) -> Result<SqlStore, OpenError> {
    let pool = pool_options(max_connections)
        .connect(url)
        .await
        .map_err(OpenError::Connect)?;
    Ok(SqlStore {
        read: pool.clone(),
        write: pool,
        backend: Backend::MySql,
    })
}
