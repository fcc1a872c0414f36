//! Rules for short labels shared by several entities (names, titles).

use crate::domain::error::{DomainError, DomainResult};

/// The most characters of a label.
pub const MAX_LABEL_CHARS: usize = 255;

/// Parses a label: trimmed, 1 to 255 characters, no control characters.
///
/// # Errors
/// `Invalid` on `field`.
pub fn parse_label(text: &str, field: &str) -> DomainResult<String> {
    let label = text.trim();
    let length = label.chars().count();
    if length == 0 || length > MAX_LABEL_CHARS {
        return Err(DomainError::invalid(
            field,
            format!("must be 1 to {MAX_LABEL_CHARS} characters after trimming"),
        ));
    }
    if label.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(label.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_and_bounded() {
        assert_eq!(parse_label("  Ada ", "name").ok(), Some("Ada".to_owned()));
        assert!(parse_label("   ", "name").is_err());
        assert!(parse_label(&"é".repeat(255), "name").is_ok());
        assert!(parse_label(&"é".repeat(256), "name").is_err());
        assert!(parse_label("a\u{0}b", "name").is_err());
    }
}
