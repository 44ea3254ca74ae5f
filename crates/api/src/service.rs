//! Use cases: every act on the vault, with its authorization, validation and audit. Resolvers stay thin over these;
//! they can run without GraphQL.

use std::sync::Arc;

use cdvault_domain::ValidationError;
use cdvault_domain::audit::{AuditRecord, ChainedEvent, Outcome, action};
use cdvault_domain::credential::{
    ApiPassword, CredentialKind, CredentialMeta, OctopiaCredential, SecretSlot, StoredCredential,
};
use cdvault_domain::policy::{Denial, Principal, Scope};
use cdvault_domain::seller::{SellerAccount, SellerLogin, SellerStatus};
use cdvault_domain::text::{DisplayName, Purpose};
use cdvault_storage::audit::{AppendError, AuditFilter, AuditSink, IssueCondition};
use cdvault_storage::credentials::NewCredential;
use cdvault_storage::keyring::KeyringHandle;
use cdvault_storage::{Database, StorageError, audit, credentials, sellers};
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::cache::{IssueCache, IssueMaterial};

mod marketplace;
mod payouts;
mod rotation;
use crate::error::ApiError;
use marketplace::Candidate;
pub use marketplace::{IssuedToken, Marketplace, VerificationReport};
pub use payouts::{MoveInput, PayoutQuery};
pub use rotation::RewrapSettings;

/// Who is calling, for one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub request_id: String,
    pub principal: Option<Principal>,
    /// For a session that outlives its request (a WebSocket): when its token expires. Past it, the session's
    /// operations are `UNAUTHENTICATED` and its subscriptions end.
    pub expires_at: Option<std::time::SystemTime>,
}

/// A Marketplace API credential handed to a tool.
#[derive(Debug)]
pub struct IssuedApi {
    pub seller_login: String,
    pub api_login: String,
    pub password: Zeroizing<String>,
    pub version: i32,
    pub issued_at: OffsetDateTime,
}

/// Octopia client credentials handed to a tool.
#[derive(Debug)]
pub struct IssuedOctopia {
    pub seller_login: String,
    pub client_id: String,
    pub client_secret: Zeroizing<String>,
    pub seller_id: String,
    pub version: i32,
    pub issued_at: OffsetDateTime,
}

/// Filters of an audit listing, as given by the caller.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    pub seller_login: Option<String>,
    pub subject: Option<String>,
    pub action: Option<String>,
}

/// The vault's use cases over one database, one keyring and one audit trail.
#[derive(Debug)]
pub struct Vault {
    db: Database,
    keys: Arc<KeyringHandle>,
    audit: AuditSink,
    cache: IssueCache,
    /// Payout change requests as committed by each change, for subscribers.
    payout_changes: tokio::sync::broadcast::Sender<Arc<cdvault_storage::payouts::PayoutRequest>>,
    /// Set when the server shuts down: long-lived sessions (WebSockets) end then.
    closing: tokio::sync::watch::Sender<bool>,
    /// Marketplace calls: verification, the token broker, and the pokes of credential change subscribers.
    broker: Arc<marketplace::Broker>,
    /// Wakes this replica's rewrap worker when a rotation starts here.
    rewrap_wake: tokio::sync::Notify,
}

/// Sellers × kinds whose issue material is kept in memory.
const CACHE_CAPACITY: usize = 200_000;

impl Vault {
    pub fn new(db: Database, keys: Arc<KeyringHandle>, audit: AuditSink, marketplace: Marketplace) -> Self {
        let (payout_changes, _) = tokio::sync::broadcast::channel(1024);
        let (closing, _) = tokio::sync::watch::channel(false);
        let broker = Arc::new(marketplace::Broker::new(db.clone(), keys.clone(), marketplace));
        let rewrap_wake = tokio::sync::Notify::new();
        Self { db, keys, audit, cache: IssueCache::new(CACHE_CAPACITY), payout_changes, closing, broker, rewrap_wake }
    }

