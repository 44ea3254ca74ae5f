//! A seller's payout bank account and the four-eyes review a change to it goes through.
//!
//! Bank details are parsed once into validated newtypes whose plaintext is wiped on drop and never shown by `Debug`.
//! The review is a pure state machine: [`decide`] is the one rule book the storage and API layers apply.

use std::fmt;

use zeroize::Zeroizing;

use uuid::Uuid;

use crate::ValidationError;
use crate::crypto::{CryptoError, Keyring, Place, Sealed, push_part};
use crate::policy::{Denial, Scope};
use crate::text::bounded_text;

/// The only currency payouts are made in (SEPA credit transfers).
pub const PAYOUT_CURRENCY: &str = "EUR";

/// Where sealed payout details live: a request row or an account row, and the seller it belongs to. All of it is
/// bound into the ciphertext, so details moved to another row or re-pointed at another seller fail to open.
#[derive(Debug, Clone, Copy)]
pub struct PayoutSlot {
    table: &'static str,
    pub row_id: Uuid,
    pub seller_id: Uuid,
}

impl PayoutSlot {
    const FIELD: &'static str = "details";

    /// The details of a payout change request.
    pub fn request(row_id: Uuid, seller_id: Uuid) -> Self {
        Self { table: "payout_requests", row_id, seller_id }
    }

    /// The details of a payout account.
    pub fn account(row_id: Uuid, seller_id: Uuid) -> Self {
        Self { table: "payout_accounts", row_id, seller_id }
    }

    fn context(&self) -> Vec<u8> {
        let mut context = Vec::with_capacity(20);
        push_part(&mut context, self.seller_id.as_bytes());
        context
    }

    pub fn seal(&self, ring: &Keyring, details: &PayoutDetails) -> Result<Sealed, CryptoError> {
        self.seal_encoded(ring, &details.encode())
    }

    /// Seals details already encoded (as opened from another slot), without decoding them.
    pub fn seal_encoded(&self, ring: &Keyring, encoded: &[u8]) -> Result<Sealed, CryptoError> {
        let context = self.context();
        ring.seal(Place { table: self.table, row_id: self.row_id, field: Self::FIELD, context: &context }, encoded)
    }

