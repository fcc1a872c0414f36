-- Live updates: the transactional outbox. Every change a subscriber can see records its events
-- here in the change's own transaction; the event relays read them in `seq` order.

-- The last sequence number given out. Each recording transaction takes the next numbers from
-- this one row (its row lock held to commit), so numbers are handed out in commit order and a
-- rollback gives its numbers back: readers never meet a gap that a later commit would fill,
-- which an AUTO_INCREMENT key does not promise.
create table event_sequence (
    id int not null primary key,
    last_seq bigint not null
) engine = InnoDB;
insert into event_sequence (id, last_seq) values (1, 0);

create table events (
    seq bigint not null primary key,
    hangout_id char(36) character set ascii collate ascii_bin not null,
    -- Set for an event addressed to one user (their viewer events), null for an event of the
    -- hangout (delivered to its members).
    viewer_id char(36) character set ascii collate ascii_bin null,
    kind varchar(32) not null,
    -- The member, memory or invitation the event is about, if any.
    subject_id char(36) character set ascii collate ascii_bin null,
    -- DELETED, LEFT or REMOVED for the events that end a membership.
    reason varchar(16) null,
    occurred_at bigint not null,
    key events_occurred (occurred_at)
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

-- Where each relay to a broker has got to: the last `seq` the broker confirmed.
create table event_relays (
    name varchar(64) not null primary key,
    last_seq bigint not null
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;
