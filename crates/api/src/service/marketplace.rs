//! Use cases that talk to Cdiscount: checking a credential, brokering access tokens, and the feed of credential
//! changes tools subscribe to.
//!
//! Token fetches are single-flight at two levels. In a process, callers wanting a token for the same seller, kind
//! and credential version share one fetch (a spawned task, so a caller that goes away does not cancel it for the
//! others). Between replicas, the fetching task takes a lease on the token row; a replica that finds the lease taken
//! polls the row until the holder stores its token, holding no connection in between.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdvault_cdiscount::{AccessToken, MarketplaceError};
use cdvault_domain::audit::{AuditRecord, Outcome, action};
use cdvault_domain::clock::Clock;
use cdvault_domain::credential::{
    CredentialChange, CredentialKind, SecretSlot, StoredCredential, Verification, VerificationOutcome,
};
use cdvault_domain::crypto::Keyring;
use cdvault_domain::policy::{Denial, Scope};
use cdvault_domain::seller::{SellerAccount, SellerLogin};
use cdvault_domain::text::Purpose;
use cdvault_domain::token::{Freshness, TokenTimes};
use cdvault_storage::audit::{AppendError, IssueCondition};
use cdvault_storage::keyring::KeyringHandle;
use cdvault_storage::tokens::{self, CachedToken};
use cdvault_storage::{Database, StorageError, credential_changes, credentials};
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Stream};
use secrecy::SecretString;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{Caller, Vault};
use crate::error::ApiError;

/// How long a fetch lease lasts: longer than a whole fetch with its retries, short enough that a crashed
/// fetcher's successor does not wait long.
const LEASE: time::Duration = time::Duration::seconds(30);
/// How often a replica waiting for another one's fetch reads the token row.
const POLL: Duration = Duration::from_millis(50);
/// The longest a caller waits for a token fetched elsewhere.
const WAIT_LIMIT: Duration = Duration::from_secs(40);
/// Changes read from the database at once by a subscriber.
const CHANGE_PAGE: u64 = 100;

/// The marketplace client and the clock the token broker goes by.
#[derive(Debug, Clone)]
pub struct Marketplace {
    pub client: cdvault_cdiscount::Client,
    pub clock: Arc<dyn Clock>,
}

/// What the marketplace said of a credential, as recorded.
#[derive(Debug, Clone)]
pub struct VerificationReport {
    pub seller_login: String,
    pub kind: CredentialKind,
    pub version: i32,
    pub verification: Verification,
}

/// An access token handed to a tool.
#[derive(Debug)]
pub struct IssuedToken {
    pub seller_login: String,
    pub kind: CredentialKind,
    pub token: Zeroizing<String>,
    pub expires_at: OffsetDateTime,
    /// For Octopia: the seller id tools send in the `SellerId` header.
    pub octopia_seller_id: Option<String>,
    pub credential_version: i32,
}

/// A fetched token, shared by every caller of one flight.
struct Fetched {
    token: Zeroizing<String>,
    times: TokenTimes,
    /// Its sealed row, for this replica's memory (none when the lease was lost and it was not stored).
    row: Option<CachedToken>,
}

/// Sealed token rows last read or stored by this replica, so a served token costs no database read. Dropped whole
/// whenever any credential change is committed (by any replica: the pokes), so a new or rejected version is never
/// answered from here; the issue's audit condition catches the short window before the poke arrives.
#[derive(Default)]
struct LocalTokens {
    generation: u64,
    rows: HashMap<(Uuid, CredentialKind), CachedToken>,
}

/// Rows kept in [`LocalTokens`] before it starts over.
const LOCAL_TOKENS: usize = 200_000;

