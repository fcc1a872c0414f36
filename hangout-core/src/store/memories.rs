//! Memory records.

use std::collections::{HashMap, HashSet};

use sql_pools::{Connection, Statement};

use crate::{
    domain::{
        event::{Event, EventKind},
        ids::{FileId, HangoutId, MemoryId, UserId},
        memory::{Memory, MemoryListQuery, MemoryStatus},
        page::Direction,
        store::{MemoryStore, PageRows, StoreError, StoreResult},
        time::Timestamp,
    },
    store::{
        Backend, SqlStore, corrupt, count, events, file_deletions, order_keyword,
        push_after_cursor, push_id_list,
        rows::{MEMORY_COLUMNS, MemoryRow, convert},
        store_error,
    },
};

/// Expired PENDING memories one sweep deletes at most (the sweeper runs again soon).
const SWEEP_BATCH: i64 = 1_000;

fn memory_deleted(hangout: HangoutId, memory: MemoryId, at: Timestamp) -> Event {
    Event::of_hangout(hangout, EventKind::MemoryDeleted, None, at).with_subject(memory)
}

/// Hangouts per statement of [`MemoryStore::first_memories_of_hangouts`]: a term each.
const HANGOUTS_PER_FIRST_MEMORIES_STATEMENT: usize = 100;

/// The first `list.fetch` memories of each of `hangouts`, in one statement.
///
/// On SQLite, one `select … limit` per hangout glued with `union all`: each reads its few rows
/// straight off the (hangout_id, status, created_at, id) index, where a window function
/// numbering each hangout's rows reads and sorts every memory of every hangout (three times
/// the cost on a page of 20). On MariaDB the window function is the cheaper one, because
/// each limited term becomes a temporary table there (1.6 times the cost). SQLite caps a
/// compound select at 500 terms, hence the chunks of [`HANGOUTS_PER_FIRST_MEMORIES_STATEMENT`].
fn first_memories_statement(
    backend: Backend,
    hangouts: &[HangoutId],
    list: &MemoryListQuery,
) -> Statement {
    let order = order_keyword(list.direction);
    match backend {
        Backend::Sqlite => {
            let mut query = Statement::default();
            for (term, hangout) in hangouts.iter().enumerate() {
                if term > 0 {
                    query.push(" union all ");
                }
                query
                    .push(&format!(
                        "select * from (select {MEMORY_COLUMNS} from memories m \
                         where m.hangout_id = "
                    ))
                    .push_bind(hangout.to_string())
                    .push(" and m.status = ")
                    .push_bind(list.status.as_str())
                    .push(&format!(
                        " order by m.created_at {order}, m.id {order} limit "
                    ))
                    .push_bind(i64::from(list.fetch))
                    .push(&format!(") as first_{term}"));
            }
            query
        }
        Backend::MySql => {
            let mut query = Statement::new(format!(
                "select {MEMORY_COLUMNS} from (select m.*, row_number() over (partition by \
                 m.hangout_id order by m.created_at {order}, m.id {order}) as position \
                 from memories m where m.status = "
            ));
            query
                .push_bind(list.status.as_str())
                .push(" and m.hangout_id in ");
            push_id_list(&mut query, hangouts);
            query
                .push(") m where m.position <= ")
                .push_bind(i64::from(list.fetch))
                .push(" order by m.hangout_id, m.position");
            query
        }
    }
}

async fn is_member(
    connection: &mut Connection,
    user: UserId,
    hangout: HangoutId,
) -> StoreResult<bool> {
    let query =
        Statement::new("select count(*) from hangout_members where hangout_id = ? and user_id = ?")
            .bind(hangout.to_string())
            .bind(user.to_string());
    let (members,): (i64,) = connection.fetch_one(&query).await.map_err(store_error)?;
    Ok(members > 0)
}

/// Appends the condition "memory of a hangout `member` belongs to" for the alias `m`.
fn push_visible(query: &mut Statement, member: UserId) {
    query
        .push(" m.hangout_id in (select hangout_id from hangout_members where user_id = ")
        .push_bind(member.to_string())
        .push(")");
}

/// The memories among `ids` that `caller` can see; only those they uploaded when `uploader`.
async fn visible_memories(
    connection: &mut Connection,
    caller: UserId,
    ids: &[MemoryId],
    uploader: bool,
) -> StoreResult<Vec<Memory>> {
    let mut query = Statement::new(format!("select {MEMORY_COLUMNS} from memories m where "));
    push_visible(&mut query, caller);
    if uploader {
        query
            .push(" and m.uploaded_by = ")
            .push_bind(caller.to_string());
    }
    query.push(" and m.id in ");
    push_id_list(&mut query, ids);
    let rows: Vec<MemoryRow> = connection.fetch_all(&query).await.map_err(store_error)?;
    convert(rows)
}

