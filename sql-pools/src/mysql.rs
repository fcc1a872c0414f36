//! MySQL 8 / MariaDB, the production backend, through sqlx: one pool serves reads and writes.

use std::time::Duration;

use sqlx::{
    MySql, MySqlConnection,
    mysql::{MySqlPoolOptions, MySqlRow},
    query::Query,
};

use crate::{
    Backend, DbError, Migrations, OpenError, Pools,
    row::{Columns, FromRow},
    statement::{Statement, Value},
};

pub(super) async fn open(
    url: &str,
    max_connections: u32,
    migrations: &Migrations,
) -> Result<Pools, OpenError> {
    let pool = MySqlPoolOptions::new()
        .max_connections(max_connections.max(1))
        // Short: while MySQL is down, a request fails fast as unavailable instead of every
        // request waiting here (it took 10 s each before).
        .acquire_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .map_err(OpenError::Connect)?;
    migrations
        .migrator(Backend::MySql)
        .run(&pool)
        .await
        .map_err(OpenError::Migrate)?;
    Ok(Pools::MySql(pool))
}

fn query(statement: &Statement) -> Query<'_, MySql, sqlx::mysql::MySqlArguments> {
    statement
        .values()
        .iter()
        .fold(sqlx::query(statement.sql()), |query, value| match value {
            Value::Null => query.bind(None::<i64>),
            Value::Integer(value) => query.bind(*value),
            Value::Text(value) => query.bind(value.as_str()),
        })
}

fn decode<R: FromRow>(row: &MySqlRow) -> Result<R, DbError> {
    R::from_row(&mut Columns::mysql(row))
}

pub(crate) async fn fetch_all<R: FromRow>(
    connection: &mut MySqlConnection,
    statement: &Statement,
) -> Result<Vec<R>, DbError> {
    let rows = query(statement).fetch_all(connection).await?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn fetch_optional<R: FromRow>(
    connection: &mut MySqlConnection,
    statement: &Statement,
) -> Result<Option<R>, DbError> {
    let row = query(statement).fetch_optional(connection).await?;
    row.as_ref().map(decode).transpose()
}

pub(crate) async fn execute(
    connection: &mut MySqlConnection,
    statement: &Statement,
) -> Result<u64, DbError> {
    Ok(query(statement).execute(connection).await?.rows_affected())
}
