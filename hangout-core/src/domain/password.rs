//! Password hashing: argon2id for new hashes; bcrypt hashes carried over from the Go system
//! still verify and are flagged for an upgrade.
//!
//! Hashing is CPU-bound for tens of milliseconds, so callers run it on the blocking pool.

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
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

/// Hashes a password with argon2id and a random salt (PHC string format).
///
/// # Errors
/// `Hashing` if argon2 refuses its parameters, which the defaults never make it do.
pub fn hash(password: &str) -> DomainResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| DomainError::Hashing(error.to_string()))
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
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) if needs_rehash(&parsed) => Verification::MatchNeedsRehash,
        Ok(()) => Verification::Match,
        Err(_) => Verification::Mismatch,
    }
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
