//! MySQL 8 / MariaDB, the production backend: one pool serves reads and writes.

use crate::{Backend, OpenError, Pools, pool_options};

pub(super) async fn open(url: &str, max_connections: u32) -> Result<Pools, OpenError> {
    let pool = pool_options(max_connections)
        .connect(url)
        .await
        .map_err(OpenError::Connect)?;
    Ok(Pools {
        read: pool.clone(),
        write: pool,
        backend: Backend::MySql,
    })
}
