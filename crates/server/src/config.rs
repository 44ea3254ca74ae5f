//! Configuration: an optional TOML file, then `CDVAULT_*` environment variables (which win). Read and validated
//! once at start-up; nothing reads the environment later. Every error names the setting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use cdvault_api::auth::{JwtKey, JwtSettings, MIN_HS256_SECRET_LEN};
use cdvault_domain::crypto::RootKey;
use jsonwebtoken::Algorithm;
use rand::RngCore;
use secrecy::SecretBox;
use zeroize::Zeroizing;

mod dev_files;
use dev_files::{create_private_dir, read_or_create};

/// Settings names (also the TOML keys, lower-cased without the prefix).
const KNOWN: &[&str] = &[
    "CDVAULT_LISTEN",
    "CDVAULT_DATABASE_URL",
    "CDVAULT_DATA_DIR",
    "CDVAULT_ROOT_KEY",
    "CDVAULT_ROOT_KEY_FILE",
    "CDVAULT_JWT_HS256_SECRET",
    "CDVAULT_JWT_HS256_SECRET_FILE",
    "CDVAULT_JWT_PUBLIC_KEY_FILE",
    "CDVAULT_JWT_ALGORITHM",
    "CDVAULT_JWT_ISSUER",
    "CDVAULT_JWT_AUDIENCE",
    "CDVAULT_LOG",
    "CDVAULT_CDISCOUNT_STS_URL",
    "CDVAULT_OCTOPIA_AUTH_URL",
    "CDVAULT_REWRAP_BATCH_SIZE",
    "CDVAULT_REWRAP_BATCH_PAUSE_MS",
    "CDVAULT_JOB_LEASE_TTL",
];

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./cdvault-data";
pub const DEV_ISSUER: &str = "cdvault-dev";
pub const DEV_AUDIENCE: &str = "cdvault";
/// Where the development set-up looks for the marketplace: the fake one (`cdvault-fake-marketplace`), never the
/// real Cdiscount hosts.
pub const DEV_MARKETPLACE_URL: &str = "http://127.0.0.1:8089";
const ROOT_KEY_FILE: &str = "root.key";
const JWT_SECRET_FILE: &str = "jwt-hs256.secret";

/// A setting is missing or invalid. The message names it.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn err(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

/// The raw settings: file values overridden by the environment.
#[derive(Clone, Default)]
pub struct Settings {
    values: HashMap<String, String>,
}

/// Names only: values may be secrets (an inline root key, a database URL with its password).
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.values.keys().collect();
        names.sort();
        f.debug_struct("Settings").field("set", &names).finish()
    }
}

impl Settings {
    /// Reads the optional TOML file, then the process environment.
    pub fn from_env_and_file(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut settings = match file {
            Some(path) => Self::from_toml_file(path)?,
            None => Self::default(),
        };
        for name in KNOWN {
            if let Ok(value) = std::env::var(name) {
                settings.values.insert((*name).to_owned(), value);
            }
        }
        Ok(settings)
    }

    fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read the configuration file {}: {e}", path.display())))?;
        // Only the position and the parser's message: its usual report quotes the line, which may hold a secret.
        let table: toml::Table = toml::from_str(&text).map_err(|e: toml::de::Error| {
            let line = e.span().map_or(0, |span| text[..span.start.min(text.len())].lines().count().max(1));
            err(format!("the configuration file {} is not valid TOML (line {line}): {}", path.display(), e.message()))
        })?;
        let mut values = HashMap::new();
        for (key, value) in table {
            let name = format!("CDVAULT_{}", key.to_ascii_uppercase());
            if !KNOWN.contains(&name.as_str()) {
                return Err(err(format!("unknown setting '{key}' in {}", path.display())));
            }
            let text = match value {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            values.insert(name, text);
        }
        Ok(Self { values })
    }

