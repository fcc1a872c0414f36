-- Photo processing: each UPLOADED file's processing state and what it learned, and the job
-- queue of the workers that make renditions.

-- QUEUED, READY or FAILED; null until the file is UPLOADED.
alter table files add column processing text;
-- Pixels after orientation, and when the photo was taken (UTC milliseconds); set when READY.
alter table files add column width integer;
alter table files add column height integer;
alter table files add column taken_at integer;

create table processing_jobs (
    file_id text primary key not null,
    -- QUEUED (claimable once not_before has passed and no lease runs) or DEAD (out of attempts).
    state text not null,
    -- Attempts started so far.
    attempts integer not null,
    not_before integer not null,
    -- The claim of a worker runs until then; a worker that died leaves it to run out.
    lease_until integer,
    last_error text,
    queued_at integer not null
);
create index processing_jobs_due on processing_jobs (state, not_before);

-- Files confirmed before processing existed are processed too.
update files set processing = 'QUEUED' where status = 'UPLOADED';
insert into processing_jobs (file_id, state, attempts, not_before, lease_until, last_error, queued_at)
select id, 'QUEUED', 0, 0, null, null, created_at from files where status = 'UPLOADED';
