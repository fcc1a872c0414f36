//! Members of hangouts.

use std::collections::HashMap;

use sql_pools::{Connection, Statement};

use crate::{
    domain::{
        event::{Event, EventKind, RemovalReason},
        hangout::Hangout,
        ids::{HangoutId, UserId},
        membership::{Member, MemberListQuery, Role, Rsvp, RsvpCounts},
        page::Direction,
        store::{Guard, MemberStore, PageRows, StoreError, StoreResult},
        time::Timestamp,
    },
    store::{
        Backend, SqlStore, corrupt, count, events,
        hangouts::hangout_seen_by,
        push_after_cursor, push_id_list,
        rows::{MEMBER_COLUMNS, MemberRow, convert},
        store_error,
    },
};

/// The members list's sort key, as `Member::order_key` computes it: the owner first.
const MEMBER_ORDER_KEY: &str = "(case when hm.role = 'OWNER' then 0 else hm.joined_at end)";

/// `MemberUpdated` about `user`, now.
pub(super) fn member_updated(hangout: HangoutId, user: UserId) -> Event {
    Event::of_hangout(hangout, EventKind::MemberUpdated, None, Timestamp::now()).with_subject(user)
}

async fn member(
    connection: &mut Connection,
    hangout: HangoutId,
    user: UserId,
) -> StoreResult<Option<Member>> {
    let query = Statement::new(format!(
        "select {MEMBER_COLUMNS} from hangout_members hm where hm.hangout_id = ? and hm.user_id = ?"
    ))
    .bind(hangout.to_string())
    .bind(user.to_string());
    let row: Option<MemberRow> = connection
        .fetch_optional(&query)
        .await
        .map_err(store_error)?;
    row.map(Member::try_from).transpose()
}

/// `user`'s roles in those of `hangouts` they are a member of.
pub(super) async fn roles_in(
    connection: &mut Connection,
    hangouts: &[HangoutId],
    user: UserId,
) -> StoreResult<Vec<(HangoutId, Role)>> {
    let mut query = Statement::new("select hangout_id, role from hangout_members where user_id = ");
    query
        .push_bind(user.to_string())
        .push(" and hangout_id in ");
    push_id_list(&mut query, hangouts);
    let rows: Vec<(String, String)> = connection.fetch_all(&query).await.map_err(store_error)?;
    rows.into_iter()
        .map(|(hangout, role)| {
            Ok((
                HangoutId::parse(&hangout).ok_or_else(|| corrupt("hangout_members.hangout_id"))?,
                Role::from_stored(&role).ok_or_else(|| corrupt("hangout_members.role"))?,
            ))
        })
        .collect()
}

/// Fails with `Stale` unless `guard.user` still has one of `guard.roles` in `hangout`, read
/// inside the caller's transaction. On MySQL the read is a locking one, so a concurrent change
/// of that member (a removal, a demotion) waits until this transaction ends; SQLite has one
/// writer, so nothing can change between this read and the transaction's commit.
pub(super) async fn check_guard(
    connection: &mut Connection,
    backend: Backend,
    hangout: HangoutId,
    guard: &Guard,
) -> StoreResult<()> {
    let mut query =
        Statement::new("select role from hangout_members where hangout_id = ? and user_id = ?")
            .bind(hangout.to_string())
            .bind(guard.user.to_string());
    if backend == Backend::MySql {
        query.push(" lock in share mode");
    }
    let row: Option<(String,)> = connection
        .fetch_optional(&query)
        .await
        .map_err(store_error)?;
    match row.and_then(|(role,)| Role::from_stored(&role)) {
        Some(role) if guard.roles.contains(&role) => Ok(()),
        _ => Err(StoreError::Stale),
    }
}

/// Revokes the open invitations `user` made to `hangout`: someone who may no longer invite
/// (removed, gone or made a guest) leaves no live link behind.
async fn revoke_invitations_by(
    connection: &mut Connection,
    hangout: HangoutId,
    user: UserId,
) -> StoreResult<()> {
    let revoke = Statement::new(
        "update invitations set state = 'REVOKED' where hangout_id = ? and invited_by = ? \
         and state = 'PENDING'",
    )
    .bind(hangout.to_string())
    .bind(user.to_string());
    connection.execute(&revoke).await.map_err(store_error)?;
    Ok(())
}