    /// Settings from explicit pairs (tests; no environment involved).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self { values: pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect() }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// A secret given inline (`NAME`) or in a file (`NAME_FILE`), never both.
    fn secret(&self, name: &str) -> Result<Option<Zeroizing<String>>, ConfigError> {
        let file_name = format!("{name}_FILE");
        match (self.get(name), self.get(&file_name)) {
            (Some(_), Some(_)) => Err(err(format!("{name} and {file_name} are both set: set one of them"))),
            (Some(value), None) => Ok(Some(Zeroizing::new(value.trim().to_owned()))),
            (None, Some(path)) => {
                let text = Zeroizing::new(
                    std::fs::read_to_string(path).map_err(|e| err(format!("{file_name}: cannot read {path}: {e}")))?,
                );
                Ok(Some(Zeroizing::new(text.trim().to_owned())))
            }
            (None, None) => Ok(None),
        }
    }

    /// The marketplace's token services: `CDVAULT_CDISCOUNT_STS_URL` and `CDVAULT_OCTOPIA_AUTH_URL`, each an
    /// `http(s)` base URL. Unset, production uses the real Cdiscount hosts; the development set-up uses the fake
    /// marketplace on 127.0.0.1, so a local run never reaches Cdiscount by accident.
    pub fn marketplace(&self, dev: bool) -> Result<cdvault_cdiscount::Endpoints, ConfigError> {
        let url = |name: &str, production: &str| -> Result<String, ConfigError> {
            let value = match self.get(name) {
                Some(value) => value.trim().trim_end_matches('/').to_owned(),
                None if dev => DEV_MARKETPLACE_URL.to_owned(),
                None => production.to_owned(),
            };
            let scheme_ok = value.starts_with("https://") || value.starts_with("http://");
            let host = value.split_once("://").map_or("", |(_, rest)| rest);
            if !scheme_ok || host.is_empty() || host.contains(char::is_whitespace) {
                return Err(err(format!("{name}: '{value}' is not an http(s) base URL")));
            }
            Ok(value)
        };
        Ok(cdvault_cdiscount::Endpoints {
            sts: url("CDVAULT_CDISCOUNT_STS_URL", cdvault_cdiscount::Endpoints::PRODUCTION_STS)?,
            octopia_auth: url("CDVAULT_OCTOPIA_AUTH_URL", cdvault_cdiscount::Endpoints::PRODUCTION_OCTOPIA_AUTH)?,
        })
    }

    /// How the rewrap worker paces itself: `CDVAULT_REWRAP_BATCH_SIZE` (rows per batch, 1 to 100,000, default 500),
    /// `CDVAULT_REWRAP_BATCH_PAUSE_MS` (wait between batches, default 0) and `CDVAULT_JOB_LEASE_TTL` (seconds a job
    /// lease lasts without renewal, 5 to 3600, default 30).
    pub fn rewrap(&self) -> Result<cdvault_api::service::RewrapSettings, ConfigError> {
        let number = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> Result<u64, ConfigError> {
            let Some(raw) = self.get(name) else { return Ok(default) };
            let value: u64 = raw.trim().parse().map_err(|_| err(format!("{name}: '{raw}' is not a whole number")))?;
            if !range.contains(&value) {
                return Err(err(format!("{name}: {value} is outside {}..={}", range.start(), range.end())));
            }
            Ok(value)
        };
        Ok(cdvault_api::service::RewrapSettings {
            batch_size: number("CDVAULT_REWRAP_BATCH_SIZE", 500, 1..=100_000)?,
            pause: std::time::Duration::from_millis(number("CDVAULT_REWRAP_BATCH_PAUSE_MS", 0, 0..=60_000)?),
            lease: std::time::Duration::from_secs(number("CDVAULT_JOB_LEASE_TTL", 30, 5..=3600)?),
        })
    }

