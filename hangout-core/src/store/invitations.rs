//! Invitations, read with what their invitee may see of the hangout and of the inviter.

use sql_pools::{Connection, Statement, impl_from_row};

use crate::{
    domain::{
        event::{Event, EventKind},
        ids::{HangoutId, InvitationId, UserId},
        invitation::{Invitation, InvitationState, InvitationTarget, NewInvitationLimits},
        membership::{MAX_MEMBERS, Role, Rsvp},
        page::Direction,
        store::{Guard, InvitationStore, KeysetQuery, Limit, PageRows, StoreResult},
        time::Timestamp,
        user::{Email, User},
    },
    store::{
        SqlStore, corrupt, count, events,
        members::{check_guard, member_updated},
        push_after_cursor, push_id_list,
        rows::convert,
        store_error,
    },
};

/// An invitation `i` with its hangout `h` and inviter `u`.
const INVITATION_SELECT: &str = "select i.id, i.hangout_id, i.role, i.email, i.code_hash, i.state, \
     i.max_uses, i.uses, i.created_at, i.expires_at, h.title, h.hangout_date, \
     u.id, u.name, u.email, u.created_at \
     from invitations i join hangouts h on h.id = i.hangout_id join users u on u.id = i.invited_by";

struct InvitationRow {
    id: String,
    hangout_id: String,
    role: String,
    email: Option<String>,
    code_hash: Option<String>,
    state: String,
    max_uses: Option<i64>,
    uses: i64,
    created_at: i64,
    expires_at: Option<i64>,
    hangout_title: String,
    hangout_date: i64,
    inviter_id: String,
    inviter_name: String,
    inviter_email: String,
    inviter_created_at: i64,
}

impl_from_row!(InvitationRow {
    id,
    hangout_id,
    role,
    email,
    code_hash,
    state,
    max_uses,
    uses,
    created_at,
    expires_at,
    hangout_title,
    hangout_date,
    inviter_id,
    inviter_name,
    inviter_email,
    inviter_created_at
});

fn small(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = crate::domain::store::StoreError;

    fn try_from(row: InvitationRow) -> Result<Self, Self::Error> {
        let target = match row.email {
            Some(email) => InvitationTarget::Person(Email::from_stored(email)),
            None => InvitationTarget::Link {
                max_uses: row.max_uses.map(small),
                uses: small(row.uses),
            },
        };
        Ok(Self {
            id: InvitationId::parse(&row.id).ok_or_else(|| corrupt("invitations.id"))?,
            hangout: HangoutId::parse(&row.hangout_id)
                .ok_or_else(|| corrupt("invitations.hangout_id"))?,
            role: Role::from_stored(&row.role).ok_or_else(|| corrupt("invitations.role"))?,
            target,
            invited_by: User {
                id: UserId::parse(&row.inviter_id).ok_or_else(|| corrupt("users.id"))?,
                name: row.inviter_name,
                email: Email::from_stored(row.inviter_email),
                created_at: Timestamp::from_millis(row.inviter_created_at),
            },
            state: InvitationState::from_stored(&row.state)
                .ok_or_else(|| corrupt("invitations.state"))?,
            created_at: Timestamp::from_millis(row.created_at),
            expires_at: row.expires_at.map(Timestamp::from_millis),
            hangout_title: row.hangout_title,
            hangout_date: Timestamp::from_millis(row.hangout_date),
            code_hash: row.code_hash,
            code: None,
        })
    }
}

/// Appends the conditions of an invitation `i` that can still be accepted at `now`.
fn push_open(query: &mut Statement, now: Timestamp) {
    query
        .push(" and i.state = 'PENDING' and (i.expires_at is null or i.expires_at > ")
        .push_bind(now.as_millis())
        .push(") and (i.max_uses is null or i.uses < i.max_uses)");
}

