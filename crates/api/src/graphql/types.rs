//! GraphQL object, input and enum types. Built from domain values; never from database rows.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use base64::Engine;
use cdvault_domain::ValidationError;
use cdvault_domain::audit::ChainedEvent;
use cdvault_domain::credential::CredentialMeta;
use cdvault_domain::policy::{Principal, SellerReach};
use cdvault_domain::seller::SellerAccount as DomainSeller;
use time::OffsetDateTime;

use super::payout_types::PayoutAccount;
use super::{IntoGraphql, request};
use crate::error::ApiError;
use crate::service::{IssuedApi, IssuedOctopia};

/// Default page size of connections.
pub const DEFAULT_PAGE: i32 = 20;
/// Largest page size of connections.
pub const MAX_PAGE: i32 = 100;

/// Reads `first`: absent is the default, outside 0..=MAX_PAGE is refused.
pub fn page_size(first: Option<i32>) -> Result<u64, ApiError> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(ValidationError::new("first", "OUT_OF_RANGE", format!("first is between 0 and {MAX_PAGE}")).into());
    }
    Ok(u64::try_from(first).unwrap_or(0))
}

pub fn encode_cursor(prefix: &str, value: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{prefix}:{value}"))
}

/// Reads a cursor made by [`encode_cursor`] with the same prefix.
pub fn decode_cursor(prefix: &str, cursor: &str) -> Result<String, ApiError> {
    let bad = || ApiError::from(ValidationError::new("after", "INVALID_CURSOR", "not a cursor of this list"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(prefix).and_then(|t| t.strip_prefix(':')).map(str::to_owned).ok_or_else(bad)
}

/// Reads a cursor made by [`encode_cursor`] with the same prefix, holding a value of type `T` (a sequence number, an
/// id).
pub fn decode_cursor_as<T: std::str::FromStr>(prefix: &str, cursor: &str) -> Result<T, ApiError> {
    decode_cursor(prefix, cursor)?
        .parse()
        .map_err(|_| ApiError::from(ValidationError::new("after", "INVALID_CURSOR", "not a cursor of this list")))
}

/// The two kinds of seller credentials.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cdvault_domain::credential::CredentialKind")]
pub enum CredentialKind {
    /// The legacy Marketplace API: the login `<seller login>-api` and its password.
    MarketplaceApi,
    /// The Octopia seller API: OAuth client id and secret, plus the seller id sent in the `SellerId` header.
    Octopia,
}

/// Whether credentials of a seller may be issued.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cdvault_domain::seller::SellerStatus")]
pub enum SellerStatus {
    /// Credentials are issued.
    Active,
    /// Deactivated: nothing is issued for this seller until it is reactivated. Nothing is deleted.
    Inactive,
}

/// How an audited act ended.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cdvault_domain::audit::Outcome")]
pub enum AuditOutcome {
    /// The act was done.
    Success,
    /// The caller was refused (authentication or authorization).
    Denied,
    /// The act was attempted and failed.
    Failed,
}

/// The caller, as its token describes it.
pub struct Viewer(pub Principal);

/// The caller, as its token describes it.
#[Object]
impl Viewer {
    /// The token's subject (`sub`): the tool or person calling.
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    /// The scopes of the token that cdvault knows (`credentials:read`, `credentials:write`, `audit:read`), in that order.
    async fn scopes(&self) -> Vec<&'static str> {
        self.0.scopes.iter().map(|s| s.as_str()).collect()
    }

    /// Whether the token reaches every seller (`sellers: ["*"]`).
    async fn all_sellers(&self) -> bool {
        matches!(self.0.sellers, SellerReach::All)
    }

    /// The seller logins the token reaches; `["*"]` when it reaches all, empty when it reaches none.
    async fn sellers(&self) -> Vec<String> {
        match &self.0.sellers {
            SellerReach::All => vec!["*".to_owned()],
            SellerReach::Only(set) => set.iter().cloned().collect(),
        }
    }
}

/// A seller account whose Cdiscount credentials the vault keeps.
pub struct SellerAccount(pub DomainSeller);

/// A seller account whose Cdiscount credentials the vault keeps. Never shows a secret.
#[Object]
impl SellerAccount {
    /// Opaque id of the account (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The seller login, e.g. `bestshop`.
    async fn login(&self) -> &str {
        self.0.login.as_str()
    }

    /// The Marketplace API login, always derived: `<login>-api`.
    async fn api_login(&self) -> String {
        self.0.login.api_login()
    }

    /// A human-readable name of the shop.
    async fn display_name(&self) -> &str {
        self.0.display_name.as_str()
    }

    /// Whether credentials are issued for this seller.
    async fn status(&self) -> SellerStatus {
        self.0.status.into()
    }

    /// When the account was registered.
    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }

    /// When the account or its credentials last changed.
    async fn updated_at(&self) -> OffsetDateTime {
        self.0.updated_at
    }

    /// The newest version of the credential of `kind` (the one issued), if any.
    async fn credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which credential.")] kind: CredentialKind,
    ) -> async_graphql::Result<Option<CredentialVersion>> {
        let (vault, caller) = request(ctx)?;
        let versions = vault.credential_versions(&self.0, Some(kind.into())).await.gql(caller)?;
        Ok(versions.into_iter().next().map(CredentialVersion))
    }

    /// Every kept version (the newest five of each kind), newest first; of one kind when `kind` is given.
    #[graphql(complexity = "10 * child_complexity + 1")]
    async fn credential_versions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this kind; both kinds when absent.")] kind: Option<CredentialKind>,
    ) -> async_graphql::Result<Vec<CredentialVersion>> {
        let (vault, caller) = request(ctx)?;
        let versions = vault.credential_versions(&self.0, kind.map(Into::into)).await.gql(caller)?;
        Ok(versions.into_iter().map(CredentialVersion).collect())
    }

    /// The active payout account (masked); `null` until a payout change is approved. Needs `kyc:submit` or
    /// `kyc:review`.
    async fn payout_account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<PayoutAccount>> {
        let (vault, caller) = request(ctx)?;
        Ok(vault.payout_account(caller, &self.0).await.gql(caller)?.map(PayoutAccount))
    }

    /// Every payout account the seller has had (masked), newest first: the active one, then the ones it replaced.
    /// Needs `kyc:submit` or `kyc:review`.
    #[graphql(complexity = "10 * child_complexity + 1")]
    async fn payout_account_history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PayoutAccount>> {
        let (vault, caller) = request(ctx)?;
        Ok(vault.payout_accounts(caller, &self.0).await.gql(caller)?.into_iter().map(PayoutAccount).collect())
    }
}

