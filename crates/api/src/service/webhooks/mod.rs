//! Webhooks (Standard Webhooks format) for tools that cannot hold a WebSocket: registering endpoints, their
//! secrets and dead letters (`webhooks:admin`, one's own endpoints only), and the delivery of the outbox
//! (`delivery`). Endpoints must be `https` and public unless configured otherwise (`address`).

pub mod address;
mod delivery;
mod owner;
pub(super) mod sender;
pub(super) mod settings;

use std::sync::Arc;
use std::time::Duration;

use cdvault_domain::audit::{AuditAction, Outcome};
use cdvault_domain::policy::{Denial, Principal, Scope};
use cdvault_domain::seller::SellerLogin;
use cdvault_domain::text::DisplayName;
use cdvault_domain::webhook::{SigningKey, WebhookEventType};
use cdvault_domain::{Reason, ValidationError};
use cdvault_storage::StorageError;
use cdvault_storage::webhooks::outbox::{self, Delivery, DeliveryStatus};
use cdvault_storage::webhooks::{self, Endpoint};
use secrecy::SecretString;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

pub use self::address::AddressPolicy;
use self::owner::{OwnerClaims, may_receive};
pub use self::sender::WebhookSender;
pub use self::settings::WebhookSettings;
use super::authorize::Caller;
use super::vault::Vault;
use crate::error::ApiError;

/// Endpoints one owner may have.
pub const MAX_ENDPOINTS_PER_OWNER: usize = 25;
/// The longest overlap of an old secret after a rotation.
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most dead letters listed at once.
pub const MAX_PAGE: u64 = 500;

/// An endpoint to register, as given.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<WebhookEventType>,
    /// `None`: every seller the owner reaches at each delivery.
    pub seller_logins: Option<Vec<String>>,
}

/// An endpoint with how its deliveries stand.
#[derive(Debug, Clone)]
pub struct EndpointView {
    pub endpoint: Endpoint,
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
    pub dropped: i64,
}

/// A secret shown once, with the endpoint it signs for.
#[derive(Debug)]
pub struct EndpointSecret {
    pub endpoint: EndpointView,
    /// `whsec_...`: shown once, never stored in the clear.
    pub secret: SecretString,
    /// After a rotation: until when the previous secret still signs.
    pub previous_secret_expires_at: Option<OffsetDateTime>,
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| ValidationError::new("id", Reason::InvalidId, "not an endpoint id (a UUID)").into())
}

impl Vault {
    /// This vault, delivering webhooks by `settings`.
    pub fn with_webhooks(mut self, settings: WebhookSettings) -> Self {
        self.webhook_sender = Arc::new(WebhookSender::new(&settings));
        self.webhooks = settings;
        self
    }

    fn now(&self) -> OffsetDateTime {
        self.marketplace.clock.now()
    }

