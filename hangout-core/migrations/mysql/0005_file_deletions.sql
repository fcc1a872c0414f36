-- Reliability: the file deletions hangout-core owes file-core. Deleting memories (one by one,
-- with their hangout, or by the sweeper of abandoned uploads) records their files here in the
-- same transaction; file-core takes them over its mTLS channel (`FileReportService`), deletes
-- the files, and confirms, which removes the rows. So no file outlives its memory because a
-- call failed or a process died between the two services.
create table file_deletions (
    file_id char(36) character set ascii collate ascii_bin not null primary key,
    owed_since bigint not null,
    key file_deletions_owed (owed_since)
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

-- file-core's reconciliation asks which of its files a memory still holds.
create index memories_file on memories (file_id);
