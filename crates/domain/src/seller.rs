//! Seller accounts: the validated seller login and the API login derived from it.

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::text::DisplayName;
use crate::{Reason, ValidationError};

/// A seller account as the vault knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellerAccount {
    pub id: Uuid,
    pub login: SellerLogin,
    pub display_name: DisplayName,
    pub status: SellerStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A Cdiscount seller login: letters, digits, `.`, `_`, `-`, 2 to 64 characters, not ending in `-api`
/// (the API login is derived from it, never given).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SellerLogin(String);

impl SellerLogin {
    pub const MIN_LEN: usize = 2;
    pub const MAX_LEN: usize = 64;
    const API_SUFFIX: &'static str = "-api";

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        let len = raw.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(ValidationError::new(
                field,
                Reason::InvalidLength,
                format!("a seller login has {} to {} characters", Self::MIN_LEN, Self::MAX_LEN),
            ));
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(ValidationError::new(
                field,
                Reason::InvalidCharacters,
                "a seller login has only letters, digits, '.', '_' and '-'",
            ));
        }
        if raw.to_ascii_lowercase().ends_with(Self::API_SUFFIX) {
            return Err(ValidationError::new(
                field,
                Reason::ApiLoginGiven,
                format!(
                    "give the seller login without '-api': the API login is derived from it (did you mean '{}'?)",
                    &raw[..raw.len() - Self::API_SUFFIX.len()]
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The login of the seller's Marketplace API account: always `<login>-api`.
    pub fn api_login(&self) -> String {
        format!("{}{}", self.0, Self::API_SUFFIX)
    }
}

impl fmt::Display for SellerLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether credentials of a seller may be issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SellerStatus {
    Active,
    Inactive,
}

impl SellerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ACTIVE" => Some(Self::Active),
            "INACTIVE" => Some(Self::Inactive),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_api_login_is_the_seller_login_with_an_api_suffix() {
        let login = SellerLogin::parse("login", "bestshop").unwrap();
        assert_eq!(login.api_login(), "bestshop-api");
    }

    #[test]
    fn a_login_that_already_ends_in_api_is_refused_with_a_hint() {
        let err = SellerLogin::parse("login", "bestshop-api").unwrap_err();
        assert_eq!(err.reason.as_str(), "API_LOGIN_GIVEN");
        assert!(err.message.contains("'bestshop'"), "{}", err.message);
        assert_eq!(SellerLogin::parse("login", "Shop-API").unwrap_err().reason.as_str(), "API_LOGIN_GIVEN");
    }

    #[test]
    fn logins_outside_the_allowed_shape_are_refused() {
        assert_eq!(SellerLogin::parse("login", "a").unwrap_err().reason.as_str(), "INVALID_LENGTH");
        assert_eq!(SellerLogin::parse("login", &"a".repeat(65)).unwrap_err().reason.as_str(), "INVALID_LENGTH");
        assert_eq!(SellerLogin::parse("login", "best shop").unwrap_err().reason.as_str(), "INVALID_CHARACTERS");
        assert_eq!(SellerLogin::parse("login", "bést").unwrap_err().reason.as_str(), "INVALID_CHARACTERS");
        assert!(SellerLogin::parse("login", "a.b_c-d9").is_ok());
    }

    proptest! {
        #[test]
        fn any_login_of_allowed_characters_and_length_parses(raw in "[A-Za-z0-9._-]{2,64}") {
            prop_assume!(!raw.to_ascii_lowercase().ends_with("-api"));
            let login = SellerLogin::parse("login", &raw).unwrap();
            prop_assert_eq!(login.as_str(), raw.as_str());
        }

        #[test]
        fn parsing_never_panics(raw in "\\PC{0,80}") {
            let _ = SellerLogin::parse("login", &raw);
        }
    }
}
