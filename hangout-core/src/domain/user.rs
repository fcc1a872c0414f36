//! Users: sign-up, credential checks and batch reads.

use crate::domain::{
    Service,
    error::{DomainError, DomainResult},
    ids::UserId,
    password::{self, Verification},
    store::Store,
    text::parse_label,
    time::Timestamp,
};

/// The most bytes of password we accept: argon2 would hash more, but nobody needs it and it
/// bounds the work an anonymous caller can cause.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The fewest characters of a password.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A user as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: Email,
    pub created_at: Timestamp,
}

/// A user with their stored password hash, for sign-in only.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

/// An email address, trimmed and lower-cased, so uniqueness ignores case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// # Errors
    /// `Invalid` on `email` unless it looks like `local@domain` within 254 characters.
    pub fn parse(text: &str) -> DomainResult<Self> {
        let email = text.trim().to_lowercase();
        let valid = email.chars().count() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            });
        if valid {
            Ok(Self(email))
        } else {
            Err(DomainError::invalid(
                "email",
                "is not a valid email address",
            ))
        }
    }

    /// Wraps a value read back from the store, which only holds parsed emails.
    #[must_use]
    pub fn from_stored(email: String) -> Self {
        Self(email)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as someone else sees it: its first character, "***" and "@domain".
    #[must_use]
    pub fn masked(&self) -> Self {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        Self(format!("{first}***@{domain}"))
    }
}

impl User {
    /// The user as `viewer` sees them: only their own email in full.
    #[must_use]
    pub fn seen_by(mut self, viewer: Option<UserId>) -> Self {
        if viewer != Some(self.id) {
            self.email = self.email.masked();
        }
        self
    }
}

fn check_new_password(password: &str) -> DomainResult<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(DomainError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// The same error for an unknown email and a wrong password, so neither can be told apart.
const BAD_CREDENTIALS: &str = "invalid email or password";

impl<S: Store> Service<S> {
    /// Creates a user.
    ///
    /// # Errors
    /// `Invalid` for a bad name, email or password; `AlreadyExists` when the email is taken.
    pub async fn sign_up(&self, name: &str, email: &str, password: &str) -> DomainResult<User> {
        let name = parse_label(name, "name")?;
        let email = Email::parse(email)?;
        check_new_password(password)?;
        let password = password.to_owned();
        let password_hash = self
            .hashing
            .run(move || password::hash(&password))
            .await??;
        let user = User {
            id: UserId::generate(),
            name,
            email,
            created_at: Timestamp::now(),
        };
        match self.store.insert_user(&user, &password_hash).await {
            Ok(()) => Ok(user),
            Err(crate::domain::store::StoreError::Conflict(_)) => Err(DomainError::AlreadyExists(
                "an account with this email exists".to_owned(),
            )),
            Err(error) => Err(error.into()),
        }
    }

    /// Checks credentials. An unknown email costs the same hashing work as a wrong password.
    /// A bcrypt hash is replaced by an argon2id one after a successful check.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown email or a wrong password.
    pub async fn verify_credentials(&self, email: &str, password: &str) -> DomainResult<User> {
        let email = Email::parse(email).ok();
        let credentials = match &email {
            Some(email) => self.store.user_credentials(email).await?,
            None => None,
        };
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(DomainError::Unauthenticated(BAD_CREDENTIALS));
        }
        let stored = credentials
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |c| c.password_hash.clone());
        let candidate = password.to_owned();
        let verification = self
            .hashing
            .run(move || password::verify(&candidate, &stored))
            .await?;
        let Some(credentials) = credentials else {
            return Err(DomainError::Unauthenticated(BAD_CREDENTIALS));
        };
        match verification {
            Verification::Mismatch => Err(DomainError::Unauthenticated(BAD_CREDENTIALS)),
            Verification::Match => Ok(credentials.user),
            Verification::MatchNeedsRehash => {
                let candidate = password.to_owned();
                let upgraded = self
                    .hashing
                    .run(move || password::hash(&candidate))
                    .await??;
                self.store
                    .set_password_hash(credentials.user.id, &upgraded, Timestamp::now())
                    .await?;
                tracing::info!(user_id = %credentials.user.id, "password hash upgraded to argon2id");
                Ok(credentials.user)
            }
        }
    }

    /// Users by id; unknown ids are left out.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn users_by_ids(
        &self,
        viewer: Option<UserId>,
        ids: &[UserId],
    ) -> DomainResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let users = self.store.users_by_ids(ids).await?;
        Ok(users.into_iter().map(|user| user.seen_by(viewer)).collect())
    }

    /// The users among `ids` whom the caller may look up by id: themselves and everyone who
    /// shares a hangout with them, masked as [`User::seen_by`] does.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn users_visible_to(
        &self,
        caller: UserId,
        ids: &[UserId],
    ) -> DomainResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let users = self.store.users_visible_to(caller, ids).await?;
        Ok(users
            .into_iter()
            .map(|user| user.seen_by(Some(caller)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn others_see_a_masked_email() {
        let email = Email::parse("Ada.Lovelace@Example.com").unwrap();
        assert_eq!(email.masked().as_str(), "a***@example.com");
        let user = User {
            id: UserId::generate(),
            name: "Ada".to_owned(),
            email,
            created_at: Timestamp::from_millis(1),
        };
        let own = user.clone().seen_by(Some(user.id));
        assert_eq!(own.email.as_str(), "ada.lovelace@example.com");
        assert_eq!(
            user.clone()
                .seen_by(Some(UserId::generate()))
                .email
                .as_str(),
            "a***@example.com"
        );
        assert_eq!(user.seen_by(None).email.as_str(), "a***@example.com");
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").map(|e| e.0).ok(),
            Some("ada@example.com".to_owned())
        );
        for bad in ["", "ada", "@example.com", "ada@", "a b@c.d", "a@b@c"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn password_bounds() {
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password("12345678").is_ok());
        assert!(check_new_password(&"x".repeat(1024)).is_ok());
        assert!(check_new_password(&"x".repeat(1025)).is_err());
        // Eight characters, more bytes: counted in characters.
        assert!(check_new_password("ééééééé").is_err());
        assert!(check_new_password("éééééééé").is_ok());
    }
}
