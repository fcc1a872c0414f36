-- Sharing: members with roles and RSVPs, and invitations.

create table hangout_members (
    hangout_id char(36) character set ascii collate ascii_bin not null,
    user_id char(36) character set ascii collate ascii_bin not null,
    -- OWNER (exactly one per hangout, the same as hangouts.owner_id), CO_HOST or GUEST.
    role varchar(16) not null,
    -- NO_REPLY, GOING, MAYBE or NOT_GOING.
    rsvp varchar(16) not null,
    joined_at bigint not null,
    -- The hangout's sort keys, copied here so one member's hangouts page straight off the
    -- indexes below as they did off hangouts (owner_id, ...) when only owners saw hangouts.
    -- hangout_date follows every change of hangouts.hangout_date, in the same transaction.
    hangout_created_at bigint not null,
    hangout_date bigint not null,
    primary key (hangout_id, user_id),
    key hangout_members_user_created (user_id, hangout_created_at, hangout_id),
    key hangout_members_user_date (user_id, hangout_date, hangout_id),
    constraint hangout_members_hangout foreign key (hangout_id) references hangouts (id) on delete cascade
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

-- Every existing hangout's owner becomes its OWNER member.
insert into hangout_members (hangout_id, user_id, role, rsvp, joined_at, hangout_created_at, hangout_date)
select id, owner_id, 'OWNER', 'GOING', created_at, created_at, hangout_date from hangouts;

alter table hangouts
    drop key hangouts_owner_created,
    drop key hangouts_owner_date,
    add key hangouts_owner (owner_id);

create table invitations (
    id char(36) character set ascii collate ascii_bin not null primary key,
    hangout_id char(36) character set ascii collate ascii_bin not null,
    -- CO_HOST or GUEST.
    role varchar(16) not null,
    -- Lower-cased address of an invitation to one person; null for a link.
    email varchar(320) null,
    -- SHA-256 of a link's code; the code itself is never stored. Null for a person.
    code_hash char(64) character set ascii collate ascii_bin null,
    invited_by char(36) character set ascii collate ascii_bin not null,
    -- PENDING, ACCEPTED, DECLINED or REVOKED; EXPIRED and used up are read off the columns.
    state varchar(16) not null,
    -- For a link: how many may accept it (null: unlimited), and how many did.
    max_uses int null,
    uses int not null,
    created_at bigint not null,
    expires_at bigint null,
    unique key invitations_code_hash (code_hash),
    key invitations_hangout_created (hangout_id, created_at, id),
    key invitations_email_created (email, created_at, id),
    constraint invitations_hangout foreign key (hangout_id) references hangouts (id) on delete cascade
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

-- Who was removed from a hangout, and when: an invitation made before that does not let them
-- back in (a removed guest cannot rejoin with the link they joined by).
create table hangout_removals (
    hangout_id char(36) character set ascii collate ascii_bin not null,
    user_id char(36) character set ascii collate ascii_bin not null,
    removed_at bigint not null,
    primary key (hangout_id, user_id),
    constraint hangout_removals_hangout foreign key (hangout_id) references hangouts (id) on delete cascade
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

-- When each user created invitations lately: their rate (50 an hour) is counted here, so that
-- deleting a hangout, which deletes its invitations, does not reset it. Rows older than the
-- window are pruned as the user creates more.
create table invitations_created (
    user_id char(36) character set ascii collate ascii_bin not null,
    created_at bigint not null,
    key invitations_created_user (user_id, created_at)
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;