    /// Registers an endpoint owned by the caller's identity (`webhooks:admin`); returns it with its secret, shown
    /// this once. Each seller named must be within the caller's reach; payout events need `kyc:submit` or
    /// `kyc:review` too.
    pub async fn create_webhook_endpoint(&self, caller: &Caller, new: NewEndpoint) -> Result<EndpointSecret, ApiError> {
        let act = AuditAction::WebhookCreate;
        let p = self.authorize_scope(caller, act, Scope::WebhooksAdmin).await?;
        let identity = caller.identity.as_ref().ok_or_else(|| ApiError::Unauthenticated("no identity".into()))?;
        let url = self.webhooks.addresses.check_url(&new.url)?;
        let description = new.description.as_deref().map(|d| DisplayName::parse("description", d)).transpose()?;
        if new.event_types.is_empty() {
            return Err(ValidationError::new("eventTypes", Reason::Empty, "give at least one event type").into());
        }
        for &event in &new.event_types {
            if !may_receive(p, event) {
                return Err(self.record_denial(caller, p, act, None, Denial::MissingScope(Scope::KycReview)).await);
            }
        }
        let seller_logins = match new.seller_logins {
            None => None,
            Some(raw) => Some(self.logins_within_reach(caller, p, act, &raw).await?),
        };
        let owned = webhooks::list_owned(&self.db, &p.issuer, &p.subject).await?;
        if owned.len() >= MAX_ENDPOINTS_PER_OWNER {
            return Err(ApiError::Conflict(format!(
                "an identity may have at most {MAX_ENDPOINTS_PER_OWNER} webhook endpoints: delete one first"
            )));
        }
        let claims = serde_json::to_string(&OwnerClaims::of(identity))
            .map_err(|e| ApiError::internal("encoding a webhook owner", e))?;
        let endpoint = Endpoint {
            id: Uuid::now_v7(),
            url: url.to_string(),
            description: description.map(|d| d.as_str().to_owned()),
            event_types: new.event_types,
            seller_logins,
            owner_issuer: p.issuer.clone(),
            owner_subject: p.subject.clone(),
            owner_claims: claims,
            created_at: self.now(),
        };
        let key = SigningKey::generate();
        let event = self.webhook_event(caller, p, act, &endpoint);
        let mut ring = self.keys.current();
        let mut created = webhooks::create(&self.db, &ring, &endpoint, &key, event.clone()).await;
        if let Err(StorageError::KeyNotActive(_)) = created {
            // A rotation elsewhere: seal under the new active version.
            ring = self.keys.reload().await?;
            created = webhooks::create(&self.db, &ring, &endpoint, &key, event).await;
        }
        created?;
        let view = EndpointView { endpoint, pending: 0, delivered: 0, dead: 0, dropped: 0 };
        Ok(EndpointSecret { endpoint: view, secret: key.to_whsec(), previous_secret_expires_at: None })
    }

    /// The well-formed logins of `raw`, each within the caller's reach (a refusal is audited).
    async fn logins_within_reach(
        &self,
        caller: &Caller,
        p: &Principal,
        act: AuditAction,
        raw: &[String],
    ) -> Result<Vec<String>, ApiError> {
        if raw.is_empty() {
            return Err(ValidationError::new("sellerLogins", Reason::Empty, "give at least one seller, or none").into());
        }
        let mut logins = Vec::new();
        for text in raw {
            let login = SellerLogin::parse("sellerLogins", text)?;
            if let Err(denial) = p.authorize(None, login.as_str()) {
                return Err(self.record_denial(caller, p, act, Some(login.as_str()), denial).await);
            }
            if !logins.iter().any(|l| l == login.as_str()) {
                logins.push(login.as_str().to_owned());
            }
        }
        Ok(logins)
    }

    fn webhook_event(
        &self,
        caller: &Caller,
        p: &Principal,
        act: AuditAction,
        endpoint: &Endpoint,
    ) -> cdvault_domain::audit::AuditRecord {
        // The origin only: a path may hold a receiver's own token.
        let origin = reqwest::Url::parse(&endpoint.url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let types: Vec<&str> = endpoint.event_types.iter().map(|t| t.as_str()).collect();
        let details = json!({ "endpointId": endpoint.id.to_string(), "origin": origin, "eventTypes": types });
        caller.audit_record(&p.subject, act, Outcome::Success).details(details)
    }

    /// The caller's endpoint `id`, or `NOT_FOUND` (another identity's endpoint is not shown to exist).
    async fn own_endpoint(&self, p: &Principal, id: &str) -> Result<Endpoint, ApiError> {
        let id = parse_id(id)?;
        match webhooks::get(&self.db, id).await? {
            Some(e) if e.owner_issuer == p.issuer && e.owner_subject == p.subject => Ok(e),
            _ => Err(ApiError::NotFound(format!("webhook endpoint '{id}'"))),
        }
    }

    async fn view(&self, endpoint: Endpoint) -> Result<EndpointView, ApiError> {
        let mut view = EndpointView { endpoint, pending: 0, delivered: 0, dead: 0, dropped: 0 };
        for (status, n) in outbox::counts(&self.db, view.endpoint.id).await? {
            match status {
                DeliveryStatus::Pending => view.pending = n,
                DeliveryStatus::Delivered => view.delivered = n,
                DeliveryStatus::Dead => view.dead = n,
                DeliveryStatus::Dropped => view.dropped = n,
            }
        }
        Ok(view)
    }

    /// The caller's endpoints (`webhooks:admin`), oldest first.
    pub async fn webhook_endpoints(&self, caller: &Caller) -> Result<Vec<EndpointView>, ApiError> {
        let p = self.authorize_scope(caller, AuditAction::WebhookRead, Scope::WebhooksAdmin).await?;
        let mut out = Vec::new();
        for endpoint in webhooks::list_owned(&self.db, &p.issuer, &p.subject).await? {
            out.push(self.view(endpoint).await?);
        }
        Ok(out)
    }

    /// Gives the caller's endpoint a new secret, shown this once; the old one keeps signing for `overlap` (both
    /// signatures are sent meanwhile), so receivers can switch without losing a delivery.
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        id: &str,
        overlap: Duration,
    ) -> Result<EndpointSecret, ApiError> {
        let act = AuditAction::WebhookRotateSecret;
        let p = self.authorize_scope(caller, act, Scope::WebhooksAdmin).await?;
        if overlap > MAX_OVERLAP {
            let message = format!("at most {} seconds", MAX_OVERLAP.as_secs());
            return Err(ValidationError::new("overlapSeconds", Reason::OutOfRange, message).into());
        }
        let endpoint = self.own_endpoint(p, id).await?;
        let key = SigningKey::generate();
        let now = self.now();
        let until = now + overlap;
        let event = self.webhook_event(caller, p, act, &endpoint);
        let mut ring = self.keys.current();
        let mut rotated = webhooks::rotate_secret(&self.db, &ring, endpoint.id, &key, until, now, event.clone()).await;
        if let Err(StorageError::KeyNotActive(_)) = rotated {
            ring = self.keys.reload().await?;
            rotated = webhooks::rotate_secret(&self.db, &ring, endpoint.id, &key, until, now, event).await;
        }
        rotated?;
        let view = self.view(endpoint).await?;
        Ok(EndpointSecret { endpoint: view, secret: key.to_whsec(), previous_secret_expires_at: Some(until) })
    }

