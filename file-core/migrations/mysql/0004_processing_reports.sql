-- The outbox of reports to hangout-core that a file's processing ended (READY or FAILED),
-- written in the transaction that ends it and removed once hangout-core has taken it.
create table processing_reports (
    file_id char(36) character set ascii collate ascii_bin not null primary key,
    memory_id char(36) character set ascii collate ascii_bin not null,
    -- When processing ended (UTC milliseconds); reports go out oldest first.
    ended_at bigint not null,
    key processing_reports_ended (ended_at, file_id)
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;
