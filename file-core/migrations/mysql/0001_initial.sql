-- file-core schema (MySQL 8 / MariaDB). Ids are UUID text; instants are UTC milliseconds.
-- Text columns use a binary collation so comparisons behave as in SQLite.

create table files (
    id char(36) character set ascii collate ascii_bin not null primary key,
    -- The user on whose behalf the upload was created; every read and change filters by it.
    owner_id char(36) character set ascii collate ascii_bin not null,
    hangout_id char(36) character set ascii collate ascii_bin not null,
    memory_id char(36) character set ascii collate ascii_bin not null,
    -- As the client named it; never part of the object key.
    file_name varchar(255) not null,
    content_type varchar(32) character set ascii collate ascii_bin not null,
    size bigint not null,
    -- Base64 of the declared MD5 digest.
    md5 char(24) character set ascii collate ascii_bin not null,
    -- Made by the service from ids: hangouts/{hangout}/memories/{memory}/{file}.{ext}.
    object_key varchar(255) character set ascii collate ascii_bin not null,
    -- PENDING, UPLOADED or DELETING.
    status varchar(16) not null,
    created_at bigint not null,
    -- End of the upload window; PENDING rows are swept some time after it.
    upload_expires_at bigint not null,
    key files_owner (owner_id, id),
    key files_status_expiry (status, upload_expires_at)
) engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin;
