-- hangout-core schema (SQLite). Ids are UUID text; instants are UTC milliseconds.

create table users (
    id text primary key not null,
    name text not null,
    -- Lower-cased by the domain, so this index makes emails unique regardless of case.
    email text not null unique,
    -- argon2id PHC string, or a bcrypt hash carried over from the Go system until next sign-in.
    password_hash text not null,
    created_at integer not null,
    updated_at integer not null
);

create table sessions (
    id text primary key not null,
    -- Every token rotated from one sign-in shares the family; reuse revokes the family.
    family_id text not null,
    user_id text not null references users (id) on delete cascade,
    -- SHA-256 of the refresh token; the token itself is never stored.
    token_hash text not null unique,
    created_at integer not null,
    expires_at integer not null,
    rotated_at integer,
    revoked_at integer
);
create index sessions_family on sessions (family_id);

create table hangouts (
    id text primary key not null,
    owner_id text not null,
    title text not null,
    -- Markdown as written; null when there is none.
    description text,
    hangout_date integer not null,
    status text not null,
    created_at integer not null,
    updated_at integer not null
);
-- Keyset pagination of one owner's hangouts in both orders.
create index hangouts_owner_created on hangouts (owner_id, created_at, id);
create index hangouts_owner_date on hangouts (owner_id, hangout_date, id);

create table activities (
    id text primary key not null,
    owner_id text not null,
    name text not null,
    -- Lower-cased name: unique per owner (not globally), so names are unique case-insensitively.
    name_key text not null,
    created_at integer not null,
    unique (owner_id, name_key)
);

create table hangout_activities (
    hangout_id text not null references hangouts (id) on delete cascade,
    activity_id text not null references activities (id) on delete cascade,
    primary key (hangout_id, activity_id)
);
create index hangout_activities_activity on hangout_activities (activity_id, hangout_id);

create table memories (
    id text primary key not null,
    hangout_id text not null references hangouts (id) on delete cascade,
    uploaded_by text not null,
    file_name text not null,
    content_type text not null,
    size integer not null,
    status text not null,
    -- file-core's id of the bytes; null until recorded.
    file_id text,
    created_at integer not null,
    -- End of the upload window; PENDING rows are swept some time after it.
    upload_expires_at integer not null,
    -- Deleted memories are removed, so their names can be used again.
    unique (hangout_id, file_name)
);
create index memories_hangout_status_created on memories (hangout_id, status, created_at, id);
create index memories_status_expiry on memories (status, upload_expires_at);
