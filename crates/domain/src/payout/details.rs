//! Sealed payout details: the bank details as one plaintext (encode/decode) and the slot whose associated data binds
//! the ciphertext to its row and seller.

use zeroize::Zeroizing;

use uuid::Uuid;

use super::bank::{AccountHolder, Bic, Iban, iban_country_for_bic};
use crate::crypto::{CryptoError, Keyring, Place, Sealed, push_part};
use crate::{Reason, ValidationError};

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
                Reason::CountryMismatch,
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

    #[test]
    fn published_example_ibans_of_sepa_countries_are_accepted_with_a_matching_bic() {
        for (iban, bic) in VALID {
            let details = PayoutDetails::parse(iban, bic, "Best Shop SARL");
            assert!(details.is_ok(), "{iban} / {bic}: {details:?}");
        }
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
        assert_eq!((err.field, err.reason.as_str()), ("bic", "COUNTRY_MISMATCH"));
        assert!(err.message.contains("DE") && err.message.contains("FR"), "{}", err.message);
        let err = PayoutDetails::parse("GB29NWBK60161331926819", "BNPARERX", "Best Shop").unwrap_err();
        assert_eq!(err.reason.as_str(), "COUNTRY_MISMATCH");
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
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = PayoutDetails::decode(&bytes);
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