    /// Opens to the encoded details; [`PayoutDetails::decode`] reads them.
    pub fn open(&self, ring: &Keyring, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let context = self.context();
        ring.open(Place { table: self.table, row_id: self.row_id, field: Self::FIELD, context: &context }, sealed)
    }
}

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
                    "INVALID_CHARACTERS",
                    "an IBAN has only letters, digits and spaces",
                ));
            }
            normalized.push(c.to_ascii_uppercase());
        }
        if normalized.is_empty() {
            return Err(ValidationError::new(field, "EMPTY", "the IBAN must not be empty"));
        }
        let bytes = normalized.as_bytes();
        let shaped = bytes.len() >= 4
            && bytes[..2].iter().all(u8::is_ascii_uppercase)
            && bytes[2..4].iter().all(u8::is_ascii_digit);
        if !shaped {
            return Err(ValidationError::new(
                field,
                "INVALID_FORMAT",
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
                "WRONG_LENGTH",
                format!("{} {country} IBAN has {expected} characters; this one has {len}", article(country)),
            ));
        }
        if len > MAX_IBAN_LEN {
            return Err(ValidationError::new(
                field,
                "WRONG_LENGTH",
                format!("an IBAN has at most {MAX_IBAN_LEN} characters; this one has {len}"),
            ));
        }
        // The crate's own value is a `Copy` stack string we cannot wipe, so only its verdict is kept.
        match normalized.parse::<iban::Iban>() {
            Ok(_) => Ok(Self(normalized)),
            Err(iban::ParseIbanError::InvalidBaseIban { source: iban::ParseBaseIbanError::InvalidChecksum }) => {
                Err(ValidationError::new(
                    field,
                    "BAD_CHECKSUM",
                    "the IBAN's check digits do not match: there is a typo somewhere",
                ))
            }
            Err(iban::ParseIbanError::InvalidBaseIban { source: iban::ParseBaseIbanError::InvalidFormat }) => {
                Err(ValidationError::new(field, "INVALID_FORMAT", "this does not have the structure of an IBAN"))
            }
            Err(iban::ParseIbanError::UnknownCountry(_)) => Err(ValidationError::new(
                field,
                "UNKNOWN_COUNTRY",
                format!("'{country}' is not a country that issues IBANs"),
            )),
            Err(iban::ParseIbanError::InvalidBban(_)) => Err(ValidationError::new(
                field,
                "INVALID_FORMAT",
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
            return Err(ValidationError::new(field, "EMPTY", "the BIC must not be empty"));
        }
        let len = value.chars().count();
        if len != 8 && len != 11 {
            return Err(ValidationError::new(
                field,
                "WRONG_LENGTH",
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
                "INVALID_FORMAT",
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
fn iban_country_for_bic(bic_country: &str) -> &str {
    match bic_country {
        "JE" | "GG" | "IM" => "GB",
        "GP" | "MQ" | "RE" | "GF" | "YT" | "PM" | "BL" | "MF" | "NC" | "PF" | "WF" => "FR",
        "AX" => "FI",
        other => other,
    }
}

/// The first byte of [`PayoutDetails::encode`]'s output, so the layout can change later.
const ENCODING_V1: u8 = 1;

/// A complete, consistent set of bank details to pay a seller out to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutDetails {
    pub iban: Iban,
    pub bic: Bic,
    pub holder: AccountHolder,
}

impl PayoutDetails {
    /// Parses the three inputs, named `iban`, `bic` and `accountHolder` in errors, and checks that the BIC's
    /// country is the IBAN's (or a territory using that country's IBANs); otherwise `bic`, `COUNTRY_MISMATCH`.
    pub fn parse(iban: &str, bic: &str, account_holder: &str) -> Result<Self, ValidationError> {
        let iban = Iban::parse("iban", iban)?;
        let bic = Bic::parse("bic", bic)?;
        let holder = AccountHolder::parse("accountHolder", account_holder)?;
        if iban_country_for_bic(bic.country()) != iban.country() {
            return Err(ValidationError::new(
                "bic",
                "COUNTRY_MISMATCH",
                format!(
                    "the BIC is of a bank in {} but the IBAN is of an account in {}",
                    bic.country(),
                    iban.country()
                ),
            ));
        }
        Ok(Self { iban, bic, holder })
    }

    /// The plaintext to seal: a format byte, then IBAN, BIC and holder, each as a big-endian `u16` byte length
    /// followed by its UTF-8 bytes.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let fields = [self.iban.expose(), self.bic.expose(), self.holder.expose()];
        let mut out = Zeroizing::new(Vec::with_capacity(1 + fields.iter().map(|f| 2 + f.len()).sum::<usize>()));
        out.push(ENCODING_V1);
        for field in fields {
            // The parsers bound every field far below u16::MAX bytes (70 characters is at most 280 bytes).
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    /// The inverse of [`encode`](Self::encode). Every field is validated again, so bytes that were valid under
    /// older rules but are not any more come back as [`PayoutDecodeError::Invalid`].
    pub fn decode(bytes: &[u8]) -> Result<Self, PayoutDecodeError> {
        let (&format, mut rest) = bytes.split_first().ok_or(PayoutDecodeError::Malformed)?;
        if format != ENCODING_V1 {
            return Err(PayoutDecodeError::UnknownFormat(format));
        }
        let iban = take_field(&mut rest)?;
        let bic = take_field(&mut rest)?;
        let holder = take_field(&mut rest)?;
        if !rest.is_empty() {
            return Err(PayoutDecodeError::Malformed);
        }
        Ok(Self::parse(iban, bic, holder)?)
    }
}

fn take_field<'a>(rest: &mut &'a [u8]) -> Result<&'a str, PayoutDecodeError> {
    let (len, tail) = rest.split_first_chunk::<2>().ok_or(PayoutDecodeError::Malformed)?;
    let (field, tail) =
        tail.split_at_checked(usize::from(u16::from_be_bytes(*len))).ok_or(PayoutDecodeError::Malformed)?;
    *rest = tail;
    std::str::from_utf8(field).map_err(|_| PayoutDecodeError::Malformed)
}

/// Why [`PayoutDetails::decode`] failed. Messages never contain the bank details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayoutDecodeError {
    /// The leading format byte is not one this version knows.
    #[error("unknown payout details encoding {0}")]
    UnknownFormat(u8),
    /// Truncated, trailing bytes, or a field that is not UTF-8.
    #[error("the payout details encoding is malformed")]
    Malformed,
    /// Well-formed, but a field (or the BIC/IBAN pair) no longer validates.
    #[error("the decoded payout details are invalid: {0}")]
    Invalid(#[from] ValidationError),
}

/// Where a payout account change request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayoutStatus {
    /// Submitted by the seller's side, waiting for a reviewer.
    Submitted,
    /// A reviewer is looking at it.
    InReview,
    /// The reviewer asked for supporting documents.
    DocumentsRequested,
    /// Approved: the new account is the active payout account. Terminal.
    Approved,
    /// Rejected by a reviewer. Terminal.
    Rejected,
    /// Withdrawn by its submitter. Terminal.
    Cancelled,
}

impl PayoutStatus {
    /// Every status, open ones first.
    pub const ALL: [Self; 6] =
        [Self::Submitted, Self::InReview, Self::DocumentsRequested, Self::Approved, Self::Rejected, Self::Cancelled];

    /// The stable name, e.g. `DOCUMENTS_REQUESTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::InReview => "IN_REVIEW",
            Self::DocumentsRequested => "DOCUMENTS_REQUESTED",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// The status with that stable name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether the request is still undecided (submitted, in review, or waiting for documents).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Submitted | Self::InReview | Self::DocumentsRequested)
    }
}

impl fmt::Display for PayoutStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A supporting document a reviewer can ask for (KYC: know your customer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KycDocument {
    /// A bank's certificate that the IBAN belongs to the holder (a French RIB, for instance).
    IbanCertificate,
    /// An identity document of the holder or the company's legal representative.
    IdentityDocument,
    /// The company's registration extract (a Kbis in France).
    CompanyRegistration,
    /// A recent proof of address.
    ProofOfAddress,
}

impl KycDocument {
    /// Every kind of document.
    pub const ALL: [Self; 4] =
        [Self::IbanCertificate, Self::IdentityDocument, Self::CompanyRegistration, Self::ProofOfAddress];

    /// The stable name, e.g. `IBAN_CERTIFICATE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IbanCertificate => "IBAN_CERTIFICATE",
            Self::IdentityDocument => "IDENTITY_DOCUMENT",
            Self::CompanyRegistration => "COMPANY_REGISTRATION",
            Self::ProofOfAddress => "PROOF_OF_ADDRESS",
        }
    }

    /// The document kind with that stable name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == raw)
    }
}

