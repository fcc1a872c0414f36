//! Typed identifiers: every id is a UUID, v7 for new ones so that keys sort by creation time.

/// Declares an id type: `service_kit::id_type!(/// A hangout. HangoutId);` gives a `Copy`
/// newtype over a UUID with `generate`, `parse` and a lower-case hyphenated `Display`.
#[macro_export]
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($crate::uuid::Uuid);

        impl $name {
            /// A new, time-ordered id.
            #[must_use]
            pub fn generate() -> Self {
                Self($crate::uuid::Uuid::now_v7())
            }

            /// Parses the canonical hyphenated form (any case).
            #[must_use]
            pub fn parse(text: &str) -> Option<Self> {
                $crate::uuid::Uuid::try_parse(text).ok().map(Self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0.as_hyphenated(), formatter)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::id_type!(
        /// An id for the tests.
        ThingId
    );

    #[test]
    fn ids_print_lower_case_and_parse_back() {
        let id = ThingId::generate();
        let text = id.to_string();
        assert_eq!(text, text.to_lowercase());
        assert_eq!(ThingId::parse(&text), Some(id));
        assert_eq!(ThingId::parse(&text.to_uppercase()), Some(id));
        assert_eq!(ThingId::parse("not-an-id"), None);
    }

    #[test]
    fn new_ids_sort_by_creation() {
        let first = ThingId::generate();
        let second = ThingId::generate();
        assert!(first.to_string() < second.to_string());
        assert!(first < second);
    }
}
