//! The `processing_jobs` table: [`JobStore`] for [`SqlStore`].
//!
//! A claim is a conditional update (the job must still be due and unleased), so two workers,
//! in one process or several, never hold the same job at once; whoever loses the race looks for
//! the next job.

use sql_pools::{Statement, impl_from_row};

use crate::{
    domain::{
        file::FileStatus,
        ids::{FileId, MemoryId, UserId},
        processing::{Job, JobOutcome, Processing},
        report::ProcessedFile,
        store::{FileScope, FileStore as _, JobStore, StoreResult},
        time::Timestamp,
    },
    store::{SqlStore, corrupt, push_id_list, store_error},
};

const QUEUED: &str = "QUEUED";
const DEAD: &str = "DEAD";
/// Due jobs looked at per claim; more than one so that workers racing for the oldest job find
/// another instead of giving up.
const CANDIDATES: i64 = 8;
/// The longest error text kept with a job (the MySQL column's size).
const MAX_ERROR_CHARS: usize = 1024;

/// Queues a job for each of the owner's files among `ids` that was just marked UPLOADED (its
/// processing QUEUED) and has none yet; run in the transaction that marked them.
pub(super) fn queue_statement(owner: UserId, ids: &[FileId], now: Timestamp) -> Statement {
    let mut insert = Statement::new(
        "insert into processing_jobs \
         (file_id, state, attempts, not_before, lease_until, last_error, queued_at) \
         select id, ",
    );
    insert
        .push_bind(QUEUED)
        .push(", 0, ")
        .push_bind(now.as_millis())
        .push(", null, null, ")
        .push_bind(now.as_millis())
        .push(" from files where status = ")
        .push_bind(FileStatus::Uploaded.as_str())
        .push(" and processing = ")
        .push_bind(Processing::Queued.as_str())
        .push(" and owner_id = ")
        .push_bind(owner.to_string())
        .push(" and id in ");
    push_id_list(&mut insert, ids);
    insert.push(
        " and not exists (select 1 from processing_jobs queued where queued.file_id = files.id)",
    );
    insert
}

/// Records the report that `file`'s processing ended, unless one is recorded already; run in
/// the transaction that ends it, after the file's update (a file no longer UPLOADED, deleted
/// meanwhile, gets none).
fn report_statement(file: FileId, now: Timestamp) -> Statement {
    Statement::new(
        "insert into processing_reports (file_id, memory_id, ended_at) \
         select id, memory_id, ? from files where id = ? and status = ? \
         and not exists (select 1 from processing_reports reported where reported.file_id = ?)",
    )
    .bind(now.as_millis())
    .bind(file.to_string())
    .bind(FileStatus::Uploaded.as_str())
    .bind(file.to_string())
}

struct ReportRow {
    file_id: String,
    memory_id: String,
}

impl_from_row!(ReportRow { file_id, memory_id });

struct DueRow {
    file_id: String,
    attempts: i64,
}

impl_from_row!(DueRow { file_id, attempts });

