//! The encryption keyring: its versions and their census, rotation jobs and their progress, retirement.

use async_graphql::{Context, Enum, ID, Object, SimpleObject, Subscription};
use cdvault_domain::crypto::KeyState;
use cdvault_domain::{Reason, ValidationError};
use cdvault_storage::keyring::KeyCensus;
use cdvault_storage::rewrap::{JobFailure, RotationJob};
use futures::{Stream, StreamExt};
use std::ops::Range;
use time::OffsetDateTime;

use super::context::{IntoGraphql, request, session_end};
use crate::error::ApiError;
use crate::service::RotationJobReport;

/// The state of a keyring version.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "KeyState")]
pub enum KeyStateGql {
    /// Seals every new write. Exactly one version is active.
    Active,
    /// Opens what it sealed, seals nothing new (a rotation happened since).
    DecryptOnly,
    /// Destroyed: nothing sealed under it can be opened.
    Retired,
    /// Ciphertexts claim this version but the keyring has no such version (a corrupt or planted row).
    Unknown,
}

/// How many ciphertexts of one table are sealed under a keyring version.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "TableCensus")]
pub struct TableCensusGql {
    /// The table (`credential_versions`, `payout_requests`, `payout_accounts`, `access_tokens`, `webhook_secrets`).
    pub table: String,
    /// Its ciphertexts under this version.
    pub ciphertexts: i64,
}

/// One version of the encryption keyring. Its key material never leaves the server.
#[derive(Debug, Clone)]
pub struct EncryptionKeyGql(pub KeyCensus);

/// One version of the encryption keyring. Its key material never leaves the server.
#[Object(name = "EncryptionKey")]
impl EncryptionKeyGql {
    /// The version number, from 1; every ciphertext records the version that sealed it.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// Whether it seals new writes, only opens old ones, or was destroyed.
    async fn state(&self) -> KeyStateGql {
        match self.0.state {
            Some(KeyState::Active) => KeyStateGql::Active,
            Some(KeyState::DecryptOnly) => KeyStateGql::DecryptOnly,
            Some(KeyState::Retired) => KeyStateGql::Retired,
            None => KeyStateGql::Unknown,
        }
    }

    /// When the version was made (the Unix epoch for `UNKNOWN`).
    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }

    /// The census: how many ciphertexts, in all tables, are sealed under this version. A version can only be
    /// retired at zero.
    async fn ciphertexts(&self) -> i64 {
        self.0.total()
    }

    /// The census per table (tables with none are left out).
    async fn ciphertexts_by_table(&self) -> Vec<TableCensusGql> {
        self.0
            .ciphertexts
            .iter()
            .map(|c| TableCensusGql { table: c.table.name().to_owned(), ciphertexts: c.count })
            .collect()
    }
}

/// Where a rotation job stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "RotationJobState", remote = "cdvault_storage::rewrap::JobState")]
pub enum RotationJobStateGql {
    /// Rewrapping, in batches, on whichever replica holds its lease.
    Running,
    /// Every ciphertext is under the new version.
    Succeeded,
    /// Done, but some rows could not be rewrapped (see `failures`); the old version cannot be retired until each is
    /// dealt with.
    Failed,
}

/// A row a rotation job could not rewrap.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "RotationFailure")]
pub struct RotationFailureGql {
    /// The table of the row.
    pub table: String,
    /// The row's id.
    pub row_id: ID,
    /// Why: `DECRYPT_FAILED`, `UNKNOWN_KEY_VERSION` or `UNREADABLE_ROW`.
    pub reason: String,
}

/// A key rotation: the new keyring version and the job that rewraps every ciphertext to it.
#[derive(Debug, Clone)]
pub struct RotationJobGql {
    pub job: RotationJob,
    /// The rows it could not rewrap so far.
    pub failures: Vec<JobFailure>,
}

impl From<RotationJobReport> for RotationJobGql {
    fn from(report: RotationJobReport) -> Self {
        Self { job: report.job, failures: report.failures }
    }
}

/// A key rotation: the new keyring version and the job that rewraps every ciphertext to it.
#[Object(name = "RotationJob")]
impl RotationJobGql {
    /// The job's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.job.id.to_string())
    }

    /// Where it stands.
    async fn state(&self) -> RotationJobStateGql {
        self.job.state.into()
    }

    /// The keyring version everything is rewrapped to (made `ACTIVE` when the job started).
    async fn to_version(&self) -> i32 {
        self.job.to_version
    }

    /// Ciphertexts under older versions when the job started.
    async fn total(&self) -> i64 {
        self.job.total
    }

    /// Ciphertexts rewrapped so far (rows stored anew meanwhile are not counted: they are already fresh).
    async fn done(&self) -> i64 {
        self.job.done
    }

    /// Rows that could not be rewrapped.
    async fn failed(&self) -> i64 {
        self.job.failed
    }

    /// The token subject that started it.
    async fn started_by(&self) -> &str {
        &self.job.started_by
    }

    /// When it started.
    async fn started_at(&self) -> OffsetDateTime {
        self.job.started_at
    }

    /// When it finished; null while running.
    async fn finished_at(&self) -> Option<OffsetDateTime> {
        self.job.finished_at
    }

    /// The rows it could not rewrap, with the reason, in order of table and row: at most `first` of them (default
    /// 100, at most 500) after the index `after`.
    async fn failures(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many to return: default 100, at most 500.")] first: Option<i32>,
        #[graphql(desc = "The index (from 0) of the last failure already seen; the page starts after it.")]
        after: Option<String>,
    ) -> async_graphql::Result<Vec<RotationFailureGql>> {
        let (_, caller) = request(ctx)?;
        let range = page(self.failures.len(), first, after.as_deref()).map_err(ApiError::from).gql(caller)?;
        Ok(self.failures[range]
            .iter()
            .map(|f| RotationFailureGql {
                table: f.table.name().to_owned(),
                row_id: ID(f.row_id.to_string()),
                reason: f.reason.as_str().to_owned(),
            })
            .collect())
    }
}