    /// Removes the caller's endpoint, its secrets and its deliveries (pending ones are never sent).
    pub async fn delete_webhook_endpoint(&self, caller: &Caller, id: &str) -> Result<Uuid, ApiError> {
        let act = AuditAction::WebhookDelete;
        let p = self.authorize_scope(caller, act, Scope::WebhooksAdmin).await?;
        let endpoint = self.own_endpoint(p, id).await?;
        let event = self.webhook_event(caller, p, act, &endpoint);
        webhooks::delete(&self.db, endpoint.id, event).await?;
        Ok(endpoint.id)
    }

    /// The dead letters of the caller's endpoint, oldest first, after the `seq` cursor `after`.
    pub async fn webhook_dead_letters(
        &self,
        caller: &Caller,
        id: &str,
        first: u64,
        after: i64,
    ) -> Result<Vec<Delivery>, ApiError> {
        let p = self.authorize_scope(caller, AuditAction::WebhookRead, Scope::WebhooksAdmin).await?;
        if !(1..=MAX_PAGE).contains(&first) {
            let message = format!("between 1 and {MAX_PAGE}");
            return Err(ValidationError::new("first", Reason::OutOfRange, message).into());
        }
        let endpoint = self.own_endpoint(p, id).await?;
        Ok(outbox::list(&self.db, endpoint.id, DeliveryStatus::Dead, after, first).await?)
    }

    /// Queues the dead letters of the caller's endpoint again (all, or those of `only`), from a first attempt now;
    /// returns how many.
    pub async fn replay_webhook_deliveries(
        &self,
        caller: &Caller,
        id: &str,
        only: Option<Vec<String>>,
    ) -> Result<u64, ApiError> {
        let act = AuditAction::WebhookReplay;
        let p = self.authorize_scope(caller, act, Scope::WebhooksAdmin).await?;
        let endpoint = self.own_endpoint(p, id).await?;
        let only = only
            .map(|ids| {
                ids.iter()
                    .map(|raw| {
                        Uuid::parse_str(raw.trim())
                            .map_err(|_| ValidationError::new("ids", Reason::InvalidId, "not a delivery id (a UUID)"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let event = self.webhook_event(caller, p, act, &endpoint);
        let queued = outbox::replay(&self.db, endpoint.id, only.as_deref(), self.now(), event).await?;
        self.webhook_wake.notify_one();
        Ok(queued)
    }
}
