//! What every service's configuration shares: the error of `Config::validate`, its common
//! checks, and values whose `Debug` keeps their secret out of logs and errors.

use std::{fmt, path::Path, time::Duration};

/// A configuration value is unusable; the message names the variable, never a secret value.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    #[must_use]
    pub fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

/// Each of the mutual-TLS files (CA, certificate, key) exists.
///
/// # Errors
/// The first variable whose path is not a file.
pub fn require_tls_files<'a>(
    files: impl IntoIterator<Item = (&'static str, &'a Path)>,
) -> Result<(), ConfigError> {
    for (variable, path) in files {
        if !path.is_file() {
            return Err(ConfigError::new(
                variable,
                format!(
                    "{} is not a file (run `cargo xtask certs` for development certificates)",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Each duration is longer than zero.
///
/// # Errors
/// The first variable that is zero.
pub fn require_nonzero_durations(
    durations: impl IntoIterator<Item = (&'static str, Duration)>,
) -> Result<(), ConfigError> {
    match durations
        .into_iter()
        .find(|(_, duration)| duration.is_zero())
    {
        Some((variable, _)) => Err(ConfigError::new(variable, "must be longer than zero")),
        None => Ok(()),
    }
}

/// Each count is at least 1.
///
/// # Errors
/// The first variable that is zero.
pub fn require_nonzero_counts(
    counts: impl IntoIterator<Item = (&'static str, usize)>,
) -> Result<(), ConfigError> {
    match counts.into_iter().find(|(_, count)| *count == 0) {
        Some((variable, _)) => Err(ConfigError::new(variable, "must be at least 1")),
        None => Ok(()),
    }
}

/// The broker URL, when set, is plain AMQP (the services speak no TLS to the broker).
///
/// # Errors
/// When it has another scheme; the message shows the URL without its password.
pub fn require_amqp(variable: &'static str, url: Option<&str>) -> Result<(), ConfigError> {
    match url {
        Some(url) if !url.starts_with("amqp://") => Err(ConfigError::new(
            variable,
            format!(
                "{} must start with amqp:// (TLS to the broker is not supported)",
                redact_url(url)
            ),
        )),
        _ => Ok(()),
    }
}

/// A service URL (database, broker, Redis) with any password replaced, for logs and errors.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// A URL that may carry a password: `Debug` shows it with the password replaced, and the
/// whole text is only had through [`SecretUrl::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL itself, password and all: for connecting, never for printing.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced.
    #[must_use]
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl From<String> for SecretUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for SecretUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), formatter)
    }
}

/// A secret (a key, a password): `Debug` shows `***`, and the value is only had through
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself: for using, never for printing.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Self(secret.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("\"***\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redact_url("mysql://app:s3cret@db:3306/hangout"),
            "mysql://app:***@db:3306/hangout"
        );
        assert_eq!(redact_url("sqlite:data/h.db"), "sqlite:data/h.db");
        assert_eq!(
            redact_url("amqp://guest:pa@ss@rabbit:5672/%2f"),
            "amqp://guest:***@rabbit:5672/%2f"
        );
        let url = SecretUrl::from("redis://:s3cret@cache:6379");
        assert_eq!(format!("{url:?}"), "\"redis://:***@cache:6379\"");
        assert_eq!(url.expose(), "redis://:s3cret@cache:6379");
        let key = Secret::from("very-secret-key");
        assert_eq!(format!("{key:?}"), "\"***\"");
        let refused =
            require_amqp("BROKER", Some("amqps://u:pw@rabbit")).expect_err("amqps is refused");
        assert!(!refused.to_string().contains("pw@"), "{refused}");
    }

    #[test]
    fn checks_name_the_first_bad_variable() {
        let problem = require_nonzero_durations([
            ("A", Duration::from_secs(1)),
            ("B", Duration::ZERO),
            ("C", Duration::ZERO),
        ])
        .expect_err("B is zero");
        assert_eq!(problem.variable, "B");
        assert_eq!(
            require_nonzero_counts([("N", 0)])
                .expect_err("zero")
                .to_string(),
            "N: must be at least 1"
        );
        let missing = require_tls_files([("CA", Path::new("/nonexistent/ca.pem"))])
            .expect_err("no such file");
        assert_eq!(missing.variable, "CA");
        assert!(missing.message.contains("cargo xtask certs"), "{missing}");
    }
}
