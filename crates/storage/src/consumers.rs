//! Who consumes each seller's credentials: `credential_consumers`, one row per seller, kind and token identity
//! (issuer, subject), moved by the audit writer in the transaction that commits the issue events (so it never
//! disagrees with the audit trail, and archival, which prunes the trail, leaves it alone).

use cdvault_domain::audit::{AuditAction, AuditRecord, Outcome};
use cdvault_domain::credential::CredentialKind;
use cdvault_domain::credential::consumer::{Consumer, ConsumerIssue, ConsumerUpdate, ConsumerVia, coalesce};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult, Value};
use uuid::Uuid;

use crate::{Database, StorageError, statement};

/// The consumer issue an audit event records, if it is a successful issue (of the secret or of a brokered token)
/// of `version` of the seller's `kind` credential: the writer passes each event it commits with an issue condition.
pub(crate) fn issue_of(
    record: &AuditRecord,
    seller_id: Uuid,
    kind: CredentialKind,
    version: i32,
) -> Option<ConsumerIssue> {
    let via = match record.action {
        AuditAction::CredentialIssue => ConsumerVia::Credential,
        AuditAction::TokenIssue => ConsumerVia::AccessToken,
        _ => return None,
    };
    (record.outcome == Outcome::Success).then(|| ConsumerIssue {
        seller_id,
        kind,
        // Issues need a verified token, which always names its issuer.
        issuer: record.issuer.clone().unwrap_or_default(),
        subject: record.subject.clone(),
        at: record.occurred_at,
        version,
        via,
    })
}

/// The columns of one row of the upsert, in the order of its `VALUES` (`column1` ...).
const COLUMNS: &str = "seller_id, kind, issuer, subject, last_issued_at, last_version, last_via, issue_count";

/// Moves the rows of the consumers that received `issues` (the successful issues of one audit batch, in commit
/// order) in `tx`: one statement for the whole batch, one row per consumer.
///
/// The rows go through `VALUES` padded to a power of two with rows of count 0 that the `WHERE` drops, so a batch
/// of any size uses one of a few statement shapes (prepared once per connection), like the writer's other reads.
pub(crate) async fn record_issues(
    tx: &DatabaseTransaction,
    issues: impl IntoIterator<Item = ConsumerIssue>,
) -> Result<(), StorageError> {
    let updates = coalesce(issues);
    let Some(first) = updates.first() else {
        return Ok(());
    };
    let rows = updates.len().next_power_of_two();
    let mut values = Vec::with_capacity(rows * 8);
    for update in &updates {
        push_row(&mut values, update, update.count);
    }
    for _ in updates.len()..rows {
        push_row(&mut values, first, 0);
    }
    let row = "(?, ?, ?, ?, ?, ?, ?, ?)";
    let sql = format!(
        "INSERT INTO credential_consumers ({COLUMNS}) \
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8 \
         FROM (VALUES {}) AS v WHERE v.column8 > 0 \
         ON CONFLICT (seller_id, kind, issuer, subject) DO UPDATE SET \
         last_issued_at = excluded.last_issued_at, last_version = excluded.last_version, \
         last_via = excluded.last_via, issue_count = credential_consumers.issue_count + excluded.issue_count",
        vec![row; rows].join(", ")
    );
    tx.execute_raw(statement(tx.get_database_backend(), &sql, values)).await?;
    Ok(())
}

fn push_row(values: &mut Vec<Value>, update: &ConsumerUpdate, count: i64) {
    let last = &update.last;
    values.extend([
        last.seller_id.into(),
        last.kind.as_str().into(),
        last.issuer.clone().into(),
        last.subject.clone().into(),
        last.at.into(),
        last.version.into(),
        last.via.as_str().into(),
        count.into(),
    ]);
}

/// The consumers of a seller's credential of `kind`, most recently issued first.
pub async fn list(db: &Database, seller_id: Uuid, kind: CredentialKind) -> Result<Vec<Consumer>, StorageError> {
    let query = statement(
        db.db_backend(),
        "SELECT issuer, subject, last_issued_at, last_version, last_via, issue_count FROM credential_consumers \
         WHERE seller_id = ? AND kind = ? ORDER BY last_issued_at DESC, issuer, subject",
        vec![seller_id.into(), kind.as_str().into()],
    );
    db.conn().query_all_raw(query).await?.iter().map(to_domain).collect()
}

fn to_domain(row: &QueryResult) -> Result<Consumer, StorageError> {
    let via: String = row.try_get("", "last_via")?;
    Ok(Consumer {
        issuer: row.try_get("", "issuer")?,
        subject: row.try_get("", "subject")?,
        last_issued_at: row.try_get("", "last_issued_at")?,
        last_version: row.try_get("", "last_version")?,
        last_via: ConsumerVia::parse(&via)
            .ok_or_else(|| StorageError::Corrupt(format!("credential consumer: via '{via}'")))?,
        issue_count: row.try_get("", "issue_count")?,
    })
}
