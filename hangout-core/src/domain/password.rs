//! Password hashing: argon2id for new hashes; bcrypt hashes carried over from the Go system
//! still verify and are flagged for an upgrade.
//!
//! Hashing is CPU-bound for tens of milliseconds, so callers run it on the hashing pool
//! (`hashing.rs`). Each hashing thread keeps its argon2 working memory (19 MiB) for its whole
//! life: allocating it per hash made the allocator raise its mmap and trim thresholds and keep
//! about 60 MB per arena, which put hangout-core at 270-300 MB after a burst of sign-ins
//! (BENCHMARKS.md). The PHC strings are the argon2 crate's own format, tested both ways.

use std::cell::RefCell;

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng},
};

use crate::domain::error::{DomainError, DomainResult};

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password, or a hash we cannot read.
    Mismatch,
    /// Right password, stored in the current scheme.
    Match,
    /// Right password, stored in an old scheme (bcrypt): store a fresh argon2id hash.
    MatchNeedsRehash,
}

thread_local! {
    /// This thread's argon2 working memory, grown once to the largest parameters seen.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 of `password` and `salt` into `out`, in this thread's reused memory.
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// Hashes a password with argon2id (default parameters) and a random salt, as a PHC string.
///
/// # Errors
/// `Hashing` if argon2 refuses its parameters, which the defaults never make it do.
pub fn hash(password: &str) -> DomainResult<String> {
    let failed = |error: &dyn std::fmt::Display| DomainError::Hashing(error.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0_u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|error| failed(&error))?;
    let params = Params::default();
    let mut out = [0_u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password.as_bytes(),
        salt_bytes,
        &mut out,
    )
    .map_err(|error| failed(&error))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|error| failed(&error))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|error| failed(&error))?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored hash of either scheme.
#[must_use]
pub fn verify(password: &str, stored: &str) -> Verification {
    if is_bcrypt(stored) {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verification::MatchNeedsRehash,
            _ => Verification::Mismatch,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verification::Mismatch;
    };
    if argon2_matches(password, &parsed) {
        if needs_rehash(&parsed) {
            Verification::MatchNeedsRehash
        } else {
            Verification::Match
        }
    } else {
        Verification::Mismatch
    }
}

/// Recomputes an argon2 PHC hash with its own algorithm, version, parameters and salt and
/// compares the outputs in constant time.
fn argon2_matches(password: &str, parsed: &PasswordHash<'_>) -> bool {
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let mut salt_bytes = [0_u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0_u8; expected.len()];
    argon2_into(
        algorithm,
        version,
        params,
        password.as_bytes(),
        salt,
        &mut out,
    )
    .is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| stored.starts_with(prefix))
}

/// A hash made with other argon2 variants or weaker parameters is upgraded on sign-in too.
fn needs_rehash(parsed: &PasswordHash<'_>) -> bool {
    let current = argon2::Params::default();
    let Ok(params) = argon2::Params::try_from(parsed) else {
        return true;
    };
    parsed.algorithm != argon2::Algorithm::Argon2id.ident()
        || params.m_cost() < current.m_cost()
        || params.t_cost() < current.t_cost()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_those_of_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert_eq!(verify("correct horse", &theirs), Verification::Match);
        assert_eq!(verify("wrong horse", &theirs), Verification::Mismatch);
    }

    #[test]
    fn argon2id_hashes_verify() {
        let stored = hash("correct horse").expect("hashing works");
        assert!(stored.starts_with("$argon2id$"));
        assert_eq!(verify("correct horse", &stored), Verification::Match);
        assert_eq!(verify("wrong horse", &stored), Verification::Mismatch);
    }

    #[test]
    fn bcrypt_hashes_verify_and_ask_for_rehash() {
        let stored = bcrypt::hash("legacy password", 4).expect("bcrypt works");
        assert!(stored.starts_with("$2b$"));
        assert_eq!(
            verify("legacy password", &stored),
            Verification::MatchNeedsRehash
        );
        assert_eq!(verify("other", &stored), Verification::Mismatch);
        let go_style = stored.replacen("$2b$", "$2a$", 1);
        assert_eq!(
            verify("legacy password", &go_style),
            Verification::MatchNeedsRehash
        );
    }

    #[test]
    fn unreadable_hashes_never_match() {
        assert_eq!(verify("x", ""), Verification::Mismatch);
        assert_eq!(verify("x", "$plain$x"), Verification::Mismatch);
    }
}
