//! `cargo xtask trusted-documents`: the allow-list of the gateway's trusted-documents mode,
//! made from the frontend's GraphQL documents.
//!
//! Each `.graphql` / `.gql` file under the given folders is one document, sent by the frontend
//! exactly as written; the manifest maps its lower-case hex SHA-256 to its text. (GraphQL Code
//! Generator's persisted-documents output has the same shape and can be used as it is.)

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

#[derive(clap::Args)]
pub struct TrustedDocuments {
    /// Folders (searched recursively) or files holding the frontend's documents.
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// Where to write the manifest (GATEWAY_TRUSTED_DOCUMENTS reads it).
    #[arg(long, short, default_value = "trusted-documents.json")]
    output: PathBuf,
}

impl TrustedDocuments {
    pub fn run(self) -> anyhow::Result<()> {
        let mut files = Vec::new();
        for source in &self.sources {
            collect(source, &mut files)?;
        }
        anyhow::ensure!(!files.is_empty(), "no .graphql or .gql files found");
        let mut manifest = BTreeMap::new();
        for file in &files {
            let document = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            manifest.insert(sha256_hex(document.as_bytes()), document);
        }
        let json = serde_json_like(&manifest);
        std::fs::write(&self.output, json)
            .with_context(|| format!("cannot write {}", self.output.display()))?;
        println!(
            "wrote {} trusted documents to {}",
            manifest.len(),
            self.output.display()
        );
        Ok(())
    }
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries = std::fs::read_dir(path)?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<Vec<_>, _>>()?;
        entries.sort();
        for entry in entries {
            if entry.file_name().is_some_and(|name| name == "node_modules") {
                continue;
            }
            collect(&entry, files)?;
        }
    } else if path
        .extension()
        .is_some_and(|extension| extension == "graphql" || extension == "gql")
    {
        files.push(path.to_path_buf());
    }
    Ok(())
}

/// SHA-256, lower-case hex (the gateway's `document_hash`).
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A JSON object of strings, keys sorted, one entry per line.
fn serde_json_like(manifest: &BTreeMap<String, String>) -> String {
    let entries: Vec<String> = manifest
        .iter()
        .map(|(hash, document)| format!("  {}: {}", json_string(hash), json_string(document)))
        .collect();
    format!("{{\n{}\n}}\n", entries.join(",\n"))
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_json() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn hashes_are_lower_case_hex_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
