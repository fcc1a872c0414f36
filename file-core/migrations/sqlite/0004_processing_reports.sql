-- The outbox of reports to hangout-core that a file's processing ended (READY or FAILED),
-- written in the transaction that ends it and removed once hangout-core has taken it.
create table processing_reports (
    file_id text primary key not null,
    memory_id text not null,
    -- When processing ended (UTC milliseconds); reports go out oldest first.
    ended_at integer not null
);
create index processing_reports_ended on processing_reports (ended_at, file_id);