/// Items in a page of a list field when `first` is not given, and the most one page may hold.
pub(crate) const PAGE_DEFAULT: usize = 100;
pub(crate) const PAGE_MAX: usize = 500;

/// The positions in a list of `len` items of the page of `first` items after the index `after` (a list field's
/// arguments): `BAD_USER_INPUT` when `first` is out of 0..=500 or `after` is not an index.
pub(crate) fn page(len: usize, first: Option<i32>, after: Option<&str>) -> Result<Range<usize>, ValidationError> {
    let first = match first {
        None => PAGE_DEFAULT,
        Some(n) => usize::try_from(n).ok().filter(|n| *n <= PAGE_MAX).ok_or_else(|| {
            ValidationError::new("first", Reason::OutOfRange, format!("first must be between 0 and {PAGE_MAX}"))
        })?,
    };
    let start = match after {
        None => 0,
        Some(after) => after
            .parse::<usize>()
            .map_err(|_| {
                ValidationError::new("after", Reason::InvalidCursor, "after must be the index of an item, from 0")
            })?
            .saturating_add(1),
    };
    let start = start.min(len);
    Ok(start..start.saturating_add(first).min(len))
}

/// The reads of the keyring: its versions, a rotation job.
#[derive(Debug, Default)]
pub struct KeysQuery;

#[Object]
impl KeysQuery {
    /// Every version of the encryption keyring with its state and census (how many ciphertexts it seals). Needs
    /// `keys:admin`.
    async fn encryption_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<EncryptionKeyGql>> {
        let (vault, caller) = request(ctx)?;
        let keys = vault.encryption_keys(caller).await.gql(caller)?;
        Ok(keys.into_iter().map(EncryptionKeyGql).collect())
    }

    /// A key rotation job, with its progress and the rows it could not rewrap. Needs `keys:admin`.
    async fn rotation_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job id, as returned by `rotateEncryptionKey`.")] id: ID,
    ) -> async_graphql::Result<Option<RotationJobGql>> {
        let (vault, caller) = request(ctx)?;
        let job = vault.rotation_job(caller, &id).await.gql(caller)?;
        Ok(job.map(RotationJobGql::from))
    }
}

/// The writes of the keyring: rotation and retirement.
#[derive(Debug, Default)]
pub struct KeysMutation;

#[Object]
impl KeysMutation {
    /// Rotates the encryption key: makes a new keyring version `ACTIVE` (the old one becomes `DECRYPT_ONLY`) and
    /// starts the job that rewraps every ciphertext to it, online, in batches. Needs `keys:admin`. `CONFLICT` while
    /// a job runs. Follow it with `rotationJob` and `encryptionKeys`.
    async fn rotate_encryption_key(&self, ctx: &Context<'_>) -> async_graphql::Result<RotationJobGql> {
        let (vault, caller) = request(ctx)?;
        vault.rotate_encryption_key(caller).await.map(|job| RotationJobGql { job, failures: Vec::new() }).gql(caller)
    }

    /// Retires a `DECRYPT_ONLY` keyring version: its key material is destroyed and nothing sealed under it can be
    /// opened again. Needs `keys:admin`. `CONFLICT` while any ciphertext uses it (the message gives the count) or a
    /// rotation job runs, and for the active version.
    async fn retire_encryption_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The keyring version to retire (see `encryptionKeys`).")] version: i32,
    ) -> async_graphql::Result<EncryptionKeyGql> {
        let (vault, caller) = request(ctx)?;
        vault.retire_encryption_key(caller, version).await.map(EncryptionKeyGql).gql(caller)
    }
}

/// The live progress of a rotation job.
#[derive(Debug, Default)]
pub struct KeysSubscription;

#[Subscription]
impl KeysSubscription {
    /// The progress of a key rotation job: its state now, then each change of its counts or state, ending once it
    /// has finished (`SUCCEEDED` or `FAILED`). Needs `keys:admin`. Follows the job on whichever replica works on it.
    async fn rotation_progress(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job id, as returned by `rotateEncryptionKey`.")] job_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = RotationJobGql>> {
        let (vault, caller) = request(ctx)?;
        let progress = vault.rotation_progress(caller, &job_id).await.gql(caller)?;
        Ok(progress.take_until(session_end(vault, caller)).map(RotationJobGql::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_the_first_hundred_unless_told_and_never_more_than_five_hundred() {
        assert_eq!(page(1_000, None, None), Ok(0..100));
        assert_eq!(page(1_000, Some(500), None), Ok(0..500));
        assert_eq!(page(3, Some(0), None), Ok(0..0));
        for first in [501, -1, i32::MAX, i32::MIN] {
            let refused = page(1_000, Some(first), None).map_err(|e| (e.field, e.reason));
            assert_eq!(refused, Err(("first", Reason::OutOfRange)), "first: {first}");
        }
    }

    #[test]
    fn a_page_starts_after_the_index_given_and_ends_with_the_list() {
        assert_eq!(page(10, Some(3), Some("0")), Ok(1..4));
        assert_eq!(page(10, None, Some("7")), Ok(8..10));
        assert_eq!(page(10, None, Some("9")), Ok(10..10));
        assert_eq!(page(10, None, Some("18446744073709551615")), Ok(10..10));
        for after in ["", "-1", "x", "1.5"] {
            let refused = page(10, None, Some(after)).map_err(|e| (e.field, e.reason));
            assert_eq!(refused, Err(("after", Reason::InvalidCursor)), "after: {after:?}");
        }
    }
}
