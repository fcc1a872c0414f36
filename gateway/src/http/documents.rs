//! Parsed GraphQL documents by their text. Clients send the same few documents over and over,
//! and parsing them (async-graphql's pest parser) was a tenth of the gateway's CPU per `me`
//! request (BENCHMARKS.md, item 23). A cached document is only a parse: limits, validation
//! against the variables, and execution still run for every request. A document's cost
//! estimate is cached with it when it does not depend on the variables.

use crate::graphql::FileUrls;
use std::sync::{Arc, OnceLock};

use async_graphql::{Request, parser::types::ExecutableDocument};

/// The most memory the cached documents may take, as estimated by [`Estimate`]: it bounds the
/// cache whatever clients send, and an application's documents fit many times over.
const MEMORY_BYTES: u64 = 16 * 1024 * 1024;

/// Bytes of parsed document estimated per byte of text: a field as short as `id ` (3 bytes)
/// becomes a node of name, alias, arguments, directives and selection set, about 200 bytes,
/// so this overestimates every document but the densest.
const BYTES_PER_TEXT_BYTE: u64 = 64;

/// How many documents the cache is sized for up front.
const EXPECTED_DOCUMENTS: usize = 256;

/// Weighs a cached document by the memory it is estimated to take: its text and its tree.
#[derive(Clone, Copy, Debug)]
struct Estimate;

impl quick_cache::Weighter<Box<str>, Arc<CachedDocument>> for Estimate {
    fn weight(&self, text: &Box<str>, _: &Arc<CachedDocument>) -> u64 {
        u64::try_from(text.len())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
            .saturating_mul(BYTES_PER_TEXT_BYTE + 1)
    }
}

/// A parsed document and what is known of it whatever the variables.
#[derive(Debug)]
pub struct CachedDocument {
    document: ExecutableDocument,
    /// The estimated cost of its only operation and the renditions it asks for, once
    /// computed, when no variable changes them.
    cost: OnceLock<(u64, FileUrls)>,
}

impl CachedDocument {
    /// The cached cost estimate of the document's only operation, with its renditions.
    pub fn cost(&self) -> Option<(u64, FileUrls)> {
        self.cost.get().copied()
    }

    /// Caches the cost estimate of the document's only operation; documents with several
    /// operations are costed per request, since the estimate depends on which one runs.
    pub fn remember_cost(&self, cost: u64, file_urls: FileUrls) {
        if self.document.operations.iter().count() == 1 {
            // A concurrent request may have set the same value first.
            let _ = self.cost.set((cost, file_urls));
        }
    }
}

/// Documents parsed before, bounded by [`MEMORY_BYTES`] and evicted least-recently used.
pub struct Documents(quick_cache::sync::Cache<Box<str>, Arc<CachedDocument>, Estimate>);

impl Default for Documents {
    fn default() -> Self {
        Self(quick_cache::sync::Cache::with_weighter(
            EXPECTED_DOCUMENTS,
            MEMORY_BYTES,
            Estimate,
        ))
    }
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Documents")
            .field("cached", &self.0.len())
            .finish()
    }
}

impl Documents {
    /// Gives `request` the document parsed earlier from the same text, and returns its entry;
    /// `None` when there is none.
    pub fn fill(&self, request: &mut Request) -> Option<Arc<CachedDocument>> {
        let cached = self.0.get(request.query.as_str())?;
        request.set_parsed_query(cached.document.clone());
        Some(cached)
    }

    /// Remembers the document `request` parsed, if it parsed.
    pub fn remember(&self, request: &mut Request) -> Option<Arc<CachedDocument>> {
        let document = request.parsed_query().ok()?;
        let cached = Arc::new(CachedDocument {
            document: document.clone(),
            cost: OnceLock::new(),
        });
        self.0
            .insert(request.query.as_str().into(), Arc::clone(&cached));
        Some(cached)
    }

    /// How many documents are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_per_text() {
        let documents = Documents::default();
        let mut first = Request::new("{ me { id name } }");
        assert!(documents.fill(&mut first).is_none());
        documents
            .remember(&mut first)
            .expect("parsed")
            .remember_cost(1, FileUrls::default());
        assert_eq!(documents.len(), 1);

        let mut again = Request::new("{ me { id name } }");
        assert_eq!(
            documents.fill(&mut again).expect("cached").cost(),
            Some((1, FileUrls::default()))
        );
        let parsed = again.parsed_query().expect("cached document");
        assert_eq!(parsed.operations.iter().count(), 1);

        let mut other = Request::new("{ me { id } }");
        assert!(
            documents.fill(&mut other).is_none(),
            "another text is another document"
        );
    }

    #[test]
    fn unparsable_text_is_not_cached() {
        let documents = Documents::default();
        let mut broken = Request::new("{ me { id ");
        documents.remember(&mut broken);
        assert_eq!(documents.len(), 0);
    }

    #[test]
    fn the_cache_holds_a_bounded_amount_of_text() {
        let documents = Documents::default();
        let padding = " ".repeat(16 * 1024);
        for index in 0..200 {
            let mut request = Request::new(format!("{{ me {{ id }} }}{padding}# {index}"));
            documents.remember(&mut request);
        }
        let held = documents.len() * (padding.len() + 20);
        assert!(held <= 300 * 1024, "{} documents held", documents.len());
    }
}
