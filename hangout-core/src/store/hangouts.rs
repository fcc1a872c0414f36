//! Hangouts and their activity links. Every read of a hangout joins the reader's membership
//! (`hangout_members hm`), which both scopes it to the hangouts they belong to and gives their
//! role and answer.

use sql_pools::{Connection, Statement};

use crate::{
    domain::{
        event::{Event, EventKind, RemovalReason},
        hangout::{Hangout, HangoutFilter, HangoutListQuery, HangoutOrderField, HangoutPatch},
        ids::{ActivityId, FileId, HangoutId, UserId},
        store::{Guard, HangoutStore, PageRows, StoreError, StoreResult},
        time::Timestamp,
    },
    store::{
        SqlStore, corrupt, count, events, file_deletions,
        members::check_guard,
        order_keyword, push_after_cursor, push_id_list,
        rows::{HANGOUT_COLUMNS, HangoutRow, convert},
        store_error,
    },
};

/// Appends `from hangouts h join hangout_members hm …`: the hangouts `reader` is a member of,
/// with their membership as `hm`.
pub(super) fn push_hangouts_of(query: &mut Statement, reader: UserId) {
    query
        .push(" from hangouts h join hangout_members hm on hm.hangout_id = h.id and hm.user_id = ")
        .push_bind(reader.to_string());
}

/// Fails with `NotFound` unless every activity is `owner`'s.
async fn check_activities_owned(
    connection: &mut Connection,
    owner: UserId,
    activities: &[ActivityId],
) -> StoreResult<()> {
    if activities.is_empty() {
        return Ok(());
    }
    let mut query = Statement::new("select count(*) from activities where owner_id = ");
    query.push_bind(owner.to_string()).push(" and id in ");
    push_id_list(&mut query, activities);
    let (owned,): (i64,) = connection.fetch_one(&query).await.map_err(store_error)?;
    if count(owned) == activities.len() as u64 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

async fn insert_links(
    connection: &mut Connection,
    hangout: HangoutId,
    activities: &[ActivityId],
) -> StoreResult<()> {
    if activities.is_empty() {
        return Ok(());
    }
    let mut query = Statement::new("insert into hangout_activities (hangout_id, activity_id) ");
    query.push_values(activities, |row, activity| {
        row.push_bind(hangout.to_string())
            .push_bind(activity.to_string());
    });
    connection.execute(&query).await.map_err(store_error)?;
    Ok(())
}

/// The hangout as `reader` sees it; `NotFound` unless they are a member.
pub(super) async fn hangout_seen_by(
    connection: &mut Connection,
    reader: UserId,
    id: HangoutId,
) -> StoreResult<Hangout> {
    let mut query = Statement::new(format!("select {HANGOUT_COLUMNS}"));
    push_hangouts_of(&mut query, reader);
    query.push(" where h.id = ").push_bind(id.to_string());
    let row: Option<HangoutRow> = connection
        .fetch_optional(&query)
        .await
        .map_err(store_error)?;
    row.ok_or(StoreError::NotFound)?.try_into()
}

/// Appends the filter conditions (after a `where`) on the reader's memberships `hm` and their
/// hangouts `h`.
fn push_filter(query: &mut Statement, filter: &HangoutFilter) {
    query.push("1 = 1");
    if !filter.roles.is_empty() {
        query
            .push(" and hm.role in ")
            .push_list(filter.roles.iter().map(|role| role.as_str()));
    }
    if !filter.statuses.is_empty() {
        query
            .push(" and h.status in ")
            .push_list(filter.statuses.iter().map(|status| status.as_str()));
    }
    if let Some(from) = filter.date_from {
        query
            .push(" and hm.hangout_date >= ")
            .push_bind(from.as_millis());
    }
    if let Some(to) = filter.date_to {
        query
            .push(" and hm.hangout_date < ")
            .push_bind(to.as_millis());
    }
}

/// The sort columns, on the membership row: its copies of the hangout's keys are what the
/// (user_id, key, hangout_id) indexes hold.
fn order_column(field: HangoutOrderField) -> &'static str {
    match field {
        HangoutOrderField::CreatedAt => "hm.hangout_created_at",
        HangoutOrderField::Date => "hm.hangout_date",
    }
}