/// One page of one hangout's members.
async fn members_page(
    connection: &mut Connection,
    hangout: HangoutId,
    list: &MemberListQuery,
) -> StoreResult<PageRows<Member>> {
    let push_where = |query: &mut Statement| {
        query
            .push(" where hm.hangout_id = ")
            .push_bind(hangout.to_string());
        if !list.rsvp_in.is_empty() {
            query
                .push(" and hm.rsvp in ")
                .push_list(list.rsvp_in.iter().map(|rsvp| rsvp.as_str()));
        }
    };
    let mut counting = Statement::new("select count(*) from hangout_members hm");
    push_where(&mut counting);
    let (total,): (i64,) = connection.fetch_one(&counting).await.map_err(store_error)?;
    let mut query = Statement::new(format!("select {MEMBER_COLUMNS} from hangout_members hm"));
    push_where(&mut query);
    if let Some(after) = &list.page.after {
        push_after_cursor(
            &mut query,
            MEMBER_ORDER_KEY,
            "hm.user_id",
            Direction::Asc,
            after,
        );
    }
    query
        .push(&format!(
            " order by {MEMBER_ORDER_KEY} asc, hm.user_id asc limit "
        ))
        .push_bind(i64::from(list.page.fetch));
    let rows: Vec<MemberRow> = connection.fetch_all(&query).await.map_err(store_error)?;
    Ok(PageRows {
        rows: convert(rows)?,
        total_count: count(total),
    })
}

