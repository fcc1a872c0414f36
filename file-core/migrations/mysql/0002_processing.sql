-- Photo processing: each UPLOADED file's processing state and what it learned, and the job
-- queue of the workers that make renditions.

alter table files
    -- QUEUED, READY or FAILED; null until the file is UPLOADED.
    add column processing varchar(16) character set ascii collate ascii_bin null,
    -- Pixels after orientation, and when the photo was taken (UTC milliseconds); set when READY.
    add column width bigint null,
    add column height bigint null,
    add column taken_at bigint null;

create table processing_jobs (
    file_id char(36) character set ascii collate ascii_bin not null primary key,
    -- QUEUED (claimable once not_before has passed and no lease runs) or DEAD (out of attempts).
    state varchar(16) character set ascii collate ascii_bin not null,
    -- Attempts started so far.
    attempts bigint not null,
    not_before bigint not null,
    -- The claim of a worker runs until then; a worker that died leaves it to run out.
    lease_until bigint null,
    last_error varchar(1024) null,
    queued_at bigint not null,
    key processing_jobs_due (state, not_before)
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

-- Files confirmed before processing existed are processed too.
update files set processing = 'QUEUED' where status = 'UPLOADED';
insert into processing_jobs (file_id, state, attempts, not_before, lease_until, last_error, queued_at)
select id, 'QUEUED', 0, 0, null, null, created_at from files where status = 'UPLOADED';
