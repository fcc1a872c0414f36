//! Sessions and refresh-token rotation.
//!
//! A session family starts at sign-in. Each refresh token is used once: rotating it marks it
//! rotated and issues a new token in the same family. Presenting a token that was already
//! rotated means it leaked (or a client raced itself), so the whole family is revoked and every
//! holder must sign in again. Only SHA-256 hashes of tokens are stored.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{TryRngCore as _, rngs::OsRng};
use sha2::{Digest, Sha256};

use crate::domain::{
    Service,
    error::{DomainError, DomainResult},
    ids::{SessionFamilyId, SessionId, UserId},
    store::Store,
    time::Timestamp,
    user::User,
};

/// A stored refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub family: SessionFamilyId,
    pub user: UserId,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub rotated_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A freshly issued refresh token: the secret is only ever in this value and the response.
#[derive(Clone, Debug)]
pub struct IssuedSession {
    pub user: User,
    pub session: SessionId,
    pub family: SessionFamilyId,
    pub refresh_token: String,
    pub expires_at: Timestamp,
}

const INVALID_TOKEN: &str = "invalid or expired refresh token";

/// 256 random bits, URL-safe: refresh tokens and invitation codes.
pub(crate) fn new_token() -> DomainResult<String> {
    let mut secret = [0_u8; 32];
    OsRng
        .try_fill_bytes(&mut secret)
        .map_err(|error| DomainError::Hashing(error.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(secret))
}

/// The stored form of a token. Tokens carry 256 random bits, so a fast hash is enough.
pub(crate) fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl<S: Store> Service<S> {
    /// Opens a new session family for `user`.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn open_session(&self, user: User) -> DomainResult<IssuedSession> {
        self.issue(user, SessionFamilyId::generate(), None).await
    }

    async fn issue(
        &self,
        user: User,
        family: SessionFamilyId,
        rotating: Option<SessionId>,
    ) -> DomainResult<IssuedSession> {
        let now = Timestamp::now();
        let refresh_token = new_token()?;
        let record = SessionRecord {
            id: SessionId::generate(),
            family,
            user: user.id,
            token_hash: token_hash(&refresh_token),
            created_at: now,
            expires_at: now.plus(self.settings.refresh_token_ttl),
            rotated_at: None,
            revoked_at: None,
        };
        match rotating {
            None => self.store.insert_session(&record).await?,
            Some(old) => {
                if !self.store.rotate_session(old, &record, now).await? {
                    // Lost a race with another rotation of the same token: that is reuse.
                    self.store.revoke_session_family(family, now).await?;
                    return Err(DomainError::Unauthenticated(INVALID_TOKEN));
                }
            }
        }
        Ok(IssuedSession {
            user,
            session: record.id,
            family,
            expires_at: record.expires_at,
            refresh_token,
        })
    }

    /// Trades a refresh token for a new one in the same family.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown, expired or revoked token; for a token that was already
    /// rotated, after revoking its whole family.
    pub async fn rotate_session(&self, refresh_token: &str) -> DomainResult<IssuedSession> {
        let now = Timestamp::now();
        let Some(record) = self
            .store
            .session_by_token_hash(&token_hash(refresh_token))
            .await?
        else {
            return Err(DomainError::Unauthenticated(INVALID_TOKEN));
        };
        if record.revoked_at.is_some() || record.expires_at <= now {
            return Err(DomainError::Unauthenticated(INVALID_TOKEN));
        }
        if record.rotated_at.is_some() {
            tracing::warn!(
                user_id = %record.user,
                session_family = %record.family,
                "rotated refresh token presented again; revoking the session"
            );
            self.store.revoke_session_family(record.family, now).await?;
            return Err(DomainError::Unauthenticated(INVALID_TOKEN));
        }
        let user = self
            .store
            .users_by_ids(&[record.user])
            .await?
            .into_iter()
            .next()
            .ok_or(DomainError::Unauthenticated(INVALID_TOKEN))?;
        self.issue(user, record.family, Some(record.id)).await
    }

    /// Revokes the session the token belongs to. Unknown tokens are ignored, so signing out
    /// twice is not an error and reveals nothing.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn revoke_session(&self, refresh_token: &str) -> DomainResult<()> {
        if let Some(record) = self
            .store
            .session_by_token_hash(&token_hash(refresh_token))
            .await?
        {
            self.store
                .revoke_session_family(record.family, Timestamp::now())
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed_stably() {
        let first = new_token().expect("os rng works");
        let second = new_token().expect("os rng works");
        assert_ne!(first, second);
        assert_eq!(first.len(), 43);
        assert_eq!(token_hash(&first), token_hash(&first));
        assert_eq!(token_hash(&first).len(), 64);
        assert_ne!(token_hash(&first), token_hash(&second));
    }
}
