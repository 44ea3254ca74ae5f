//! Bank details: the IBAN, the BIC and the account holder, each a validated newtype whose plaintext is wiped on
//! drop and never shown by `Debug`, and the SEPA length table used to explain a mistyped IBAN.

use std::fmt;

use zeroize::Zeroizing;

use crate::text::bounded_text;
use crate::{Reason, ValidationError};

/// The longest IBAN ISO 13616 allows.
const MAX_IBAN_LEN: usize = 34;

/// IBAN lengths of the SEPA countries, only to say precisely what is wrong with a mistyped one; whether an IBAN is
/// valid is decided by `iban_validate` (these lengths agree with its registry, version 5.0.1).
const SEPA_IBAN_LENGTHS: [(&str, usize); 42] = [
    ("AD", 24),
    ("AL", 28),
    ("AT", 20),
    ("BE", 16),
    ("BG", 22),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GI", 23),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IS", 26),
    ("IT", 27),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("RS", 22),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("VA", 22),
];

fn sepa_iban_length(country: &str) -> Option<usize> {
    SEPA_IBAN_LENGTHS.iter().find(|(c, _)| *c == country).map(|(_, len)| *len)
}

/// "an FR IBAN", "a DE IBAN": the article follows how the first letter is spoken.
fn article(country: &str) -> &'static str {
    if country.starts_with(['A', 'E', 'F', 'H', 'I', 'L', 'M', 'N', 'O', 'R', 'S', 'X']) { "an" } else { "a" }
}

/// An International Bank Account Number, checked against the IBAN registry (country, length, BBAN format, mod-97
/// check digits). Held in its electronic form (no spaces, upper-case) in memory that is wiped on drop; `Debug`
/// shows only the masked form.
#[derive(Clone, PartialEq, Eq)]
pub struct Iban(Zeroizing<String>);

impl Iban {
    /// Parses an IBAN typed by a human: surrounding whitespace, inner spaces and lower case are accepted.
    ///
    /// Reasons: `EMPTY`, `INVALID_CHARACTERS`, `INVALID_FORMAT` (not a country code and check digits, or a BBAN
    /// that does not follow the country's format), `WRONG_LENGTH`, `UNKNOWN_COUNTRY`, `BAD_CHECKSUM`. The check
    /// digits are verified before the country is looked up, so an unknown country with wrong check digits is
    /// reported as `BAD_CHECKSUM`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        // Sized up front so that the plaintext is never left behind in a reallocated buffer.
        let mut normalized = Zeroizing::new(String::with_capacity(raw.len()));
        for c in raw.trim().chars() {
            if c == ' ' {
                continue;
            }
            if !c.is_ascii_alphanumeric() {
                return Err(ValidationError::new(
                    field,
                    Reason::InvalidCharacters,
                    "an IBAN has only letters, digits and spaces",
                ));
            }
            normalized.push(c.to_ascii_uppercase());
        }
        if normalized.is_empty() {
            return Err(ValidationError::new(field, Reason::Empty, "the IBAN must not be empty"));
        }
        let bytes = normalized.as_bytes();
        let shaped = bytes.len() >= 4
            && bytes[..2].iter().all(u8::is_ascii_uppercase)
            && bytes[2..4].iter().all(u8::is_ascii_digit);
        if !shaped {
            return Err(ValidationError::new(
                field,
                Reason::InvalidFormat,
                "an IBAN starts with a two-letter country code and two check digits",
            ));
        }
        let country = &normalized[..2];
        let len = normalized.len();
        // The length is checked before the check digits: a missing digit is a likelier mistake than a wrong one,
        // and the crate would report it as a bad checksum.
        if let Some(expected) = sepa_iban_length(country)
            && len != expected
        {
            return Err(ValidationError::new(
                field,
                Reason::WrongLength,
                format!("{} {country} IBAN has {expected} characters; this one has {len}", article(country)),
            ));
        }
        if len > MAX_IBAN_LEN {
            return Err(ValidationError::new(
                field,
                Reason::WrongLength,
                format!("an IBAN has at most {MAX_IBAN_LEN} characters; this one has {len}"),
            ));
        }
        // The crate's own value is a `Copy` stack string we cannot wipe, so only its verdict is kept.
        match normalized.parse::<iban::Iban>() {
            Ok(_) => Ok(Self(normalized)),
            Err(iban::ParseIbanError::InvalidBaseIban { source: iban::ParseBaseIbanError::InvalidChecksum }) => {
                Err(ValidationError::new(
                    field,
                    Reason::BadChecksum,
                    "the IBAN's check digits do not match: there is a typo somewhere",
                ))
            }
            Err(iban::ParseIbanError::InvalidBaseIban { source: iban::ParseBaseIbanError::InvalidFormat }) => {
                Err(ValidationError::new(field, Reason::InvalidFormat, "this does not have the structure of an IBAN"))
            }
            Err(iban::ParseIbanError::UnknownCountry(_)) => Err(ValidationError::new(
                field,
                Reason::UnknownCountry,
                format!("'{country}' is not a country that issues IBANs"),
            )),
            Err(iban::ParseIbanError::InvalidBban(_)) => Err(ValidationError::new(
                field,
                Reason::InvalidFormat,
                format!("the account number does not follow the format of {} {country} IBAN", article(country)),
            )),
        }
    }

    /// The full IBAN in electronic form, e.g. `FR7630006000011234567890189`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The ISO 3166 country code the IBAN starts with, e.g. `FR`.
    pub fn country(&self) -> &str {
        &self.0[..2]
    }

    /// The form that may be shown and logged: the first four and last four characters, e.g. `FR76…0189`.
    pub fn masked(&self) -> String {
        format!("{}…{}", &self.0[..4], self.last4())
    }

    /// The last four characters, e.g. `0189`.
    pub fn last4(&self) -> String {
        // Every IBAN is at least 15 characters long (Norway), so this never overlaps the country code.
        self.0[self.0.len() - 4..].to_owned()
    }
}

