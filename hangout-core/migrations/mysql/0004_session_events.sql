-- Events of a user's session (its revocation, which closes that session's sockets) belong to
-- no hangout: hangout_id becomes nullable.
alter table events
    modify hangout_id char(36) character set ascii collate ascii_bin null;