/// Something done to a payout change request: an edge of the review diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayoutMove {
    /// SUBMITTED → IN_REVIEW.
    StartReview,
    /// IN_REVIEW → DOCUMENTS_REQUESTED.
    RequestDocuments,
    /// DOCUMENTS_REQUESTED → IN_REVIEW.
    ResumeReview,
    /// IN_REVIEW → APPROVED.
    Approve,
    /// IN_REVIEW → REJECTED.
    Reject,
    /// Any open status → CANCELLED; by the submitter only.
    Cancel,
}

impl PayoutMove {
    /// Every move.
    pub const ALL: [Self; 6] =
        [Self::StartReview, Self::RequestDocuments, Self::ResumeReview, Self::Approve, Self::Reject, Self::Cancel];

    /// The stable name used in audit action names, e.g. `start_review`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartReview => "start_review",
            Self::RequestDocuments => "request_documents",
            Self::ResumeReview => "resume_review",
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Cancel => "cancel",
        }
    }

    /// The move with that stable name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }

    /// The status the move leads to.
    pub fn target(self) -> PayoutStatus {
        match self {
            Self::StartReview | Self::ResumeReview => PayoutStatus::InReview,
            Self::RequestDocuments => PayoutStatus::DocumentsRequested,
            Self::Approve => PayoutStatus::Approved,
            Self::Reject => PayoutStatus::Rejected,
            Self::Cancel => PayoutStatus::Cancelled,
        }
    }

    /// Whether the diagram has this move leaving `from`.
    pub fn is_allowed_from(self, from: PayoutStatus) -> bool {
        use PayoutStatus::{DocumentsRequested, InReview, Submitted};
        match self {
            Self::StartReview => from == Submitted,
            Self::RequestDocuments | Self::Approve | Self::Reject => from == InReview,
            Self::ResumeReview => from == DocumentsRequested,
            Self::Cancel => from.is_open(),
        }
    }

    /// The scope a caller needs for the move: reviewers' moves need `kyc:review`, cancelling needs `kyc:submit`.
    pub fn scope(self) -> Scope {
        match self {
            Self::Cancel => Scope::KycSubmit,
            _ => Scope::KycReview,
        }
    }
}