/// One page of open invitations matching `condition` (a column and its value), newest first;
/// without those of hangouts `not_member` already belongs to, when given.
async fn open_page(
    connection: &mut Connection,
    column: &str,
    value: String,
    not_member: Option<UserId>,
    query: &KeysetQuery<i64>,
    now: Timestamp,
) -> StoreResult<PageRows<Invitation>> {
    let push_conditions = |statement: &mut Statement| {
        statement.push_bind(value.clone());
        push_open(statement, now);
        if let Some(user) = not_member {
            statement
                .push(
                    " and i.hangout_id not in \
                     (select hangout_id from hangout_members where user_id = ",
                )
                .push_bind(user.to_string())
                .push(")");
        }
    };
    let mut counting = Statement::new(format!(
        "select count(*) from invitations i where {column} = "
    ));
    push_conditions(&mut counting);
    let (total,): (i64,) = connection.fetch_one(&counting).await.map_err(store_error)?;
    let mut page = Statement::new(format!("{INVITATION_SELECT} where {column} = "));
    push_conditions(&mut page);
    if let Some(after) = &query.after {
        push_after_cursor(&mut page, "i.created_at", "i.id", Direction::Desc, after);
    }
    page.push(" order by i.created_at desc, i.id desc limit ")
        .push_bind(i64::from(query.fetch));
    let rows: Vec<InvitationRow> = connection.fetch_all(&page).await.map_err(store_error)?;
    Ok(PageRows {
        rows: convert(rows)?,
        total_count: count(total),
    })
}

