//! The emergency freeze: while it holds, no operation hands out a secret, on any replica.

use time::OffsetDateTime;

use crate::ValidationError;
use crate::text::bounded_text;

/// Why the vault was frozen: a free text recorded with the freeze and in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeReason(String);

impl FreezeReason {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        bounded_text(field, raw, Self::MAX_CHARS, "a reason is required (it is recorded in the audit)").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A freeze in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    /// The subject (or `cli:<user>`) that froze the vault.
    pub by: String,
    pub at: OffsetDateTime,
    pub reason: FreezeReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freeze_needs_a_printable_reason() {
        assert_eq!(
            FreezeReason::parse("reason", "  leak on the CI runner ").unwrap().as_str(),
            "leak on the CI runner"
        );
        assert_eq!(FreezeReason::parse("reason", " ").unwrap_err().reason.as_str(), "EMPTY");
        assert_eq!(FreezeReason::parse("reason", "a\u{7}").unwrap_err().reason.as_str(), "CONTROL_CHARACTER");
    }
}
