//! The `files` table: [`FileStore`] for [`SqlStore`].

use sql_pools::Statement;

use crate::{
    domain::{
        file::{FileRecord, FileStatus},
        ids::{FileId, UserId},
        processing::Processing,
        store::{FileScope, FileStore, StoreError, StoreResult},
        time::Timestamp,
    },
    store::{
        SqlStore, corrupt, jobs, push_id_list,
        rows::{FILE_COLUMNS, FileRow, convert},
        store_error,
    },
};

/// `select … from files where owner_id = ? and id in (…)`.
/// Appends the condition of `scope` (after a `where`, before more conditions).
fn push_scope(query: &mut Statement, scope: FileScope) {
    match scope {
        FileScope::Owner(owner) => {
            query
                .push("owner_id = ")
                .push_bind(owner.to_string())
                .push(" and ");
        }
        FileScope::Named => {}
    }
}

fn files_query(scope: FileScope, ids: &[FileId]) -> Statement {
    let mut query = Statement::new(format!("select {FILE_COLUMNS} from files where "));
    push_scope(&mut query, scope);
    query.push("id in ");
    push_id_list(&mut query, ids);
    query
}

impl FileStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql insert_files", db.system = self.database.backend().system_name()))]
    async fn insert_files(&self, files: &[FileRecord]) -> StoreResult<()> {
        if files.is_empty() {
            return Ok(());
        }
        let mut query = Statement::new(format!("insert into files ({FILE_COLUMNS}) "));
        let mut sizes = Vec::with_capacity(files.len());
        for file in files {
            sizes.push(
                i64::try_from(file.size)
                    .map_err(|_| StoreError::Backend("file size out of range".into()))?,
            );
        }
        query.push_values(files.iter().zip(sizes), |row, (file, size)| {
            row.push_bind(file.id.to_string())
                .push_bind(file.owner.to_string())
                .push_bind(file.hangout.to_string())
                .push_bind(file.memory.to_string())
                .push_bind(file.file_name.clone())
                .push_bind(file.image.content_type())
                .push_bind(size)
                .push_bind(file.md5.to_base64())
                .push_bind(file.object_key.clone())
                .push_bind(file.status.as_str())
                .push_bind(file.created_at.as_millis())
                .push_bind(file.upload_expires_at.as_millis())
                .push_bind(file.processing.map(Processing::as_str))
                .push_bind(file.facts.map(|facts| i64::from(facts.width)))
                .push_bind(file.facts.map(|facts| i64::from(facts.height)))
                .push_bind(
                    file.facts
                        .and_then(|facts| facts.taken_at)
                        .map(Timestamp::as_millis),
                );
        });
        // One statement inserts the whole batch, so it is atomic on both backends; the
        // transaction makes that explicit and keeps it so if the insert is ever split.
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        transaction.execute(&query).await.map_err(store_error)?;
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql files_by_ids", db.system = self.database.backend().system_name()))]
    async fn files_by_ids(&self, scope: FileScope, ids: &[FileId]) -> StoreResult<Vec<FileRecord>> {
        let rows: Vec<FileRow> = self
            .database
            .fetch_all(&files_query(scope, ids))
            .await
            .map_err(store_error)?;
        convert(rows)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql mark_uploaded", db.system = self.database.backend().system_name()))]
    async fn mark_uploaded(&self, owner: UserId, ids: &[FileId]) -> StoreResult<()> {
        // Marking files and queueing their jobs can deadlock on MySQL with a worker claiming
        // jobs (their row locks meet in the other order): InnoDB rolls one back, so run it
        // again.
        let marked = sql_pools::retry_conflicts(|| async {
            let mut transaction = self.database.begin().await?;
            let mut update = Statement::new("update files set status = ");
            update
                .push_bind(FileStatus::Uploaded.as_str())
                .push(", processing = ")
                .push_bind(Processing::Queued.as_str())
                .push(" where status = ")
                .push_bind(FileStatus::Pending.as_str())
                .push(" and owner_id = ")
                .push_bind(owner.to_string())
                .push(" and id in ");
            push_id_list(&mut update, ids);
            let marked = transaction.execute(&update).await?;
            if marked > 0 {
                transaction
                    .execute(&jobs::queue_statement(owner, ids, Timestamp::now()))
                    .await?;
            }
            transaction.commit().await?;
            Ok(marked)
        })
        .await
        .map_err(store_error)?;
        if marked > 0 {
            self.jobs_queued.notify_one();
        }
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql mark_deleting", db.system = self.database.backend().system_name()))]
    async fn mark_deleting(
        &self,
        scope: FileScope,
        ids: &[FileId],
    ) -> StoreResult<Vec<FileRecord>> {
        // As `mark_uploaded`: a deadlock with a worker's claim is run again.
        let rows: Vec<FileRow> = sql_pools::retry_conflicts(|| async {
            let mut transaction = self.database.begin().await?;
            let mut update = Statement::new("update files set status = ");
            update
                .push_bind(FileStatus::Deleting.as_str())
                .push(" where ");
            push_scope(&mut update, scope);
            update.push("id in ");
            push_id_list(&mut update, ids);
            transaction.execute(&update).await?;
            let rows: Vec<FileRow> = transaction.fetch_all(&files_query(scope, ids)).await?;
            let claimed: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
            let mut drop_jobs = Statement::new("delete from processing_jobs where file_id in ");
            push_id_list(&mut drop_jobs, &claimed);
            transaction.execute(&drop_jobs).await?;
            transaction.commit().await?;
            Ok(rows)
        })
        .await
        .map_err(store_error)?;
        convert(rows)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql mark_expired_pending_deleting", db.system = self.database.backend().system_name()))]
    async fn mark_expired_pending_deleting(&self, before: Timestamp) -> StoreResult<u64> {
        let update = Statement::new(
            "update files set status = ? where status = ? and upload_expires_at < ?",
        )
        .bind(FileStatus::Deleting.as_str())
        .bind(FileStatus::Pending.as_str())
        .bind(before.as_millis());
        self.database.execute(&update).await.map_err(store_error)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql deleting_files", db.system = self.database.backend().system_name()))]
    async fn deleting_files(
        &self,
        window_ended_before: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<FileRecord>> {
        let query = Statement::new(format!(
            "select {FILE_COLUMNS} from files where status = ? and upload_expires_at < ? \
             order by created_at, id limit ?"
        ))
        .bind(FileStatus::Deleting.as_str())
        .bind(window_ended_before.as_millis())
        .bind(i64::from(limit));
        let rows: Vec<FileRow> = self.database.fetch_all(&query).await.map_err(store_error)?;
        convert(rows)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql remove_deleted", db.system = self.database.backend().system_name()))]
    async fn remove_deleted(&self, id: FileId) -> StoreResult<()> {
        let delete = Statement::new("delete from files where id = ? and status = ?")
            .bind(id.to_string())
            .bind(FileStatus::Deleting.as_str());
        self.database.execute(&delete).await.map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql uploaded_files", db.system = self.database.backend().system_name()))]
    async fn uploaded_files(
        &self,
        created_before: Timestamp,
        after: Option<FileId>,
        limit: u32,
    ) -> StoreResult<Vec<FileId>> {
        let mut query = Statement::new("select id from files where status = ");
        query
            .push_bind(FileStatus::Uploaded.as_str())
            .push(" and created_at < ")
            .push_bind(created_before.as_millis());
        if let Some(after) = after {
            query.push(" and id > ").push_bind(after.to_string());
        }
        query
            .push(" order by id limit ")
            .push_bind(i64::from(limit));
        let rows: Vec<(String,)> = self.database.fetch_all(&query).await.map_err(store_error)?;
        rows.into_iter()
            .map(|(id,)| FileId::parse(&id).ok_or_else(|| corrupt("files.id")))
            .collect()
    }
}