impl InvitationStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql insert_invitation", db.system = self.database.backend().system_name()))]
    async fn insert_invitation(
        &self,
        invitation: &Invitation,
        code_hash: Option<&str>,
        limits: &NewInvitationLimits,
        guard: &Guard,
    ) -> StoreResult<()> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        check_guard(
            &mut transaction,
            self.database.backend(),
            invitation.hangout,
            guard,
        )
        .await?;
        // Both counts below are read and then acted on: taking the inviter's and the hangout's
        // rows first (a write that changes nothing still locks on MySQL; SQLite has one
        // writer) makes concurrent invitations wait, so neither bound is passed by a burst.
        lock_user(&mut transaction, invitation.invited_by.id).await?;
        lock_hangout(&mut transaction, invitation.hangout).await?;
        let mut open = Statement::new("select count(*) from invitations i where i.hangout_id = ");
        open.push_bind(invitation.hangout.to_string());
        push_open(&mut open, limits.now);
        let (open,): (i64,) = transaction.fetch_one(&open).await.map_err(store_error)?;
        if count(open) >= limits.max_open {
            return Err(crate::domain::store::StoreError::Limit(
                Limit::OpenInvitations,
            ));
        }
        // Counted in a ledger of its own, which deleting a hangout (and its invitations) does
        // not empty; rows that left the window go first.
        let user = invitation.invited_by.id.to_string();
        let prune =
            Statement::new("delete from invitations_created where user_id = ? and created_at <= ?")
                .bind(user.clone())
                .bind(limits.rate_since.as_millis());
        transaction.execute(&prune).await.map_err(store_error)?;
        let recent = Statement::new(
            "select count(*), coalesce(min(created_at), 0) from invitations_created \
             where user_id = ?",
        )
        .bind(user.clone());
        let (recent, oldest): (i64, i64) =
            transaction.fetch_one(&recent).await.map_err(store_error)?;
        if count(recent) >= limits.max_recent {
            return Err(crate::domain::store::StoreError::Limit(
                Limit::RecentInvitations {
                    oldest: Timestamp::from_millis(oldest),
                },
            ));
        }
        let logged =
            Statement::new("insert into invitations_created (user_id, created_at) values (?, ?)")
                .bind(user)
                .bind(invitation.created_at.as_millis());
        transaction.execute(&logged).await.map_err(store_error)?;
        let (email, max_uses) = match &invitation.target {
            InvitationTarget::Person(email) => (Some(email.as_str().to_owned()), None),
            InvitationTarget::Link { max_uses, .. } => (None, max_uses.map(i64::from)),
        };
        let insert = Statement::new(
            "insert into invitations (id, hangout_id, role, email, code_hash, invited_by, state, \
             max_uses, uses, created_at, expires_at) values (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
        )
        .bind(invitation.id.to_string())
        .bind(invitation.hangout.to_string())
        .bind(invitation.role.as_str())
        .bind(email)
        .bind(code_hash.map(str::to_owned))
        .bind(invitation.invited_by.id.to_string())
        .bind(invitation.state.as_str())
        .bind(max_uses)
        .bind(invitation.created_at.as_millis())
        .bind(invitation.expires_at.map(Timestamp::as_millis));
        transaction.execute(&insert).await.map_err(store_error)?;
        let mut received = Vec::new();
        if let InvitationTarget::Person(email) = &invitation.target {
            let account =
                Statement::new("select id from users where email = ?").bind(email.as_str());
            let account: Option<(String,)> = transaction
                .fetch_optional(&account)
                .await
                .map_err(store_error)?;
            if let Some((account,)) = account {
                let account = UserId::parse(&account).ok_or_else(|| corrupt("users.id"))?;
                received.push(
                    Event::for_viewer(
                        invitation.hangout,
                        account,
                        EventKind::InvitationReceived,
                        invitation.created_at,
                    )
                    .with_subject(invitation.id),
                );
            }
        }
        events::record(&mut transaction, &received).await?;
        self.commit_recorded(transaction).await
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql invitations_by_ids", db.system = self.database.backend().system_name()))]
    async fn invitations_by_ids(&self, ids: &[InvitationId]) -> StoreResult<Vec<Invitation>> {
        let mut query = Statement::new(format!("{INVITATION_SELECT} where i.id in "));
        push_id_list(&mut query, ids);
        // On the write connection: an invitation is read back right after it is created.
        let mut connection = self.database.write().await.map_err(store_error)?;
        let rows: Vec<InvitationRow> = connection.fetch_all(&query).await.map_err(store_error)?;
        convert(rows)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql invitation_by_code_hash", db.system = self.database.backend().system_name()))]
    async fn invitation_by_code_hash(&self, code_hash: &str) -> StoreResult<Option<Invitation>> {
        let query =
            Statement::new(format!("{INVITATION_SELECT} where i.code_hash = ?")).bind(code_hash);
        let row: Option<InvitationRow> = self
            .database
            .fetch_optional(&query)
            .await
            .map_err(store_error)?;
        row.map(Invitation::try_from).transpose()
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql open_invitations_of_hangouts", db.system = self.database.backend().system_name()))]
    async fn open_invitations_of_hangouts(
        &self,
        queries: &[(HangoutId, KeysetQuery<i64>)],
        now: Timestamp,
    ) -> StoreResult<Vec<(usize, PageRows<Invitation>)>> {
        let mut connection = self.database.read().await.map_err(store_error)?;
        let mut pages = Vec::with_capacity(queries.len());
        for (index, (hangout, query)) in queries.iter().enumerate() {
            let page = open_page(
                &mut connection,
                "i.hangout_id",
                hangout.to_string(),
                None,
                query,
                now,
            )
            .await?;
            pages.push((index, page));
        }
        Ok(pages)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql open_invitations_for_email", db.system = self.database.backend().system_name()))]
    async fn open_invitations_for_email(
        &self,
        reader: UserId,
        email: &Email,
        query: &KeysetQuery<i64>,
        now: Timestamp,
    ) -> StoreResult<PageRows<Invitation>> {
        let mut connection = self.database.read().await.map_err(store_error)?;
        let email = email.as_str().to_owned();
        open_page(&mut connection, "i.email", email, Some(reader), query, now).await
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql accept_invitation", db.system = self.database.backend().system_name()))]
    async fn accept_invitation(
        &self,
        invitation: &Invitation,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        lock_hangout(&mut transaction, invitation.hangout).await?;
        // An invitation made before someone was removed does not let them back in.
        let removed = Statement::new(
            "select count(*) from hangout_removals where hangout_id = ? and user_id = ? \
             and removed_at >= ?",
        )
        .bind(invitation.hangout.to_string())
        .bind(user.to_string())
        .bind(invitation.created_at.as_millis());
        let (removed,): (i64,) = transaction.fetch_one(&removed).await.map_err(store_error)?;
        if removed > 0 {
            return Ok(false);
        }
        let members = Statement::new("select count(*) from hangout_members where hangout_id = ?")
            .bind(invitation.hangout.to_string());
        let (members,): (i64,) = transaction.fetch_one(&members).await.map_err(store_error)?;
        if count(members) >= MAX_MEMBERS {
            return Err(crate::domain::store::StoreError::Limit(Limit::Members));
        }
        // One statement decides whether a use is left and takes it: of two accepting the
        // last use at once, the second finds none (a row lock on MySQL, one writer on SQLite).
        let state = match invitation.target {
            InvitationTarget::Person(_) => InvitationState::Accepted,
            InvitationTarget::Link { .. } => InvitationState::Pending,
        };
        let mut take = Statement::new("update invitations set state = ");
        take.push_bind(state.as_str())
            .push(", uses = uses + 1 where id = ")
            .push_bind(invitation.id.to_string());
        push_open_unaliased(&mut take, now);
        if transaction.execute(&take).await.map_err(store_error)? != 1 {
            return Ok(false);
        }
        let join = Statement::new(
            "insert into hangout_members (hangout_id, user_id, role, rsvp, joined_at, \
             hangout_created_at, hangout_date) select id, ?, ?, ?, ?, created_at, hangout_date \
             from hangouts where id = ?",
        )
        .bind(user.to_string())
        .bind(invitation.role.as_str())
        .bind(Rsvp::NoReply.as_str())
        .bind(now.as_millis())
        .bind(invitation.hangout.to_string());
        if transaction.execute(&join).await.map_err(store_error)? != 1 {
            return Ok(false);
        }
        let joined = [
            member_updated(invitation.hangout, user),
            Event::for_viewer(invitation.hangout, user, EventKind::HangoutAdded, now),
        ];
        events::record(&mut transaction, &joined).await?;
        self.commit_recorded(transaction).await?;
        Ok(true)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql close_invitation", db.system = self.database.backend().system_name()))]
    async fn close_invitation(
        &self,
        id: InvitationId,
        state: InvitationState,
        guard: Option<&Guard>,
    ) -> StoreResult<bool> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        if let Some(guard) = guard {
            let hangout = Statement::new("select hangout_id from invitations where id = ?")
                .bind(id.to_string());
            let hangout: Option<(String,)> = transaction
                .fetch_optional(&hangout)
                .await
                .map_err(store_error)?;
            let hangout = hangout
                .and_then(|(hangout,)| HangoutId::parse(&hangout))
                .ok_or(crate::domain::store::StoreError::NotFound)?;
            check_guard(&mut transaction, self.database.backend(), hangout, guard).await?;
        }
        let update =
            Statement::new("update invitations set state = ? where id = ? and state = 'PENDING'")
                .bind(state.as_str())
                .bind(id.to_string());
        let closed = transaction.execute(&update).await.map_err(store_error)? == 1;
        transaction.commit().await.map_err(store_error)?;
        Ok(closed)
    }
}

/// Locks the hangout's row until the transaction ends, so that counts read after it (members,
/// open invitations) stay true until the change they bound commits. A write that changes
/// nothing still takes the row lock on MySQL; SQLite has one writer anyway.
pub(super) async fn lock_hangout(connection: &mut Connection, id: HangoutId) -> StoreResult<()> {
    let lock = Statement::new("update hangouts set updated_at = updated_at where id = ?")
        .bind(id.to_string());
    connection.execute(&lock).await.map_err(store_error)?;
    Ok(())
}

/// [`lock_hangout`] for a user's row (their rate of invitations).
async fn lock_user(connection: &mut Connection, id: UserId) -> StoreResult<()> {
    let lock = Statement::new("update users set updated_at = updated_at where id = ?")
        .bind(id.to_string());
    connection.execute(&lock).await.map_err(store_error)?;
    Ok(())
}

/// [`push_open`] for a statement on `invitations` without an alias (an `update`).
fn push_open_unaliased(query: &mut Statement, now: Timestamp) {
    query
        .push(" and state = 'PENDING' and (expires_at is null or expires_at > ")
        .push_bind(now.as_millis())
        .push(") and (max_uses is null or uses < max_uses)");
}
