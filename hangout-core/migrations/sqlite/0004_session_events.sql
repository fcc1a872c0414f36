-- Events of a user's session (its revocation, which closes that session's sockets) belong to
-- no hangout: hangout_id becomes nullable. SQLite cannot relax a column, so the table is
-- rebuilt with its rows.
create table events_rebuilt (
    seq integer primary key not null,
    -- Null for an event of a user's session.
    hangout_id text,
    -- Set for an event addressed to one user (their viewer events), null for an event of the
    -- hangout (delivered to its members).
    viewer_id text,
    kind text not null,
    -- The member, memory, invitation or session the event is about, if any.
    subject_id text,
    -- DELETED, LEFT or REMOVED for the events that end a membership.
    reason text,
    occurred_at integer not null
);
insert into events_rebuilt (seq, hangout_id, viewer_id, kind, subject_id, reason, occurred_at)
select seq, hangout_id, viewer_id, kind, subject_id, reason, occurred_at from events;
drop table events;
alter table events_rebuilt rename to events;
create index events_occurred on events (occurred_at);
