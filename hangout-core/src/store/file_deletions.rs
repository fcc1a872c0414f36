//! The file deletions owed to file-core (see `domain::file_deletion`): written by the changes
//! that delete memories, in their transaction, and read and forgotten by file-core's calls.

use sql_pools::{Connection, Statement};

use crate::{
    domain::{file_deletion::FileDeletionStore, ids::FileId, store::StoreResult, time::Timestamp},
    store::{Backend, SqlStore, corrupt, push_id_list, store_error},
};

/// Records that the files of deleted memories are owed a deletion (a file recorded twice
/// stays one row).
pub(super) async fn owe(
    connection: &mut Connection,
    backend: Backend,
    files: impl IntoIterator<Item = FileId>,
    at: Timestamp,
) -> StoreResult<()> {
    let mut files: Vec<FileId> = files.into_iter().collect();
    files.sort_unstable();
    files.dedup();
    if files.is_empty() {
        return Ok(());
    }
    let mut insert = Statement::new(match backend {
        Backend::MySql => "insert ignore into file_deletions (file_id, owed_since) ",
        Backend::Sqlite => "insert or ignore into file_deletions (file_id, owed_since) ",
    });
    insert.push_values(files.iter(), |row, file| {
        row.push_bind(file.to_string()).push_bind(at.as_millis());
    });
    connection.execute(&insert).await.map_err(store_error)?;
    Ok(())
}

fn parse_files(rows: Vec<(String,)>, column: &'static str) -> StoreResult<Vec<FileId>> {
    rows.into_iter()
        .map(|(file,)| FileId::parse(&file).ok_or_else(|| corrupt(column)))
        .collect()
}

impl FileDeletionStore for SqlStore {
    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql owed_file_deletions", db.system = self.database.backend().system_name()))]
    async fn owed_file_deletions(&self, limit: usize) -> StoreResult<Vec<FileId>> {
        let query = Statement::new(
            "select file_id from file_deletions order by owed_since, file_id limit ?",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows: Vec<(String,)> = self.database.fetch_all(&query).await.map_err(store_error)?;
        parse_files(rows, "file_deletions.file_id")
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql forget_file_deletions", db.system = self.database.backend().system_name()))]
    async fn forget_file_deletions(&self, files: &[FileId]) -> StoreResult<()> {
        let mut delete = Statement::new("delete from file_deletions where file_id in ");
        push_id_list(&mut delete, files);
        self.database.execute(&delete).await.map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "sql", skip_all, fields(otel.name = "sql held_files", db.system = self.database.backend().system_name()))]
    async fn held_files(&self, files: &[FileId]) -> StoreResult<Vec<FileId>> {
        let mut query = Statement::new("select distinct file_id from memories where file_id in ");
        push_id_list(&mut query, files);
        let rows: Vec<(String,)> = self.database.fetch_all(&query).await.map_err(store_error)?;
        parse_files(rows, "memories.file_id")
    }
}
