//! How webhooks are delivered, as the configuration gives it (kept apart from the use cases, which the vault holds).

use std::time::Duration;

use cdvault_domain::webhook::RetrySchedule;

use super::address::AddressPolicy;

/// How webhooks are delivered (`CDVAULT_WEBHOOK_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Which endpoints may be registered and connected to.
    pub addresses: AddressPolicy,
    /// When a failed delivery is tried again, and when it becomes a dead letter.
    pub retry: RetrySchedule,
    /// How long one attempt may take, connection included.
    pub timeout: Duration,
    /// How often each replica looks for due deliveries when nothing woke it (changes wake it at once).
    pub poll: Duration,
    /// How long a replica holds an endpoint without renewing (longer than `timeout`): past it, after a crash,
    /// another replica takes the endpoint over.
    pub lease: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            addresses: AddressPolicy::default(),
            retry: RetrySchedule::default(),
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(30),
        }
    }
}
