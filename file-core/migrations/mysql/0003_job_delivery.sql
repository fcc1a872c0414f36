-- Delivery of processing jobs through a broker: when the message for a job last went out
-- (null: none is out, the job waits to be published).
alter table processing_jobs add column published_at bigint null;
