//! Persisted operations: Automatic Persisted Queries (Apollo's protocol) and the
//! trusted-documents mode.
//!
//! - APQ: a client sends `extensions.persistedQuery.sha256Hash` without the query; when the
//!   gateway knows the hash it runs the stored document, otherwise it answers
//!   `PersistedQueryNotFound` and the client retries with query and hash, which the gateway
//!   checks and remembers (a bounded cache). Saves bandwidth on every repeated operation.
//! - Trusted documents: with a manifest (`{"<sha256 hex>": "<document>", …}`, generated from
//!   the frontend's documents by `cargo xtask trusted-documents`), only operations of the
//!   manifest run, named by hash (`extensions.persistedQuery.sha256Hash` or a `documentId`
//!   extension) or sent in full. Anything else is refused before parsing: arbitrary documents cannot even be
//!   tried against the API.

use std::{collections::HashMap, path::Path, sync::Mutex};

use async_graphql::Request;
use sha2::{Digest as _, Sha256};

/// Documents remembered for APQ, at most; beyond that the cache starts over.
const APQ_CAPACITY: usize = 2_000;

/// Why a persisted operation could not be resolved.
#[derive(Debug, PartialEq, Eq)]
pub enum PersistedError {
    /// The hash is unknown (APQ): the client should send the query with it.
    NotFound,
    /// The query does not hash to the hash sent with it.
    HashMismatch,
    /// Trusted-documents mode: the operation is not in the manifest.
    NotTrusted,
}

impl PersistedError {
    /// The error message; `PersistedQueryNotFound` is what Apollo clients look for.
    #[must_use]
    pub fn message(&self) -> &'static str {
        match self {
            Self::NotFound => "PersistedQueryNotFound",
            Self::HashMismatch => "provided sha256Hash does not match the query",
            Self::NotTrusted => "this operation is not one of the trusted documents",
        }
    }
}

/// Why the manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read the trusted documents manifest")]
    Read(#[from] std::io::Error),
    #[error("the trusted documents manifest is not a JSON object of hash to document")]
    Parse(#[from] serde_json::Error),
    #[error("entry {0} of the trusted documents manifest does not hash to its key")]
    WrongHash(String),
}

/// The gateway's persisted operations.
pub struct PersistedOperations {
    /// Trusted-documents mode when set.
    trusted: Option<HashMap<String, String>>,
    /// APQ cache (unused in trusted mode).
    cache: Mutex<HashMap<String, String>>,
}

/// Lower-case hex SHA-256 of a document.
#[must_use]
pub fn document_hash(document: &str) -> String {
    Sha256::digest(document.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl PersistedOperations {
    /// APQ only.
    #[must_use]
    pub fn automatic() -> Self {
        Self {
            trusted: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Trusted-documents mode from a manifest file; every key is checked against its document.
    ///
    /// # Errors
    /// When the file cannot be read or is not a valid manifest.
    pub fn trusted_from_file(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path)?;
        let manifest: HashMap<String, String> = serde_json::from_str(&text)?;
        for (hash, document) in &manifest {
            if document_hash(document) != hash.to_ascii_lowercase() {
                return Err(ManifestError::WrongHash(hash.clone()));
            }
        }
        let manifest = manifest
            .into_iter()
            .map(|(hash, document)| (hash.to_ascii_lowercase(), document))
            .collect();
        Ok(Self {
            trusted: Some(manifest),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Fills in the query of a persisted request, registers APQ documents, and in trusted mode
    /// refuses anything not in the manifest.
    ///
    /// # Errors
    /// A [`PersistedError`] to report to the client.
    pub fn resolve(&self, request: &mut Request) -> Result<(), PersistedError> {
        let hash = requested_hash(request);
        if let Some(manifest) = &self.trusted {
            let hash = match hash {
                Some(hash) => hash,
                None if request.query.trim().is_empty() => return Err(PersistedError::NotTrusted),
                None => document_hash(&request.query),
            };
            let document = manifest.get(&hash).ok_or(PersistedError::NotTrusted)?;
            if !request.query.trim().is_empty() && request.query != *document {
                return Err(PersistedError::NotTrusted);
            }
            request.query.clone_from(document);
            return Ok(());
        }
        let Some(hash) = hash else {
            return Ok(());
        };
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if request.query.trim().is_empty() {
            let document = cache.get(&hash).ok_or(PersistedError::NotFound)?;
            request.query.clone_from(document);
            return Ok(());
        }
        if document_hash(&request.query) != hash {
            return Err(PersistedError::HashMismatch);
        }
        if cache.len() >= APQ_CAPACITY {
            cache.clear();
        }
        cache.insert(hash, request.query.clone());
        Ok(())
    }
}

/// The hash a request names: `extensions.persistedQuery.sha256Hash` or
/// `extensions.documentId` in the `sha256:<hex>` or bare-hex form, lower-cased.
fn requested_hash(request: &Request) -> Option<String> {
    let from_extension = request.extensions.get("persistedQuery").and_then(|value| {
        let json = serde_json::to_value(value).ok()?;
        json.get("sha256Hash")?.as_str().map(str::to_owned)
    });
    let from_document_id = request.extensions.get("documentId").and_then(|value| {
        let json = serde_json::to_value(value).ok()?;
        json.as_str().map(str::to_owned)
    });
    from_extension
        .or(from_document_id)
        .map(|hash| hash.trim_start_matches("sha256:").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persisted(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        let extension = serde_json::json!({ "version": 1, "sha256Hash": hash });
        request.extensions.insert(
            "persistedQuery".to_owned(),
            async_graphql::Value::from_json(extension).expect("json"),
        );
        request
    }

    #[test]
    fn apq_registers_then_serves_by_hash() {
        let operations = PersistedOperations::automatic();
        let query = "{ me { id } }";
        let hash = document_hash(query);
        let mut unknown = persisted("", &hash);
        assert_eq!(
            operations.resolve(&mut unknown),
            Err(PersistedError::NotFound)
        );
        let mut register = persisted(query, &hash);
        assert_eq!(operations.resolve(&mut register), Ok(()));
        let mut by_hash = persisted("", &hash);
        assert_eq!(operations.resolve(&mut by_hash), Ok(()));
        assert_eq!(by_hash.query, query);
        let mut lying = persisted("{ me { name } }", &hash);
        assert_eq!(
            operations.resolve(&mut lying),
            Err(PersistedError::HashMismatch)
        );
        let mut plain = Request::new("{ me { email } }");
        assert_eq!(operations.resolve(&mut plain), Ok(()));
    }

    #[test]
    fn trusted_mode_runs_only_the_manifest() {
        let query = "query Me { me { id } }";
        let hash = document_hash(query);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("trusted.json");
        std::fs::write(
            &path,
            serde_json::json!({ hash.clone(): query }).to_string(),
        )
        .expect("write");
        let operations = PersistedOperations::trusted_from_file(&path).expect("manifest");
        let mut by_hash = persisted("", &hash);
        assert_eq!(operations.resolve(&mut by_hash), Ok(()));
        assert_eq!(by_hash.query, query);
        let mut in_full = Request::new(query);
        assert_eq!(operations.resolve(&mut in_full), Ok(()));
        let mut other = Request::new("{ me { email } }");
        assert_eq!(
            operations.resolve(&mut other),
            Err(PersistedError::NotTrusted)
        );

        std::fs::write(&path, serde_json::json!({ "00": query }).to_string()).expect("write");
        assert!(PersistedOperations::trusted_from_file(&path).is_err());
    }
}
