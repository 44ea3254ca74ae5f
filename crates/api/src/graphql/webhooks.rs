//! Webhook endpoints (Standard Webhooks): registered, rotated and removed by their owner with `webhooks:admin`,
//! with their dead letters (docs/webhooks.md).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use cdvault_domain::webhook::WebhookEventType;
use cdvault_storage::webhooks::outbox::{Delivery, DeliveryStatus};
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use super::context::{IntoGraphql, request};
use crate::service::{EndpointSecret, EndpointView, NewEndpoint};

/// What a webhook endpoint can be told about.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "WebhookEventType")]
pub enum WebhookEventTypeGql {
    /// A seller's credential was stored, restored or changed (payload `type` `credential.changed`): fetch the new
    /// version. Any identity within the seller's reach may receive it.
    CredentialChanged,
    /// A payout change request was submitted or moved in its review (payload `type` `payout_change.updated`),
    /// without its bank details. Needs `kyc:submit` or `kyc:review`.
    PayoutChangeUpdated,
}

impl From<WebhookEventTypeGql> for WebhookEventType {
    fn from(event: WebhookEventTypeGql) -> Self {
        match event {
            WebhookEventTypeGql::CredentialChanged => Self::CredentialChanged,
            WebhookEventTypeGql::PayoutChangeUpdated => Self::PayoutChangeUpdated,
        }
    }
}

impl From<WebhookEventType> for WebhookEventTypeGql {
    fn from(event: WebhookEventType) -> Self {
        match event {
            WebhookEventType::CredentialChanged => Self::CredentialChanged,
            WebhookEventType::PayoutChangeUpdated => Self::PayoutChangeUpdated,
        }
    }
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "WebhookDeliveryStatus")]
pub enum WebhookDeliveryStatusGql {
    /// Waiting for its first attempt or its next retry.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up after the last attempt: a dead letter, until replayed.
    Dead,
    /// Not sent: the owner no longer had access to the seller or the event when it was due.
    Dropped,
}

impl From<DeliveryStatus> for WebhookDeliveryStatusGql {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Delivered => Self::Delivered,
            DeliveryStatus::Dead => Self::Dead,
            DeliveryStatus::Dropped => Self::Dropped,
        }
    }
}

/// A registered webhook endpoint.
pub struct WebhookEndpointGql(pub EndpointView);

/// A registered webhook endpoint: where events go, which ones, and how its deliveries stand.
#[Object(name = "WebhookEndpoint")]
impl WebhookEndpointGql {
    /// Opaque id of the endpoint (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.endpoint.id.to_string())
    }

    /// The URL events are POSTed to.
    async fn url(&self) -> &str {
        &self.0.endpoint.url
    }

    /// What the owner said the endpoint is for.
    async fn description(&self) -> Option<&str> {
        self.0.endpoint.description.as_deref()
    }

    /// The events it is told about.
    async fn event_types(&self) -> Vec<WebhookEventTypeGql> {
        self.0.endpoint.event_types.iter().map(|&t| t.into()).collect()
    }

    /// The sellers it is told about; `null`: every seller its owner reaches when an event is delivered.
    async fn seller_logins(&self) -> Option<&[String]> {
        self.0.endpoint.seller_logins.as_deref()
    }

    /// When it was registered.
    async fn created_at(&self) -> OffsetDateTime {
        self.0.endpoint.created_at
    }

    /// Deliveries waiting for their first attempt or a retry.
    async fn pending_deliveries(&self) -> i64 {
        self.0.pending
    }

    /// Deliveries the endpoint acknowledged (kept 7 days).
    async fn delivered_deliveries(&self) -> i64 {
        self.0.delivered
    }

    /// Dead letters: deliveries given up after their last attempt (`webhookDeadLetters`, `replayWebhookDeliveries`).
    async fn dead_letters(&self) -> i64 {
        self.0.dead
    }

    /// Deliveries not sent because the owner had lost access to their seller or event (kept 7 days).
    async fn dropped_deliveries(&self) -> i64 {
        self.0.dropped
    }
}

