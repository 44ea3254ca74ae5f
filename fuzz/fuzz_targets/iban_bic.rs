//! The payout bank-detail parsers (`Iban`, `Bic`, `AccountHolder`, `PayoutDetails`) and the decoder of sealed payout
//! plaintexts. Never panics; accepted values parse again to themselves; an IBAN's masked form (and its `Debug`)
//! shows the country and check digits and at most the last four characters; details round-trip through their
//! encoding.
#![no_main]

use arbitrary::Arbitrary;
use cdvault_domain::payout::{AccountHolder, Bic, Iban, PayoutDetails};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    iban: &'a str,
    bic: &'a str,
    holder: &'a str,
    encoded: &'a [u8],
}

fn iban(raw: &str) {
    let Ok(iban) = Iban::parse("iban", raw) else { return };
    let full = iban.expose();
    assert!(full.len() >= 15, "every IBAN accepted has at least 15 characters (masking relies on it)");
    assert!(full.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()), "kept in electronic form");
    assert_eq!(Iban::parse("iban", full).as_ref(), Ok(&iban), "the electronic form parses again to itself");
    let masked = iban.masked();
    let (head, tail) = full.split_at(full.len() - 4);
    assert_eq!(masked, format!("{}…{tail}", &head[..4]), "masked is the country, check digits and last four");
    assert!(masked.chars().filter(char::is_ascii_alphanumeric).count() <= 8, "masked shows at most 8 characters");
    assert_eq!(iban.last4(), tail);
    assert_eq!(format!("{iban:?}"), format!("Iban({masked})"), "Debug shows the masked form only");
}

fn bic(raw: &str) {
    let Ok(bic) = Bic::parse("bic", raw) else { return };
    assert!(matches!(bic.expose().len(), 8 | 11));
    assert_eq!(Bic::parse("bic", bic.expose()).as_ref(), Ok(&bic), "an accepted BIC parses again to itself");
    assert!(bic.country().bytes().all(|b| b.is_ascii_uppercase()));
    assert_eq!(format!("{bic:?}"), "Bic([REDACTED])");
}

fn holder(raw: &str) {
    let Ok(holder) = AccountHolder::parse("accountHolder", raw) else { return };
    let again = AccountHolder::parse("accountHolder", holder.expose());
    assert_eq!(again.as_ref(), Ok(&holder), "an accepted holder parses again to itself");
    assert_eq!(format!("{holder:?}"), "AccountHolder([REDACTED])");
}

fn details(input: &Input<'_>) {
    if let Ok(details) = PayoutDetails::parse(input.iban, input.bic, input.holder) {
        let encoded = details.encode();
        assert_eq!(PayoutDetails::decode(&encoded).as_ref(), Ok(&details), "details round-trip their encoding");
    }
    if let Ok(decoded) = PayoutDetails::decode(input.encoded) {
        let encoded = decoded.encode();
        assert_eq!(PayoutDetails::decode(&encoded).as_ref(), Ok(&decoded), "decoded details encode again alike");
    }
}

fuzz_target!(|input: Input<'_>| {
    iban(input.iban);
    bic(input.bic);
    holder(input.holder);
    details(&input);
});
