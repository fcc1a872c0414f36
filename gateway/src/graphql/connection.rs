//! Relay cursor connections: page arguments and `PageInfo`. Cursors are the backends' opaque
//! keyset cursors, passed through untouched.

use async_graphql::{Enum, SimpleObject};

use crate::graphql::error::{ApiError, ApiResult};

/// Page size when `first` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest `first` accepted.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Validated `first`/`after` arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageArgs {
    pub first: u32,
    pub after: String,
}

impl PageArgs {
    /// `first` defaults to 20 and must be 1 to 100; `after` is an end cursor or absent.
    ///
    /// # Errors
    /// BAD_USER_INPUT naming `first` when it is out of range.
    pub fn new(first: Option<i32>, after: Option<String>) -> ApiResult<Self> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE,
            Some(first) => u32::try_from(first)
                .ok()
                .filter(|first| (1..=MAX_PAGE_SIZE).contains(first))
                .ok_or_else(|| {
                    ApiError::bad_input("first", format!("must be between 1 and {MAX_PAGE_SIZE}"))
                })?,
        };
        Ok(Self {
            first,
            after: after.unwrap_or_default(),
        })
    }

    /// The backend's page request.
    #[must_use]
    pub fn to_proto(&self) -> proto::hangout::v1::PageRequest {
        proto::hangout::v1::PageRequest {
            first: self.first,
            after: self.after.clone(),
        }
    }
}

/// Sort direction.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderDirection {
    Asc,
    Desc,
}

impl OrderDirection {
    #[must_use]
    pub fn to_proto(self) -> proto::hangout::v1::OrderDirection {
        match self {
            Self::Asc => proto::hangout::v1::OrderDirection::Asc,
            Self::Desc => proto::hangout::v1::OrderDirection::Desc,
        }
    }
}

/// Relay page information.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// A page as the backends describe it, made into edges and `PageInfo`.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub edges: Vec<(String, T)>,
    pub page_info: PageInfo,
    pub total_count: i32,
}

impl<T> Page<T> {
    /// `had_after`: whether this page was asked for after a cursor, i.e. has a previous page.
    pub fn new(
        edges: Vec<(String, T)>,
        info: Option<&proto::hangout::v1::PageInfo>,
        had_after: bool,
    ) -> Self {
        let start_cursor = edges.first().map(|(cursor, _)| cursor.clone());
        let end_cursor = info
            .map(|info| info.end_cursor.clone())
            .filter(|cursor| !cursor.is_empty())
            .or_else(|| edges.last().map(|(cursor, _)| cursor.clone()));
        Self {
            page_info: PageInfo {
                has_next_page: info.is_some_and(|info| info.has_next_page),
                has_previous_page: had_after,
                start_cursor,
                end_cursor,
            },
            total_count: info.map_or(0, |info| {
                i32::try_from(info.total_count).unwrap_or(i32::MAX)
            }),
            edges,
        }
    }
}

/// Defines `<Name>Connection` and `<Name>Edge` for a node type, built from a [`Page`].
/// `nodes` lists the edges' nodes by reference: each node is held once, however it is asked.
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty) => {
        #[derive(Clone, Debug)]
        pub struct $connection {
            pub edges: Vec<$edge>,
            pub page_info: $crate::graphql::connection::PageInfo,
            pub total_count: i32,
        }

        #[async_graphql::Object]
        impl $connection {
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            async fn nodes(&self) -> $crate::graphql::ready::ReadyList<&$node> {
                $crate::graphql::ready::ReadyList(
                    self.edges.iter().map(|edge| &edge.node).collect(),
                )
            }

            async fn page_info(&self) -> &$crate::graphql::connection::PageInfo {
                &self.page_info
            }

            async fn total_count(&self) -> i32 {
                self.total_count
            }
        }

        #[derive(async_graphql::SimpleObject, Clone, Debug)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        impl From<$crate::graphql::connection::Page<$node>> for $connection {
            fn from(page: $crate::graphql::connection::Page<$node>) -> Self {
                Self {
                    edges: page
                        .edges
                        .into_iter()
                        .map(|(cursor, node)| $edge { cursor, node })
                        .collect(),
                    page_info: page.page_info,
                    total_count: page.total_count,
                }
            }
        }
    };
}
pub(crate) use connection;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_defaults_to_20_and_is_capped_at_100() {
        assert_eq!(PageArgs::new(None, None).expect("default").first, 20);
        assert_eq!(PageArgs::new(Some(100), None).expect("max").first, 100);
        for bad in [0, -1, 101] {
            assert!(PageArgs::new(Some(bad), None).is_err());
        }
    }
}
