//! Small validated strings shared by several inputs.

use crate::{Reason, ValidationError};

/// A trimmed, non-empty, bounded text without control characters: the shape of every free-text input.
pub(crate) fn bounded_text(
    field: &'static str,
    raw: &str,
    max_chars: usize,
    empty: &str,
) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, Reason::Empty, empty));
    }
    if trimmed.chars().count() > max_chars {
        return Err(ValidationError::new(field, Reason::TooLong, format!("at most {max_chars} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(field, Reason::ControlCharacter, "control characters are not allowed"));
    }
    Ok(trimmed.to_owned())
}

/// Why a secret or credential is being read: a free text recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose(String);

impl Purpose {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        bounded_text(field, raw, Self::MAX_CHARS, "a purpose is required (it is recorded in the audit)").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A human-readable name (e.g. a seller's display name): trimmed, non-empty, bounded, printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        bounded_text(field, raw, Self::MAX_CHARS, "must not be empty").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purpose_is_trimmed_and_must_not_be_blank() {
        assert_eq!(Purpose::parse("purpose", "  nightly sync ").map(|p| p.0), Ok("nightly sync".to_owned()));
        assert_eq!(Purpose::parse("purpose", "   ").map_err(|e| e.reason.as_str()), Err("EMPTY"));
        assert_eq!(Purpose::parse("purpose", "a\nb").map_err(|e| e.reason.as_str()), Err("CONTROL_CHARACTER"));
        assert_eq!(Purpose::parse("purpose", &"x".repeat(201)).map_err(|e| e.reason.as_str()), Err("TOO_LONG"));
    }

    #[test]
    fn a_display_name_rejects_blank_and_overlong_values() {
        assert!(DisplayName::parse("displayName", "Best Shop").is_ok());
        assert_eq!(DisplayName::parse("displayName", "").map_err(|e| e.reason.as_str()), Err("EMPTY"));
        assert_eq!(DisplayName::parse("displayName", &"é".repeat(201)).map_err(|e| e.reason.as_str()), Err("TOO_LONG"));
    }
}
