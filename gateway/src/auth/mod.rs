//! Access tokens: JWTs signed with EdDSA (Ed25519), each with the `kid` of its key.
//!
//! Invariants: the algorithm is pinned to EdDSA (a token's own `alg` never chooses how it is
//! checked, so `none` and HMAC tricks fail); `exp`, `iat`, `iss`, `aud` and `sub` are required
//! and checked with 60 s of leeway; several verification keys are accepted so keys can rotate,
//! and exactly those are published as the JWKS. Refresh tokens are hangout-core's business.
//!
//! A token that passed every check is remembered, by its exact text, with its subject and
//! expiry, so the next request with it skips the Ed25519 check (about 37 µs, a third of the
//! gateway's CPU for a small query). Only tokens that passed go in; a remembered token still
//! expires on time; the memory lives and dies with the key set.

mod keys;

use std::{
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub use keys::KeyError;

use crate::config::Config;

/// Clock skew tolerated on `exp` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// How many verified tokens are remembered: about 3 MB at most (a token is about 250 bytes).
const VERIFIED_CAPACITY: usize = 10_000;

/// What a verified token established.
#[derive(Debug, Clone)]
struct Verified {
    subject: String,
    expires: u64,
    session: Option<String>,
}

/// What a verified token says, for a WebSocket authenticated with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHolder {
    /// The user id.
    pub user: String,
    /// Until when the token is accepted (its `exp` plus the leeway): the socket closes then.
    pub until: SystemTime,
    /// The session (family) it was issued for, whose revocation closes the socket; `None` for
    /// tokens issued before tokens named their session.
    pub session: Option<String>,
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
    /// The session (hangout-core's session family) the token was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

/// Why a presented token was refused. Clients only ever learn UNAUTHENTICATED.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token or unsupported algorithm")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    #[error("the token names no known key")]
    UnknownKey,
    #[error("invalid token")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token has expired")]
    Expired,
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign an access token")]
pub struct IssueError(#[source] jsonwebtoken::errors::Error);

/// A freshly signed access token.
#[derive(Debug)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: SystemTime,
}

/// Signing key, verification keys and the claims policy.
pub struct Tokens {
    signing_kid: String,
    signing_key: EncodingKey,
    verification: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
    issuer: String,
    audience: String,
    ttl: Duration,
    /// Tokens that passed [`Tokens::verify`], by their exact text.
    verified: quick_cache::sync::Cache<Box<str>, Verified>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Tokens")
            .field("signing_kid", &self.signing_kid)
            .field("verification_kids", &self.verification.keys())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Loads the configured keys; in dev mode without a configured key, generates one.
    ///
    /// # Errors
    /// When a key file is unreadable or not an Ed25519 key, or no key is configured outside
    /// dev mode.
    pub fn from_config(config: &Config) -> Result<Self, KeyError> {
        let signing = match &config.jwt_signing_key {
            Some(path) => keys::SigningKey::from_pem_file(path)?,
            None if config.dev_mode => {
                tracing::warn!("dev mode: signing access tokens with an ephemeral key");
                keys::SigningKey::generate()?
            }
            None => return Err(KeyError::NotConfigured),
        };
        let mut public_keys = vec![signing.public.clone()];
        for path in &config.jwt_verification_keys {
            public_keys.push(keys::PublicKey::from_pem_file(path)?);
        }
        Ok(Self::new(
            &signing,
            &public_keys,
            &config.jwt_issuer,
            &config.jwt_audience,
            config.access_token_ttl,
        ))
    }

    fn new(
        signing: &keys::SigningKey,
        public_keys: &[keys::PublicKey],
        issuer: &str,
        audience: &str,
        ttl: Duration,
    ) -> Self {
        let verification = public_keys
            .iter()
            .map(|key| (key.kid.clone(), DecodingKey::from_ed_der(&key.raw)))
            .collect();
        let jwks = serde_json::json!({
            "keys": public_keys.iter().map(keys::PublicKey::jwk).collect::<Vec<_>>(),
        });
        Self {
            signing_kid: signing.public.kid.clone(),
            signing_key: EncodingKey::from_ed_der(&signing.pkcs8),
            verification,
            jwks,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
            verified: quick_cache::sync::Cache::new(VERIFIED_CAPACITY),
        }
    }

    /// The JWKS document listing every accepted verification key.
    #[must_use]
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// Signs an access token for `user_id` in `session` (its session family), valid for the
    /// configured lifetime.
    ///
    /// # Errors
    /// When signing fails (it does not with a valid key).
    pub fn issue(&self, user_id: &str, session: Option<&str>) -> Result<AccessToken, IssueError> {
        let now = SystemTime::now();
        let expires_at = now + self.ttl;
        let claims = Claims {
            sub: user_id.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: unix_seconds(now),
            exp: unix_seconds(expires_at),
            sid: session.map(str::to_owned),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.signing_kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.signing_key).map_err(IssueError)?;
        Ok(AccessToken { token, expires_at })
    }

    /// Verifies `token` and returns its subject, the user id.
    ///
    /// # Errors
    /// Any [`VerifyError`]: a malformed token, another algorithm, an unknown `kid`, a bad
    /// signature, a missing or wrong claim, an expired token or one issued in the future.
    pub fn verify(&self, token: &str) -> Result<String, VerifyError> {
        self.verify_at(token, unix_seconds(SystemTime::now()))
            .map(|verified| verified.subject)
    }

    /// [`Tokens::verify`], also returning until when the token is accepted and its session,
    /// for a WebSocket authenticated with it.
    ///
    /// # Errors
    /// As [`Tokens::verify`].
    pub fn verify_holder(&self, token: &str) -> Result<TokenHolder, VerifyError> {
        let verified = self.verify_at(token, unix_seconds(SystemTime::now()))?;
        Ok(TokenHolder {
            user: verified.subject,
            until: UNIX_EPOCH + Duration::from_secs(verified.expires) + LEEWAY,
            session: verified.session,
        })
    }

    /// [`Tokens::verify`] at `now` (Unix seconds).
    fn verify_at(&self, token: &str, now: u64) -> Result<Verified, VerifyError> {
        if let Some(verified) = self.verified.get(token) {
            // The same rule as jsonwebtoken's: expired once `exp` is more than the leeway ago.
            if verified.expires.saturating_add(LEEWAY.as_secs()) < now {
                self.verified.remove(token);
                return Err(VerifyError::Expired);
            }
            return Ok(verified);
        }
        let header = jsonwebtoken::decode_header(token).map_err(VerifyError::Malformed)?;
        let key = header
            .kid
            .as_ref()
            .and_then(|kid| self.verification.get(kid))
            .ok_or(VerifyError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY.as_secs();
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.validate_exp = true;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(VerifyError::Invalid)?;
        if data.claims.iat > now + LEEWAY.as_secs() {
            return Err(VerifyError::IssuedInFuture);
        }
        let verified = Verified {
            subject: data.claims.sub,
            expires: data.claims.exp,
            session: data.claims.sid,
        };
        self.verified.insert(token.into(), verified.clone());
        Ok(verified)
    }
}

fn unix_seconds(instant: SystemTime) -> u64 {
    instant
        .duration_since(UNIX_EPOCH)
        .map_or(0, |duration| duration.as_secs())
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    fn tokens(signing: &keys::SigningKey, extra: &[keys::PublicKey]) -> Tokens {
        let mut public = vec![signing.public.clone()];
        public.extend_from_slice(extra);
        Tokens::new(signing, &public, "iss", "aud", Duration::from_secs(900))
    }

    fn sign(signing: &keys::SigningKey, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(signing.public.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&signing.pkcs8))
            .expect("signing works")
    }

    fn now() -> u64 {
        unix_seconds(SystemTime::now())
    }

    #[test]
    fn issued_tokens_verify_and_name_the_user() {
        let key = keys::SigningKey::generate().expect("key");
        let tokens = tokens(&key, &[]);
        let issued = tokens.issue("user-1", None).expect("issue");
        assert_eq!(tokens.verify(&issued.token).expect("valid"), "user-1");
        assert_eq!(
            tokens.verify_holder(&issued.token).expect("valid").session,
            None
        );
        let in_session = tokens.issue("user-1", Some("family-1")).expect("issue");
        let holder = tokens.verify_holder(&in_session.token).expect("valid");
        assert_eq!(
            (holder.user.as_str(), holder.session.as_deref()),
            ("user-1", Some("family-1"))
        );
        assert!(
            holder.until > issued.expires_at,
            "accepted through the leeway"
        );
    }

    #[test]
    fn tokens_of_a_retired_key_still_verify_after_rotation() {
        let old = keys::SigningKey::generate().expect("key");
        let new = keys::SigningKey::generate().expect("key");
        let token = tokens(&old, &[])
            .issue("user-1", None)
            .expect("issue")
            .token;
        let rotated = tokens(&new, std::slice::from_ref(&old.public));
        assert_eq!(rotated.verify(&token).expect("valid"), "user-1");
        assert_eq!(rotated.jwks()["keys"].as_array().map(Vec::len), Some(2));
        assert!(tokens(&new, &[]).verify(&token).is_err());
    }

    #[test]
    fn expired_tampered_foreign_and_unsigned_tokens_are_refused() {
        let key = keys::SigningKey::generate().expect("key");
        let tokens = tokens(&key, &[]);
        let claims = |exp: u64, iat: u64, aud: &str| serde_json::json!({"sub": "u", "iss": "iss", "aud": aud, "iat": iat, "exp": exp});
        let expired = sign(&key, &claims(now() - 120, now() - 1000, "aud"));
        assert!(tokens.verify(&expired).is_err());
        let within_leeway = sign(&key, &claims(now() - 30, now() - 1000, "aud"));
        assert!(tokens.verify(&within_leeway).is_ok());
        let future = sign(&key, &claims(now() + 1000, now() + 500, "aud"));
        assert!(matches!(
            tokens.verify(&future),
            Err(VerifyError::IssuedInFuture)
        ));
        let wrong_audience = sign(&key, &claims(now() + 100, now(), "other"));
        assert!(tokens.verify(&wrong_audience).is_err());
        let missing_iat = sign(
            &key,
            &serde_json::json!({"sub": "u", "iss": "iss", "aud": "aud", "exp": now() + 100}),
        );
        assert!(tokens.verify(&missing_iat).is_err());

        let valid = tokens.issue("user-1", None).expect("issue").token;
        let mut parts: Vec<&str> = valid.split('.').collect();
        let forged_claims = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims(now() + 100, now(), "aud")).expect("json"));
        parts[1] = &forged_claims;
        assert!(tokens.verify(&parts.join(".")).is_err());

        let unsigned_header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            key.public.kid
        ));
        let unsigned = format!("{unsigned_header}.{forged_claims}.");
        assert!(tokens.verify(&unsigned).is_err());

        let stranger = keys::SigningKey::generate().expect("key");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.public.kid.clone());
        let foreign = jsonwebtoken::encode(
            &header,
            &claims(now() + 100, now(), "aud"),
            &EncodingKey::from_ed_der(&stranger.pkcs8),
        )
        .expect("sign");
        assert!(tokens.verify(&foreign).is_err());
    }

    #[test]
    fn a_remembered_token_still_expires_on_time() {
        let key = keys::SigningKey::generate().expect("key");
        let tokens = tokens(&key, &[]);
        let token = tokens.issue("user-1", None).expect("issue").token;
        let expires = now() + 900;
        assert_eq!(
            tokens.verify_at(&token, now()).expect("valid").subject,
            "user-1"
        );
        let last_second = expires + LEEWAY.as_secs() - 1;
        assert_eq!(
            tokens
                .verify_at(&token, last_second)
                .expect("still valid")
                .subject,
            "user-1"
        );
        assert!(matches!(
            tokens.verify_at(&token, expires + LEEWAY.as_secs() + 2),
            Err(VerifyError::Expired)
        ));
    }

    #[test]
    fn only_tokens_that_passed_are_remembered() {
        let key = keys::SigningKey::generate().expect("key");
        let tokens = tokens(&key, &[]);
        let token = tokens.issue("user-1", None).expect("issue").token;
        assert!(tokens.verify(&token).is_ok());
        // The same claims under a damaged signature are another text: checked, and refused.
        let (signed, signature) = token.rsplit_once('.').expect("three parts");
        let damaged = format!("{signed}.{}", signature.chars().rev().collect::<String>());
        assert!(tokens.verify(&damaged).is_err());
        assert!(tokens.verify(&damaged).is_err());
        assert!(tokens.verified.get(damaged.as_str()).is_none());
        assert_eq!(tokens.verify(&token).expect("still valid"), "user-1");
    }
}