impl HangoutStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql insert_hangout", db.system = self.database.backend().system_name()))]
    async fn insert_hangout(
        &self,
        hangout: &Hangout,
        activities: &[ActivityId],
    ) -> StoreResult<()> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        check_activities_owned(&mut transaction, hangout.owner, activities).await?;
        let insert = Statement::new(
            "insert into hangouts (id, owner_id, title, description, hangout_date, status, \
             created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(hangout.id.to_string())
        .bind(hangout.owner.to_string())
        .bind(&hangout.title)
        .bind(hangout.description.clone())
        .bind(hangout.date.as_millis())
        .bind(hangout.status.as_str())
        .bind(hangout.created_at.as_millis())
        .bind(hangout.updated_at.as_millis());
        transaction.execute(&insert).await.map_err(store_error)?;
        let member = Statement::new(
            "insert into hangout_members (hangout_id, user_id, role, rsvp, joined_at, \
             hangout_created_at, hangout_date) values (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(hangout.id.to_string())
        .bind(hangout.owner.to_string())
        .bind(hangout.viewer.role.as_str())
        .bind(hangout.viewer.rsvp.as_str())
        .bind(hangout.created_at.as_millis())
        .bind(hangout.created_at.as_millis())
        .bind(hangout.date.as_millis());
        transaction.execute(&member).await.map_err(store_error)?;
        insert_links(&mut transaction, hangout.id, activities).await?;
        let added = Event::for_viewer(
            hangout.id,
            hangout.owner,
            EventKind::HangoutAdded,
            hangout.created_at,
        );
        events::record(&mut transaction, &[added]).await?;
        self.commit_recorded(transaction).await
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql update_hangout", db.system = self.database.backend().system_name()))]
    async fn update_hangout(
        &self,
        caller: UserId,
        id: HangoutId,
        patch: &HangoutPatch,
        now: Timestamp,
        guard: &Guard,
    ) -> StoreResult<Hangout> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        check_guard(&mut transaction, self.database.backend(), id, guard).await?;
        let mut hangout = hangout_seen_by(&mut transaction, caller, id).await?;
        if let Some(title) = &patch.title {
            hangout.title.clone_from(title);
        }
        if let Some(description) = &patch.description {
            hangout.description.clone_from(description);
        }
        if let Some(date) = patch.date {
            hangout.date = date;
        }
        if let Some(status) = patch.status {
            hangout.status = status;
        }
        hangout.updated_at = now;
        let update = Statement::new(
            "update hangouts set title = ?, description = ?, hangout_date = ?, status = ?, \
             updated_at = ? where id = ?",
        )
        .bind(&hangout.title)
        .bind(hangout.description.clone())
        .bind(hangout.date.as_millis())
        .bind(hangout.status.as_str())
        .bind(hangout.updated_at.as_millis())
        .bind(id.to_string());
        transaction.execute(&update).await.map_err(store_error)?;
        if patch.date.is_some() {
            let copy =
                Statement::new("update hangout_members set hangout_date = ? where hangout_id = ?")
                    .bind(hangout.date.as_millis())
                    .bind(id.to_string());
            transaction.execute(&copy).await.map_err(store_error)?;
        }
        if let Some(activities) = &patch.activities {
            check_activities_owned(&mut transaction, hangout.owner, activities).await?;
            let unlink = Statement::new("delete from hangout_activities where hangout_id = ?")
                .bind(id.to_string());
            transaction.execute(&unlink).await.map_err(store_error)?;
            insert_links(&mut transaction, id, activities).await?;
        }
        let updated = Event::of_hangout(id, EventKind::HangoutUpdated, None, now);
        events::record(&mut transaction, &[updated]).await?;
        self.commit_recorded(transaction).await?;
        Ok(hangout)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql delete_hangout", db.system = self.database.backend().system_name()))]
    async fn delete_hangout(&self, id: HangoutId, guard: &Guard) -> StoreResult<Vec<FileId>> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        check_guard(&mut transaction, self.database.backend(), id, guard).await?;
        let files = Statement::new(
            "select file_id from memories where hangout_id = ? and file_id is not null",
        )
        .bind(id.to_string());
        let files: Vec<(String,)> = transaction.fetch_all(&files).await.map_err(store_error)?;
        let files = files
            .into_iter()
            .map(|(file,)| FileId::parse(&file).ok_or_else(|| corrupt("memories.file_id")))
            .collect::<StoreResult<Vec<FileId>>>()?;
        let now = Timestamp::now();
        let mut removed = vec![Event::of_hangout(id, EventKind::HangoutDeleted, None, now)];
        removed.extend(
            events::members(&mut transaction, id)
                .await?
                .into_iter()
                .map(|member| {
                    Event::for_viewer(id, member, EventKind::HangoutRemoved, now)
                        .with_reason(RemovalReason::Deleted)
                }),
        );
        for statement in [
            "delete from memories where hangout_id = ?",
            "delete from hangout_activities where hangout_id = ?",
            "delete from invitations where hangout_id = ?",
            "delete from hangout_removals where hangout_id = ?",
            "delete from hangout_members where hangout_id = ?",
        ] {
            transaction
                .execute(&Statement::new(statement).bind(id.to_string()))
                .await
                .map_err(store_error)?;
        }
        let deleted = transaction
            .execute(&Statement::new("delete from hangouts where id = ?").bind(id.to_string()))
            .await
            .map_err(store_error)?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        file_deletions::owe(
            &mut transaction,
            self.database.backend(),
            files.iter().copied(),
            now,
        )
        .await?;
        events::record(&mut transaction, &removed).await?;
        self.commit_recorded(transaction).await?;
        Ok(files)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql hangouts_by_ids", db.system = self.database.backend().system_name()))]
    async fn hangouts_by_ids(
        &self,
        caller: UserId,
        ids: &[HangoutId],
    ) -> StoreResult<Vec<Hangout>> {
        let mut query = Statement::new(format!("select {HANGOUT_COLUMNS}"));
        push_hangouts_of(&mut query, caller);
        query.push(" where h.id in ");
        push_id_list(&mut query, ids);
        let rows: Vec<HangoutRow> = self.database.fetch_all(&query).await.map_err(store_error)?;
        convert(rows)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql list_hangouts", db.system = self.database.backend().system_name()))]
    async fn list_hangouts(
        &self,
        caller: UserId,
        list: &HangoutListQuery,
    ) -> StoreResult<PageRows<Hangout>> {
        let mut connection = self.database.read().await.map_err(store_error)?;
        // The count reads the membership index alone unless a status filter needs the hangout.
        let mut counting = Statement::new("select count(*) from hangout_members hm");
        if !list.filter.statuses.is_empty() {
            counting.push(" join hangouts h on h.id = hm.hangout_id");
        }
        counting
            .push(" where hm.user_id = ")
            .push_bind(caller.to_string())
            .push(" and ");
        push_filter(&mut counting, &list.filter);
        let (total,): (i64,) = connection.fetch_one(&counting).await.map_err(store_error)?;

        let column = order_column(list.field);
        let mut query = Statement::new(format!("select {HANGOUT_COLUMNS}"));
        push_hangouts_of(&mut query, caller);
        query.push(" where ");
        push_filter(&mut query, &list.filter);
        if let Some(after) = &list.after {
            push_after_cursor(&mut query, column, "hm.hangout_id", list.direction, after);
        }
        let order = order_keyword(list.direction);
        query
            .push(&format!(
                " order by {column} {order}, hm.hangout_id {order} limit "
            ))
            .push_bind(i64::from(list.fetch));
        let rows: Vec<HangoutRow> = connection.fetch_all(&query).await.map_err(store_error)?;
        Ok(PageRows {
            rows: convert(rows)?,
            total_count: count(total),
        })
    }
}
