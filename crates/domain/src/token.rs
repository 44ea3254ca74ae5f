//! Marketplace access tokens kept for reuse: where a cached token is sealed, and when it may still be served.
//!
//! A token is served while more than its *margin* of life is left (a tool must have time to use it), and is
//! refreshed *ahead* of that, once three quarters of its life are gone, so callers rarely wait for the marketplace.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::credential::CredentialKind;
use crate::crypto::{CryptoError, Keyring, Place, Sealed, push_part};

/// The table cached tokens live in, in the associated data of their ciphertexts.
pub const TOKEN_TABLE: &str = "access_tokens";
/// The sealed field of a cached token.
pub const TOKEN_FIELD: &str = "token";
/// The longest margin: a token with less life left than this is never served.
pub const MAX_MARGIN: Duration = Duration::minutes(5);

/// The facts a cached token is bound to: its row, seller, kind, the credential version it was fetched with, and
/// its expiry. A token copied to another seller, or edited to look younger, fails to open.
#[derive(Debug, Clone, Copy)]
pub struct TokenSlot {
    pub row_id: Uuid,
    pub seller_id: Uuid,
    pub kind: CredentialKind,
    pub credential_version: i32,
    pub expires_at: OffsetDateTime,
}

impl TokenSlot {
    fn context(&self) -> Vec<u8> {
        let mut context = Vec::with_capacity(64);
        push_part(&mut context, self.seller_id.as_bytes());
        push_part(&mut context, self.kind.as_str().as_bytes());
        push_part(&mut context, &self.credential_version.to_be_bytes());
        push_part(&mut context, &self.expires_at.unix_timestamp().to_be_bytes());
        context
    }

    pub fn seal(&self, ring: &Keyring, token: &[u8]) -> Result<Sealed, CryptoError> {
        let context = self.context();
        ring.seal(Place { table: TOKEN_TABLE, row_id: self.row_id, field: TOKEN_FIELD, context: &context }, token)
    }

    pub fn open(&self, ring: &Keyring, sealed: &Sealed) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        let context = self.context();
        ring.open(Place { table: TOKEN_TABLE, row_id: self.row_id, field: TOKEN_FIELD, context: &context }, sealed)
    }
}

/// Whether a cached token may be handed out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it, and fetch its successor in the background.
    RefreshAhead,
    /// Too close to its expiry (or past it): fetch a new one before answering.
    Expired,
}

/// When a cached token was fetched and when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTimes {
    pub fetched_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl TokenTimes {
    pub fn lifetime(&self) -> Duration {
        self.expires_at - self.fetched_at
    }

    /// Five minutes, or a quarter of the lifetime when that is shorter.
    pub fn margin(&self) -> Duration {
        let quarter: Duration = self.lifetime() / 4;
        quarter.min(MAX_MARGIN).max(Duration::ZERO)
    }

    /// The last moment the token is served.
    pub fn serve_until(&self) -> OffsetDateTime {
        self.expires_at - self.margin()
    }

    /// From this moment its successor is fetched in the background.
    pub fn refresh_from(&self) -> OffsetDateTime {
        let three_quarters: Duration = self.lifetime() * 3 / 4;
        (self.fetched_at + three_quarters).min(self.serve_until())
    }

    pub fn freshness(&self, now: OffsetDateTime) -> Freshness {
        if now >= self.serve_until() {
            Freshness::Expired
        } else if now >= self.refresh_from() {
            Freshness::RefreshAhead
        } else {
            Freshness::Fresh
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;
    use crate::crypto::{Keyring, RootKey};

    const T0: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

    #[test]
    fn a_48_hour_token_is_fresh_for_36_hours_then_refreshed_ahead_then_expired_5_minutes_early() {
        let times = TokenTimes { fetched_at: T0, expires_at: T0 + Duration::hours(48) };
        assert_eq!(times.freshness(T0 + Duration::hours(35)), Freshness::Fresh);
        assert_eq!(times.freshness(T0 + Duration::hours(36)), Freshness::RefreshAhead);
        assert_eq!(times.freshness(T0 + Duration::hours(48) - Duration::minutes(6)), Freshness::RefreshAhead);
        assert_eq!(times.freshness(T0 + Duration::hours(48) - Duration::minutes(5)), Freshness::Expired);
    }

    #[test]
    fn a_short_token_keeps_a_quarter_of_its_life_as_margin() {
        let times = TokenTimes { fetched_at: T0, expires_at: T0 + Duration::minutes(8) };
        assert_eq!(times.margin(), Duration::minutes(2));
        assert_eq!(times.freshness(T0 + Duration::minutes(6)), Freshness::Expired);
    }

    #[test]
    fn a_sealed_token_opens_only_in_its_own_slot() {
        let root = RootKey::from_base64(&RootKey::generate_base64()).unwrap();
        let (key, _) = root.new_data_key(1).unwrap();
        let ring = Keyring::new(vec![key], 1).unwrap();
        let slot = TokenSlot {
            row_id: Uuid::now_v7(),
            seller_id: Uuid::now_v7(),
            kind: CredentialKind::Octopia,
            credential_version: 3,
            expires_at: T0,
        };
        let sealed = slot.seal(&ring, b"tok").unwrap();
        assert_eq!(slot.open(&ring, &sealed).unwrap().as_slice(), b"tok");
        let younger = TokenSlot { expires_at: T0 + Duration::hours(1), ..slot };
        assert!(younger.open(&ring, &sealed).is_err());
        let other_version = TokenSlot { credential_version: 4, ..slot };
        assert!(other_version.open(&ring, &sealed).is_err());
    }

    proptest! {
        #[test]
        fn a_token_is_never_served_past_its_margin(life_s in 1i64..400_000, at_s in 0i64..400_000) {
            let times = TokenTimes { fetched_at: T0, expires_at: T0 + Duration::seconds(life_s) };
            let now = T0 + Duration::seconds(at_s);
            if times.freshness(now) != Freshness::Expired {
                prop_assert!(times.expires_at - now > times.margin());
            }
        }
    }
}