/// Metadata of one stored credential version. The secret itself is only handed out by the issue mutations.
pub struct CredentialVersion(pub CredentialMeta);

/// Metadata of one stored credential version. The secret itself is only handed out by the issue mutations.
#[Object]
impl CredentialVersion {
    /// Opaque id of this version (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Which credential this is.
    async fn kind(&self) -> CredentialKind {
        self.0.kind.into()
    }

    /// Version number, from 1, one more at each store or restore.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// The keyring version its secret is encrypted under.
    async fn key_version(&self) -> i32 {
        self.0.key_version
    }

    /// For Octopia credentials: the OAuth client id (an identifier, not a secret).
    async fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    /// For Octopia credentials: the seller id tools send in the `SellerId` header.
    async fn octopia_seller_id(&self) -> Option<&str> {
        self.0.octopia_seller_id.as_deref()
    }

    /// When this version is a rollback: the version it was restored from.
    async fn restored_from(&self) -> Option<i32> {
        self.0.restored_from
    }

    /// When this version was stored.
    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }

    /// The token subject that stored it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }

    /// The last answer of the marketplace about this version (`verifyCredential`, `verify: true` on store, or a
    /// token fetch it rejected); null when it was never asked.
    async fn last_verification(&self) -> Option<super::marketplace_types::VerificationResult> {
        self.0.verification.clone().map(super::marketplace_types::VerificationResult)
    }
}

/// The result of storing a Marketplace API password.
#[derive(SimpleObject)]
pub struct StoreApiCredentialPayload {
    /// The new version's metadata.
    pub credential: CredentialVersion,
    /// Where the password breaks Cdiscount's documented password policy. The password is stored anyway: the
    /// marketplace has the last word.
    pub warnings: Vec<String>,
}

/// The result of storing Octopia client credentials.
#[derive(SimpleObject)]
pub struct StoreOctopiaCredentialPayload {
    /// The new version's metadata.
    pub credential: CredentialVersion,
    /// Remarks on the stored values (none are raised yet; kept for symmetry with the Marketplace API).
    pub warnings: Vec<String>,
}

/// A Marketplace API credential, issued to the caller. The issue is in the audit trail.
pub struct IssuedApiCredential(pub IssuedApi);

/// A Marketplace API credential, issued to the caller. The issue is in the audit trail.
#[Object]
impl IssuedApiCredential {
    /// The seller login.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// The login to authenticate with: `<seller login>-api`.
    async fn api_login(&self) -> &str {
        &self.0.api_login
    }

    /// The API password. Do not store it: ask the vault again next time.
    async fn password(&self) -> &str {
        self.0.password.as_str()
    }

    /// The credential version issued (always the newest).
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it was issued.
    async fn issued_at(&self) -> OffsetDateTime {
        self.0.issued_at
    }
}

/// Octopia client credentials, issued to the caller. The issue is in the audit trail.
pub struct IssuedOctopiaCredential(pub IssuedOctopia);