    /// Bumped for every committed credential change: the PostgreSQL LISTEN task of each replica bumps it.
    pub fn credential_change_pokes(&self) -> &tokio::sync::watch::Sender<u64> {
        self.broker.pokes()
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Ends every long-lived session (WebSocket), so a shutdown is not held open by a console.
    pub fn close_sessions(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Self::close_sessions`] was called.
    pub fn sessions_closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|closed| *closed).await;
        }
    }

    fn event(caller: &Caller, subject: &str, act: &str, outcome: Outcome) -> AuditRecord {
        AuditRecord::new(subject, act, outcome, &caller.request_id)
    }

    /// Records an event on its own (denials, failures). A failure to record is logged; the caller's outcome stands.
    async fn record_best_effort(&self, record: AuditRecord) {
        if self.audit.append(record).await.is_err() {
            tracing::error!("an audit event for a denial or failure could not be recorded");
        }
    }

    /// The caller's principal, or `UNAUTHENTICATED` (audited).
    async fn principal<'c>(&self, caller: &'c Caller, act: &str) -> Result<&'c Principal, ApiError> {
        match &caller.principal {
            Some(p) => Ok(p),
            None => {
                let record = Self::event(caller, "anonymous", act, Outcome::Denied).reason("MISSING_TOKEN");
                self.record_best_effort(record).await;
                Err(ApiError::Unauthenticated("a bearer token is required".into()))
            }
        }
    }

    async fn deny(&self, caller: &Caller, p: &Principal, act: &str, seller: Option<&str>, denial: Denial) -> ApiError {
        let mut record = Self::event(caller, &p.subject, act, Outcome::Denied).reason(denial.reason());
        // Only a well-formed login is recorded: the audit row must not take arbitrary caller input.
        if let Some(seller) = seller.filter(|s| SellerLogin::parse("sellerLogin", s).is_ok()) {
            record = record.seller(seller);
        }
        if let Denial::MissingScope(scope) = denial {
            record = record.detail(format!("missing scope {}", scope.as_str()));
        }
        self.record_best_effort(record).await;
        ApiError::Forbidden(denial)
    }

    /// Scope, then input shape, then reach: the common gate of every per-seller act.
    async fn gate<'c>(
        &self,
        caller: &'c Caller,
        act: &str,
        scope: Option<Scope>,
        field: &'static str,
        raw_login: &str,
    ) -> Result<(&'c Principal, SellerLogin), ApiError> {
        let p = self.principal(caller, act).await?;
        if let Some(Err(denial)) = scope.map(|s| p.require(s)) {
            return Err(self.deny(caller, p, act, Some(raw_login), denial).await);
        }
        let login = SellerLogin::parse(field, raw_login)?;
        if let Err(denial) = p.authorize(None, login.as_str()) {
            return Err(self.deny(caller, p, act, Some(login.as_str()), denial).await);
        }
        Ok((p, login))
    }

    async fn existing_seller(&self, login: &SellerLogin) -> Result<SellerAccount, ApiError> {
        sellers::find_by_login(&self.db, login.as_str())
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("seller '{login}'")))
    }

    // ---- seller accounts ----

    pub async fn register_seller(
        &self,
        caller: &Caller,
        login: &str,
        display_name: &str,
    ) -> Result<SellerAccount, ApiError> {
        let act = action::SELLER_REGISTER;
        let (p, login) = self.gate(caller, act, Some(Scope::CredentialsWrite), "login", login).await?;
        let display_name = DisplayName::parse("displayName", display_name)?;
        let now = OffsetDateTime::now_utc();
        let account = SellerAccount {
            id: Uuid::now_v7(),
            login,
            display_name,
            status: SellerStatus::Active,
            created_at: now,
            updated_at: now,
        };
        let event = Self::event(caller, &p.subject, act, Outcome::Success).seller(account.login.as_str());
        match sellers::insert(&self.db, &account, event).await {
            Ok(()) => Ok(account),
            Err(StorageError::Taken(_)) => {
                let record = Self::event(caller, &p.subject, act, Outcome::Failed)
                    .seller(account.login.as_str())
                    .reason("LOGIN_TAKEN");
                self.record_best_effort(record).await;
                Err(ApiError::Conflict(format!("a seller with login '{}' is already registered", account.login)))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn set_seller_status(
        &self,
        caller: &Caller,
        login: &str,
        status: SellerStatus,
    ) -> Result<SellerAccount, ApiError> {
        let act = match status {
            SellerStatus::Active => action::SELLER_REACTIVATE,
            SellerStatus::Inactive => action::SELLER_DEACTIVATE,
        };
        let (p, login) = self.gate(caller, act, Some(Scope::CredentialsWrite), "login", login).await?;
        let event = Self::event(caller, &p.subject, act, Outcome::Success).seller(login.as_str());
        let changed = sellers::set_status(&self.db, login.as_str(), status, event).await;
        // After the write: an issue racing it cannot put the old state back.
        self.cache.forget(login.as_str());
        match changed {
            Ok(account) => Ok(account),
            Err(StorageError::NotFound) => Err(ApiError::NotFound(format!("seller '{login}'"))),
            Err(e) => Err(e.into()),
        }
    }

    /// The caller's own principal (the `viewer` query).
    pub async fn viewer(&self, caller: &Caller) -> Result<Principal, ApiError> {
        self.principal(caller, "viewer").await.cloned()
    }

    /// One seller, if it exists and the caller reaches it.
    pub async fn seller(&self, caller: &Caller, login: &str) -> Result<Option<SellerAccount>, ApiError> {
        let (_, login) = self.gate(caller, action::SELLER_READ, None, "login", login).await?;
        Ok(sellers::find_by_login(&self.db, login.as_str()).await?)
    }

    /// A page of the sellers the caller reaches, by login, after `after`.
    pub async fn sellers(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<SellerAccount>, ApiError> {
        let p = self.principal(caller, action::SELLER_READ).await?;
        Ok(sellers::list(&self.db, &p.sellers, after, limit).await?)
    }

    /// Metadata of the kept versions of a seller's credentials (the seller was reached when it was loaded).
    pub async fn credential_versions(
        &self,
        seller: &SellerAccount,
        kind: Option<CredentialKind>,
    ) -> Result<Vec<CredentialMeta>, ApiError> {
        Ok(credentials::list_meta(&self.db, seller.id, kind).await?)
    }

    // ---- credentials ----

    fn new_version(kind: CredentialKind, created_by: &str, restored_from: Option<i32>) -> NewCredential {
        NewCredential {
            id: Uuid::now_v7(),
            kind,
            client_id: None,
            octopia_seller_id: None,
            restored_from,
            created_by: created_by.to_owned(),
            verification: None,
        }
    }

    async fn open(&self, stored: &StoredCredential) -> Result<Zeroizing<String>, ApiError> {
        let ring = self.keys.ring_for(stored.secret.key_version).await?;
        let bytes = SecretSlot::of(&stored.meta)
            .open(&ring, &stored.secret)
            .map_err(|e| ApiError::internal("opening a credential", e))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| ApiError::internal("opening a credential", e))?;
        Ok(Zeroizing::new(text.to_owned()))
    }

    async fn store(
        &self,
        caller: &Caller,
        p: &Principal,
        login: &SellerLogin,
        act: &str,
        new: NewCredential,
        secret: &[u8],
    ) -> Result<CredentialMeta, ApiError> {
        let event = |meta: &CredentialMeta| {
            let mut detail =
                format!("kind={} version={} key_version={}", meta.kind.as_str(), meta.version, meta.key_version);
            if let Some(from) = meta.restored_from {
                detail.push_str(&format!(" restored_from={from}"));
            }
            Self::event(caller, &p.subject, act, Outcome::Success).seller(login.as_str()).detail(detail)
        };
        let ring = self.keys.current();
        let seal = |slot: &SecretSlot<'_>| slot.seal(&ring, secret);
        let mut stored = credentials::store(&self.db, login.as_str(), new.clone(), seal, event).await;
        if let Err(StorageError::KeyNotActive(_)) = stored {
            // A rotation elsewhere: seal under the new active version.
            let ring = self.keys.reload().await?;
            let seal = |slot: &SecretSlot<'_>| slot.seal(&ring, secret);
            stored = credentials::store(&self.db, login.as_str(), new, seal, event).await;
        }
        self.cache.forget(login.as_str());
        match stored {
            Ok((meta, _change)) => {
                self.broker.poke_local();
                Ok(meta)
            }
            Err(StorageError::NotFound) => Err(ApiError::NotFound(format!("seller '{login}'"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a new Marketplace API password; with `verify`, only once Cdiscount accepted it.
    pub async fn store_api_credential(
        &self,
        caller: &Caller,
        seller_login: &str,
        password: SecretString,
        verify: bool,
    ) -> Result<(CredentialMeta, Vec<String>), ApiError> {
        let act = action::CREDENTIAL_STORE;
        let (p, login) = self.gate(caller, act, Some(Scope::CredentialsWrite), "sellerLogin", seller_login).await?;
        let (password, warnings) = ApiPassword::parse("password", password)?;
        let mut new = Self::new_version(CredentialKind::MarketplaceApi, &p.subject, None);
        if verify {
            self.existing_seller(&login).await?;
            let secret = SecretString::from(password.expose().to_owned());
            let candidate =
                Candidate { kind: CredentialKind::MarketplaceApi, client_id: None, secret: &secret, field: "password" };
            new.verification = Some(self.verify_before_store(caller, &p.subject, &login, candidate).await?);
        }
        let meta = self.store(caller, p, &login, act, new, password.expose().as_bytes()).await?;
        Ok((meta, warnings))
    }

    /// Stores new Octopia client credentials; with `verify`, only once Octopia accepted them.
    pub async fn store_octopia_credential(
        &self,
        caller: &Caller,
        seller_login: &str,
        client_id: &str,
        client_secret: SecretString,
        seller_id: &str,
        verify: bool,
    ) -> Result<CredentialMeta, ApiError> {
        let act = action::CREDENTIAL_STORE;
        let (p, login) = self.gate(caller, act, Some(Scope::CredentialsWrite), "sellerLogin", seller_login).await?;
        let octopia = OctopiaCredential::parse(client_id, client_secret, seller_id)?;
        let secret = secrecy::ExposeSecret::expose_secret(&octopia.client_secret).as_bytes();
        let mut new = Self::new_version(CredentialKind::Octopia, &p.subject, None);
        if verify {
            self.existing_seller(&login).await?;
            let candidate = Candidate {
                kind: CredentialKind::Octopia,
                client_id: Some(octopia.client_id.as_str()),
                secret: &octopia.client_secret,
                field: "clientSecret",
            };
            new.verification = Some(self.verify_before_store(caller, &p.subject, &login, candidate).await?);
        }
        new.client_id = Some(octopia.client_id);
        new.octopia_seller_id = Some(octopia.seller_id);
        self.store(caller, p, &login, act, new, secret).await
    }

    /// Makes a new version equal to a kept older one.
    pub async fn restore_credential_version(
        &self,
        caller: &Caller,
        seller_login: &str,
        kind: CredentialKind,
        version: i32,
    ) -> Result<CredentialMeta, ApiError> {
        let act = action::CREDENTIAL_RESTORE;
        let (p, login) = self.gate(caller, act, Some(Scope::CredentialsWrite), "sellerLogin", seller_login).await?;
        if version < 1 {
            return Err(ValidationError::new("version", "OUT_OF_RANGE", "versions start at 1").into());
        }
        let seller = self.existing_seller(&login).await?;
        let old = credentials::get_version(&self.db, seller.id, kind, version).await?.ok_or_else(|| {
            ApiError::NotFound(format!(
                "{} credential version {version} of seller '{login}' (only the newest {} are kept)",
                kind.as_str(),
                cdvault_domain::credential::RETAINED_VERSIONS
            ))
        })?;
        let secret = self.open(&old).await?;
        let mut new = Self::new_version(kind, &p.subject, Some(version));
        new.client_id = old.meta.client_id;
        new.octopia_seller_id = old.meta.octopia_seller_id;
        self.store(caller, p, &login, act, new, secret.as_bytes()).await
    }

    /// The newest credential of a seller, from the cache or the database. `NOT_FOUND` and `SELLER_INACTIVE` (audited
    /// as `act`) here.
    async fn issue_material(
        &self,
        caller: &Caller,
        p: &Principal,
        login: &SellerLogin,
        kind: CredentialKind,
        act: &str,
    ) -> Result<Arc<IssueMaterial>, ApiError> {
        if let Some(material) = self.cache.get(login.as_str(), kind) {
            return Ok(material);
        }
        let seller = self.existing_seller(login).await?;
        if seller.status != SellerStatus::Active {
            return Err(self.deny(caller, p, act, Some(login.as_str()), Denial::SellerInactive).await);
        }
        let stored = credentials::latest(&self.db, seller.id, kind)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("{} credential of seller '{login}'", kind.as_str())))?;
        let material = Arc::new(IssueMaterial { seller_id: seller.id, stored });
        self.cache.put(login.as_str(), kind, material.clone());
        Ok(material)
    }

    /// The checks and audit shared by both issue paths: returns the newest version, opened.
    async fn issue(
        &self,
        caller: &Caller,
        seller_login: &str,
        purpose: &str,
        kind: CredentialKind,
    ) -> Result<(SellerLogin, Arc<IssueMaterial>, Zeroizing<String>), ApiError> {
        let act = action::CREDENTIAL_ISSUE;
        let (p, login) = self.gate(caller, act, Some(Scope::CredentialsRead), "sellerLogin", seller_login).await?;
        let purpose = Purpose::parse("purpose", purpose)?;
        // Another attempt only when a newer version was stored between our read and the audit commit, or once when
        // the cached ciphertext no longer opens.
        let mut reread = false;
        for _ in 0..4 {
            let material = self.issue_material(caller, p, &login, kind, act).await?;
            let stored = &material.stored;
            let base = |outcome| {
                Self::event(caller, &p.subject, act, outcome)
                    .seller(login.as_str())
                    .purpose(purpose.as_str())
                    .detail(format!("kind={} version={}", kind.as_str(), stored.meta.version))
            };
            let secret = match self.open(stored).await {
                Ok(secret) => secret,
                Err(_) if !reread => {
                    // The cached ciphertext may predate a rewrap whose old version is now retired: read it again.
                    reread = true;
                    self.cache.forget(login.as_str());
                    continue;
                }
                Err(e) => {
                    self.cache.forget(login.as_str());
                    self.record_best_effort(base(Outcome::Failed).reason("DECRYPT_FAILED")).await;
                    return Err(e);
                }
            };
            if kind == CredentialKind::Octopia
                && (stored.meta.client_id.is_none() || stored.meta.octopia_seller_id.is_none())
            {
                let corrupt = StorageError::Corrupt("an Octopia credential without client or seller id".into());
                return Err(ApiError::internal("reading Octopia metadata", corrupt));
            }
            // Fail closed: nothing leaves before its audit event is committed, and only if the seller is still
            // active and the version still the newest at that moment.
            let condition = IssueCondition { seller_id: material.seller_id, kind, version: stored.meta.version };
            match self.audit.append_issue(base(Outcome::Success), condition).await {
                Ok(()) => return Ok((login, material, secret)),
                Err(AppendError::SellerInactive) => {
                    self.cache.forget(login.as_str());
                    return Err(self.deny(caller, p, act, Some(login.as_str()), Denial::SellerInactive).await);
                }
                Err(AppendError::Stale) => self.cache.forget(login.as_str()),
                Err(e) => return Err(ApiError::internal("recording the issue", e)),
            }
        }
        Err(ApiError::Conflict(format!("the credential of seller '{login}' keeps changing; try again")))
    }

    pub async fn issue_api_credential(
        &self,
        caller: &Caller,
        seller_login: &str,
        purpose: &str,
    ) -> Result<IssuedApi, ApiError> {
        let (login, material, password) =
            self.issue(caller, seller_login, purpose, CredentialKind::MarketplaceApi).await?;
        let stored = &material.stored;
        Ok(IssuedApi {
            api_login: login.api_login(),
            seller_login: login.as_str().to_owned(),
            password,
            version: stored.meta.version,
            issued_at: OffsetDateTime::now_utc(),
        })
    }

    pub async fn issue_octopia_credential(
        &self,
        caller: &Caller,
        seller_login: &str,
        purpose: &str,
    ) -> Result<IssuedOctopia, ApiError> {
        let (login, material, client_secret) =
            self.issue(caller, seller_login, purpose, CredentialKind::Octopia).await?;
        let stored = &material.stored;
        let missing = || {
            ApiError::internal(
                "reading Octopia metadata",
                StorageError::Corrupt("an Octopia credential without client or seller id".into()),
            )
        };
        Ok(IssuedOctopia {
            seller_login: login.as_str().to_owned(),
            client_id: stored.meta.client_id.clone().ok_or_else(missing)?,
            seller_id: stored.meta.octopia_seller_id.clone().ok_or_else(missing)?,
            client_secret,
            version: stored.meta.version,
            issued_at: OffsetDateTime::now_utc(),
        })
    }

    // ---- audit ----

    /// A page of audit events, newest first, older than `before_seq`.
    pub async fn audit_events(
        &self,
        caller: &Caller,
        query: AuditQuery,
        before_seq: Option<i64>,
        limit: u64,
    ) -> Result<Vec<ChainedEvent>, ApiError> {
        let act = action::AUDIT_READ;
        let p = self.principal(caller, act).await?;
        if let Err(denial) = p.require(Scope::AuditRead) {
            return Err(self.deny(caller, p, act, query.seller_login.as_deref(), denial).await);
        }
        if let Some(login) = &query.seller_login {
            let login = SellerLogin::parse("sellerLogin", login)?;
            if let Err(denial) = p.authorize(None, login.as_str()) {
                return Err(self.deny(caller, p, act, Some(login.as_str()), denial).await);
            }
        }
        let filter = AuditFilter {
            seller_login: query.seller_login,
            subject: query.subject,
            action: query.action,
            reach: p.sellers.clone(),
        };
        Ok(audit::list(&self.db, &filter, before_seq, limit).await?)
    }

    // ---- keys ----

    /// Every keyring version with its census (ciphertexts per sealed table). Needs `keys:admin`.
    pub async fn encryption_keys(&self, caller: &Caller) -> Result<Vec<cdvault_storage::keyring::KeyCensus>, ApiError> {
        let act = action::KEYS_READ;
        let p = self.principal(caller, act).await?;
        if let Err(denial) = p.require(Scope::KeysAdmin) {
            return Err(self.deny(caller, p, act, None, denial).await);
        }
        Ok(cdvault_storage::keyring::census(&self.db).await?)
    }

    /// Records a refused token (called by the HTTP layer, which never gets as far as a principal).
    pub async fn record_authentication_failure(&self, request_id: &str, reason: &str) {
        let record = AuditRecord::new("anonymous", action::AUTHENTICATE, Outcome::Denied, request_id).reason(reason);
        self.record_best_effort(record).await;
    }
}