    /// `CDVAULT_DATABASE_URL` set means a production set-up: nothing is generated.
    pub fn is_dev(&self) -> bool {
        self.get("CDVAULT_DATABASE_URL").is_none()
    }

    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(self.get("CDVAULT_DATA_DIR").unwrap_or(DEFAULT_DATA_DIR))
    }

    /// The log filter (`CDVAULT_LOG`, tracing's `EnvFilter` syntax), checked.
    pub fn log_filter(&self) -> Result<String, ConfigError> {
        let filter = self.get("CDVAULT_LOG").unwrap_or(crate::telemetry::DEFAULT_FILTER);
        crate::telemetry::parse_filter(filter)
            .map_err(|e| err(format!("CDVAULT_LOG: '{filter}' is not a log filter: {e}")))?;
        Ok(filter.to_owned())
    }

    /// The database URL: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> Result<String, ConfigError> {
        if let Some(url) = self.configured_database_url()? {
            return Ok(url.to_owned());
        }
        let dir = self.data_dir();
        create_private_dir(&dir).map_err(|e| err(format!("CDVAULT_DATA_DIR: cannot create {}: {e}", dir.display())))?;
        Ok(format!("sqlite://{}?mode=rwc", dir.join("cdvault.db").display()))
    }

    fn configured_database_url(&self) -> Result<Option<&str>, ConfigError> {
        match self.get("CDVAULT_DATABASE_URL") {
            Some(url) if !["sqlite:", "postgres:", "postgresql:"].iter().any(|scheme| url.starts_with(scheme)) => {
                Err(err("CDVAULT_DATABASE_URL must start with sqlite:, postgres: or postgresql:"))
            }
            // The audit writer opens its own connection: an in-memory database would not be the same database.
            Some(url) if url.contains(":memory:") || url.contains("mode=memory") => {
                Err(err("CDVAULT_DATABASE_URL: an in-memory SQLite database is not supported (use a file)"))
            }
            url => Ok(url),
        }
    }

    /// The database URL of an existing database: in the development set-up, nothing is created.
    pub fn existing_database_url(&self) -> Result<String, ConfigError> {
        if self.get("CDVAULT_DATABASE_URL").is_some() {
            return self.database_url();
        }
        let file = self.data_dir().join("cdvault.db");
        if !file.exists() {
            return Err(err(format!(
                "no database at {} (set CDVAULT_DATABASE_URL or CDVAULT_DATA_DIR)",
                file.display()
            )));
        }
        Ok(format!("sqlite://{}?mode=rw", file.display()))
    }

    pub fn listen(&self) -> Result<SocketAddr, ConfigError> {
        let raw = self.get("CDVAULT_LISTEN").unwrap_or(DEFAULT_LISTEN);
        raw.parse().map_err(|_| err(format!("CDVAULT_LISTEN: '{raw}' is not an address like 127.0.0.1:8080")))
    }

    /// The root key. In the development set-up with `generate`, made in the data directory when absent.
    pub fn root_key(&self, generate: bool) -> Result<RootKey, ConfigError> {
        let text = match self.secret("CDVAULT_ROOT_KEY")? {
            Some(text) => text,
            None if self.is_dev() => {
                let path = self.data_dir().join(ROOT_KEY_FILE);
                read_or_create(&path, generate, RootKey::generate_base64)?
            }
            None => {
                return Err(err(
                    "CDVAULT_ROOT_KEY or CDVAULT_ROOT_KEY_FILE is required when CDVAULT_DATABASE_URL is set",
                ));
            }
        };
        RootKey::from_base64(&text).map_err(|e| err(format!("CDVAULT_ROOT_KEY: {e}")))
    }

    /// The HS256 secret: configured, or (development) the one in the data directory, made when `generate`.
    pub fn hs256_secret(&self, generate: bool) -> Result<SecretBox<Vec<u8>>, ConfigError> {
        let text = match self.secret("CDVAULT_JWT_HS256_SECRET")? {
            Some(text) => text,
            None if self.is_dev() => {
                let path = self.data_dir().join(JWT_SECRET_FILE);
                read_or_create(&path, generate, || {
                    let mut bytes = Zeroizing::new([0u8; 48]);
                    rand::rng().fill_bytes(bytes.as_mut_slice());
                    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()))
                })?
            }
            None => {
                return Err(err(
                    "CDVAULT_JWT_HS256_SECRET or CDVAULT_JWT_HS256_SECRET_FILE is required for HS256 when CDVAULT_DATABASE_URL is set",
                ));
            }
        };
        Ok(SecretBox::new(Box::new(text.as_bytes().to_vec())))
    }

    pub fn jwt_algorithm(&self) -> Result<Algorithm, ConfigError> {
        match self.get("CDVAULT_JWT_ALGORITHM").unwrap_or("HS256") {
            "HS256" => Ok(Algorithm::HS256),
            "RS256" => Ok(Algorithm::RS256),
            "ES256" => Ok(Algorithm::ES256),
            "EdDSA" | "EDDSA" => Ok(Algorithm::EdDSA),
            other => Err(err(format!("CDVAULT_JWT_ALGORITHM: '{other}' is not one of HS256, RS256, ES256, EdDSA"))),
        }
    }

    fn claim(&self, name: &str, dev_default: &str) -> Result<String, ConfigError> {
        match self.get(name) {
            Some(value) => Ok(value.to_owned()),
            None if self.is_dev() => Ok(dev_default.to_owned()),
            None => Err(err(format!("{name} is required when CDVAULT_DATABASE_URL is set"))),
        }
    }

    pub fn jwt_issuer(&self) -> Result<String, ConfigError> {
        self.claim("CDVAULT_JWT_ISSUER", DEV_ISSUER)
    }

    pub fn jwt_audience(&self) -> Result<String, ConfigError> {
        self.claim("CDVAULT_JWT_AUDIENCE", DEV_AUDIENCE)
    }

    /// Checks every configured value before anything is generated, so a bad setting never leaves new files behind.
    fn preflight(&self) -> Result<(), ConfigError> {
        let algorithm = self.jwt_algorithm()?;
        self.jwt_issuer()?;
        self.jwt_audience()?;
        if let Some(text) = self.secret("CDVAULT_ROOT_KEY")? {
            RootKey::from_base64(&text).map_err(|e| err(format!("CDVAULT_ROOT_KEY: {e}")))?;
        }
        if let Some(secret) = self.secret("CDVAULT_JWT_HS256_SECRET")?
            && secret.len() < MIN_HS256_SECRET_LEN
        {
            return Err(err(format!("CDVAULT_JWT_HS256_SECRET must be at least {MIN_HS256_SECRET_LEN} bytes")));
        }
        if algorithm != Algorithm::HS256 {
            self.jwt(false)?;
        }
        self.configured_database_url()?;
        Ok(())
    }

    /// How tokens are verified.
    pub fn jwt(&self, generate: bool) -> Result<JwtSettings, ConfigError> {
        let algorithm = self.jwt_algorithm()?;
        let key = if algorithm == Algorithm::HS256 {
            if self.get("CDVAULT_JWT_PUBLIC_KEY_FILE").is_some() {
                return Err(err("CDVAULT_JWT_PUBLIC_KEY_FILE is set but CDVAULT_JWT_ALGORITHM is HS256"));
            }
            JwtKey::Hs256(self.hs256_secret(generate)?)
        } else {
            let path = self.get("CDVAULT_JWT_PUBLIC_KEY_FILE").ok_or_else(|| {
                err(format!("CDVAULT_JWT_PUBLIC_KEY_FILE is required for CDVAULT_JWT_ALGORITHM={algorithm:?}"))
            })?;
            let pem = std::fs::read(path)
                .map_err(|e| err(format!("CDVAULT_JWT_PUBLIC_KEY_FILE: cannot read {path}: {e}")))?;
            JwtKey::PublicPem { algorithm, pem }
        };
        Ok(JwtSettings { key, issuer: self.jwt_issuer()?, audience: self.jwt_audience()? })
    }
}

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
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("listen", &self.listen)
            .field("dev", &self.dev)
            .field("jwt", &self.jwt)
            .field("marketplace", &self.marketplace)
            .field("rewrap", &self.rewrap)
            .finish_non_exhaustive()
    }
}

impl ServeConfig {
    /// Validates the settings for `serve`; in the development set-up, creates the missing local secrets.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let dev = settings.is_dev();
        let listen = settings.listen()?;
        settings.preflight()?;
        let jwt = settings.jwt(dev)?;
        let root_key = settings.root_key(dev)?;
        let marketplace = settings.marketplace(dev)?;
        let clock = std::sync::Arc::new(cdvault_domain::clock::SystemClock);
        let rewrap = settings.rewrap()?;
        Ok(Self { listen, database_url: settings.database_url()?, dev, root_key, jwt, marketplace, clock, rewrap })
    }
}

#[cfg(test)]
mod tests;
