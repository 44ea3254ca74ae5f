//! Opening arbitrary bytes as a sealed field (`Keyring::open`, and the credential and payout slots built on it)
//! never panics and never succeeds; a value sealed then opened at its place round-trips, and opens nowhere else
//! (another row, field, table, context or key version, or one bit of the nonce or ciphertext flipped).
//!
//! The keyring is fixed (a test root key and two wrapped data keys made once, below) so a crash replays alike.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use cdvault_domain::credential::{CredentialKind, SecretSlot};
use cdvault_domain::crypto::{Keyring, Place, RootKey, Sealed, WrappedKey};
use cdvault_domain::payout::{PayoutDetails, PayoutSlot};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

/// Test root key: the bytes 0..=31.
const ROOT_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Data key version 1 (32 bytes of 0x11), wrapped under [`ROOT_KEY`] with the nonce twelve 0x01 bytes.
const WRAPPED_V1: [u8; 48] = [
    0x66, 0xd2, 0xf4, 0x24, 0x79, 0x94, 0x79, 0x77, 0xc5, 0x45, 0x76, 0x09, 0x09, 0x76, 0x43, 0xc9, 0xda, 0x7f, 0x9e,
    0xca, 0x80, 0x92, 0x07, 0xcd, 0xe2, 0xca, 0x16, 0xfd, 0x8c, 0x18, 0xef, 0x20, 0xa5, 0x59, 0x1a, 0x23, 0xa2, 0xa7,
    0xe5, 0xc5, 0xfa, 0x18, 0x4f, 0x0f, 0x6f, 0xd7, 0x61, 0xf1,
];
/// Data key version 2 (32 bytes of 0x22), wrapped under [`ROOT_KEY`] with the nonce twelve 0x02 bytes; active.
const WRAPPED_V2: [u8; 48] = [
    0xb9, 0x0a, 0x3b, 0x99, 0x9b, 0xfb, 0x13, 0x79, 0xe9, 0xa7, 0x80, 0xda, 0x11, 0x5b, 0xf8, 0x31, 0x3e, 0xcb, 0x8d,
    0x4e, 0xb6, 0x76, 0x5a, 0xd3, 0x60, 0x7c, 0xf3, 0x21, 0x55, 0x49, 0x6b, 0xe0, 0x75, 0x80, 0xc9, 0xea, 0xd2, 0x79,
    0xf7, 0xb0, 0xcf, 0x76, 0xd5, 0xb0, 0xf9, 0x4d, 0xf8, 0x9f,
];

fn keyring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        let root = RootKey::from_base64(ROOT_KEY).unwrap_or_else(|e| panic!("test root key: {e}"));
        let keys = [(1, WRAPPED_V1, 1u8), (2, WRAPPED_V2, 2u8)].map(|(version, ciphertext, nonce)| {
            let wrapped = WrappedKey { version, nonce: vec![nonce; 12], ciphertext: ciphertext.to_vec() };
            root.unwrap_data_key(&wrapped).unwrap_or_else(|e| panic!("test data key {version}: {e}"))
        });
        Keyring::new(keys.into(), 2).unwrap_or_else(|e| panic!("test keyring: {e}"))
    })
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// A forged envelope.
    key_version: i32,
    nonce: &'a [u8],
    ciphertext: &'a [u8],
    /// Where it is opened (and where the genuine value below is sealed).
    table: &'a str,
    field: &'a str,
    row: [u8; 16],
    context: &'a [u8],
    /// The genuine value, and how it is then tampered with.
    plaintext: &'a [u8],
    tamper: Tamper<'a>,
}

#[derive(Debug, Arbitrary)]
enum Tamper<'a> {
    NonceBit(usize),
    CiphertextBit(usize),
    Truncate(usize),
    Row([u8; 16]),
    Field(&'a str),
    Table(&'a str),
    Context(&'a [u8]),
    KeyVersion(i32),
}

fn forged_never_opens(ring: &Keyring, input: &Input<'_>, place: Place<'_>) {
    let sealed =
        Sealed { key_version: input.key_version, nonce: input.nonce.to_vec(), ciphertext: input.ciphertext.to_vec() };
    assert!(ring.open(place, &sealed).is_err(), "a forged envelope opened");
    let (row, seller) = (place.row_id, Uuid::from_bytes(input.row.map(|b| !b)));
    let slot = SecretSlot {
        id: row,
        seller_id: seller,
        kind: CredentialKind::Octopia,
        version: input.key_version,
        client_id: Some(place.field),
        octopia_seller_id: None,
    };
    assert!(slot.open(ring, &sealed).is_err(), "a forged credential secret opened");
    let payout = PayoutSlot::account(row, seller).open(ring, &sealed);
    assert!(payout.is_err(), "forged payout details opened");
    // What a caller does with opened payout bytes; here fed the forged ciphertext itself.
    let _ = PayoutDetails::decode(input.ciphertext);
}

fn flip(bytes: &mut [u8], bit: usize) -> bool {
    let Some(bit) = bytes.len().checked_mul(8).filter(|&bits| bits > 0).map(|bits| bit % bits) else { return false };
    bytes[bit / 8] ^= 1 << (bit % 8);
    true
}

fn sealed_opens_only_at_its_place(ring: &Keyring, input: &Input<'_>, place: Place<'_>) {
    let sealed = ring.seal(place, input.plaintext).unwrap_or_else(|e| panic!("sealing failed: {e}"));
    let opened = ring.open(place, &sealed).unwrap_or_else(|e| panic!("a sealed value did not open: {e}"));
    assert_eq!(opened.as_slice(), input.plaintext, "a sealed value opens to itself");

    let mut moved = place;
    let mut tampered = sealed.clone();
    let changed = match input.tamper {
        Tamper::NonceBit(bit) => flip(&mut tampered.nonce, bit),
        Tamper::CiphertextBit(bit) => flip(&mut tampered.ciphertext, bit),
        Tamper::Truncate(keep) => {
            tampered.ciphertext.truncate(keep % tampered.ciphertext.len().max(1));
            true
        }
        Tamper::Row(row) => {
            moved.row_id = Uuid::from_bytes(row);
            moved.row_id != place.row_id
        }
        Tamper::Field(field) => {
            moved.field = field;
            field != place.field
        }
        Tamper::Table(table) => {
            moved.table = table;
            table != place.table
        }
        Tamper::Context(context) => {
            moved.context = context;
            context != place.context
        }
        Tamper::KeyVersion(version) => {
            tampered.key_version = version;
            version != sealed.key_version
        }
    };
    if changed {
        assert!(ring.open(moved, &tampered).is_err(), "a tampered or moved envelope opened ({:?})", input.tamper);
    }
}

fuzz_target!(|input: Input<'_>| {
    let ring = keyring();
    let place =
        Place { table: input.table, row_id: Uuid::from_bytes(input.row), field: input.field, context: input.context };
    forged_never_opens(ring, &input, place);
    sealed_opens_only_at_its_place(ring, &input, place);
});