impl fmt::Display for PayoutMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`decide`] refused a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// The caller acted on a version that is no longer the current one (someone else moved first): a conflict.
    #[error("the request changed since it was read (it is now at version {current}); reload it and try again")]
    Stale {
        /// The request's current version.
        current: i32,
    },
    /// The diagram has no such move from the current status: bad input, naming the current status.
    #[error("the request is {from}; {mv} is not possible from there")]
    Illegal {
        /// The request's current status.
        from: PayoutStatus,
        /// The refused move.
        mv: PayoutMove,
    },
    /// Four eyes: whoever submitted a change cannot review it. Forbidden.
    #[error("the subject that submitted a payout change cannot review it")]
    SubmitterCannotReview,
    /// Only the submitter may withdraw a change. Forbidden.
    #[error("only the subject that submitted a payout change can cancel it")]
    OnlySubmitterCancels,
}

impl WorkflowError {
    /// The policy denial this error is, for the refusals that are about who the caller is.
    pub fn denial(self) -> Option<Denial> {
        match self {
            Self::SubmitterCannotReview => Some(Denial::SubmitterCannotReview),
            Self::OnlySubmitterCancels => Some(Denial::NotSubmitter),
            Self::Stale { .. } | Self::Illegal { .. } => None,
        }
    }
}

