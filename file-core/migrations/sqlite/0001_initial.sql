-- file-core schema (SQLite). Ids are UUID text; instants are UTC milliseconds.

create table files (
    id text primary key not null,
    -- The user on whose behalf the upload was created; every read and change filters by it.
    owner_id text not null,
    hangout_id text not null,
    memory_id text not null,
    -- As the client named it; never part of the object key.
    file_name text not null,
    content_type text not null,
    size integer not null,
    -- Base64 of the declared MD5 digest.
    md5 text not null,
    -- Made by the service from ids: hangouts/{hangout}/memories/{memory}/{file}.{ext}.
    object_key text not null,
    -- PENDING, UPLOADED or DELETING.
    status text not null,
    created_at integer not null,
    -- End of the upload window; PENDING rows are swept some time after it.
    upload_expires_at integer not null
);
create index files_owner on files (owner_id, id);
create index files_status_expiry on files (status, upload_expires_at);