/// Octopia client credentials, issued to the caller. The issue is in the audit trail.
#[Object]
impl IssuedOctopiaCredential {
    /// The seller login.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// The OAuth client id.
    async fn client_id(&self) -> &str {
        &self.0.client_id
    }

    /// The OAuth client secret. Do not store it: ask the vault again next time.
    async fn client_secret(&self) -> &str {
        self.0.client_secret.as_str()
    }

    /// The seller id to send in the `SellerId` header.
    async fn seller_id(&self) -> &str {
        &self.0.seller_id
    }

    /// The credential version issued (always the newest).
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it was issued.
    async fn issued_at(&self) -> OffsetDateTime {
        self.0.issued_at
    }
}

/// One entry of the append-only, hash-chained audit trail. Never holds a secret.
pub struct AuditEvent(pub ChainedEvent);

/// One entry of the append-only, hash-chained audit trail. Never holds a secret.
#[Object]
impl AuditEvent {
    /// Opaque id of the event (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.record.id.to_string())
    }

    /// Position in the chain, from 1, without gaps.
    async fn seq(&self) -> i64 {
        self.0.seq
    }

    /// When it happened.
    async fn occurred_at(&self) -> OffsetDateTime {
        self.0.record.occurred_at
    }

    /// The token subject that acted (`anonymous` when no valid token was given).
    async fn subject(&self) -> &str {
        &self.0.record.subject
    }

    /// What was done, e.g. `credential.issue`, `credential.store`, `seller.register`, `authenticate`.
    async fn action(&self) -> &str {
        &self.0.record.action
    }

    /// The seller concerned, if any.
    async fn seller_login(&self) -> Option<&str> {
        self.0.record.seller_login.as_deref()
    }

    /// The purpose the caller gave, for issues.
    async fn purpose(&self) -> Option<&str> {
        self.0.record.purpose.as_deref()
    }

    /// How it ended.
    async fn outcome(&self) -> AuditOutcome {
        self.0.record.outcome.into()
    }

    /// For denials and failures, a stable code (e.g. `SELLER_INACTIVE`, `MISSING_SCOPE`).
    async fn reason(&self) -> Option<&str> {
        self.0.record.reason.as_deref()
    }

    /// Non-secret detail, e.g. `kind=MARKETPLACE_API version=3`.
    async fn detail(&self) -> Option<&str> {
        self.0.record.detail.as_deref()
    }

    /// The id of the HTTP request (also in the `x-request-id` response header and the logs).
    async fn request_id(&self) -> &str {
        &self.0.record.request_id
    }

    /// SHA-256 of this event and the previous hash, in hex: the link `cdvault audit verify` checks.
    async fn hash(&self) -> String {
        hex_lower(&self.0.hash)
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new seller account.
#[derive(InputObject)]
pub struct RegisterSellerAccountInput {
    /// The seller login (letters, digits, `.`, `_`, `-`; 2 to 64 characters; without the `-api` suffix).
    pub login: String,
    /// A human-readable name of the shop (1 to 200 characters).
    pub display_name: String,
}

/// A new Marketplace API password for a seller.
#[derive(InputObject)]
pub struct StoreApiCredentialInput {
    /// The seller login.
    pub seller_login: String,
    /// The password of `<seller login>-api`: 1 to 128 characters, no control characters.
    #[graphql(secret)]
    pub password: String,
    /// Ask Cdiscount first: a rejected password is not stored (`BAD_USER_INPUT`, reason `MARKETPLACE_REJECTED`),
    /// and an unreachable marketplace stores nothing (`UPSTREAM_UNAVAILABLE`).
    #[graphql(default = false)]
    pub verify: bool,
}

/// New Octopia client credentials for a seller.
#[derive(InputObject)]
pub struct StoreOctopiaCredentialInput {
    /// The seller login.
    pub seller_login: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    #[graphql(secret)]
    pub client_secret: String,
    /// The Octopia seller id (sent by tools in the `SellerId` header).
    pub seller_id: String,
    /// Ask Octopia first: rejected client credentials are not stored (`BAD_USER_INPUT`, reason
    /// `MARKETPLACE_REJECTED`), and an unreachable marketplace stores nothing (`UPSTREAM_UNAVAILABLE`).
    #[graphql(default = false)]
    pub verify: bool,
}

/// Where a page sits in its list (Relay).
#[derive(SimpleObject, Debug, Clone)]
pub struct PageInfo {
    /// Whether there are items before this page (true when `after` was given).
    pub has_previous_page: bool,
    /// Whether there are items after this page: pass `endCursor` as `after` to get them.
    pub has_next_page: bool,
    /// The cursor of the first item of this page.
    pub start_cursor: Option<String>,
    /// The cursor of the last item of this page.
    pub end_cursor: Option<String>,
}

/// A page of seller accounts (Relay connection).
#[derive(SimpleObject)]
pub struct SellerAccountConnection {
    /// The accounts of this page, with their cursors.
    pub edges: Vec<SellerAccountEdge>,
    /// Where this page sits in the list.
    pub page_info: PageInfo,
}

/// A seller account and its cursor.
#[derive(SimpleObject)]
pub struct SellerAccountEdge {
    /// Pass as `after` to get the items after this one.
    pub cursor: String,
    /// The seller account.
    pub node: SellerAccount,
}

/// A page of audit events (Relay connection).
#[derive(SimpleObject)]
pub struct AuditEventConnection {
    /// The events of this page, with their cursors.
    pub edges: Vec<AuditEventEdge>,
    /// Where this page sits in the list.
    pub page_info: PageInfo,
}

/// An audit event and its cursor.
#[derive(SimpleObject)]
pub struct AuditEventEdge {
    /// Pass as `after` to get the (older) items after this one.
    pub cursor: String,
    /// The audit event.
    pub node: AuditEvent,
}

/// Builds the page info of a page of `cursors`.
pub fn page_info(cursors: &[String], has_previous_page: bool, has_next_page: bool) -> PageInfo {
    PageInfo {
        has_previous_page,
        has_next_page,
        start_cursor: cursors.first().cloned(),
        end_cursor: cursors.last().cloned(),
    }
}

/// The state of a keyring version.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyState {
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
pub struct TableCensus {
    /// The table (`credential_versions`, `payout_requests`, `payout_accounts`, `access_tokens`).
    pub table: String,
    /// Its ciphertexts under this version.
    pub ciphertexts: i64,
}

/// One version of the encryption keyring. Its key material never leaves the server.
#[derive(Debug, Clone)]
pub struct EncryptionKey(pub cdvault_storage::keyring::KeyCensus);

/// One version of the encryption keyring. Its key material never leaves the server.
#[Object]
impl EncryptionKey {
    /// The version number, from 1; every ciphertext records the version that sealed it.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// Whether it seals new writes, only opens old ones, or was destroyed.
    async fn state(&self) -> KeyState {
        use cdvault_domain::crypto::KeyState as Domain;
        match self.0.state {
            Some(Domain::Active) => KeyState::Active,
            Some(Domain::DecryptOnly) => KeyState::DecryptOnly,
            Some(Domain::Retired) => KeyState::Retired,
            None => KeyState::Unknown,
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
    async fn ciphertexts_by_table(&self) -> Vec<TableCensus> {
        self.0
            .ciphertexts
            .iter()
            .map(|c| TableCensus { table: c.table.name().to_owned(), ciphertexts: c.count })
            .collect()
    }
}

/// Where a rotation job stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cdvault_storage::rewrap::JobState")]
pub enum RotationJobState {
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
pub struct RotationFailure {
    /// The table of the row.
    pub table: String,
    /// The row's id.
    pub row_id: ID,
    /// Why: `DECRYPT_FAILED`, `UNKNOWN_KEY_VERSION` or `UNREADABLE_ROW`.
    pub reason: String,
}

/// A key rotation: the new keyring version and the job that rewraps every ciphertext to it.
#[derive(Debug, Clone)]
pub struct RotationJob(pub cdvault_storage::rewrap::RotationJob, pub Vec<cdvault_storage::rewrap::JobFailure>);

/// A key rotation: the new keyring version and the job that rewraps every ciphertext to it.
#[Object]
impl RotationJob {
    /// The job's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Where it stands.
    async fn state(&self) -> RotationJobState {
        self.0.state.into()
    }

    /// The keyring version everything is rewrapped to (made `ACTIVE` when the job started).
    async fn to_version(&self) -> i32 {
        self.0.to_version
    }

    /// Ciphertexts under older versions when the job started.
    async fn total(&self) -> i64 {
        self.0.total
    }

    /// Ciphertexts rewrapped so far (rows stored anew meanwhile are not counted: they are already fresh).
    async fn done(&self) -> i64 {
        self.0.done
    }

    /// Rows that could not be rewrapped.
    async fn failed(&self) -> i64 {
        self.0.failed
    }

    /// The token subject that started it.
    async fn started_by(&self) -> &str {
        &self.0.started_by
    }

    /// When it started.
    async fn started_at(&self) -> OffsetDateTime {
        self.0.started_at
    }

    /// When it finished; null while running.
    async fn finished_at(&self) -> Option<OffsetDateTime> {
        self.0.finished_at
    }

    /// The rows it could not rewrap, with the reason.
    async fn failures(&self) -> Vec<RotationFailure> {
        self.1
            .iter()
            .map(|f| RotationFailure {
                table: f.table.name().to_owned(),
                row_id: ID(f.row_id.to_string()),
                reason: f.reason.clone(),
            })
            .collect()
    }
}