/// The one rule book: whether `actor` may apply `mv` to a request in `status` at `version`, submitted by
/// `submitted_by`, believing it to be at `expected_version`; on success, the status it moves to.
///
/// The version is checked first, so of two racing reviewers the loser always gets [`WorkflowError::Stale`], then
/// the diagram, then who may do it.
pub fn decide(
    status: PayoutStatus,
    version: i32,
    submitted_by: &str,
    expected_version: i32,
    actor: &str,
    mv: PayoutMove,
) -> Result<PayoutStatus, WorkflowError> {
    if expected_version != version {
        return Err(WorkflowError::Stale { current: version });
    }
    if !mv.is_allowed_from(status) {
        return Err(WorkflowError::Illegal { from: status, mv });
    }
    let by_submitter = actor == submitted_by;
    match (mv, by_submitter) {
        (PayoutMove::Cancel, false) => Err(WorkflowError::OnlySubmitterCancels),
        (PayoutMove::Cancel, true) => Ok(mv.target()),
        (_, true) => Err(WorkflowError::SubmitterCannotReview),
        (_, false) => Ok(mv.target()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Published example IBANs with a BIC of the same country.
    const VALID: [(&str, &str); 11] = [
        ("FR1420041010050500013M02606", "PSSTFRPPPAR"),
        ("FR7630006000011234567890189", "AGRIFRPP"),
        ("DE89370400440532013000", "COBADEFFXXX"),
        ("GB29NWBK60161331926819", "NWBKGB2L"),
        ("ES9121000418450200051332", "CAIXESBBXXX"),
        ("IT60X0542811101000000123456", "BLOPIT22"),
        ("NL91ABNA0417164300", "ABNANL2A"),
        ("BE68539007547034", "GKCCBEBB"),
        ("IE29AIBK93115212345678", "AIBKIE2D"),
        ("LU280019400644750000", "BCEELULL"),
        ("PT50000201231234567890154", "CGDIPTPL"),
    ];

    fn iban_reason(raw: &str) -> &'static str {
        match Iban::parse("iban", raw) {
            Ok(_) => "OK",
            Err(e) => e.reason,
        }
    }

    #[test]
    fn published_example_ibans_of_sepa_countries_are_accepted_with_a_matching_bic() {
        for (iban, bic) in VALID {
            let details = PayoutDetails::parse(iban, bic, "Best Shop SARL");
            assert!(details.is_ok(), "{iban} / {bic}: {details:?}");
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
        assert_eq!((err.field, err.reason), ("iban", "WRONG_LENGTH"));
        assert!(err.message.contains("an FR IBAN has 27 characters"), "{}", err.message);
        let err = Iban::parse("iban", "DE8937040044053201300").unwrap_err();
        assert!(err.message.contains("a DE IBAN has 22 characters"), "{}", err.message);
        assert_eq!(iban_reason(&format!("MT{}", "1".repeat(40))), "WRONG_LENGTH");
    }

    #[test]
    fn an_iban_of_a_country_without_ibans_is_refused() {
        // Its check digits are right, so only the country is wrong.
        let err = Iban::parse("iban", "XX97123456789012345678").unwrap_err();
        assert_eq!(err.reason, "UNKNOWN_COUNTRY");
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
        let reason = |raw| Bic::parse("bic", raw).unwrap_err().reason;
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
        let reason = |raw: &str| AccountHolder::parse("accountHolder", raw).unwrap_err().reason;
        assert_eq!(AccountHolder::parse("accountHolder", " Best Shop ").unwrap().expose(), "Best Shop");
        assert_eq!(reason(" "), "EMPTY");
        assert_eq!(reason(&"é".repeat(71)), "TOO_LONG");
        assert_eq!(reason("Best\nShop"), "CONTROL_CHARACTER");
        assert!(AccountHolder::parse("accountHolder", &"é".repeat(70)).is_ok());
    }

    #[test]
    fn errors_name_the_graphql_input_field() {
        assert_eq!(PayoutDetails::parse("", "BNPAFRPP", "x").unwrap_err().field, "iban");
        assert_eq!(PayoutDetails::parse(VALID[1].0, "", "x").unwrap_err().field, "bic");
        assert_eq!(PayoutDetails::parse(VALID[1].0, "BNPAFRPP", "").unwrap_err().field, "accountHolder");
    }

    #[test]
    fn a_bic_of_another_country_than_the_iban_is_refused() {
        let err = PayoutDetails::parse("FR7630006000011234567890189", "COBADEFFXXX", "Best Shop").unwrap_err();
        assert_eq!((err.field, err.reason), ("bic", "COUNTRY_MISMATCH"));
        assert!(err.message.contains("DE") && err.message.contains("FR"), "{}", err.message);
        let err = PayoutDetails::parse("GB29NWBK60161331926819", "BNPARERX", "Best Shop").unwrap_err();
        assert_eq!(err.reason, "COUNTRY_MISMATCH");
    }

    #[test]
    fn a_bic_of_a_territory_banking_under_the_iban_country_is_accepted() {
        assert!(PayoutDetails::parse("GB29NWBK60161331926819", "NWBKJESH", "Best Shop").is_ok());
        assert!(PayoutDetails::parse("GB29NWBK60161331926819", "RBOSIMD1XXX", "Best Shop").is_ok());
        assert!(PayoutDetails::parse("FR7630006000011234567890189", "BNPARERX", "Best Shop").is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_iban_or_the_holder() {
        let details = PayoutDetails::parse("FR7630006000011234567890189", "AGRIFRPP", "Jeanne Dupont").unwrap();
        let shown = format!("{details:?} {:?} {:?} {:?}", details.iban, details.bic, details.holder);
        assert!(!shown.contains("FR7630006000011234567890189"), "{shown}");
        assert!(!shown.contains("30006000011234567890"), "{shown}");
        assert!(!shown.contains("Jeanne"), "{shown}");
        assert!(!shown.contains("AGRIFRPP"), "{shown}");
        assert!(shown.contains("FR76…0189"), "{shown}");
    }

    #[test]
    fn payout_details_survive_an_encode_decode_round_trip() {
        for (iban, bic) in VALID {
            let details = PayoutDetails::parse(iban, bic, "Société Générale d'Exemple").unwrap();
            let bytes = details.encode();
            assert_eq!(bytes[0], ENCODING_V1);
            assert_eq!(PayoutDetails::decode(&bytes), Ok(details));
        }
    }

    #[test]
    fn corrupted_encodings_are_refused() {
        let details = PayoutDetails::parse(VALID[0].0, VALID[0].1, "Best Shop").unwrap();
        let bytes = details.encode();
        assert_eq!(PayoutDetails::decode(&[]), Err(PayoutDecodeError::Malformed));
        assert_eq!(PayoutDetails::decode(&bytes[..bytes.len() - 1]), Err(PayoutDecodeError::Malformed));
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(PayoutDetails::decode(&longer), Err(PayoutDecodeError::Malformed));
        let mut other_format = bytes.to_vec();
        other_format[0] = 9;
        assert_eq!(PayoutDetails::decode(&other_format), Err(PayoutDecodeError::UnknownFormat(9)));
        let mut typo = bytes.to_vec();
        typo[5] = b'9';
        assert!(matches!(PayoutDetails::decode(&typo), Err(PayoutDecodeError::Invalid(e)) if e.field == "iban"));
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

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = PayoutDetails::decode(&bytes);
        }
    }

    // ---- the review workflow ----

    use PayoutMove::{Approve, Cancel, Reject, RequestDocuments, ResumeReview, StartReview};
    use PayoutStatus::{Approved, Cancelled, DocumentsRequested, InReview, Rejected, Submitted};

    /// The diagram, written out independently of the implementation.
    const EDGES: [(PayoutStatus, PayoutMove, PayoutStatus); 8] = [
        (Submitted, StartReview, InReview),
        (InReview, RequestDocuments, DocumentsRequested),
        (DocumentsRequested, ResumeReview, InReview),
        (InReview, Approve, Approved),
        (InReview, Reject, Rejected),
        (Submitted, Cancel, Cancelled),
        (InReview, Cancel, Cancelled),
        (DocumentsRequested, Cancel, Cancelled),
    ];

    const SUBMITTER: &str = "submitter";
    const ACTORS: [&str; 3] = [SUBMITTER, "reviewer1", "reviewer2"];

    fn edge(from: PayoutStatus, mv: PayoutMove) -> Option<PayoutStatus> {
        EDGES.iter().find(|(f, m, _)| *f == from && *m == mv).map(|(_, _, to)| *to)
    }

    #[test]
    fn statuses_documents_and_moves_round_trip_through_their_names() {
        for s in PayoutStatus::ALL {
            assert_eq!(PayoutStatus::parse(s.as_str()), Some(s));
        }
        for d in KycDocument::ALL {
            assert_eq!(KycDocument::parse(d.as_str()), Some(d));
        }
        for m in PayoutMove::ALL {
            assert_eq!(PayoutMove::parse(m.as_str()), Some(m));
        }
        assert_eq!(PayoutStatus::parse("approved"), None);
    }

    #[test]
    fn only_submitted_in_review_and_documents_requested_are_open() {
        let open: Vec<_> = PayoutStatus::ALL.into_iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [Submitted, InReview, DocumentsRequested]);
    }

    #[test]
    fn cancelling_needs_the_submit_scope_and_every_other_move_the_review_scope() {
        for m in PayoutMove::ALL {
            assert_eq!(m.scope(), if m == Cancel { Scope::KycSubmit } else { Scope::KycReview });
        }
    }

    #[test]
    fn every_edge_of_the_diagram_is_allowed_to_the_right_actor() {
        for (from, mv, to) in EDGES {
            let actor = if mv == Cancel { SUBMITTER } else { "reviewer1" };
            assert_eq!(decide(from, 3, SUBMITTER, 3, actor, mv), Ok(to), "{from} -{mv}->");
        }
    }

    #[test]
    fn every_move_outside_the_diagram_is_illegal() {
        for from in PayoutStatus::ALL {
            for mv in PayoutMove::ALL {
                if edge(from, mv).is_none() {
                    for actor in ACTORS {
                        assert_eq!(
                            decide(from, 3, SUBMITTER, 3, actor, mv),
                            Err(WorkflowError::Illegal { from, mv }),
                            "{from} -{mv}-> by {actor}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn nothing_leaves_a_decided_request() {
        for from in [Approved, Rejected, Cancelled] {
            assert!(PayoutMove::ALL.into_iter().all(|mv| !mv.is_allowed_from(from)));
        }
    }

    #[test]
    fn the_submitter_cannot_review_their_own_change() {
        for (from, mv, _) in EDGES.into_iter().filter(|(_, mv, _)| *mv != Cancel) {
            assert_eq!(decide(from, 1, SUBMITTER, 1, SUBMITTER, mv), Err(WorkflowError::SubmitterCannotReview));
        }
    }

    #[test]
    fn only_the_submitter_can_cancel() {
        for from in [Submitted, InReview, DocumentsRequested] {
            assert_eq!(decide(from, 1, SUBMITTER, 1, "reviewer1", Cancel), Err(WorkflowError::OnlySubmitterCancels));
        }
    }

    #[test]
    fn a_stale_version_loses_before_anything_else_is_checked() {
        assert_eq!(decide(InReview, 4, SUBMITTER, 3, "reviewer2", Approve), Err(WorkflowError::Stale { current: 4 }));
        // Even an illegal move by the wrong actor is reported as stale, so a racing loser learns to reload.
        assert_eq!(decide(Approved, 4, SUBMITTER, 3, SUBMITTER, Approve), Err(WorkflowError::Stale { current: 4 }));
    }

    #[test]
    fn workflow_errors_read_as_sentences_and_map_to_denials() {
        let illegal = WorkflowError::Illegal { from: Approved, mv: Approve };
        assert_eq!(illegal.to_string(), "the request is APPROVED; approve is not possible from there");
        assert_eq!(illegal.denial(), None);
        assert_eq!(WorkflowError::SubmitterCannotReview.denial(), Some(Denial::SubmitterCannotReview));
        assert_eq!(WorkflowError::OnlySubmitterCancels.denial(), Some(Denial::NotSubmitter));
        assert_eq!(WorkflowError::SubmitterCannotReview.to_string(), Denial::SubmitterCannotReview.message());
    }

    /// One attempt: a move, an actor, and how far the caller's version is from the current one (0 = fresh).
    fn attempt() -> impl Strategy<Value = (PayoutMove, &'static str, i32)> {
        (
            prop::sample::select(PayoutMove::ALL.to_vec()),
            prop::sample::select(ACTORS.to_vec()),
            prop_oneof![4 => Just(0), 1 => Just(-1), 1 => Just(-3), 1 => Just(1)],
        )
    }

    proptest! {
        #[test]
        fn random_review_sequences_only_ever_follow_the_diagram(attempts in prop::collection::vec(attempt(), 0..40)) {
            let mut status = Submitted;
            let mut version = 1;
            let mut active_account = "old";
            let mut decisions = 0;
            for (mv, actor, offset) in attempts {
                let (before_status, before_version, before_account) = (status, version, active_account);
                let result = decide(status, version, SUBMITTER, version + offset, actor, mv);
                match result {
                    Ok(next) => {
                        prop_assert_eq!(offset, 0, "a stale version never succeeds");
                        prop_assert_eq!(edge(status, mv), Some(next), "every success is an edge of the diagram");
                        prop_assert_eq!(decisions, 0, "nothing succeeds after a decision");
                        prop_assert!(actor != SUBMITTER || mv == Cancel, "the submitter never reviews");
                        status = next;
                        version += 1;
                        if next == Approved {
                            active_account = "new";
                        }
                        if !next.is_open() {
                            decisions += 1;
                        }
                    }
                    Err(err) => {
                        // And every refusal is the right one: nothing the diagram allows is refused.
                        let expected = if offset != 0 {
                            WorkflowError::Stale { current: version }
                        } else if edge(status, mv).is_none() {
                            WorkflowError::Illegal { from: status, mv }
                        } else if mv == Cancel {
                            WorkflowError::OnlySubmitterCancels
                        } else {
                            WorkflowError::SubmitterCannotReview
                        };
                        prop_assert_eq!(err, expected);
                        prop_assert!(offset != 0 || edge(status, mv).is_none() || (actor == SUBMITTER) != (mv == Cancel));
                    }
                }
                prop_assert!(PayoutStatus::ALL.contains(&status));
                prop_assert_eq!(version - before_version, i32::from(result.is_ok()));
                if active_account != before_account {
                    prop_assert_eq!((before_status, mv), (InReview, Approve));
                }
                prop_assert!(decisions <= 1);
            }
        }
    }

    #[test]
    fn sealed_details_open_only_in_their_own_slot() {
        let root = crate::crypto::RootKey::from_base64(&crate::crypto::RootKey::generate_base64()).unwrap();
        let (key, _) = root.new_data_key(1).unwrap();
        let ring = Keyring::new(vec![key], 1).unwrap();
        let details = PayoutDetails::parse("DE89370400440532013000", "COBADEFFXXX", "Best Shop GmbH").unwrap();
        let (row, seller) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = PayoutSlot::request(row, seller).seal(&ring, &details).unwrap();
        let opened = PayoutSlot::request(row, seller).open(&ring, &sealed).unwrap();
        assert_eq!(PayoutDetails::decode(&opened).unwrap(), details);
        for elsewhere in [
            PayoutSlot::request(Uuid::now_v7(), seller),
            PayoutSlot::request(row, Uuid::now_v7()),
            PayoutSlot::account(row, seller),
        ] {
            assert_eq!(elsewhere.open(&ring, &sealed).unwrap_err(), CryptoError::Decrypt);
        }
    }
}