impl MemoryStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql insert_memories", db.system = self.database.backend().system_name()))]
    async fn insert_memories(&self, owner: UserId, memories: &[Memory]) -> StoreResult<()> {
        let Some(first) = memories.first() else {
            return Ok(());
        };
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        for memory in memories {
            if memory.hangout != first.hangout {
                return Err(StoreError::Backend("a batch spans several hangouts".into()));
            }
        }
        if !is_member(&mut transaction, owner, first.hangout).await? {
            return Err(StoreError::NotFound);
        }
        let mut query = Statement::new(
            "insert into memories (id, hangout_id, uploaded_by, file_name, content_type, size, \
             status, file_id, created_at, upload_expires_at) ",
        );
        query.push_values(memories, |row, memory| {
            row.push_bind(memory.id.to_string())
                .push_bind(memory.hangout.to_string())
                .push_bind(memory.uploaded_by.to_string())
                .push_bind(memory.file_name.clone())
                .push_bind(memory.content_type.clone())
                .push_bind(i64::try_from(memory.size).unwrap_or(i64::MAX))
                .push_bind(memory.status.as_str())
                .push_bind(memory.file.map(|file| file.to_string()))
                .push_bind(memory.created_at.as_millis())
                .push_bind(memory.upload_expires_at.as_millis());
        });
        transaction.execute(&query).await.map_err(store_error)?;
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql attach_memory_files", db.system = self.database.backend().system_name()))]
    async fn attach_memory_files(
        &self,
        owner: UserId,
        links: &[(MemoryId, FileId)],
    ) -> StoreResult<()> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        let ids: Vec<MemoryId> = links.iter().map(|(memory, _)| *memory).collect();
        let owned = visible_memories(&mut transaction, owner, &ids, true).await?;
        if owned.len() != links.len() {
            return Err(StoreError::NotFound);
        }
        for (memory, file) in links {
            let attach = Statement::new("update memories set file_id = ? where id = ?")
                .bind(file.to_string())
                .bind(memory.to_string());
            transaction.execute(&attach).await.map_err(store_error)?;
        }
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql mark_memories_uploaded", db.system = self.database.backend().system_name()))]
    async fn mark_memories_uploaded(
        &self,
        owner: UserId,
        ids: &[MemoryId],
    ) -> StoreResult<Vec<Memory>> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        // Those still PENDING are the ones this call uploads: one event each, none for a
        // memory confirmed again.
        let mut pending = Statement::new("select id from memories where status = ");
        pending
            .push_bind(MemoryStatus::Pending.as_str())
            .push(" and uploaded_by = ")
            .push_bind(owner.to_string())
            .push(" and id in ");
        push_id_list(&mut pending, ids);
        let pending: HashSet<String> = transaction
            .fetch_all::<(String,)>(&pending)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        let mut update = Statement::new("update memories set status = ");
        update
            .push_bind(MemoryStatus::Uploaded.as_str())
            .push(" where status = ")
            .push_bind(MemoryStatus::Pending.as_str())
            .push(" and id in ");
        push_id_list(&mut update, ids);
        update
            .push(" and uploaded_by = ")
            .push_bind(owner.to_string());
        update.push(" and hangout_id in (select hangout_id from hangout_members where user_id = ");
        update.push_bind(owner.to_string()).push(")");
        transaction.execute(&update).await.map_err(store_error)?;
        let memories = visible_memories(&mut transaction, owner, ids, true).await?;
        let now = Timestamp::now();
        let uploaded: Vec<Event> = memories
            .iter()
            .filter(|memory| {
                memory.status == MemoryStatus::Uploaded && pending.contains(&memory.id.to_string())
            })
            .map(|memory| {
                Event::of_hangout(memory.hangout, EventKind::MemoryUpdated, None, now)
                    .with_subject(memory.id)
            })
            .collect();
        events::record(&mut transaction, &uploaded).await?;
        self.commit_recorded(transaction).await?;
        Ok(memories)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql memories_by_ids", db.system = self.database.backend().system_name()))]
    async fn memories_by_ids(&self, owner: UserId, ids: &[MemoryId]) -> StoreResult<Vec<Memory>> {
        let mut connection = self.database.read().await.map_err(store_error)?;
        visible_memories(&mut connection, owner, ids, false).await
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql list_memories", db.system = self.database.backend().system_name()))]
    async fn list_memories(
        &self,
        owner: UserId,
        hangout: HangoutId,
        list: &MemoryListQuery,
    ) -> StoreResult<PageRows<Memory>> {
        let mut connection = self.database.read().await.map_err(store_error)?;
        if !is_member(&mut connection, owner, hangout).await? {
            return Err(StoreError::NotFound);
        }
        let counting =
            Statement::new("select count(*) from memories where hangout_id = ? and status = ?")
                .bind(hangout.to_string())
                .bind(list.status.as_str());
        let (total,): (i64,) = connection.fetch_one(&counting).await.map_err(store_error)?;
        let mut query = Statement::new(format!(
            "select {MEMORY_COLUMNS} from memories m where m.hangout_id = "
        ));
        query
            .push_bind(hangout.to_string())
            .push(" and m.status = ")
            .push_bind(list.status.as_str());
        if let Some(after) = &list.after {
            push_after_cursor(&mut query, "m.created_at", "m.id", list.direction, after);
        }
        let order = order_keyword(list.direction);
        query
            .push(&format!(
                " order by m.created_at {order}, m.id {order} limit "
            ))
            .push_bind(i64::from(list.fetch));
        let rows: Vec<MemoryRow> = connection.fetch_all(&query).await.map_err(store_error)?;
        Ok(PageRows {
            rows: convert(rows)?,
            total_count: count(total),
        })
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql first_memories_of_hangouts", db.system = self.database.backend().system_name()))]
    async fn first_memories_of_hangouts(
        &self,
        owner: UserId,
        hangouts: &[HangoutId],
        list: &MemoryListQuery,
    ) -> StoreResult<Vec<(HangoutId, PageRows<Memory>)>> {
        let mut connection = self.database.read().await.map_err(store_error)?;
        // The caller's hangouts among those asked, each with its count of memories in the
        // status asked: one statement for both.
        let mut counting = Statement::new(
            "select h.hangout_id, (select count(*) from memories m where m.hangout_id = h.hangout_id \
             and m.status = ",
        );
        counting
            .push_bind(list.status.as_str())
            .push(") from hangout_members h where h.user_id = ")
            .push_bind(owner.to_string())
            .push(" and h.hangout_id in ");
        push_id_list(&mut counting, hangouts);
        let counted: Vec<(String, i64)> =
            connection.fetch_all(&counting).await.map_err(store_error)?;
        let totals: HashMap<HangoutId, u64> = counted
            .into_iter()
            .map(|(id, total)| {
                let id = HangoutId::parse(&id).ok_or_else(|| corrupt("hangouts.id"))?;
                Ok((id, count(total)))
            })
            .collect::<StoreResult<_>>()?;
        // In the order asked, once each.
        let mut seen = HashSet::with_capacity(totals.len());
        let visible: Vec<HangoutId> = hangouts
            .iter()
            .copied()
            .filter(|hangout| totals.contains_key(hangout) && seen.insert(*hangout))
            .collect();
        if visible.is_empty() {
            return Ok(Vec::new());
        }

        let mut rows: Vec<MemoryRow> = Vec::new();
        for chunk in visible.chunks(HANGOUTS_PER_FIRST_MEMORIES_STATEMENT) {
            let query = first_memories_statement(self.database.backend(), chunk, list);
            rows.extend(
                connection
                    .fetch_all::<MemoryRow>(&query)
                    .await
                    .map_err(store_error)?,
            );
        }
        let mut memories: HashMap<HangoutId, Vec<Memory>> = HashMap::new();
        for memory in convert::<MemoryRow, Memory>(rows)? {
            memories.entry(memory.hangout).or_default().push(memory);
        }
        // SQL leaves the order of a `union all`'s rows open; each hangout's few rows are put
        // back in page order here.
        for page in memories.values_mut() {
            page.sort_unstable_by_key(|memory| (memory.created_at, memory.id));
            if list.direction == Direction::Desc {
                page.reverse();
            }
        }
        Ok(visible
            .into_iter()
            .map(|hangout| {
                let rows = memories.remove(&hangout).unwrap_or_default();
                let total_count = totals.get(&hangout).copied().unwrap_or_default();
                (hangout, PageRows { rows, total_count })
            })
            .collect())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql delete_memories", db.system = self.database.backend().system_name()))]
    async fn delete_memories(
        &self,
        ids: &[MemoryId],
    ) -> StoreResult<Vec<(MemoryId, Option<FileId>)>> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        let mut query = Statement::new("select id, hangout_id, file_id from memories where id in ");
        push_id_list(&mut query, ids);
        let found: Vec<(String, String, Option<String>)> =
            transaction.fetch_all(&query).await.map_err(store_error)?;
        let now = Timestamp::now();
        let mut gone = Vec::with_capacity(found.len());
        let mut deleted = Vec::with_capacity(found.len());
        for (memory, hangout, file) in found {
            let memory = MemoryId::parse(&memory).ok_or_else(|| corrupt("memories.id"))?;
            let hangout =
                HangoutId::parse(&hangout).ok_or_else(|| corrupt("memories.hangout_id"))?;
            let file = file
                .map(|file| FileId::parse(&file).ok_or_else(|| corrupt("memories.file_id")))
                .transpose()?;
            gone.push(memory_deleted(hangout, memory, now));
            deleted.push((memory, file));
        }
        if !deleted.is_empty() {
            let ids: Vec<MemoryId> = deleted.iter().map(|(memory, _)| *memory).collect();
            let mut delete = Statement::new("delete from memories where id in ");
            push_id_list(&mut delete, &ids);
            transaction.execute(&delete).await.map_err(store_error)?;
        }
        file_deletions::owe(
            &mut transaction,
            self.database.backend(),
            deleted.iter().filter_map(|(_, file)| *file),
            now,
        )
        .await?;
        events::record(&mut transaction, &gone).await?;
        self.commit_recorded(transaction).await?;
        Ok(deleted)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql record_memories_processed", db.system = self.database.backend().system_name()))]
    async fn record_memories_processed(&self, files: &[(MemoryId, FileId)]) -> StoreResult<u32> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        let ids: Vec<MemoryId> = files.iter().map(|(memory, _)| *memory).collect();
        let mut query =
            Statement::new("select id, hangout_id, file_id from memories where status = ");
        query
            .push_bind(MemoryStatus::Uploaded.as_str())
            .push(" and id in ");
        push_id_list(&mut query, &ids);
        let found: Vec<(String, String, Option<String>)> =
            transaction.fetch_all(&query).await.map_err(store_error)?;
        let reported: HashSet<(String, String)> = files
            .iter()
            .map(|(memory, file)| (memory.to_string(), file.to_string()))
            .collect();
        let now = Timestamp::now();
        let mut updated = Vec::new();
        for (memory, hangout, file) in found {
            // A memory that holds another file than the one processed is not about it.
            let Some(file) = file else { continue };
            if !reported.contains(&(memory.clone(), file)) {
                continue;
            }
            let hangout =
                HangoutId::parse(&hangout).ok_or_else(|| corrupt("memories.hangout_id"))?;
            updated.push(
                Event::of_hangout(hangout, EventKind::MemoryUpdated, None, now)
                    .with_subject(memory),
            );
        }
        if updated.is_empty() {
            return Ok(0);
        }
        events::record(&mut transaction, &updated).await?;
        self.commit_recorded(transaction).await?;
        Ok(u32::try_from(updated.len()).unwrap_or(u32::MAX))
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql delete_expired_pending_memories", db.system = self.database.backend().system_name()))]
    async fn delete_expired_pending_memories(&self, before: Timestamp) -> StoreResult<u64> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        // At most a bounded batch per sweep, so one sweep's transaction stays short.
        let expired = Statement::new(
            "select id, hangout_id, file_id from memories where status = ? and upload_expires_at < ? \
             order by upload_expires_at limit ?",
        )
        .bind(MemoryStatus::Pending.as_str())
        .bind(before.as_millis())
        .bind(SWEEP_BATCH);
        let expired: Vec<(String, String, Option<String>)> =
            transaction.fetch_all(&expired).await.map_err(store_error)?;
        if expired.is_empty() {
            return Ok(0);
        }
        let now = Timestamp::now();
        let mut gone = Vec::with_capacity(expired.len());
        let mut ids = Vec::with_capacity(expired.len());
        // The upload may have reached file-core although its confirm never reached here.
        let mut files = Vec::new();
        for (memory, hangout, file) in expired {
            let memory = MemoryId::parse(&memory).ok_or_else(|| corrupt("memories.id"))?;
            let hangout =
                HangoutId::parse(&hangout).ok_or_else(|| corrupt("memories.hangout_id"))?;
            if let Some(file) = file {
                files.push(FileId::parse(&file).ok_or_else(|| corrupt("memories.file_id"))?);
            }
            gone.push(memory_deleted(hangout, memory, now));
            ids.push(memory);
        }
        let mut delete = Statement::new("delete from memories where status = ");
        delete
            .push_bind(MemoryStatus::Pending.as_str())
            .push(" and id in ");
        push_id_list(&mut delete, &ids);
        let deleted = transaction.execute(&delete).await.map_err(store_error)?;
        file_deletions::owe(&mut transaction, self.database.backend(), files, now).await?;
        events::record(&mut transaction, &gone).await?;
        self.commit_recorded(transaction).await?;
        Ok(deleted)
    }
}
