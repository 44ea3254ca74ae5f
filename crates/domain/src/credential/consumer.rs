//! Who consumes a seller's credential: each token identity that was issued it (the secret itself, or a brokered
//! access token made with it), the version it last received, and so whether it still holds an older one.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;
use uuid::Uuid;

use super::CredentialKind;

/// How a consumer last received a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumerVia {
    /// The secret itself (`issueApiCredential`, `issueOctopiaCredential`).
    Credential,
    /// A marketplace access token brokered with it (`issueAccessToken`).
    AccessToken,
}

impl ConsumerVia {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::AccessToken => "token",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "credential" => Some(Self::Credential),
            "token" => Some(Self::AccessToken),
            _ => None,
        }
    }
}

/// One successful issue, as its committed audit event says: who received which version of which credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerIssue {
    pub seller_id: Uuid,
    pub kind: CredentialKind,
    /// The issuer (`iss`) of the consumer's token.
    pub issuer: String,
    /// The subject (`sub`) of the consumer's token.
    pub subject: String,
    pub at: OffsetDateTime,
    pub version: i32,
    pub via: ConsumerVia,
}

/// What a run of issues changes in one consumer's row: the last of them, and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerUpdate {
    /// The last issue of the run (its seller, kind and identity are the row's key).
    pub last: ConsumerIssue,
    pub count: i64,
}

/// The issues of one batch, one update per consumer (seller, kind, issuer, subject), in the order each consumer
/// first appears. `issues` are in commit order: the last one of a consumer is what it holds now.
pub fn coalesce(issues: impl IntoIterator<Item = ConsumerIssue>) -> Vec<ConsumerUpdate> {
    let mut updates: Vec<ConsumerUpdate> = Vec::new();
    let mut index: HashMap<(Uuid, CredentialKind, String, String), usize> = HashMap::new();
    for issue in issues {
        let key = (issue.seller_id, issue.kind, issue.issuer.clone(), issue.subject.clone());
        match index.get(&key) {
            Some(&at) => {
                let update = &mut updates[at];
                update.count += 1;
                update.last = issue;
            }
            None => {
                index.insert(key, updates.len());
                updates.push(ConsumerUpdate { last: issue, count: 1 });
            }
        }
    }
    updates
}

/// A consumer of a seller's credential of one kind, as the projection keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub issuer: String,
    pub subject: String,
    pub last_issued_at: OffsetDateTime,
    /// The version it last received.
    pub last_version: i32,
    pub last_via: ConsumerVia,
    pub issue_count: i64,
}

impl Consumer {
    /// Whether it last received an older version than `current`, the seller's newest.
    pub fn is_stale(&self, current: i32) -> bool {
        self.last_version < current
    }
}

/// How a consumer hears that a credential changed, so it fetches the new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerChannel {
    /// A live `credentialChanged` subscription of its identity follows the seller and kind.
    Subscription,
    /// A webhook of its identity is told of the seller's credential changes.
    Webhook,
    /// Nothing: it learns of a change only when it next asks (or its token is refused).
    None,
}

impl ConsumerChannel {
    /// The channel of the consumer `issuer` and `subject`: a live subscription first (it hears at once), else a
    /// webhook, given the identities that have each (pairs of issuer and subject).
    pub fn of(
        issuer: &str,
        subject: &str,
        subscribed: &HashSet<(String, String)>,
        hooked: &HashSet<(String, String)>,
    ) -> Self {
        let identity = (issuer.to_owned(), subject.to_owned());
        if subscribed.contains(&identity) {
            Self::Subscription
        } else if hooked.contains(&identity) {
            Self::Webhook
        } else {
            Self::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(subject: &str, kind: CredentialKind, version: i32, via: ConsumerVia) -> ConsumerIssue {
        ConsumerIssue {
            seller_id: Uuid::nil(),
            kind,
            issuer: "https://idp".into(),
            subject: subject.into(),
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(i64::from(version)),
            version,
            via,
        }
    }

    #[test]
    fn a_batch_makes_one_update_per_consumer_holding_its_last_issue_and_the_count() {
        use ConsumerVia::{AccessToken, Credential};
        use CredentialKind::{MarketplaceApi, Octopia};
        let updates = coalesce([
            issue("a", MarketplaceApi, 1, Credential),
            issue("b", MarketplaceApi, 1, Credential),
            issue("a", MarketplaceApi, 2, AccessToken),
            issue("a", Octopia, 1, Credential),
            issue("a", MarketplaceApi, 3, Credential),
        ]);
        let summary: Vec<_> = updates
            .iter()
            .map(|u| (u.last.subject.as_str(), u.last.kind, u.last.version, u.last.via, u.count))
            .collect();
        assert_eq!(
            summary,
            [
                ("a", MarketplaceApi, 3, Credential, 3),
                ("b", MarketplaceApi, 1, Credential, 1),
                ("a", Octopia, 1, Credential, 1)
            ]
        );
        assert_eq!(updates[0].last.at, OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(3));
    }

    #[test]
    fn the_same_subject_of_another_issuer_is_another_consumer() {
        let mut other = issue("a", CredentialKind::MarketplaceApi, 1, ConsumerVia::Credential);
        other.issuer = "https://other-idp".into();
        let updates = coalesce([issue("a", CredentialKind::MarketplaceApi, 1, ConsumerVia::Credential), other]);
        assert_eq!(updates.iter().map(|u| u.count).collect::<Vec<_>>(), [1, 1]);
    }

    #[test]
    fn a_consumer_is_stale_only_below_the_newest_version() {
        let consumer = Consumer {
            issuer: "i".into(),
            subject: "s".into(),
            last_issued_at: OffsetDateTime::UNIX_EPOCH,
            last_version: 2,
            last_via: ConsumerVia::Credential,
            issue_count: 1,
        };
        assert!(consumer.is_stale(3));
        assert!(!consumer.is_stale(2));
    }

    #[test]
    fn a_live_subscription_wins_over_a_webhook_and_only_the_same_issuer_and_subject_count() {
        let pair = |i: &str, s: &str| (i.to_owned(), s.to_owned());
        let subscribed: HashSet<_> = [pair("idp", "a")].into();
        let hooked: HashSet<_> = [pair("idp", "a"), pair("idp", "b")].into();
        assert_eq!(ConsumerChannel::of("idp", "a", &subscribed, &hooked), ConsumerChannel::Subscription);
        assert_eq!(ConsumerChannel::of("idp", "b", &subscribed, &hooked), ConsumerChannel::Webhook);
        assert_eq!(ConsumerChannel::of("other-idp", "a", &subscribed, &HashSet::new()), ConsumerChannel::None);
    }

    #[test]
    fn the_stored_via_strings_read_back() {
        for via in [ConsumerVia::Credential, ConsumerVia::AccessToken] {
            assert_eq!(ConsumerVia::parse(via.as_str()), Some(via));
        }
        assert_eq!(ConsumerVia::parse("password"), None);
    }
}
