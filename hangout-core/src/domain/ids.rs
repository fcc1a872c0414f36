//! Typed identifiers. Every id is a UUID, v7 for new ones so that keys sort by creation time.

use service_kit::id_type;

id_type!(
    /// A user account.
    UserId
);
id_type!(
    /// One refresh token of a session family.
    SessionId
);
id_type!(
    /// A session: every refresh token rotated from one sign-in shares it.
    SessionFamilyId
);
id_type!(
    /// A hangout.
    HangoutId
);
id_type!(
    /// An activity of one user.
    ActivityId
);
id_type!(
    /// A memory (photo) record of a hangout.
    MemoryId
);
id_type!(
    /// An invitation to a hangout.
    InvitationId
);
id_type!(
    /// A file of file-core; opaque here.
    FileId
);
