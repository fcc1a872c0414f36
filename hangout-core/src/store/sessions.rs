//! Sessions table: refresh-token hashes and their rotation state.

use crate::{
    domain::{
        ids::{SessionFamilyId, SessionId},
        session::SessionRecord,
        store::{SessionStore, StoreResult},
        time::Timestamp,
    },
    store::{SqlStore, rows::SessionRow, store_error},
};

const INSERT_SESSION: &str = "insert into sessions \
     (id, family_id, user_id, token_hash, created_at, expires_at, rotated_at, revoked_at) \
     values (?, ?, ?, ?, ?, ?, null, null)";

fn bind_session<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    session: &SessionRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(session.id.to_string())
        .bind(session.family.to_string())
        .bind(session.user.to_string())
        .bind(session.token_hash.clone())
        .bind(session.created_at.as_millis())
        .bind(session.expires_at.as_millis())
}

impl SessionStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql insert_session", db.system = self.pools.backend.system_name()))]
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        bind_session(sqlx::query(INSERT_SESSION), session)
            .execute(&self.pools.write)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql session_by_token_hash", db.system = self.pools.backend.system_name()))]
    async fn session_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let row: Option<SessionRow> = sqlx::query_as(
            "select id, family_id, user_id, token_hash, created_at, expires_at, rotated_at, \
             revoked_at from sessions where token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pools.read)
        .await
        .map_err(store_error)?;
        row.map(SessionRecord::try_from).transpose()
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql rotate_session", db.system = self.pools.backend.system_name()))]
    async fn rotate_session(
        &self,
        old: SessionId,
        new: &SessionRecord,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut transaction = self.pools.write.begin().await.map_err(store_error)?;
        // The conditions make rotation single-use even under concurrent calls: only one
        // update can see the row unrotated.
        let updated = sqlx::query(
            "update sessions set rotated_at = ? \
             where id = ? and rotated_at is null and revoked_at is null",
        )
        .bind(now.as_millis())
        .bind(old.to_string())
        .execute(&mut *transaction)
        .await
        .map_err(store_error)?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        bind_session(sqlx::query(INSERT_SESSION), new)
            .execute(&mut *transaction)
            .await
            .map_err(store_error)?;
        transaction.commit().await.map_err(store_error)?;
        Ok(true)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql revoke_session_family", db.system = self.pools.backend.system_name()))]
    async fn revoke_session_family(
        &self,
        family: SessionFamilyId,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "update sessions set revoked_at = ? where family_id = ? and revoked_at is null",
        )
        .bind(now.as_millis())
        .bind(family.to_string())
        .execute(&self.pools.write)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}
