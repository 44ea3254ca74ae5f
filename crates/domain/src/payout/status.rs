//! Where a payout change request stands, and the supporting documents a reviewer can ask for: the vocabulary the
//! review rules, the storage and the API share, with stable names.

use std::fmt;

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
