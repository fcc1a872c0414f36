//! Activities table, and the hangout lists seen from an activity.

use std::collections::HashMap;

use sql_pools::{Columns, Connection, DbError, FromRow, Statement};

use crate::{
    domain::{
        activity::{Activity, HangoutCounts},
        hangout::Hangout,
        ids::{ActivityId, HangoutId, UserId},
        page::Direction,
        store::{ActivityStore, KeysetQuery, PageRows, StoreError, StoreResult},
    },
    store::{
        SqlStore, corrupt, count,
        hangouts::push_hangouts_of,
        push_after_cursor, push_id_list,
        rows::{
            ACTIVITY_FIELDS, ActivityFieldsRow, ActivityRow, HANGOUT_COLUMNS, HangoutRow, convert,
            push_activity_columns,
        },
        store_error,
    },
};

/// `hangout_id`, then an activity's own columns.
struct LinkedActivityRow {
    hangout_id: String,
    activity: ActivityFieldsRow,
}

impl FromRow for LinkedActivityRow {
    fn from_row(columns: &mut Columns<'_, '_>) -> Result<Self, DbError> {
        Ok(Self {
            hangout_id: columns.read()?,
            activity: ActivityFieldsRow::from_row(columns)?,
        })
    }
}

/// How many hangouts that `caller` is a member of carry each distinct activity of `rows`, by
/// activity id.
async fn hangout_counts(
    connection: &mut Connection,
    caller: UserId,
    rows: &[LinkedActivityRow],
) -> StoreResult<HashMap<String, u64>> {
    let mut distinct: Vec<&str> = rows.iter().map(|row| row.activity.id.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.is_empty() {
        return Ok(HashMap::new());
    }
    let mut counting = Statement::new(
        "select l.activity_id, count(*) from hangout_activities l join hangout_members hm \
         on hm.hangout_id = l.hangout_id and hm.user_id = ",
    );
    counting
        .push_bind(caller.to_string())
        .push(" where l.activity_id in ");
    push_id_list(&mut counting, &distinct);
    counting.push(" group by l.activity_id");
    let counted: Vec<(String, i64)> = connection.fetch_all(&counting).await.map_err(store_error)?;
    Ok(counted
        .into_iter()
        .map(|(activity, hangouts)| (activity, count(hangouts)))
        .collect())
}

/// Appends `and (…)`: the activity `a` is `caller`'s own or on a hangout they are a member of.
fn push_visible_activity(query: &mut Statement, caller: UserId) {
    query
        .push(" and (a.owner_id = ")
        .push_bind(caller.to_string())
        .push(
            " or exists (select 1 from hangout_activities v join hangout_members vm \
             on vm.hangout_id = v.hangout_id where v.activity_id = a.id and vm.user_id = ",
        )
        .push_bind(caller.to_string())
        .push("))");
}

impl SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql owned_activity", db.system = self.database.backend().system_name()))]
    async fn owned_activity(&self, owner: UserId, id: ActivityId) -> StoreResult<Activity> {
        let mut query = Statement::new("select ");
        push_activity_columns(&mut query, owner);
        query
            .push(" from activities a where a.id = ")
            .push_bind(id.to_string())
            .push(" and a.owner_id = ")
            .push_bind(owner.to_string());
        // On the write connection: this reads back a change just made.
        let mut connection = self.database.write().await.map_err(store_error)?;
        let row: Option<ActivityRow> = connection
            .fetch_optional(&query)
            .await
            .map_err(store_error)?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }
}

