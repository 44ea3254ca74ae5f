//! Configuration: an optional TOML file, then `CDVAULT_*` environment variables (which win), read once at
//! start-up and validated into [`Settings`]; nothing reads the environment later. Every error names the setting
//! and never quotes a value.
//!
//! - `raw`: the one list of settings, giving the serde struct the layers fill and the reference table;
//! - `layers`: the file and environment layers, merged by figment;
//! - `settings`: `TryFrom<RawSettings> for Settings`, every cross-field rule;
//! - `twins`: a secret inline or through its `_FILE` twin;
//! - `dev_setup`: the development set-up's files, created once by `serve`;
//! - `issuers`: the TOML file's `[[jwt.issuers]]` and the maximum token lifetime;
//! - `checkpoints`: where audit checkpoints go, how often, and the replica name;
//! - `surface`: the HTTP surface (GraphiQL, introspection, rate limits, trusted proxies, WebSocket limits);
//! - `transport`: the main listener's TLS (certificate, key, reload, HSTS) and the CORS origins;
//! - `trusted_documents`: the clients' manifests, the only operations run when set;
//! - `serve`: what `serve` needs; `reference`: the generated `docs/configuration.md`.

use std::path::Path;

mod checkpoints;
mod dev_setup;
mod issuers;
mod layers;
mod logs;
mod metrics;
mod pacing;
mod raw;
mod reference;
mod serve;
mod settings;
mod surface;
mod transport;
mod trusted_documents;
mod twins;
mod webhooks;
mod written;

pub use checkpoints::CHECKPOINT_FILE;
pub use dev_setup::{Needed as DevelopmentFiles, create_data_dir};
pub use layers::merge;
pub use raw::{CONFIG_FILE, RawSettings, SETTINGS, Setting, Text};
pub use reference::markdown as reference_markdown;
pub use serve::ServeConfig;
pub use settings::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEV_AUDIENCE, DEV_ISSUER, DEV_MARKETPLACE_URL, SetUp, Settings};

/// A setting is missing or invalid. The message names it, never its value.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn err(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

impl Settings {
    /// Reads the optional TOML file and the process environment (the one place that does), then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::validate(layers::load(file)?, layers::host_name().as_deref())
    }
}

#[cfg(test)]
mod tests;
