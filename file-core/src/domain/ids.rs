//! Typed identifiers. Every id is a UUID; files get v7 ids so that keys sort by creation time.
//! Hangout, memory and user ids come from hangout-core and are opaque here.

use service_kit::id_type;

id_type!(
    /// The user on whose behalf a call runs; every file belongs to one.
    UserId
);
id_type!(
    /// A hangout of hangout-core.
    HangoutId
);
id_type!(
    /// A memory record of hangout-core; each file holds the bytes of one.
    MemoryId
);
id_type!(
    /// A file: one object in the bucket and its record.
    FileId
);
