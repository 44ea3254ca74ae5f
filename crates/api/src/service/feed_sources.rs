//! The stored change feeds as the shared reader (`change_feed`) reads them: `credential_changes` behind
//! `credentialChanged`, `payout_changes` behind `payoutChangeFeed`. Apart from their use cases
//! (`credential_changes.rs`, `payouts/feed.rs`), so that the vault holds the feeds without importing those.

use cdvault_domain::credential::CredentialChange;
use cdvault_domain::policy::SellerReach;
use cdvault_storage::change_feed::Feed;
use cdvault_storage::payouts::{PayoutChange, feed};
use cdvault_storage::{Database, StorageError, credential_changes};

use crate::service::change_feed::FeedSource;

/// `payout_changes`, as the shared reader reads it.
#[derive(Debug)]
pub(crate) struct PayoutFeed;

impl FeedSource for PayoutFeed {
    type Change = PayoutChange;
    const FEED: Feed = Feed::Payouts;

    fn seq(change: &PayoutChange) -> i64 {
        change.seq
    }

    fn seller_login(change: &PayoutChange) -> &str {
        change.seller_login()
    }

    fn list_after(
        db: &Database,
        reach: &SellerReach,
        only: Option<&str>,
        after: i64,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<PayoutChange>, StorageError>> + Send {
        feed::list_after(db, reach, only, after, limit)
    }

    fn latest_seq(db: &Database) -> impl Future<Output = Result<i64, StorageError>> + Send {
        feed::latest_seq(db)
    }
}

/// `credential_changes`, as the shared reader reads it.
#[derive(Debug)]
pub(crate) struct CredentialFeed;

impl FeedSource for CredentialFeed {
    type Change = CredentialChange;
    const FEED: Feed = Feed::Credentials;

    fn seq(change: &CredentialChange) -> i64 {
        change.seq
    }

    fn seller_login(change: &CredentialChange) -> &str {
        &change.seller_login
    }

    fn list_after(
        db: &Database,
        reach: &SellerReach,
        only: Option<&str>,
        after: i64,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<CredentialChange>, StorageError>> + Send {
        credential_changes::list_after(db, reach, only, after, limit)
    }

    fn latest_seq(db: &Database) -> impl Future<Output = Result<i64, StorageError>> + Send {
        credential_changes::latest_seq(db)
    }
}