/// A webhook endpoint with a signing secret, shown this once.
pub struct WebhookEndpointSecretGql(pub EndpointSecret);

/// A webhook endpoint with its new signing secret, shown this once: keep it where the receiver verifies signatures.
#[Object(name = "WebhookEndpointSecret")]
impl WebhookEndpointSecretGql {
    /// The endpoint.
    async fn endpoint(&self) -> WebhookEndpointGql {
        WebhookEndpointGql(self.0.endpoint.clone())
    }

    /// The signing secret, `whsec_` and base64 (Standard Webhooks). Never shown again; rotate it to get a new one.
    async fn secret(&self) -> &str {
        self.0.secret.expose_secret()
    }

    /// After a rotation: until when deliveries also carry a signature made with the previous secret.
    async fn previous_secret_expires_at(&self) -> Option<OffsetDateTime> {
        self.0.previous_secret_expires_at
    }
}

/// One delivery of one event to one endpoint.
pub struct WebhookDeliveryGql(pub Delivery);

/// One delivery of one event to one endpoint (the same `webhook-id` on every attempt).
#[Object(name = "WebhookDelivery")]
impl WebhookDeliveryGql {
    /// The `webhook-id` header: the same on every attempt, so a receiver drops a repeat.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The event's type.
    async fn event_type(&self) -> WebhookEventTypeGql {
        self.0.event_type.into()
    }

    /// The seller the event is about.
    async fn seller_login(&self) -> &str {
        &self.0.seller_login
    }

    /// Where it stands.
    async fn status(&self) -> WebhookDeliveryStatusGql {
        self.0.status.into()
    }

    /// Attempts made.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    /// Why the last attempt failed (an HTTP status or a transport failure), or why it was dropped.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// The HTTP status of the last answer, if one came.
    async fn last_status_code(&self) -> Option<i32> {
        self.0.last_status
    }

    /// The JSON body sent (no secret, no bank detail).
    async fn payload(&self) -> &str {
        &self.0.payload
    }

    /// When the event was queued (with the change, in its transaction).
    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }

    /// When the endpoint acknowledged it.
    async fn delivered_at(&self) -> Option<OffsetDateTime> {
        self.0.delivered_at
    }

    /// Opaque cursor of this delivery in the endpoint's order (for `after`).
    async fn cursor(&self) -> String {
        self.0.seq.to_string()
    }
}

/// A new webhook endpoint.
#[derive(InputObject)]
#[graphql(name = "CreateWebhookEndpointInput")]
pub struct CreateWebhookEndpointInputGql {
    /// Where to POST events: `https://...` (plain `http` and non-public addresses only where the server allows
    /// them), no user info, at most 2,048 characters.
    pub url: String,
    /// What the endpoint is for (at most 200 characters).
    pub description: Option<String>,
    /// The events to send (at least one).
    pub event_types: Vec<WebhookEventTypeGql>,
    /// Only events of these sellers, each within the caller's reach; omitted: every seller the owner reaches at
    /// each delivery.
    pub seller_logins: Option<Vec<String>>,
}

/// How many dead letters were queued again.
#[derive(SimpleObject, Debug)]
#[graphql(name = "WebhookReplay")]
pub struct WebhookReplayGql {
    /// Deliveries queued for a new first attempt, in their original order.
    pub queued: i64,
}

