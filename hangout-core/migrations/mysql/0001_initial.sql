-- hangout-core schema (MySQL 8 / MariaDB). Ids are UUID text; instants are UTC milliseconds.
-- Text columns use a binary collation so comparisons behave as in SQLite: case-insensitive
-- uniqueness is expressed with explicit lower-cased key columns instead.

create table users (
    id char(36) character set ascii collate ascii_bin not null primary key,
    name varchar(255) not null,
    -- Lower-cased by the domain, so this index makes emails unique regardless of case.
    email varchar(320) not null,
    -- argon2id PHC string, or a bcrypt hash carried over from the Go system until next sign-in.
    password_hash varchar(255) not null,
    created_at bigint not null,
    updated_at bigint not null,
    unique key users_email (email)
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

create table sessions (
    id char(36) character set ascii collate ascii_bin not null primary key,
    -- Every token rotated from one sign-in shares the family; reuse revokes the family.
    family_id char(36) character set ascii collate ascii_bin not null,
    user_id char(36) character set ascii collate ascii_bin not null,
    -- SHA-256 of the refresh token; the token itself is never stored.
    token_hash char(64) character set ascii collate ascii_bin not null,
    created_at bigint not null,
    expires_at bigint not null,
    rotated_at bigint null,
    revoked_at bigint null,
    unique key sessions_token_hash (token_hash),
    key sessions_family (family_id),
    constraint sessions_user foreign key (user_id) references users (id) on delete cascade
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

create table hangouts (
    id char(36) character set ascii collate ascii_bin not null primary key,
    owner_id char(36) character set ascii collate ascii_bin not null,
    title varchar(255) not null,
    -- Markdown as written (at most 10000 characters); null when there is none. A varchar, not
    -- TEXT: sqlx's Any driver reads every TEXT column of MySQL back as a BLOB.
    description varchar(10000) null,
    hangout_date bigint not null,
    status varchar(16) not null,
    created_at bigint not null,
    updated_at bigint not null,
    -- Keyset pagination of one owner's hangouts in both orders.
    key hangouts_owner_created (owner_id, created_at, id),
    key hangouts_owner_date (owner_id, hangout_date, id)
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

create table activities (
    id char(36) character set ascii collate ascii_bin not null primary key,
    owner_id char(36) character set ascii collate ascii_bin not null,
    name varchar(255) not null,
    -- Lower-cased name: unique per owner (not globally), so names are unique case-insensitively.
    name_key varchar(255) not null,
    created_at bigint not null,
    unique key activities_owner_name (owner_id, name_key)
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

create table hangout_activities (
    hangout_id char(36) character set ascii collate ascii_bin not null,
    activity_id char(36) character set ascii collate ascii_bin not null,
    primary key (hangout_id, activity_id),
    key hangout_activities_activity (activity_id, hangout_id),
    constraint hangout_activities_hangout foreign key (hangout_id) references hangouts (id) on delete cascade,
    constraint hangout_activities_activity foreign key (activity_id) references activities (id) on delete cascade
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;

create table memories (
    id char(36) character set ascii collate ascii_bin not null primary key,
    hangout_id char(36) character set ascii collate ascii_bin not null,
    uploaded_by char(36) character set ascii collate ascii_bin not null,
    file_name varchar(255) not null,
    content_type varchar(64) not null,
    size bigint not null,
    status varchar(16) not null,
    -- file-core's id of the bytes; null until recorded.
    file_id char(36) character set ascii collate ascii_bin null,
    created_at bigint not null,
    -- End of the upload window; PENDING rows are swept some time after it.
    upload_expires_at bigint not null,
    -- Deleted memories are removed, so their names can be used again.
    unique key memories_hangout_file_name (hangout_id, file_name),
    key memories_hangout_status_created (hangout_id, status, created_at, id),
    key memories_status_expiry (status, upload_expires_at),
    constraint memories_hangout foreign key (hangout_id) references hangouts (id) on delete cascade
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;
