//! The HTTP client of webhook deliveries, and one signed attempt.

use std::sync::Arc;

use cdvault_domain::webhook::{SigningKey, signature_header};
use cdvault_storage::webhooks::outbox::Delivery;

use super::address::{AddressPolicy, AddressRefused, CheckedResolver, literal_ip};
use super::settings::WebhookSettings;

/// The HTTP client of webhook deliveries: no redirects, no proxy, a timeout, and a resolver that refuses
/// addresses the policy does not permit.
#[derive(Debug)]
pub struct WebhookSender {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

/// Why an attempt failed: a short text without the URL (its path may hold a receiver's token) or any secret.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) error: String,
    pub(super) status: Option<i32>,
}

impl WebhookSender {
    pub fn new(settings: &WebhookSettings) -> Self {
        let policy = Arc::new(settings.addresses.clone());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("cdvault-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(CheckedResolver { policy: policy.clone() }))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { client, policy }
    }

    /// One attempt: the payload, signed with every key at `timestamp`.
    pub(super) async fn send(
        &self,
        url: &str,
        delivery: &Delivery,
        keys: &[SigningKey],
        timestamp: i64,
    ) -> Result<i32, Failure> {
        let failure = |error: &str| Failure { error: error.to_owned(), status: None };
        let url = reqwest::Url::parse(url).map_err(|_| failure("the endpoint URL is invalid"))?;
        // A literal address is connected to without resolving: check it here.
        if literal_ip(&url).is_some_and(|ip| !self.policy.permits(ip)) {
            return Err(failure("address not allowed"));
        }
        let message_id = delivery.id.to_string();
        let body = delivery.payload.clone().into_bytes();
        let signature = signature_header(keys, &message_id, timestamp, &body);
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let response = sent.map_err(|e| failure(transport_error(&e)))?;
        let status = i32::from(response.status().as_u16());
        if response.status().is_success() {
            Ok(status)
        } else if response.status().is_redirection() {
            Err(Failure { error: format!("HTTP {status}: redirects are not followed"), status: Some(status) })
        } else {
            Err(Failure { error: format!("HTTP {status}"), status: Some(status) })
        }
    }
}

fn transport_error(e: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<AddressRefused>() {
            return "address not allowed";
        }
        source = err.source();
    }
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    }
}