/// The reads of webhook endpoints.
#[derive(Debug, Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// The caller's own webhook endpoints, oldest first. Needs `webhooks:admin`.
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WebhookEndpointGql>> {
        let (vault, caller) = request(ctx)?;
        Ok(vault.webhook_endpoints(caller).await.gql(caller)?.into_iter().map(WebhookEndpointGql).collect())
    }

    /// The dead letters of one of the caller's endpoints, oldest first. Needs `webhooks:admin`; another identity's
    /// endpoint is `NOT_FOUND`.
    async fn webhook_dead_letters(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] endpoint_id: ID,
        #[graphql(desc = "How many, 1 to 500.", default = 100)] first: i32,
        #[graphql(desc = "The `cursor` of the last dead letter already read.")] after: Option<String>,
    ) -> async_graphql::Result<Vec<WebhookDeliveryGql>> {
        let (vault, caller) = request(ctx)?;
        let after = match after.as_deref().map(str::parse::<i64>) {
            None => 0,
            Some(Ok(seq)) if seq >= 0 => seq,
            Some(_) => {
                let e = cdvault_domain::ValidationError::new(
                    "after",
                    cdvault_domain::Reason::InvalidCursor,
                    "not a cursor of this list",
                );
                return Err(crate::error::ApiError::from(e)).gql(caller);
            }
        };
        let first = u64::try_from(first).unwrap_or(0);
        let letters = vault.webhook_dead_letters(caller, &endpoint_id, first, after).await.gql(caller)?;
        Ok(letters.into_iter().map(WebhookDeliveryGql).collect())
    }
}

/// The writes of webhook endpoints.
#[derive(Debug, Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Registers a webhook endpoint owned by the caller's identity and returns it with its signing secret, shown
    /// this once. Needs `webhooks:admin`. Events are delivered at least once, in order, signed per Standard
    /// Webhooks; the owner's access to each event's seller is checked again at every delivery. An invalid URL is
    /// `BAD_USER_INPUT` (field `url`, reason `INVALID_URL`, `NOT_HTTPS` or `ADDRESS_NOT_ALLOWED`); more than 25
    /// endpoints is `CONFLICT`.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Where and what to send.")] input: CreateWebhookEndpointInputGql,
    ) -> async_graphql::Result<WebhookEndpointSecretGql> {
        let (vault, caller) = request(ctx)?;
        let new = NewEndpoint {
            url: input.url,
            description: input.description,
            event_types: input.event_types.into_iter().map(Into::into).collect(),
            seller_logins: input.seller_logins,
        };
        vault.create_webhook_endpoint(caller, new).await.map(WebhookEndpointSecretGql).gql(caller)
    }

    /// Gives one of the caller's endpoints a new signing secret, shown this once. For `overlapSeconds` (default a
    /// day, at most 7 days) every delivery carries two signatures, one per secret, so the receiver can switch
    /// without losing one. Needs `webhooks:admin`.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
        #[graphql(desc = "How long the previous secret keeps signing, in seconds (0 to 604,800).", default = 86400)]
        overlap_seconds: i32,
    ) -> async_graphql::Result<WebhookEndpointSecretGql> {
        let (vault, caller) = request(ctx)?;
        let Ok(overlap) = u64::try_from(overlap_seconds) else {
            let e = cdvault_domain::ValidationError::new(
                "overlapSeconds",
                cdvault_domain::Reason::OutOfRange,
                "not negative",
            );
            return Err(crate::error::ApiError::from(e)).gql(caller);
        };
        let overlap = std::time::Duration::from_secs(overlap);
        vault.rotate_webhook_secret(caller, &id, overlap).await.map(WebhookEndpointSecretGql).gql(caller)
    }

    /// Removes one of the caller's endpoints with its secrets and undelivered events; returns its id. Needs
    /// `webhooks:admin`.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let (vault, caller) = request(ctx)?;
        vault.delete_webhook_endpoint(caller, &id).await.map(|id| ID(id.to_string())).gql(caller)
    }

    /// Queues dead letters of one of the caller's endpoints again, for a new first attempt now (all of them, or
    /// those of `ids`). Needs `webhooks:admin`.
    async fn replay_webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] endpoint_id: ID,
        #[graphql(desc = "Only these dead letters (their `id`); omitted: every one.")] ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<WebhookReplayGql> {
        let (vault, caller) = request(ctx)?;
        let ids = ids.map(|ids| ids.into_iter().map(|id| id.0).collect());
        let queued = vault.replay_webhook_deliveries(caller, &endpoint_id, ids).await.gql(caller)?;
        Ok(WebhookReplayGql { queued: i64::try_from(queued).unwrap_or(i64::MAX) })
    }
}
