//! The token broker: marketplace access tokens fetched once for everyone and kept sealed.
//!
//! Its API is [`TokenBroker::token`] (a token for the newest credential version, or why there is none) and the
//! credential change pokes; everything else is private. Token fetches are single-flight at two levels. In a process,
//! callers wanting a token for the same seller, kind and credential version share one fetch (a spawned task, so a
//! caller that goes away does not cancel it for the others). Between replicas, the fetching task takes a lease on
//! the token row; a replica that finds the lease taken polls the row until the holder stores its token, holding no
//! connection in between. Sealed token rows read or stored here are kept in memory, and a token in its refresh window
//! is served while its successor is fetched in the background.

use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdvault_cdiscount::MarketplaceError;
use cdvault_domain::Reason;
use cdvault_domain::audit::{AuditAction, AuditRecord, Outcome};
use cdvault_domain::credential::{CredentialKind, StoredCredential};
use cdvault_domain::seller::SellerLogin;
use cdvault_domain::token::{Freshness, TokenTimes};
use cdvault_storage::keyring::KeyringHandle;
use cdvault_storage::tokens::{self, CachedToken};
use cdvault_storage::{Database, StorageError, credentials};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::credential_secret::open_secret;
use super::marketplace::{Marketplace, ask, rejection, verification_of};
use crate::error::ApiError;
/// How long a fetch lease lasts: longer than a whole fetch with its retries, short enough that a crashed
/// fetcher's successor does not wait long.
const LEASE: time::Duration = time::Duration::seconds(30);
/// How often a replica waiting for another one's fetch reads the token row.
const POLL: Duration = Duration::from_millis(50);
/// The longest a caller waits for a token fetched elsewhere.
const WAIT_LIMIT: Duration = Duration::from_secs(40);

/// A fetched token, shared by every caller of one flight.
pub(super) struct Fetched {
    pub token: Zeroizing<String>,
    pub times: TokenTimes,
    /// Its sealed row, for this replica's memory (none when the lease was lost and it was not stored).
    row: Option<CachedToken>,
}

/// Sealed token rows last read or stored by this replica, so a served token costs no database read. Dropped whole
/// whenever any credential change is committed (by any replica: the pokes), so a new or rejected version is never
/// answered from here; the audit condition catches the short window before the poke arrives.
#[derive(Default)]
struct LocalTokens {
    generation: u64,
    rows: HashMap<(Uuid, CredentialKind), CachedToken>,
}

/// Rows kept in [`LocalTokens`] before it starts over.
const LOCAL_TOKENS: usize = 200_000;

/// Why a flight gave no token (cloneable: every caller of the flight gets it).
#[derive(Debug, Clone)]
pub(super) enum FetchFailure {
    Rejected(&'static str),
    /// A newer credential version was stored: read it and try again.
    Stale,
    Unavailable(&'static str),
    Internal(Arc<ApiError>),
}

type FlightResult = Result<Arc<Fetched>, FetchFailure>;

/// The credential version a flight fetches a token for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlightKey {
    seller_id: Uuid,
    kind: CredentialKind,
    version: i32,
}

/// Everything a fetch needs, owned, so that it can run as a task of its own.
pub(super) struct TokenBroker {
    db: Database,
    keys: Arc<KeyringHandle>,
    marketplace: Marketplace,
    flights: Mutex<HashMap<FlightKey, Shared<BoxFuture<'static, FlightResult>>>>,
    local: Mutex<LocalTokens>,
    /// Bumped for every committed credential change (locally on SQLite, by LISTEN on PostgreSQL).
    pokes: watch::Sender<u64>,
}

impl std::fmt::Debug for TokenBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBroker").field("marketplace", &self.marketplace).finish_non_exhaustive()
    }
}

impl TokenBroker {
    pub(super) fn new(db: Database, keys: Arc<KeyringHandle>, marketplace: Marketplace) -> Self {
        let (pokes, _) = watch::channel(0);
        Self { db, keys, marketplace, flights: Mutex::new(HashMap::new()), local: Mutex::default(), pokes }
    }

    fn now(&self) -> OffsetDateTime {
        self.marketplace.clock.now()
    }

    /// Tells local subscribers that a change was committed. On PostgreSQL the LISTEN task does it for every change
    /// of every replica, this one included.
    pub(super) fn poke_local(&self) {
        if !self.db.is_postgres() {
            self.pokes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Bumped for every committed credential change (locally on SQLite, by LISTEN on PostgreSQL).
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
    pub(super) async fn token(
        self: &Arc<Self>,
        login: &SellerLogin,
        stored: &StoredCredential,
    ) -> Result<Arc<Fetched>, FetchFailure> {
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
            crate::metrics::token_cache(true);
            refresh_if_due(&row);
            return Ok(fetched);
        }
        // Not in memory, or sealed under a version since retired (the database row was rewrapped): read it.
        let state =
            tokens::read(&self.db, seller_id, kind).await.map_err(|e| FetchFailure::Internal(Arc::new(e.into())))?;
        if let Some(row) = state.and_then(|s| s.token).filter(servable) {
            self.keep_local(&row);
            let fetched = self.open_token(&row).await?;
            crate::metrics::token_cache(true);
            refresh_if_due(&row);
            return Ok(fetched);
        }
        crate::metrics::token_cache(false);
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
        let key = FlightKey { seller_id: stored.meta.seller_id, kind: stored.meta.kind, version: stored.meta.version };
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
                return Err(FetchFailure::Unavailable(Reason::TokenFetchPending.as_str()));
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
                let details = json!({
                    "kind": stored.meta.kind.as_str(),
                    "version": stored.meta.version,
                    "marketplace": reason.to_string(),
                });
                let record =
                    AuditRecord::new("cdvault", AuditAction::CredentialRejected, Outcome::Success, "token-broker")
                        .seller(login.as_str())
                        .details(details);
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