impl MemberStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql role_of", db.system = self.database.backend().system_name()))]
    async fn role_of(&self, hangout: HangoutId, user: UserId) -> StoreResult<Option<Role>> {
        // On the write connection: a decision must not read a replica's or a reader's stale view.
        let mut connection = self.database.write().await.map_err(store_error)?;
        Ok(member(&mut connection, hangout, user)
            .await?
            .map(|member| member.role))
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql roles_of", db.system = self.database.backend().system_name()))]
    async fn roles_of(
        &self,
        hangouts: &[HangoutId],
        user: UserId,
    ) -> StoreResult<Vec<(HangoutId, Role)>> {
        let mut connection = self.database.write().await.map_err(store_error)?;
        roles_in(&mut connection, hangouts, user).await
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql members_of_hangouts", db.system = self.database.backend().system_name()))]
    async fn members_of_hangouts(
        &self,
        caller: UserId,
        queries: &[(HangoutId, MemberListQuery)],
    ) -> StoreResult<Vec<(usize, PageRows<Member>)>> {
        let mut connection = self.database.read().await.map_err(store_error)?;
        let hangouts: Vec<HangoutId> = queries.iter().map(|(hangout, _)| *hangout).collect();
        let visible: HashMap<HangoutId, Role> = roles_in(&mut connection, &hangouts, caller)
            .await?
            .into_iter()
            .collect();
        let mut pages = Vec::with_capacity(queries.len());
        for (index, (hangout, list)) in queries.iter().enumerate() {
            if visible.contains_key(hangout) {
                pages.push((index, members_page(&mut connection, *hangout, list).await?));
            }
        }
        Ok(pages)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql rsvp_counts", db.system = self.database.backend().system_name()))]
    async fn rsvp_counts(
        &self,
        caller: UserId,
        hangouts: &[HangoutId],
    ) -> StoreResult<Vec<(HangoutId, RsvpCounts)>> {
        let mut query = Statement::new(
            "select hm.hangout_id, hm.rsvp, count(*) from hangout_members hm \
             join hangout_members mine on mine.hangout_id = hm.hangout_id and mine.user_id = ",
        );
        query
            .push_bind(caller.to_string())
            .push(" where hm.hangout_id in ");
        push_id_list(&mut query, hangouts);
        query.push(" group by hm.hangout_id, hm.rsvp");
        let rows: Vec<(String, String, i64)> =
            self.database.fetch_all(&query).await.map_err(store_error)?;
        let mut counts: HashMap<HangoutId, RsvpCounts> = HashMap::new();
        for (hangout, rsvp, members) in rows {
            let hangout =
                HangoutId::parse(&hangout).ok_or_else(|| corrupt("hangout_members.hangout_id"))?;
            let rsvp = Rsvp::from_stored(&rsvp).ok_or_else(|| corrupt("hangout_members.rsvp"))?;
            counts.entry(hangout).or_default().add(rsvp, count(members));
        }
        Ok(hangouts
            .iter()
            .filter_map(|hangout| Some((*hangout, counts.remove(hangout)?)))
            .collect())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql members_by_ids", db.system = self.database.backend().system_name()))]
    async fn members_by_ids(
        &self,
        caller: UserId,
        hangout: HangoutId,
        users: &[UserId],
    ) -> StoreResult<Vec<Member>> {
        let mut query = Statement::new(format!(
            "select {MEMBER_COLUMNS} from hangout_members hm \
             join hangout_members mine on mine.hangout_id = hm.hangout_id and mine.user_id = "
        ));
        query
            .push_bind(caller.to_string())
            .push(" where hm.hangout_id = ")
            .push_bind(hangout.to_string())
            .push(" and hm.user_id in ");
        push_id_list(&mut query, users);
        let rows: Vec<MemberRow> = self.database.fetch_all(&query).await.map_err(store_error)?;
        convert(rows)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql set_rsvp", db.system = self.database.backend().system_name()))]
    async fn set_rsvp(&self, hangout: HangoutId, user: UserId, rsvp: Rsvp) -> StoreResult<Member> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        let update = Statement::new(
            "update hangout_members set rsvp = ? where hangout_id = ? and user_id = ?",
        )
        .bind(rsvp.as_str())
        .bind(hangout.to_string())
        .bind(user.to_string());
        transaction.execute(&update).await.map_err(store_error)?;
        // MySQL counts only changed rows, so the row is read back to tell "same" from "gone".
        let member = member(&mut transaction, hangout, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        events::record(&mut transaction, &[member_updated(hangout, user)]).await?;
        self.commit_recorded(transaction).await?;
        Ok(member)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql set_member_role", db.system = self.database.backend().system_name()))]
    async fn set_member_role(
        &self,
        hangout: HangoutId,
        user: UserId,
        role: Role,
        guard: &Guard,
    ) -> StoreResult<Member> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        check_guard(&mut transaction, self.database.backend(), hangout, guard).await?;
        let update = Statement::new(
            "update hangout_members set role = ? where hangout_id = ? and user_id = ? \
             and role <> 'OWNER'",
        )
        .bind(role.as_str())
        .bind(hangout.to_string())
        .bind(user.to_string());
        transaction.execute(&update).await.map_err(store_error)?;
        let member = member(&mut transaction, hangout, user)
            .await?
            .filter(|member| member.role == role)
            .ok_or(StoreError::NotFound)?;
        if role == Role::Guest {
            revoke_invitations_by(&mut transaction, hangout, user).await?;
        }
        events::record(&mut transaction, &[member_updated(hangout, user)]).await?;
        self.commit_recorded(transaction).await?;
        Ok(member)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql remove_member", db.system = self.database.backend().system_name()))]
    async fn remove_member(
        &self,
        hangout: HangoutId,
        user: UserId,
        role: Role,
        removed: Option<Timestamp>,
        guard: &Guard,
    ) -> StoreResult<()> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        check_guard(&mut transaction, self.database.backend(), hangout, guard).await?;
        let delete = Statement::new(
            "delete from hangout_members where hangout_id = ? and user_id = ? and role = ?",
        )
        .bind(hangout.to_string())
        .bind(user.to_string())
        .bind(role.as_str());
        if transaction.execute(&delete).await.map_err(store_error)? == 0 {
            return Err(StoreError::NotFound);
        }
        revoke_invitations_by(&mut transaction, hangout, user).await?;
        if let Some(at) = removed {
            for statement in [
                Statement::new("delete from hangout_removals where hangout_id = ? and user_id = ?")
                    .bind(hangout.to_string())
                    .bind(user.to_string()),
                Statement::new(
                    "insert into hangout_removals (hangout_id, user_id, removed_at) \
                     values (?, ?, ?)",
                )
                .bind(hangout.to_string())
                .bind(user.to_string())
                .bind(at.as_millis()),
            ] {
                transaction.execute(&statement).await.map_err(store_error)?;
            }
        }
        let reason = if removed.is_some() {
            RemovalReason::Removed
        } else {
            RemovalReason::Left
        };
        let now = Timestamp::now();
        let left = [
            Event::of_hangout(hangout, EventKind::MemberLeft, None, now)
                .with_subject(user)
                .with_reason(reason),
            Event::for_viewer(hangout, user, EventKind::HangoutRemoved, now).with_reason(reason),
        ];
        events::record(&mut transaction, &left).await?;
        self.commit_recorded(transaction).await
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql transfer_ownership", db.system = self.database.backend().system_name()))]
    async fn transfer_ownership(
        &self,
        hangout: HangoutId,
        from: UserId,
        to: UserId,
        now: Timestamp,
    ) -> StoreResult<Hangout> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        // Each update names the role it expects, so of two concurrent transfers one finds the
        // owner already changed and rolls back: a hangout never has two owners.
        let step_down = Statement::new(
            "update hangout_members set role = 'CO_HOST' where hangout_id = ? and user_id = ? \
             and role = 'OWNER'",
        )
        .bind(hangout.to_string())
        .bind(from.to_string());
        let step_up = Statement::new(
            "update hangout_members set role = 'OWNER' where hangout_id = ? and user_id = ? \
             and role <> 'OWNER'",
        )
        .bind(hangout.to_string())
        .bind(to.to_string());
        for statement in [step_down, step_up] {
            if transaction.execute(&statement).await.map_err(store_error)? != 1 {
                return Err(StoreError::NotFound);
            }
        }
        let owner = Statement::new("update hangouts set owner_id = ?, updated_at = ? where id = ?")
            .bind(to.to_string())
            .bind(now.as_millis())
            .bind(hangout.to_string());
        transaction.execute(&owner).await.map_err(store_error)?;
        let changed = [
            Event::of_hangout(hangout, EventKind::HangoutUpdated, None, now),
            member_updated(hangout, from),
            member_updated(hangout, to),
        ];
        let hangout = hangout_seen_by(&mut transaction, from, hangout).await?;
        events::record(&mut transaction, &changed).await?;
        self.commit_recorded(transaction).await?;
        Ok(hangout)
    }
}
