-- Sharing: members with roles and RSVPs, and invitations.

create table hangout_members (
    hangout_id text not null references hangouts (id) on delete cascade,
    user_id text not null,
    -- OWNER (exactly one per hangout, the same as hangouts.owner_id), CO_HOST or GUEST.
    role text not null,
    -- NO_REPLY, GOING, MAYBE or NOT_GOING.
    rsvp text not null,
    joined_at integer not null,
    -- The hangout's sort keys, copied here so one member's hangouts page straight off the
    -- indexes below as they did off hangouts (owner_id, ...) when only owners saw hangouts.
    -- hangout_date follows every change of hangouts.hangout_date, in the same transaction.
    hangout_created_at integer not null,
    hangout_date integer not null,
    primary key (hangout_id, user_id)
);
create index hangout_members_user_created on hangout_members (user_id, hangout_created_at, hangout_id);
create index hangout_members_user_date on hangout_members (user_id, hangout_date, hangout_id);

-- Every existing hangout's owner becomes its OWNER member.
insert into hangout_members (hangout_id, user_id, role, rsvp, joined_at, hangout_created_at, hangout_date)
select id, owner_id, 'OWNER', 'GOING', created_at, created_at, hangout_date from hangouts;

drop index hangouts_owner_created;
drop index hangouts_owner_date;
create index hangouts_owner on hangouts (owner_id);

create table invitations (
    id text primary key not null,
    hangout_id text not null references hangouts (id) on delete cascade,
    -- CO_HOST or GUEST.
    role text not null,
    -- Lower-cased address of an invitation to one person; null for a link.
    email text,
    -- SHA-256 of a link's code; the code itself is never stored. Null for a person.
    code_hash text unique,
    invited_by text not null,
    -- PENDING, ACCEPTED, DECLINED or REVOKED; EXPIRED and used up are read off the columns.
    state text not null,
    -- For a link: how many may accept it (null: unlimited), and how many did.
    max_uses integer,
    uses integer not null,
    created_at integer not null,
    expires_at integer
);
create index invitations_hangout_created on invitations (hangout_id, created_at, id);
create index invitations_email_created on invitations (email, created_at, id);

-- Who was removed from a hangout, and when: an invitation made before that does not let them
-- back in (a removed guest cannot rejoin with the link they joined by).
create table hangout_removals (
    hangout_id text not null references hangouts (id) on delete cascade,
    user_id text not null,
    removed_at integer not null,
    primary key (hangout_id, user_id)
);

-- When each user created invitations lately: their rate (50 an hour) is counted here, so that
-- deleting a hangout, which deletes its invitations, does not reset it. Rows older than the
-- window are pruned as the user creates more.
create table invitations_created (
    user_id text not null,
    created_at integer not null
);
create index invitations_created_user on invitations_created (user_id, created_at);
