//! Users table.

use sql_pools::{Columns, DbError, FromRow, Statement};

use crate::{
    domain::{
        ids::UserId,
        store::{StoreResult, UserStore},
        time::Timestamp,
        user::{Email, User, UserCredentials},
    },
    store::{
        SqlStore, push_id_list,
        rows::{UserRow, convert},
        store_error,
    },
};

/// A user's columns, then `password_hash`.
struct CredentialsRow {
    user: UserRow,
    password_hash: String,
}

impl FromRow for CredentialsRow {
    fn from_row(columns: &mut Columns<'_, '_>) -> Result<Self, DbError> {
        Ok(Self {
            user: UserRow::from_row(columns)?,
            password_hash: columns.read()?,
        })
    }
}

impl UserStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql insert_user", db.system = self.database.backend().system_name()))]
    async fn insert_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        let insert = Statement::new(
            "insert into users (id, name, email, password_hash, created_at, updated_at) \
             values (?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id.to_string())
        .bind(&user.name)
        .bind(user.email.as_str())
        .bind(password_hash)
        .bind(user.created_at.as_millis())
        .bind(user.created_at.as_millis());
        self.database.execute(&insert).await.map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql user_credentials", db.system = self.database.backend().system_name()))]
    async fn user_credentials(&self, email: &Email) -> StoreResult<Option<UserCredentials>> {
        let query = Statement::new(
            "select id, name, email, created_at, password_hash from users where email = ?",
        )
        .bind(email.as_str());
        let row: Option<CredentialsRow> = self
            .database
            .fetch_optional(&query)
            .await
            .map_err(store_error)?;
        row.map(|row| {
            Ok(UserCredentials {
                user: User::try_from(row.user)?,
                password_hash: row.password_hash,
            })
        })
        .transpose()
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql set_password_hash", db.system = self.database.backend().system_name()))]
    async fn set_password_hash(
        &self,
        user: UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let update =
            Statement::new("update users set password_hash = ?, updated_at = ? where id = ?")
                .bind(password_hash)
                .bind(now.as_millis())
                .bind(user.to_string());
        self.database.execute(&update).await.map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql users_by_ids", db.system = self.database.backend().system_name()))]
    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let mut query =
            Statement::new("select id, name, email, created_at from users where id in ");
        push_id_list(&mut query, ids);
        let rows: Vec<UserRow> = self.database.fetch_all(&query).await.map_err(store_error)?;
        convert(rows)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql users_visible_to", db.system = self.database.backend().system_name()))]
    async fn users_visible_to(&self, caller: UserId, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let mut query = Statement::new(
            "select u.id, u.name, u.email, u.created_at from users u where u.id in ",
        );
        push_id_list(&mut query, ids);
        query
            .push(" and (u.id = ")
            .push_bind(caller.to_string())
            .push(
                " or exists (select 1 from hangout_members mine join hangout_members theirs \
                 on theirs.hangout_id = mine.hangout_id where mine.user_id = ",
            )
            .push_bind(caller.to_string())
            .push(" and theirs.user_id = u.id))");
        let rows: Vec<UserRow> = self.database.fetch_all(&query).await.map_err(store_error)?;
        convert(rows)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql email_of", db.system = self.database.backend().system_name()))]
    async fn email_of(&self, user: UserId) -> StoreResult<Option<Email>> {
        let query = Statement::new("select email from users where id = ?").bind(user.to_string());
        let row: Option<(String,)> = self
            .database
            .fetch_optional(&query)
            .await
            .map_err(store_error)?;
        Ok(row.map(|(email,)| Email::from_stored(email)))
    }
}