impl fmt::Debug for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Iban({})", self.masked())
    }
}

/// A Business Identifier Code (ISO 9362): 4 letters (bank), 2 letters (country), 2 letters or digits (location),
/// optionally 3 letters or digits (branch). Held trimmed and upper-case; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Bic(Zeroizing<String>);

impl Bic {
    /// Parses a BIC. Reasons: `EMPTY`, `WRONG_LENGTH` (not 8 or 11 characters), `INVALID_FORMAT`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(ValidationError::new(field, Reason::Empty, "the BIC must not be empty"));
        }
        let len = value.chars().count();
        if len != 8 && len != 11 {
            return Err(ValidationError::new(
                field,
                Reason::WrongLength,
                format!("a BIC has 8 or 11 characters; this one has {len}"),
            ));
        }
        let bic = Zeroizing::new(value.to_ascii_uppercase());
        let bytes = bic.as_bytes();
        // Counting bytes, not chars, so any non-ASCII character fails here.
        let shaped = bytes.len() == len
            && bytes[..6].iter().all(u8::is_ascii_uppercase)
            && bytes[6..].iter().all(u8::is_ascii_alphanumeric);
        if !shaped {
            return Err(ValidationError::new(
                field,
                Reason::InvalidFormat,
                "a BIC is 4 letters (bank), 2 letters (country), 2 letters or digits (location) and optionally 3 \
                 letters or digits (branch)",
            ));
        }
        Ok(Self(bic))
    }

    /// The BIC, upper-case, e.g. `BNPAFRPP`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The country code inside the BIC (characters 5 and 6), e.g. `FR`.
    pub fn country(&self) -> &str {
        &self.0[4..6]
    }
}

impl fmt::Debug for Bic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bic([REDACTED])")
    }
}

/// The name of the account holder: trimmed, non-empty, at most 70 characters (the SEPA limit), no control
/// characters. Wiped on drop; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountHolder(Zeroizing<String>);

impl AccountHolder {
    /// The SEPA limit on the creditor name.
    pub const MAX_CHARS: usize = 70;

    /// Parses a holder name. Reasons: `EMPTY`, `TOO_LONG`, `CONTROL_CHARACTER`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        bounded_text(field, raw, Self::MAX_CHARS, "the account holder's name must not be empty")
            .map(|name| Self(Zeroizing::new(name)))
    }

    /// The holder's name.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccountHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountHolder([REDACTED])")
    }
}

