//! Keyset pagination: page sizes, sort orders and opaque cursors.
//!
//! A cursor names the ordering it was made for and the last row's sort key and id. A cursor is
//! only a position: every query is still filtered by the caller, so a cursor forged or taken from
//! another user reveals nothing. A cursor made for another ordering is refused.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::domain::error::{DomainError, DomainResult};

/// Rows per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Ascending or descending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    Asc,
    #[default]
    Desc,
}

impl Direction {
    fn tag(self) -> &'static str {
        match self {
            Self::Asc => "a",
            Self::Desc => "d",
        }
    }
}

/// A validated page size: 0 means the default, more than the maximum is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// # Errors
    /// `Invalid` on `field` when `first` is above [`MAX_PAGE_SIZE`].
    pub fn parse(first: u32, field: &str) -> DomainResult<Self> {
        match first {
            0 => Ok(Self(DEFAULT_PAGE_SIZE)),
            1..=MAX_PAGE_SIZE => Ok(Self(first)),
            _ => Err(DomainError::invalid(
                field,
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            )),
        }
    }

    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

/// The position after the last row of a page: its sort key and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor<K> {
    pub key: K,
    pub id: String,
}

/// A sort key that can travel inside a cursor.
pub trait CursorKey: Sized {
    fn encode(&self) -> String;
    fn decode(text: &str) -> Option<Self>;
}

impl CursorKey for i64 {
    fn encode(&self) -> String {
        self.to_string()
    }

    fn decode(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl CursorKey for String {
    fn encode(&self) -> String {
        self.clone()
    }

    fn decode(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
}

const SEPARATOR: char = '\u{1f}';

impl<K: CursorKey> Cursor<K> {
    /// Encodes the cursor for the ordering named `ordering` in `direction`.
    #[must_use]
    pub fn encode(&self, ordering: &str, direction: Direction) -> String {
        let text = format!(
            "{ordering}{SEPARATOR}{}{SEPARATOR}{}{SEPARATOR}{}",
            direction.tag(),
            self.id,
            self.key.encode()
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Decodes `text`, refusing cursors of another ordering or direction.
    ///
    /// # Errors
    /// `Invalid` on `field` when the cursor is malformed or was made for another ordering.
    pub fn decode(
        text: &str,
        ordering: &str,
        direction: Direction,
        field: &str,
    ) -> DomainResult<Self> {
        let invalid = || DomainError::invalid(field, "is not a cursor of this list");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.splitn(4, SEPARATOR);
        let (Some(found_ordering), Some(found_direction), Some(id), Some(key)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        if found_ordering != ordering || found_direction != direction.tag() {
            return Err(invalid());
        }
        let key = K::decode(key).ok_or_else(invalid)?;
        Ok(Self {
            key,
            id: id.to_owned(),
        })
    }
}

/// Decodes an optional `after` cursor; empty means "from the start".
///
/// # Errors
/// As [`Cursor::decode`].
pub fn decode_after<K: CursorKey>(
    after: &str,
    ordering: &str,
    direction: Direction,
    field: &str,
) -> DomainResult<Option<Cursor<K>>> {
    if after.is_empty() {
        Ok(None)
    } else {
        Cursor::decode(after, ordering, direction, field).map(Some)
    }
}

/// One row of a page with the cursor that points just after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge<T> {
    pub node: T,
    pub cursor: String,
}

/// A page of rows in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub edges: Vec<Edge<T>>,
    pub has_next_page: bool,
    /// Rows in the whole list (all pages), filters applied.
    pub total_count: u64,
}

impl<T> Page<T> {
    /// Builds a page from up to `size + 1` rows fetched by the store: the extra row only tells
    /// that another page exists.
    pub fn from_rows(
        mut rows: Vec<T>,
        size: PageSize,
        total_count: u64,
        cursor_of: impl Fn(&T) -> String,
    ) -> Self {
        let size = usize::try_from(size.get()).unwrap_or(usize::MAX);
        let has_next_page = rows.len() > size;
        rows.truncate(size);
        let edges = rows
            .into_iter()
            .map(|node| Edge {
                cursor: cursor_of(&node),
                node,
            })
            .collect();
        Self {
            edges,
            has_next_page,
            total_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_orderings() {
        let cursor = Cursor {
            key: 1_764_000_000_000_i64,
            id: "0191c7f4-0000-7000-8000-000000000000".to_owned(),
        };
        let text = cursor.encode("created_at", Direction::Desc);
        assert_eq!(
            Cursor::<i64>::decode(&text, "created_at", Direction::Desc, "after").ok(),
            Some(cursor)
        );
        assert!(Cursor::<i64>::decode(&text, "date", Direction::Desc, "after").is_err());
        assert!(Cursor::<i64>::decode(&text, "created_at", Direction::Asc, "after").is_err());
        assert!(Cursor::<i64>::decode("garbage!", "created_at", Direction::Asc, "after").is_err());
    }

    #[test]
    fn string_keys_may_hold_any_text() {
        let cursor = Cursor {
            key: "board games, café".to_owned(),
            id: "x".to_owned(),
        };
        let text = cursor.encode("name", Direction::Asc);
        assert_eq!(
            Cursor::<String>::decode(&text, "name", Direction::Asc, "after").ok(),
            Some(cursor)
        );
    }

    #[test]
    fn page_sizes_default_and_cap() {
        assert_eq!(PageSize::parse(0, "first").ok(), Some(PageSize(20)));
        assert_eq!(PageSize::parse(100, "first").ok(), Some(PageSize(100)));
        assert!(PageSize::parse(101, "first").is_err());
    }

    #[test]
    fn pages_trim_the_lookahead_row() {
        let page = Page::from_rows(vec![1, 2, 3], PageSize(2), 7, |n| n.to_string());
        assert!(page.has_next_page);
        assert_eq!(page.edges.len(), 2);
        assert_eq!(page.edges[1].cursor, "2");
        let last = Page::from_rows(vec![1], PageSize(2), 1, |n| n.to_string());
        assert!(!last.has_next_page);
    }
}
