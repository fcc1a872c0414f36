//! Typed identifiers. Every id is a UUID; files get v7 ids so that keys sort by creation time.
//! Hangout, memory and user ids come from hangout-core and are opaque here.

use std::fmt;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            #[must_use]
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the canonical hyphenated form (any case).
            #[must_use]
            pub fn parse(text: &str) -> Option<Self> {
                Uuid::try_parse(text).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(formatter)
            }
        }
    };
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_lower_case_and_parse_back() {
        let id = FileId::generate();
        let text = id.to_string();
        assert_eq!(text, text.to_lowercase());
        assert_eq!(FileId::parse(&text), Some(id));
        assert_eq!(FileId::parse(&text.to_uppercase()), Some(id));
        assert_eq!(FileId::parse("not-an-id"), None);
    }
}
