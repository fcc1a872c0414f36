//! Typed identifiers. Every id is a UUID, v7 for new ones so that keys sort by creation time.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_lower_case_and_parse_back() {
        let id = HangoutId::generate();
        let text = id.to_string();
        assert_eq!(text, text.to_lowercase());
        assert_eq!(HangoutId::parse(&text), Some(id));
        assert_eq!(HangoutId::parse(&text.to_uppercase()), Some(id));
        assert_eq!(HangoutId::parse("not-an-id"), None);
    }

    #[test]
    fn new_ids_sort_by_creation() {
        let first = MemoryId::generate();
        let second = MemoryId::generate();
        assert!(first.to_string() < second.to_string());
    }
}
