-- Live updates: the transactional outbox. Every change a subscriber can see records its events
-- here in the change's own transaction; the event relays read them in `seq` order.

-- The last sequence number given out. Each recording transaction takes the next numbers from
-- this one row, so numbers are handed out in commit order and a rollback gives its numbers
-- back: readers never meet a gap that a later commit would fill.
create table event_sequence (
    id integer primary key not null,
    last_seq integer not null
);
insert into event_sequence (id, last_seq) values (1, 0);

create table events (
    seq integer primary key not null,
    hangout_id text not null,
    -- Set for an event addressed to one user (their viewer events), null for an event of the
    -- hangout (delivered to its members).
    viewer_id text,
    kind text not null,
    -- The member, memory or invitation the event is about, if any.
    subject_id text,
    -- DELETED, LEFT or REMOVED for the events that end a membership.
    reason text,
    occurred_at integer not null
);
create index events_occurred on events (occurred_at);

-- Where each relay to a broker has got to: the last `seq` the broker confirmed.
create table event_relays (
    name text primary key not null,
    last_seq integer not null
);
