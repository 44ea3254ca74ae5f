//! The keyring: data keys wrapped by the root key.

use cdvault_domain::crypto::{CryptoError, KeyState, Keyring, RootKey, WrappedKey};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QueryOrder, Set, Statement};
use time::OffsetDateTime;

use crate::entity::keyring_key::{self, Entity as Keys};
use crate::{Database, StorageError};

/// Loads and unwraps every usable keyring version; makes version 1 on first start. A root key that does not open
/// the stored keys is an error (never a silent new keyring).
pub async fn load_or_init(db: &Database, root: &RootKey) -> Result<Keyring, StorageError> {
    let mut rows = Keys::find().order_by_asc(keyring_key::Column::Version).all(db.conn()).await?;
    if rows.is_empty() {
        let (_, wrapped) = root.new_data_key(1)?;
        let inserted = keyring_key::ActiveModel {
            version: Set(1),
            state: Set("ACTIVE".to_owned()),
            nonce: Set(wrapped.nonce),
            wrapped_key: Set(wrapped.ciphertext),
            created_at: Set(OffsetDateTime::now_utc()),
        }
        .insert(db.conn())
        .await;
        match inserted.map_err(StorageError::from) {
            // Another replica made version 1 first: use theirs.
            Ok(_) | Err(StorageError::Unique(_)) => {}
            Err(e) => return Err(e),
        }
        rows = Keys::find().order_by_asc(keyring_key::Column::Version).all(db.conn()).await?;
    }
    let mut keys = Vec::new();
    let mut active = None;
    for row in rows {
        if row.state == "RETIRED" {
            continue;
        }
        if row.state == "ACTIVE" {
            active = Some(row.version);
        }
        let wrapped = WrappedKey { version: row.version, nonce: row.nonce, ciphertext: row.wrapped_key };
        keys.push(root.unwrap_data_key(&wrapped)?);
    }
    let active = active.ok_or(CryptoError::NoActiveKey)?;
    Ok(Keyring::new(keys, active)?)
}

/// Every table that holds sealed fields, with its key-version column. A rewrap, a census and a retirement must cover
/// each of them.
pub const SEALED_TABLES: [&str; 4] = ["credential_versions", "payout_requests", "payout_accounts", "access_tokens"];

/// One keyring version and how many ciphertexts use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCensus {
    pub version: i32,
    /// `None` for a version that ciphertexts claim but the keyring does not have (a corrupt or planted row).
    pub state: Option<KeyState>,
    pub created_at: OffsetDateTime,
    /// Ciphertexts sealed under this version, per table of [`SEALED_TABLES`] (tables with none left out).
    pub ciphertexts: Vec<(&'static str, i64)>,
}

impl KeyCensus {
    pub fn total(&self) -> i64 {
        self.ciphertexts.iter().map(|(_, n)| n).sum()
    }
}

/// Every keyring version, oldest first, with the count of ciphertexts under it in each sealed table. A count of a
/// version missing from the keyring (a planted or corrupt row) is reported under that version with no state.
pub async fn census(db: &Database) -> Result<Vec<KeyCensus>, StorageError> {
    let rows = Keys::find().order_by_asc(keyring_key::Column::Version).all(db.conn()).await?;
    let mut census = Vec::with_capacity(rows.len());
    for row in rows {
        let state = KeyState::parse(&row.state)
            .ok_or_else(|| StorageError::Corrupt(format!("keyring version {}: state", row.version)))?;
        census.push(KeyCensus {
            version: row.version,
            state: Some(state),
            created_at: row.created_at,
            ciphertexts: Vec::new(),
        });
    }
    let backend = db.db_backend();
    for table in SEALED_TABLES {
        // The table names are our constants, never input.
        let sql = format!(
            "SELECT key_version, COUNT(*) AS n FROM {table} WHERE key_version IS NOT NULL GROUP BY key_version"
        );
        for row in db.conn().query_all_raw(Statement::from_string(backend, sql)).await? {
            let version: i32 = row.try_get("", "key_version")?;
            let count: i64 = row.try_get("", "n")?;
            let index = match census.iter().position(|c| c.version == version) {
                Some(index) => index,
                None => {
                    census.push(KeyCensus {
                        version,
                        state: None,
                        created_at: OffsetDateTime::UNIX_EPOCH,
                        ciphertexts: Vec::new(),
                    });
                    census.len() - 1
                }
            };
            census[index].ciphertexts.push((table, count));
        }
    }
    census.sort_by_key(|c| c.version);
    Ok(census)
}
