//! Ed25519 key material: loading PEM files, generating ephemeral dev keys, key ids and JWKs.
//!
//! A key's `kid` is its RFC 7638 JWK thumbprint, so it needs no configuration and two
//! different keys never share one.

use std::path::{Path, PathBuf};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use sha2::{Digest as _, Sha256};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow it.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why key material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no signing key is configured (GATEWAY_JWT_SIGNING_KEY) outside dev mode")]
    NotConfigured,
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no Ed25519 {what} in PEM")]
    NotEd25519 { path: PathBuf, what: &'static str },
    #[error("cannot generate a key")]
    Generate,
}

/// A public key and its id.
#[derive(Clone, Debug)]
pub(super) struct PublicKey {
    pub(super) kid: String,
    pub(super) raw: Vec<u8>,
}

impl PublicKey {
    fn new(raw: &[u8]) -> Self {
        let x = URL_SAFE_NO_PAD.encode(raw);
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Self {
            kid,
            raw: raw.to_vec(),
        }
    }

    /// Reads a `PUBLIC KEY` PEM file holding an Ed25519 key.
    pub(super) fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let pem = read(path)?;
        let not_ed25519 = || KeyError::NotEd25519 {
            path: path.to_owned(),
            what: "public key",
        };
        for item in rustls_pemfile::read_all(&mut pem.as_slice()) {
            if let Ok(rustls_pemfile::Item::SubjectPublicKeyInfo(der)) = item {
                let der = der.as_ref();
                return match der.strip_prefix(&SPKI_PREFIX) {
                    Some(raw) if raw.len() == 32 => Ok(Self::new(raw)),
                    _ => Err(not_ed25519()),
                };
            }
        }
        Err(not_ed25519())
    }

    /// The JWK published in the JWKS.
    pub(super) fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&self.raw),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

/// The private key that signs new tokens, as PKCS#8 DER, with its public half.
pub(super) struct SigningKey {
    pub(super) pkcs8: Vec<u8>,
    pub(super) public: PublicKey,
}

impl SigningKey {
    fn from_pkcs8(pkcs8: Vec<u8>) -> Option<Self> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).ok()?;
        let public = PublicKey::new(pair.public_key().as_ref());
        Some(Self { pkcs8, public })
    }

    /// A fresh random key, for dev mode and tests.
    pub(super) fn generate() -> Result<Self, KeyError> {
        let random = ring::rand::SystemRandom::new();
        let document = Ed25519KeyPair::generate_pkcs8(&random).map_err(|_| KeyError::Generate)?;
        Self::from_pkcs8(document.as_ref().to_vec()).ok_or(KeyError::Generate)
    }

    /// Reads a `PRIVATE KEY` (PKCS#8) PEM file holding an Ed25519 key, as written by
    /// `openssl genpkey -algorithm ed25519`.
    pub(super) fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let pem = read(path)?;
        let not_ed25519 = || KeyError::NotEd25519 {
            path: path.to_owned(),
            what: "private key (PKCS#8)",
        };
        match rustls_pemfile::private_key(&mut pem.as_slice()) {
            Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs8(der))) => {
                Self::from_pkcs8(der.secret_pkcs8_der().to_vec()).ok_or_else(not_ed25519)
            }
            _ => Err(not_ed25519()),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_thumbprints() {
        // RFC 8037 appendix A.3: the thumbprint of its example key.
        let raw = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .expect("base64");
        assert_eq!(
            PublicKey::new(&raw).kid,
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn pem_files_round_trip() {
        let key = SigningKey::generate().expect("key");
        let dir = tempfile::tempdir().expect("tempdir");
        let private = dir.path().join("jwt.key");
        let public = dir.path().join("jwt.pub");
        std::fs::write(&private, pem("PRIVATE KEY", &key.pkcs8)).expect("write");
        let mut spki = SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&key.public.raw);
        std::fs::write(&public, pem("PUBLIC KEY", &spki)).expect("write");
        assert_eq!(
            SigningKey::from_pem_file(&private)
                .expect("private")
                .public
                .kid,
            key.public.kid
        );
        assert_eq!(
            PublicKey::from_pem_file(&public).expect("public").kid,
            key.public.kid
        );
        assert!(PublicKey::from_pem_file(&private).is_err());
    }

    fn pem(label: &str, der: &[u8]) -> String {
        use base64::engine::general_purpose::STANDARD;
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            STANDARD.encode(der)
        )
    }
}