fn bounded(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

/// The condition of a due job at `now` (after a `where`): QUEUED, its `not_before` passed,
/// no lease running.
fn push_due(statement: &mut Statement, now: Timestamp) {
    statement
        .push("state = ")
        .push_bind(QUEUED)
        .push(" and not_before <= ")
        .push_bind(now.as_millis())
        .push(" and (lease_until is null or lease_until < ")
        .push_bind(now.as_millis())
        .push(")");
}

impl SqlStore {
    /// Records the report that `file`'s processing ended in `transaction`, commits, and wakes
    /// the relay when a report was recorded.
    async fn commit_with_report(
        &self,
        mut transaction: sql_pools::Transaction,
        file: FileId,
    ) -> StoreResult<()> {
        let reported = transaction
            .execute(&report_statement(file, Timestamp::now()))
            .await
            .map_err(store_error)?;
        transaction.commit().await.map_err(store_error)?;
        if reported > 0 {
            self.reports_recorded.notify_one();
        }
        Ok(())
    }

    /// Claims the first of `candidates` that is still due; the others are left.
    async fn claim_first(
        &self,
        candidates: Vec<DueRow>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<Job>> {
        for candidate in candidates {
            let claim = Statement::new(
                "update processing_jobs set lease_until = ?, attempts = attempts + 1 \
                 where file_id = ? and state = ? and not_before <= ? \
                 and (lease_until is null or lease_until < ?)",
            )
            .bind(lease_until.as_millis())
            .bind(candidate.file_id.clone())
            .bind(QUEUED)
            .bind(now.as_millis())
            .bind(now.as_millis());
            if self.database.execute(&claim).await.map_err(store_error)? == 0 {
                continue;
            }
            let id = FileId::parse(&candidate.file_id)
                .ok_or_else(|| corrupt("processing_jobs.file_id"))?;
            let file = self
                .files_by_ids(FileScope::Named, &[id])
                .await?
                .into_iter()
                .find(|file| file.status == FileStatus::Uploaded);
            let Some(file) = file else {
                // Its file went without taking the job along; nothing to do for it.
                let drop = Statement::new("delete from processing_jobs where file_id = ?")
                    .bind(candidate.file_id);
                self.database.execute(&drop).await.map_err(store_error)?;
                continue;
            };
            let attempt = u32::try_from(candidate.attempts.saturating_add(1)).unwrap_or(u32::MAX);
            return Ok(Some(Job { file, attempt }));
        }
        Ok(None)
    }
}

impl JobStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql claim_job", db.system = self.database.backend().system_name()))]
    async fn claim_job(&self, now: Timestamp, lease_until: Timestamp) -> StoreResult<Option<Job>> {
        let mut due = Statement::new("select file_id, attempts from processing_jobs where ");
        push_due(&mut due, now);
        due.push(" order by not_before, file_id limit ")
            .push_bind(CANDIDATES);
        let candidates: Vec<DueRow> = self.database.fetch_all(&due).await.map_err(store_error)?;
        self.claim_first(candidates, now, lease_until).await
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql claim_job_of", db.system = self.database.backend().system_name()))]
    async fn claim_job_of(
        &self,
        file: FileId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<Job>> {
        let mut due = Statement::new("select file_id, attempts from processing_jobs where ");
        push_due(&mut due, now);
        due.push(" and file_id = ").push_bind(file.to_string());
        let candidates: Vec<DueRow> = self.database.fetch_all(&due).await.map_err(store_error)?;
        self.claim_first(candidates, now, lease_until).await
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql unpublished_jobs", db.system = self.database.backend().system_name()))]
    async fn unpublished_jobs(
        &self,
        now: Timestamp,
        published_before: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<FileId>> {
        let mut due = Statement::new("select file_id, attempts from processing_jobs where ");
        push_due(&mut due, now);
        due.push(" and (published_at is null or published_at < ")
            .push_bind(published_before.as_millis())
            .push(") order by not_before, file_id limit ")
            .push_bind(i64::from(limit));
        let rows: Vec<DueRow> = self.database.fetch_all(&due).await.map_err(store_error)?;
        rows.iter()
            .map(|row| {
                FileId::parse(&row.file_id).ok_or_else(|| corrupt("processing_jobs.file_id"))
            })
            .collect()
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql unpublish_job", db.system = self.database.backend().system_name()))]
    async fn unpublish_job(&self, file: FileId) -> StoreResult<()> {
        let update = Statement::new(
            "update processing_jobs set published_at = null where file_id = ? and state = ?",
        )
        .bind(file.to_string())
        .bind(QUEUED);
        self.database.execute(&update).await.map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql jobs_published", db.system = self.database.backend().system_name()))]
    async fn jobs_published(&self, files: &[FileId], at: Timestamp) -> StoreResult<()> {
        if files.is_empty() {
            return Ok(());
        }
        let mut update = Statement::new("update processing_jobs set published_at = ");
        update.push_bind(at.as_millis()).push(" where file_id in ");
        push_id_list(&mut update, files);
        self.database.execute(&update).await.map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql finish_job", db.system = self.database.backend().system_name()))]
    async fn finish_job(&self, file: FileId, outcome: &JobOutcome) -> StoreResult<bool> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        let update = match outcome {
            JobOutcome::Ready(facts) => Statement::new(
                "update files set processing = ?, width = ?, height = ?, taken_at = ? \
                 where id = ? and status = ?",
            )
            .bind(Processing::Ready.as_str())
            .bind(i64::from(facts.width))
            .bind(i64::from(facts.height))
            .bind(facts.taken_at.map(Timestamp::as_millis)),
            JobOutcome::Failed(_) => {
                Statement::new("update files set processing = ? where id = ? and status = ?")
                    .bind(Processing::Failed.as_str())
            }
        }
        .bind(file.to_string())
        .bind(FileStatus::Uploaded.as_str());
        let updated = transaction.execute(&update).await.map_err(store_error)?;
        let drop =
            Statement::new("delete from processing_jobs where file_id = ?").bind(file.to_string());
        transaction.execute(&drop).await.map_err(store_error)?;
        self.commit_with_report(transaction, file).await?;
        Ok(updated > 0)
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql retry_job", db.system = self.database.backend().system_name()))]
    async fn retry_job(&self, file: FileId, not_before: Timestamp, error: &str) -> StoreResult<()> {
        let update = Statement::new(
            "update processing_jobs set lease_until = null, not_before = ?, last_error = ?, \
             published_at = null where file_id = ?",
        )
        .bind(not_before.as_millis())
        .bind(bounded(error))
        .bind(file.to_string());
        self.database.execute(&update).await.map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql dead_letter", db.system = self.database.backend().system_name()))]
    async fn dead_letter(&self, file: FileId, error: &str) -> StoreResult<()> {
        let mut transaction = self.database.begin().await.map_err(store_error)?;
        let job = Statement::new(
            "update processing_jobs set state = ?, lease_until = null, last_error = ? \
             where file_id = ?",
        )
        .bind(DEAD)
        .bind(bounded(error))
        .bind(file.to_string());
        transaction.execute(&job).await.map_err(store_error)?;
        let failed = Statement::new("update files set processing = ? where id = ? and status = ?")
            .bind(Processing::Failed.as_str())
            .bind(file.to_string())
            .bind(FileStatus::Uploaded.as_str());
        transaction.execute(&failed).await.map_err(store_error)?;
        self.commit_with_report(transaction, file).await?;
        Ok(())
    }

    async fn jobs_queued(&self) {
        self.jobs_queued.notified().await;
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql processing_reports", db.system = self.database.backend().system_name()))]
    async fn processing_reports(&self, limit: u32) -> StoreResult<Vec<ProcessedFile>> {
        let query = Statement::new(
            "select file_id, memory_id from processing_reports \
             order by ended_at, file_id limit ?",
        )
        .bind(i64::from(limit));
        let rows: Vec<ReportRow> = self.database.fetch_all(&query).await.map_err(store_error)?;
        rows.into_iter()
            .map(|row| {
                Ok(ProcessedFile {
                    file: FileId::parse(&row.file_id)
                        .ok_or_else(|| corrupt("processing_reports.file_id"))?,
                    memory: MemoryId::parse(&row.memory_id)
                        .ok_or_else(|| corrupt("processing_reports.memory_id"))?,
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql reports_delivered", db.system = self.database.backend().system_name()))]
    async fn reports_delivered(&self, files: &[FileId]) -> StoreResult<()> {
        let mut delete = Statement::new("delete from processing_reports where file_id in ");
        push_id_list(&mut delete, files);
        self.database.execute(&delete).await.map_err(store_error)?;
        Ok(())
    }

    async fn reports_recorded(&self) {
        self.reports_recorded.notified().await;
    }
}