/// Why a flight gave no token (cloneable: every caller of the flight gets it).
#[derive(Debug, Clone)]
enum FetchFailure {
    Rejected(&'static str),
    /// A newer credential version was stored: read it and try again.
    Stale,
    Unavailable(&'static str),
    Internal(Arc<ApiError>),
}

type FlightResult = Result<Arc<Fetched>, FetchFailure>;
type FlightKey = (Uuid, CredentialKind, i32);

/// Everything a fetch needs, owned, so that it can run as a task of its own.
pub(super) struct Broker {
    db: Database,
    keys: Arc<KeyringHandle>,
    marketplace: Marketplace,
    flights: Mutex<HashMap<FlightKey, Shared<BoxFuture<'static, FlightResult>>>>,
    local: Mutex<LocalTokens>,
    /// Bumped for every committed credential change (locally on SQLite, by LISTEN on PostgreSQL).
    pokes: watch::Sender<u64>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("marketplace", &self.marketplace).finish_non_exhaustive()
    }
}

/// Asks the marketplace for a token with a credential's secret.
async fn ask(
    marketplace: &Marketplace,
    login: &SellerLogin,
    stored: &StoredCredential,
    secret: &Zeroizing<String>,
) -> Result<AccessToken, MarketplaceError> {
    let secret = SecretString::from(secret.as_str().to_owned());
    match stored.meta.kind {
        CredentialKind::MarketplaceApi => marketplace.client.sts_token(&login.api_login(), &secret).await,
        CredentialKind::Octopia => {
            let client_id = stored.meta.client_id.as_deref().unwrap_or_default();
            marketplace.client.octopia_token(client_id, &secret).await
        }
    }
}

fn open_secret(keyring: &Keyring, stored: &StoredCredential) -> Result<Zeroizing<String>, ApiError> {
    let bytes = SecretSlot::of(&stored.meta)
        .open(keyring, &stored.secret)
        .map_err(|e| ApiError::internal("opening a credential", e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| ApiError::internal("opening a credential", e))?;
    Ok(Zeroizing::new(text.to_owned()))
}

fn verification_of(result: &Result<AccessToken, MarketplaceError>, checked_at: OffsetDateTime) -> Verification {
    let (outcome, reason) = match result {
        Ok(_) => (VerificationOutcome::Verified, None),
        Err(MarketplaceError::Rejected { reason }) => (VerificationOutcome::Rejected, Some((*reason).to_owned())),
        Err(MarketplaceError::Unavailable { reason, .. }) => {
            (VerificationOutcome::Unreachable, Some((*reason).to_owned()))
        }
    };
    Verification { outcome, reason, checked_at }
}

impl Broker {
    pub(super) fn new(db: Database, keys: Arc<KeyringHandle>, marketplace: Marketplace) -> Self {
        let (pokes, _) = watch::channel(0);
        Self { db, keys, marketplace, flights: Mutex::new(HashMap::new()), local: Mutex::default(), pokes }
    }

    pub(super) fn now(&self) -> OffsetDateTime {
        self.marketplace.clock.now()
    }

    /// Tells local subscribers that a change was committed. On PostgreSQL the LISTEN task does it for every change
    /// of every replica, this one included.
    pub(super) fn poke_local(&self) {
        if !self.db.is_postgres() {
            self.pokes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    pub(super) fn pokes(&self) -> &watch::Sender<u64> {
        &self.pokes
    }

    /// The row this replica holds for a seller and kind, unless a credential change was committed since.
    fn local_row(&self, seller_id: Uuid, kind: CredentialKind) -> Option<CachedToken> {
        let generation = *self.pokes.borrow();
        let mut local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if local.generation != generation {
            local.rows.clear();
            local.generation = generation;
        }
        local.rows.get(&(seller_id, kind)).cloned()
    }

    fn keep_local(&self, row: &CachedToken) {
        let mut local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if local.generation != *self.pokes.borrow() {
            // A change came in since the row was read: it may be the one that voids it.
            return;
        }
        if local.rows.len() >= LOCAL_TOKENS {
            local.rows.clear();
        }
        local.rows.insert((row.seller_id, row.kind), row.clone());
    }

    /// A token for the newest credential `stored`: the cached one while it may be served, else the result of the
    /// (shared) fetch. A token in its refresh window is served and its successor fetched in the background.
    async fn token(self: &Arc<Self>, login: &SellerLogin, stored: &StoredCredential) -> FlightResult {
        let now = self.now();
        let (seller_id, kind, version) = (stored.meta.seller_id, stored.meta.kind, stored.meta.version);
        let servable =
            |row: &CachedToken| row.credential_version == version && row.times.freshness(now) != Freshness::Expired;
        let refresh_if_due = |row: &CachedToken| {
            if row.times.freshness(now) == Freshness::RefreshAhead {
                // Not awaited: the caller has a good token; the flight refreshes it for the next ones.
                drop(self.flight(login, stored));
            }
        };
        if let Some(row) = self.local_row(seller_id, kind).filter(servable)
            && let Ok(fetched) = self.open_token(&row).await
        {
            refresh_if_due(&row);
            return Ok(fetched);
        }
        // Not in memory, or sealed under a version since retired (the database row was rewrapped): read it.
        let state =
            tokens::read(&self.db, seller_id, kind).await.map_err(|e| FetchFailure::Internal(Arc::new(e.into())))?;
        if let Some(row) = state.and_then(|s| s.token).filter(servable) {
            self.keep_local(&row);
            let fetched = self.open_token(&row).await?;
            refresh_if_due(&row);
            return Ok(fetched);
        }
        self.flight(login, stored).await
    }

    async fn open_token(&self, cached: &CachedToken) -> FlightResult {
        let ring = self
            .keys
            .ring_for(cached.sealed.key_version)
            .await
            .map_err(|e| FetchFailure::Internal(Arc::new(e.into())))?;
        let bytes = cached
            .slot()
            .open(&ring, &cached.sealed)
            .map_err(|e| FetchFailure::Internal(Arc::new(ApiError::internal("opening a cached token", e))))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|e| FetchFailure::Internal(Arc::new(ApiError::internal("reading a cached token", e))))?;
        Ok(Arc::new(Fetched { token: Zeroizing::new(text), times: cached.times, row: Some(cached.clone()) }))
    }

    /// The fetch in flight for this credential version, or a new one.
    fn flight(
        self: &Arc<Self>,
        login: &SellerLogin,
        stored: &StoredCredential,
    ) -> Shared<BoxFuture<'static, FlightResult>> {
        let key = (stored.meta.seller_id, stored.meta.kind, stored.meta.version);
        let mut flights = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(flight) = flights.get(&key) {
            return flight.clone();
        }
        let broker = self.clone();
        let (login, stored) = (login.clone(), stored.clone());
        let task = tokio::spawn(async move {
            let result = broker.fetch(&login, &stored).await;
            // Here rather than in the callers: a background refresh has none.
            if let Ok(Fetched { row: Some(row), .. }) = result.as_deref() {
                broker.keep_local(row);
            }
            broker.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
            result
        });
        let flight = async move {
            task.await
                .unwrap_or_else(|e| Err(FetchFailure::Internal(Arc::new(ApiError::internal("fetching a token", e)))))
        }
        .boxed()
        .shared();
        flights.insert(key, flight.clone());
        flight
    }

    /// One flight: wait for a fresh token in the database, or take the lease and fetch it.
    async fn fetch(&self, login: &SellerLogin, stored: &StoredCredential) -> FlightResult {
        let internal = |e: StorageError| FetchFailure::Internal(Arc::new(e.into()));
        let (seller_id, kind, version) = (stored.meta.seller_id, stored.meta.kind, stored.meta.version);
        let owner = Uuid::now_v7();
        let started = tokio::time::Instant::now();
        loop {
            let fresh = |state: Option<tokens::TokenState>, now| {
                state
                    .and_then(|s| s.token)
                    .filter(|t| t.credential_version == version && t.times.freshness(now) == Freshness::Fresh)
            };
            let now = self.now();
            if let Some(cached) = fresh(tokens::read(&self.db, seller_id, kind).await.map_err(internal)?, now) {
                return self.open_token(&cached).await;
            }
            if tokens::try_lease(&self.db, seller_id, kind, owner, now, now + LEASE).await.map_err(internal)? {
                // The previous holder may have stored its token between our read and our lease.
                let state = tokens::read(&self.db, seller_id, kind).await.map_err(internal)?;
                if let Some(cached) = fresh(state, self.now()) {
                    tokens::release(&self.db, seller_id, kind, owner).await.map_err(internal)?;
                    return self.open_token(&cached).await;
                }
                // A fetch elsewhere may have found this version rejected: never retry a known-bad secret (repeated
                // failed logins can lock the seller's account).
                // Nor a superseded one: the caller's view of the newest version may be out of date.
                let newest = credentials::latest(&self.db, seller_id, kind).await.map_err(internal)?;
                let refusal = match &newest {
                    Some(newest) if newest.meta.version == version => rejection(newest).map(FetchFailure::Rejected),
                    _ => Some(FetchFailure::Stale),
                };
                if let Some(refusal) = refusal {
                    tokens::release(&self.db, seller_id, kind, owner).await.map_err(internal)?;
                    return Err(refusal);
                }
                let result = self.fetch_leased(login, stored, owner).await;
                if result.is_err()
                    && let Err(e) = tokens::release(&self.db, seller_id, kind, owner).await
                {
                    tracing::warn!(error = %e, "a token fetch lease could not be released; it will expire");
                }
                return result;
            }
            if started.elapsed() > WAIT_LIMIT {
                return Err(FetchFailure::Unavailable("TOKEN_FETCH_PENDING"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Asks the marketplace, holding the lease; stores the token, or records a rejection.
    async fn fetch_leased(&self, login: &SellerLogin, stored: &StoredCredential, owner: Uuid) -> FlightResult {
        let internal = |e: ApiError| FetchFailure::Internal(Arc::new(e));
        let ring = self.keys.ring_for(stored.secret.key_version).await.map_err(|e| internal(e.into()))?;
        let secret = open_secret(&ring, stored).map_err(internal)?;
        let fetched_at = self.now();
        let answer = ask(&self.marketplace, login, stored, &secret).await;
        match answer {
            Ok(token) => {
                let lifetime = time::Duration::try_from(token.lifetime).unwrap_or(time::Duration::hours(48));
                let times = TokenTimes { fetched_at, expires_at: fetched_at + lifetime };
                let meta = &stored.meta;
                let ring = self.keys.current();
                let seal = |slot: &cdvault_domain::token::TokenSlot| slot.seal(&ring, token.expose().as_bytes());
                let put = tokens::put(&self.db, meta.seller_id, meta.kind, owner, meta.version, times, seal).await;
                let row = match put {
                    Ok(row) => row,
                    Err(e) => return Err(internal(e.into())),
                };
                if row.is_none() {
                    tracing::warn!(seller = %login, "the token fetch lease expired; token not cached");
                }
                Ok(Arc::new(Fetched { token: Zeroizing::new(token.expose().to_owned()), times, row }))
            }
            Err(MarketplaceError::Rejected { reason }) => {
                let verification = verification_of(&Err(MarketplaceError::Rejected { reason }), self.now());
                let detail =
                    format!("kind={} version={} reason={reason}", stored.meta.kind.as_str(), stored.meta.version);
                let record = AuditRecord::new("cdvault", action::CREDENTIAL_REJECTED, Outcome::Success, "token-broker")
                    .seller(login.as_str())
                    .detail(detail);
                match credentials::record_verification(&self.db, &stored.meta, login.as_str(), &verification, record)
                    .await
                {
                    Ok(_) => self.poke_local(),
                    Err(e) => tracing::error!(error = %e, "a marketplace rejection could not be recorded"),
                }
                Err(FetchFailure::Rejected(reason))
            }
            Err(MarketplaceError::Unavailable { reason, detail }) => {
                tracing::warn!(seller = %login, reason, detail = %detail, "no token from the marketplace");
                Err(FetchFailure::Unavailable(reason))
            }
        }
    }
}

/// A credential about to be stored, to be checked first.
#[derive(Debug)]
pub(super) struct Candidate<'a> {
    pub kind: CredentialKind,
    pub client_id: Option<&'a str>,
    pub secret: &'a SecretString,
    /// The input field a rejection is reported on.
    pub field: &'static str,
}

/// The reason a stored version was rejected by the marketplace, if it was.
fn rejection(stored: &StoredCredential) -> Option<&'static str> {
    let verification = stored.meta.verification.as_ref()?;
    (verification.outcome == VerificationOutcome::Rejected).then_some("REJECTED_EARLIER")
}

fn upstream(reason: &'static str) -> ApiError {
    ApiError::Upstream { reason, message: format!("the marketplace could not be used ({reason}); try again later") }
}

impl Vault {
    /// The kind to use when a caller does not say: Octopia when the seller has it (the legacy API is being
    /// retired), else the Marketplace API.
    async fn newest_of(
        &self,
        seller: &SellerAccount,
        login: &SellerLogin,
        kind: Option<CredentialKind>,
    ) -> Result<StoredCredential, ApiError> {
        let kinds = match kind {
            Some(kind) => vec![kind],
            None => vec![CredentialKind::Octopia, CredentialKind::MarketplaceApi],
        };
        for kind in kinds {
            if let Some(stored) = credentials::latest(&self.db, seller.id, kind).await? {
                return Ok(stored);
            }
        }
        let what = kind.map_or("credential".to_owned(), |k| format!("{} credential", k.as_str()));
        Err(ApiError::NotFound(format!("{what} of seller '{login}'")))
    }

    /// The newest credential to broker a token with (from the issue cache): of `kind`, or without it Octopia when
    /// the seller has it, else the Marketplace API.
    async fn token_material(
        &self,
        caller: &Caller,
        p: &cdvault_domain::policy::Principal,
        login: &SellerLogin,
        kind: Option<CredentialKind>,
    ) -> Result<Arc<crate::cache::IssueMaterial>, ApiError> {
        let act = action::TOKEN_ISSUE;
        if let Some(kind) = kind {
            return self.issue_material(caller, p, login, kind, act).await;
        }
        match self.issue_material(caller, p, login, CredentialKind::Octopia, act).await {
            Err(ApiError::NotFound(_)) => {}
            found => return found,
        }
        match self.issue_material(caller, p, login, CredentialKind::MarketplaceApi, act).await {
            Err(ApiError::NotFound(_)) => Err(ApiError::NotFound(format!("credential of seller '{login}'"))),
            found => found,
        }
    }

    /// Checks a would-be credential before it is stored: `Ok` when the marketplace accepts it.
    pub(super) async fn verify_before_store(
        &self,
        caller: &Caller,
        subject: &str,
        login: &SellerLogin,
        candidate: Candidate<'_>,
    ) -> Result<Verification, ApiError> {
        let Candidate { kind, client_id, secret, field } = candidate;
        let client = &self.broker.marketplace.client;
        let answer = match kind {
            CredentialKind::MarketplaceApi => client.sts_token(&login.api_login(), secret).await,
            CredentialKind::Octopia => client.octopia_token(client_id.unwrap_or_default(), secret).await,
        };
        let verification = verification_of(&answer, self.broker.now());
        let failed = |reason: &str, upstream_reason: &str| {
            Self::event(caller, subject, action::CREDENTIAL_STORE, Outcome::Failed)
                .seller(login.as_str())
                .reason(reason)
                .detail(format!("kind={} marketplace={upstream_reason}", kind.as_str()))
        };
        match answer {
            Ok(_) => Ok(verification),
            Err(MarketplaceError::Rejected { reason }) => {
                self.record_best_effort(failed("MARKETPLACE_REJECTED", reason)).await;
                Err(cdvault_domain::ValidationError::new(
                    field,
                    "MARKETPLACE_REJECTED",
                    format!("Cdiscount rejected this credential ({reason}); it was not stored"),
                )
                .into())
            }
            Err(MarketplaceError::Unavailable { reason, detail }) => {
                tracing::warn!(seller = %login, reason, detail = %detail, "could not verify a credential");
                self.record_best_effort(failed("UPSTREAM_UNAVAILABLE", reason)).await;
                Err(upstream(reason))
            }
        }
    }

    /// Asks the marketplace about the newest credential of a seller and records the answer on that version.
    pub async fn verify_credential(
        &self,
        caller: &Caller,
        seller_login: &str,
        kind: Option<CredentialKind>,
    ) -> Result<VerificationReport, ApiError> {
        let act = action::CREDENTIAL_VERIFY;
        let (p, login) = self.gate(caller, act, Some(Scope::CredentialsWrite), "sellerLogin", seller_login).await?;
        let seller = self.existing_seller(&login).await?;
        let stored = self.newest_of(&seller, &login, kind).await?;
        let ring = self.keys.ring_for(stored.secret.key_version).await?;
        let secret = open_secret(&ring, &stored)?;
        let answer = ask(&self.broker.marketplace, &login, &stored, &secret).await;
        let verification = verification_of(&answer, self.broker.now());
        let meta = &stored.meta;
        let mut detail =
            format!("kind={} version={} outcome={}", meta.kind.as_str(), meta.version, verification.outcome.as_str());
        if let Some(reason) = &verification.reason {
            detail.push_str(&format!(" marketplace={reason}"));
        }
        let record = Self::event(caller, &p.subject, act, Outcome::Success).seller(login.as_str()).detail(detail);
        let recorded = credentials::record_verification(&self.db, meta, login.as_str(), &verification, record).await;
        // The cached metadata holds the version's previous answer: a VERIFIED one re-opens brokering at once.
        self.cache.forget(login.as_str());
        match recorded {
            Ok(change) => {
                if change.is_some() {
                    self.broker.poke_local();
                }
            }
            Err(StorageError::NotFound) => {
                return Err(ApiError::Conflict(format!("the credential of seller '{login}' changed; verify again")));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(VerificationReport {
            seller_login: login.as_str().to_owned(),
            kind: meta.kind,
            version: meta.version,
            verification,
        })
    }

    /// A short-lived marketplace access token for the newest credential of a seller, fetched once for everyone.
    pub async fn issue_access_token(
        &self,
        caller: &Caller,
        seller_login: &str,
        purpose: &str,
        kind: Option<CredentialKind>,
    ) -> Result<IssuedToken, ApiError> {
        let act = action::TOKEN_ISSUE;
        let (p, login) = self.gate(caller, act, Some(Scope::CredentialsRead), "sellerLogin", seller_login).await?;
        let purpose = Purpose::parse("purpose", purpose)?;
        // Another attempt only when a newer version was stored between our read and the audit commit.
        for _ in 0..3 {
            let mut material = self.token_material(caller, p, &login, kind).await?;
            if rejection(&material.stored).is_some() {
                // The cache may predate a check on another replica that lifted the rejection: ask the database.
                self.cache.forget(login.as_str());
                material = self.token_material(caller, p, &login, kind).await?;
            }
            let stored = &material.stored;
            let meta = &stored.meta;
            let base = |outcome| {
                Self::event(caller, &p.subject, act, outcome)
                    .seller(login.as_str())
                    .purpose(purpose.as_str())
                    .detail(format!("kind={} version={}", meta.kind.as_str(), meta.version))
            };
            if rejection(stored).is_some() {
                self.record_best_effort(base(Outcome::Failed).reason("MARKETPLACE_REJECTED")).await;
                return Err(ApiError::CredentialRejected(format!(
                    "Cdiscount rejected the stored {} credential of seller '{login}'; store a new one",
                    meta.kind.as_str()
                )));
            }
            let fetched = match self.broker.token(&login, stored).await {
                Ok(fetched) => fetched,
                Err(FetchFailure::Rejected(reason)) => {
                    // The cached metadata may predate the rejection.
                    self.cache.forget(login.as_str());
                    self.record_best_effort(base(Outcome::Failed).reason("MARKETPLACE_REJECTED")).await;
                    return Err(ApiError::CredentialRejected(format!(
                        "Cdiscount rejected the stored {} credential of seller '{login}' ({reason}); store a new one",
                        meta.kind.as_str()
                    )));
                }
                Err(FetchFailure::Stale) => {
                    self.cache.forget(login.as_str());
                    continue;
                }
                Err(FetchFailure::Unavailable(reason)) => {
                    self.record_best_effort(base(Outcome::Failed).reason("UPSTREAM_UNAVAILABLE")).await;
                    return Err(upstream(reason));
                }
                Err(FetchFailure::Internal(e)) => {
                    return Err(ApiError::internal("fetching an access token", SharedError(e)));
                }
            };
            let condition = IssueCondition { seller_id: material.seller_id, kind: meta.kind, version: meta.version };
            match self.audit.append_issue(base(Outcome::Success), condition).await {
                Ok(()) => {
                    return Ok(IssuedToken {
                        seller_login: login.as_str().to_owned(),
                        kind: meta.kind,
                        token: fetched.token.clone(),
                        expires_at: fetched.times.expires_at,
                        octopia_seller_id: meta.octopia_seller_id.clone(),
                        credential_version: meta.version,
                    });
                }
                Err(AppendError::SellerInactive) => {
                    self.cache.forget(login.as_str());
                    return Err(self.deny(caller, p, act, Some(login.as_str()), Denial::SellerInactive).await);
                }
                Err(AppendError::Stale) => self.cache.forget(login.as_str()),
                Err(e) => return Err(ApiError::internal("recording the token issue", e)),
            }
        }
        Err(ApiError::Conflict(format!("the credential of seller '{login}' keeps changing; try again")))
    }

    /// Credential changes the caller may see (metadata only), after the cursor `after` (the missed ones first) or,
    /// without it, from now on. Reading metadata needs only a valid token, within its sellers.
    pub async fn credential_changes(
        &self,
        caller: &Caller,
        seller_login: Option<String>,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = CredentialChange> + Send + 'static, ApiError> {
        let act = action::CREDENTIAL_CHANGES;
        let p = self.principal(caller, act).await?;
        if let Some(login) = &seller_login {
            let login = SellerLogin::parse("sellerLogin", login)?;
            if let Err(denial) = p.authorize(None, login.as_str()) {
                return Err(self.deny(caller, p, act, Some(login.as_str()), denial).await);
            }
        }
        let mut pokes = self.broker.pokes().subscribe();
        // Marked seen before the first read: a change committed after it pokes again.
        pokes.borrow_and_update();
        let cursor = match after {
            Some(after) => after,
            None => credential_changes::latest_seq(&self.db).await?,
        };
        let reach = p.sellers.clone();
        let db = self.db.clone();
        let state = (db, reach, seller_login, cursor, pokes, VecDeque::<CredentialChange>::new());
        Ok(futures::stream::unfold(state, |(db, reach, only, mut cursor, mut pokes, mut buffer)| async move {
            loop {
                if let Some(change) = buffer.pop_front() {
                    return Some((change, (db, reach, only, cursor, pokes, buffer)));
                }
                pokes.borrow_and_update();
                match credential_changes::list_after(&db, &reach, only.as_deref(), cursor, CHANGE_PAGE).await {
                    Ok(page) if !page.is_empty() => {
                        cursor = page.last().map_or(cursor, |c| c.seq);
                        buffer.extend(page);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Ending is safe: the tool reconnects with its cursor and misses nothing.
                        tracing::warn!(error = %e, "a credential change subscription could not read; ending it");
                        return None;
                    }
                }
                if pokes.changed().await.is_err() {
                    return None;
                }
            }
        }))
    }
}

/// An internal error shared by the callers of one flight.
#[derive(Debug)]
struct SharedError(Arc<ApiError>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::error::error_chain(self.0.as_ref()))
    }
}

impl std::error::Error for SharedError {}
