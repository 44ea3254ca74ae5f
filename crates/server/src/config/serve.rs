//! What `serve` needs, validated, and the one call that creates the development set-up's files.

use std::net::SocketAddr;

use cdvault_api::auth::JwtSettings;
use cdvault_domain::crypto::RootKey;

use super::ConfigError;
use super::dev_setup;
use super::settings::Settings;

/// Everything `serve` needs, validated.
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub dev: bool,
    pub root_key: RootKey,
    pub jwt: JwtSettings,
    /// Where the marketplace's token services are.
    pub marketplace: cdvault_cdiscount::Endpoints,
    /// What the token broker takes "now" from (tests move it forward instead of sleeping).
    pub clock: std::sync::Arc<dyn cdvault_domain::clock::Clock>,
    /// How the rewrap worker paces itself.
    pub rewrap: cdvault_api::service::RewrapSettings,
    /// Where audit checkpoints go, how often, and the replica name they are signed with.
    pub checkpoints: cdvault_api::service::CheckpointSettings,
    /// Where the audit stream goes, if anywhere (`CDVAULT_AUDIT_STREAM`).
    pub audit_stream: Option<cdvault_api::service::AuditStreamSettings>,
    /// How often grants, revocations and the freeze are read again (`CDVAULT_ACCESS_POLL_MS`).
    pub access_poll: std::time::Duration,
    /// The HTTP surface: GraphiQL, introspection, rate limits and trusted proxies, WebSocket limits.
    pub http: cdvault_api::http::HttpOptions,
    /// How long the change feeds keep a change (`CDVAULT_CHANGE_FEED_RETENTION`).
    pub change_feed_retention: std::time::Duration,
    /// Sellers per credential kind in the issue cache (`CDVAULT_ISSUE_CACHE_SELLERS`).
    pub issue_cache_sellers: u64,
    /// Where webhooks may go, and how they are retried (`CDVAULT_WEBHOOK_*`).
    pub webhooks: cdvault_api::service::WebhookSettings,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("listen", &self.listen)
            .field("dev", &self.dev)
            .field("jwt", &self.jwt)
            .field("marketplace", &self.marketplace)
            .field("rewrap", &self.rewrap)
            .field("checkpoints", &self.checkpoints)
            .field("audit_stream", &self.audit_stream)
            .field("http", &self.http)
            .field("change_feed_retention", &self.change_feed_retention)
            .field("issue_cache_sellers", &self.issue_cache_sellers)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

impl ServeConfig {
    /// Checks that production has what it requires, then (development set-up) creates the missing local secrets:
    /// every setting was validated when `settings` was made, so a bad one never leaves new files behind.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        if settings.has_env_issuer() {
            settings.jwt_issuer()?;
            settings.jwt_audience()?;
        }
        if !settings.is_dev() {
            settings.jwt()?;
            settings.root_key()?;
        }
        if let Some(needed) = settings.development_files() {
            dev_setup::prepare(needed)?;
        }
        Ok(Self {
            listen: settings.listen,
            database_url: settings.database_url(),
            dev: settings.is_dev(),
            jwt: settings.jwt()?,
            root_key: settings.root_key()?,
            marketplace: settings.marketplace.clone(),
            clock: std::sync::Arc::new(cdvault_domain::clock::SystemClock),
            rewrap: settings.rewrap,
            checkpoints: settings.checkpoints.clone(),
            audit_stream: settings.audit_stream.clone(),
            access_poll: settings.access_poll,
            http: settings.http.clone(),
            change_feed_retention: settings.change_feed_retention,
            issue_cache_sellers: settings.issue_cache_sellers,
            webhooks: settings.webhooks.clone(),
        })
    }
}