/// The IBAN country a BIC country banks under: Crown Dependencies use British IBANs, French overseas territories
/// French ones, Åland Finnish ones.
pub(super) fn iban_country_for_bic(bic_country: &str) -> &str {
    match bic_country {
        "JE" | "GG" | "IM" => "GB",
        "GP" | "MQ" | "RE" | "GF" | "YT" | "PM" | "BL" | "MF" | "NC" | "PF" | "WF" => "FR",
        "AX" => "FI",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn iban_reason(raw: &str) -> &'static str {
        match Iban::parse("iban", raw) {
            Ok(_) => "OK",
            Err(e) => e.reason.as_str(),
        }
    }

    #[test]
    fn a_spaced_lower_case_iban_is_normalized_to_its_electronic_form() {
        let iban = Iban::parse("iban", "  fr76 3000 6000 0112 3456 7890 189 ").unwrap();
        assert_eq!(iban.expose(), "FR7630006000011234567890189");
        assert_eq!(iban.country(), "FR");
    }

    #[test]
    fn an_iban_is_masked_to_its_first_and_last_four_characters() {
        let iban = Iban::parse("iban", "FR7630006000011234567890189").unwrap();
        assert_eq!(iban.masked(), "FR76…0189");
        assert_eq!(iban.last4(), "0189");
    }

    #[test]
    fn an_empty_iban_is_refused() {
        assert_eq!(iban_reason(""), "EMPTY");
        assert_eq!(iban_reason("    "), "EMPTY");
    }

    #[test]
    fn an_iban_with_punctuation_or_non_ascii_characters_is_refused() {
        assert_eq!(iban_reason("FR76-3000-6000-0112-3456-7890-189"), "INVALID_CHARACTERS");
        assert_eq!(iban_reason("FR76\t30006000011234567890189"), "INVALID_CHARACTERS");
        assert_eq!(iban_reason("FR763000600001123456789018é"), "INVALID_CHARACTERS");
    }

    #[test]
    fn an_iban_with_a_typo_has_a_bad_checksum() {
        assert_eq!(iban_reason("FR7630006000011234567890188"), "BAD_CHECKSUM");
        assert_eq!(iban_reason("DE89370400440532013001"), "BAD_CHECKSUM");
    }

    #[test]
    fn a_french_iban_missing_a_digit_names_the_expected_length() {
        let err = Iban::parse("iban", "FR763000600001123456789018").unwrap_err();
        assert_eq!((err.field, err.reason.as_str()), ("iban", "WRONG_LENGTH"));
        assert!(err.message.contains("an FR IBAN has 27 characters"), "{}", err.message);
        let err = Iban::parse("iban", "DE8937040044053201300").unwrap_err();
        assert!(err.message.contains("a DE IBAN has 22 characters"), "{}", err.message);
        assert_eq!(iban_reason(&format!("MT{}", "1".repeat(40))), "WRONG_LENGTH");
    }

    #[test]
    fn an_iban_of_a_country_without_ibans_is_refused() {
        // Its check digits are right, so only the country is wrong.
        let err = Iban::parse("iban", "XX97123456789012345678").unwrap_err();
        assert_eq!(err.reason.as_str(), "UNKNOWN_COUNTRY");
        assert!(err.message.contains("XX"), "{}", err.message);
    }

    #[test]
    fn an_iban_whose_account_number_breaks_the_country_format_is_refused() {
        // Right length and check digits, but letters where the country has digits.
        assert_eq!(iban_reason("FR67300060000112345678901AB"), "INVALID_FORMAT");
        assert_eq!(iban_reason("DE0537040044053201300A"), "INVALID_FORMAT");
        assert_eq!(iban_reason("7630006000011234567890189"), "INVALID_FORMAT");
    }

    #[test]
    fn a_bic_is_trimmed_and_upper_cased() {
        let bic = Bic::parse("bic", " bnpafrpp ").unwrap();
        assert_eq!((bic.expose(), bic.country()), ("BNPAFRPP", "FR"));
        assert!(Bic::parse("bic", "DEUTDEFF500").is_ok());
    }

    #[test]
    fn a_bic_of_the_wrong_length_or_shape_is_refused() {
        let reason = |raw| Bic::parse("bic", raw).unwrap_err().reason.as_str();
        assert_eq!(reason(""), "EMPTY");
        assert_eq!(reason("BNPAFRP"), "WRONG_LENGTH");
        assert_eq!(reason("BNPAFRPPXX"), "WRONG_LENGTH");
        assert_eq!(reason("BNPAFRPPXXXX"), "WRONG_LENGTH");
        assert_eq!(reason("BNP1FRPP"), "INVALID_FORMAT");
        assert_eq!(reason("BNPAF1PP"), "INVALID_FORMAT");
        assert_eq!(reason("BNPAFRP-"), "INVALID_FORMAT");
        assert_eq!(reason("BNPAFRPé"), "INVALID_FORMAT");
    }

    #[test]
    fn an_account_holder_is_bounded_by_the_sepa_limit() {
        let reason = |raw: &str| AccountHolder::parse("accountHolder", raw).unwrap_err().reason.as_str();
        assert_eq!(AccountHolder::parse("accountHolder", " Best Shop ").unwrap().expose(), "Best Shop");
        assert_eq!(reason(" "), "EMPTY");
        assert_eq!(reason(&"é".repeat(71)), "TOO_LONG");
        assert_eq!(reason("Best\nShop"), "CONTROL_CHARACTER");
        assert!(AccountHolder::parse("accountHolder", &"é".repeat(70)).is_ok());
    }

    proptest! {
        #[test]
        fn iban_parsing_never_panics(raw in "\\PC{0,40}") {
            let _ = Iban::parse("iban", &raw);
        }

        #[test]
        fn bic_parsing_never_panics(raw in "\\PC{0,14}") {
            let _ = Bic::parse("bic", &raw);
        }
    }
}