impl ActivityStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql insert_activity", db.system = self.database.backend().system_name()))]
    async fn insert_activity(&self, activity: &Activity) -> StoreResult<()> {
        let insert = Statement::new(
            "insert into activities (id, owner_id, name, name_key, created_at) \
             values (?, ?, ?, ?, ?)",
        )
        .bind(activity.id.to_string())
        .bind(activity.owner.to_string())
        .bind(&activity.name)
        .bind(&activity.name_key)
        .bind(activity.created_at.as_millis());
        self.database.execute(&insert).await.map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql rename_activity", db.system = self.database.backend().system_name()))]
    async fn rename_activity(
        &self,
        owner: UserId,
        id: ActivityId,
        name: &str,
        name_key: &str,
    ) -> StoreResult<Activity> {
        let rename = Statement::new(
            "update activities set name = ?, name_key = ? where id = ? and owner_id = ?",
        )
        .bind(name)
        .bind(name_key)
        .bind(id.to_string())
        .bind(owner.to_string());
        let updated = self.database.execute(&rename).await.map_err(store_error)?;
        // MySQL counts only changed rows, so zero may also mean "same name": look it up.
        let activity = self.owned_activity(owner, id).await?;
        if updated == 0 && activity.name != name {
            return Err(StoreError::NotFound);
        }
        Ok(activity)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql delete_activity", db.system = self.database.backend().system_name()))]
    async fn delete_activity(&self, owner: UserId, id: ActivityId) -> StoreResult<()> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        let delete = Statement::new("delete from activities where id = ? and owner_id = ?")
            .bind(id.to_string())
            .bind(owner.to_string());
        let deleted = transaction.execute(&delete).await.map_err(store_error)?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        let unlink = Statement::new("delete from hangout_activities where activity_id = ?")
            .bind(id.to_string());
        transaction.execute(&unlink).await.map_err(store_error)?;
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql activities_by_ids", db.system = self.database.backend().system_name()))]
    async fn activities_by_ids(
        &self,
        owner: UserId,
        ids: &[ActivityId],
    ) -> StoreResult<Vec<Activity>> {
        let mut query = Statement::new("select ");
        push_activity_columns(&mut query, owner);
        query.push(" from activities a where a.id in ");
        push_id_list(&mut query, ids);
        push_visible_activity(&mut query, owner);
        let rows: Vec<ActivityRow> = self.database.fetch_all(&query).await.map_err(store_error)?;
        convert(rows)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql list_activities", db.system = self.database.backend().system_name()))]
    async fn list_activities(
        &self,
        owner: UserId,
        page: &KeysetQuery<String>,
    ) -> StoreResult<PageRows<Activity>> {
        let mut connection = self.database.read().await.map_err(store_error)?;
        let counting = Statement::new("select count(*) from activities where owner_id = ?")
            .bind(owner.to_string());
        let (total,): (i64,) = connection.fetch_one(&counting).await.map_err(store_error)?;
        let mut query = Statement::new("select ");
        push_activity_columns(&mut query, owner);
        query
            .push(" from activities a where a.owner_id = ")
            .push_bind(owner.to_string());
        if let Some(after) = &page.after {
            push_after_cursor(&mut query, "a.name_key", "a.id", Direction::Asc, after);
        }
        query
            .push(" order by a.name_key asc, a.id asc limit ")
            .push_bind(i64::from(page.fetch));
        let rows: Vec<ActivityRow> = connection.fetch_all(&query).await.map_err(store_error)?;
        Ok(PageRows {
            rows: convert(rows)?,
            total_count: count(total),
        })
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql activities_of_hangouts", db.system = self.database.backend().system_name()))]
    async fn activities_of_hangouts(
        &self,
        owner: UserId,
        hangouts: &[HangoutId],
        counts: HangoutCounts,
    ) -> StoreResult<Vec<(HangoutId, Vec<Activity>)>> {
        let mut connection = self.database.read().await.map_err(store_error)?;
        let mut visible = Statement::new("select hangout_id from hangout_members where user_id = ");
        visible
            .push_bind(owner.to_string())
            .push(" and hangout_id in ");
        push_id_list(&mut visible, hangouts);
        let visible: Vec<(String,)> = connection.fetch_all(&visible).await.map_err(store_error)?;
        let visible_ids: Vec<&str> = visible.iter().map(|(id,)| id.as_str()).collect();

        let mut query = Statement::new(format!(
            "select l.hangout_id, {ACTIVITY_FIELDS} from hangout_activities l \
             join activities a on a.id = l.activity_id where l.hangout_id in "
        ));
        push_id_list(&mut query, &visible_ids);
        query.push(" order by a.name_key asc, a.id asc");
        let rows: Vec<LinkedActivityRow> =
            connection.fetch_all(&query).await.map_err(store_error)?;

        // Counted apart, once per distinct activity, in a second statement: in the first one
        // (a correlated count per link row, or a derived table joined in) the count cost
        // twice to three times as much as the rest of the read on SQLite.
        let counted = match counts {
            HangoutCounts::Omitted => None,
            HangoutCounts::Counted => Some(hangout_counts(&mut connection, owner, &rows).await?),
        };
        let hangout_count = |activity: &str| {
            counted
                .as_ref()
                .map(|counted| counted.get(activity).copied().unwrap_or(0))
        };

        let mut result = visible
            .into_iter()
            .map(|(id,)| {
                HangoutId::parse(&id)
                    .map(|id| (id, Vec::new()))
                    .ok_or_else(|| corrupt("hangouts.id"))
            })
            .collect::<StoreResult<Vec<(HangoutId, Vec<Activity>)>>>()?;
        for row in rows {
            let hangout = HangoutId::parse(&row.hangout_id)
                .ok_or_else(|| corrupt("hangout_activities.hangout_id"))?;
            let hangout_count = hangout_count(&row.activity.id);
            let activity = row.activity.into_activity(hangout_count)?;
            if let Some((_, list)) = result.iter_mut().find(|(id, _)| *id == hangout) {
                list.push(activity);
            }
        }
        Ok(result)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql hangouts_of_activity", db.system = self.database.backend().system_name()))]
    async fn hangouts_of_activity(
        &self,
        owner: UserId,
        activity: ActivityId,
        page: &KeysetQuery<i64>,
    ) -> StoreResult<PageRows<Hangout>> {
        let mut connection = self.database.read().await.map_err(store_error)?;
        let mut seeing = Statement::new("select count(*) from activities a where a.id = ");
        seeing.push_bind(activity.to_string());
        push_visible_activity(&mut seeing, owner);
        let (seen,): (i64,) = connection.fetch_one(&seeing).await.map_err(store_error)?;
        if seen == 0 {
            return Err(StoreError::NotFound);
        }
        let counting = Statement::new(
            "select count(*) from hangout_activities l join hangout_members hm \
             on hm.hangout_id = l.hangout_id where l.activity_id = ? and hm.user_id = ?",
        )
        .bind(activity.to_string())
        .bind(owner.to_string());
        let (total,): (i64,) = connection.fetch_one(&counting).await.map_err(store_error)?;
        let mut query = Statement::new(format!("select {HANGOUT_COLUMNS}"));
        push_hangouts_of(&mut query, owner);
        query
            .push(" join hangout_activities l on l.hangout_id = h.id where l.activity_id = ")
            .push_bind(activity.to_string());
        if let Some(after) = &page.after {
            push_after_cursor(&mut query, "h.created_at", "h.id", Direction::Desc, after);
        }
        query
            .push(" order by h.created_at desc, h.id desc limit ")
            .push_bind(i64::from(page.fetch));
        let rows: Vec<HangoutRow> = connection.fetch_all(&query).await.map_err(store_error)?;
        Ok(PageRows {
            rows: convert(rows)?,
            total_count: count(total),
        })
    }
}
