use std::fmt;

use crate::reason::Reason;

/// Why a value given by a caller was refused. `field` names the input field, `reason` is a stable
/// SHOUTY code a client can branch on, `message` is for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub field: &'static str,
    pub reason: Reason,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, reason: Reason, message: impl Into<String>) -> Self {
        Self { field, reason, message: message.into() }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
