//! Sessions table: refresh-token hashes and their rotation state.

use sql_pools::Statement;

use crate::{
    domain::{
        event::Event,
        ids::{SessionFamilyId, SessionId, UserId},
        session::SessionRecord,
        store::{SessionStore, StoreResult},
        time::Timestamp,
    },
    store::{SqlStore, corrupt, events, rows::SessionRow, store_error},
};

const INSERT_SESSION: &str = "insert into sessions \
     (id, family_id, user_id, token_hash, created_at, expires_at, rotated_at, revoked_at) \
     values (?, ?, ?, ?, ?, ?, null, null)";

fn insert_session(session: &SessionRecord) -> Statement {
    Statement::new(INSERT_SESSION)
        .bind(session.id.to_string())
        .bind(session.family.to_string())
        .bind(session.user.to_string())
        .bind(session.token_hash.clone())
        .bind(session.created_at.as_millis())
        .bind(session.expires_at.as_millis())
}

impl SessionStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql insert_session", db.system = self.database.backend().system_name()))]
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.database
            .execute(&insert_session(session))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql session_by_token_hash", db.system = self.database.backend().system_name()))]
    async fn session_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let query = Statement::new(
            "select id, family_id, user_id, token_hash, created_at, expires_at, rotated_at, \
             revoked_at from sessions where token_hash = ?",
        )
        .bind(token_hash);
        let row: Option<SessionRow> = self
            .database
            .fetch_optional(&query)
            .await
            .map_err(store_error)?;
        row.map(SessionRecord::try_from).transpose()
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql rotate_session", db.system = self.database.backend().system_name()))]
    async fn rotate_session(
        &self,
        old: SessionId,
        new: &SessionRecord,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        // The conditions make rotation single-use even under concurrent calls: only one
        // update can see the row unrotated.
        let rotate = Statement::new(
            "update sessions set rotated_at = ? \
             where id = ? and rotated_at is null and revoked_at is null",
        )
        .bind(now.as_millis())
        .bind(old.to_string());
        let updated = transaction.execute(&rotate).await.map_err(store_error)?;
        if updated != 1 {
            return Ok(false);
        }
        transaction
            .execute(&insert_session(new))
            .await
            .map_err(store_error)?;
        transaction.commit().await.map_err(store_error)?;
        Ok(true)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql revoke_session_family", db.system = self.database.backend().system_name()))]
    async fn revoke_session_family(
        &self,
        family: SessionFamilyId,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        let revoke = Statement::new(
            "update sessions set revoked_at = ? where family_id = ? and revoked_at is null",
        )
        .bind(now.as_millis())
        .bind(family.to_string());
        if transaction.execute(&revoke).await.map_err(store_error)? == 0 {
            // Revoked before (or unknown): its event was recorded then.
            return Ok(());
        }
        let owner = Statement::new("select user_id from sessions where family_id = ? limit 1")
            .bind(family.to_string());
        let (user,): (String,) = transaction.fetch_one(&owner).await.map_err(store_error)?;
        let user = UserId::parse(&user).ok_or_else(|| corrupt("sessions.user_id"))?;
        events::record(
            &mut transaction,
            &[Event::session_revoked(user, family, now)],
        )
        .await?;
        self.commit_recorded(transaction).await
    }
}
