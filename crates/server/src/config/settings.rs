//! The validated settings. Every rule that involves more than one setting (a value and its `_FILE` twin, the
//! development set-up's defaults, what production requires, the key that goes with the algorithm) is decided in
//! the one `TryFrom<RawSettings>`; the methods below only hand out what it decided, and never create a file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cdvault_api::auth::{IssuerSettings, JwtSettings, KeySource, MIN_HS256_SECRET_LEN};
use cdvault_api::service::{CheckpointSettings, RewrapSettings};
use cdvault_cdiscount::Endpoints;
use cdvault_domain::crypto::RootKey;
use jsonwebtoken::Algorithm;
use secrecy::SecretBox;
use zeroize::Zeroizing;

use super::dev_setup::{self, DATABASE_FILE, JWT_SECRET_FILE, ROOT_KEY_FILE};
use super::issuers::{self, ExtraIssuer};
use super::raw::{RawSettings, Text};
use super::twins::{self, Twin};
use super::{ConfigError, err};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./cdvault-data";
pub const DEV_ISSUER: &str = "cdvault-dev";
pub const DEV_AUDIENCE: &str = "cdvault";
/// Where the development set-up looks for the marketplace: the fake one (`cdvault-fake-marketplace`), never the
/// real Cdiscount hosts.
pub const DEV_MARKETPLACE_URL: &str = "http://127.0.0.1:8089";

/// Development or production, decided by `CDVAULT_DATABASE_URL` alone.
#[derive(Clone, PartialEq, Eq)]
pub enum SetUp {
    /// Nothing configured: SQLite and generated secrets in the data directory.
    Development { data_dir: PathBuf },
    /// `CDVAULT_DATABASE_URL` set: nothing is generated.
    Production { database_url: String },
}

/// Never the database URL: it holds the password.
impl std::fmt::Debug for SetUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Development { data_dir } => f.debug_struct("Development").field("data_dir", data_dir).finish(),
            Self::Production { .. } => f.debug_struct("Production").finish_non_exhaustive(),
        }
    }
}

/// A secret given by the operator, or the development set-up's file of that name in the data directory.
#[derive(Clone)]
enum Secret {
    Given(Zeroizing<String>),
    DevelopmentFile(&'static str),
}

/// The key tokens are verified with.
#[derive(Clone)]
enum VerificationKey {
    Hs256(Secret),
    PublicPem(Vec<u8>),
}

/// A value production requires but was not given. The rule is decided at load and raised on use, so that
/// commands that do not need it (`keys status`, `audit verify`) run without it, as before.
type Required<T> = Result<T, String>;

/// Every setting, validated.
pub struct Settings {
    pub listen: SocketAddr,
    pub set_up: SetUp,
    pub jwt_algorithm: Algorithm,
    /// The log filter (`CDVAULT_LOG`, tracing's `EnvFilter` syntax).
    pub log_filter: String,
    /// The log format and the OTLP collector, if any.
    pub telemetry: crate::telemetry::TelemetrySettings,
    /// Where the marketplace's token services are.
    pub marketplace: Endpoints,
    /// How the rewrap worker paces itself.
    pub rewrap: RewrapSettings,
    /// Where audit checkpoints go, how often, and the replica name they are signed with.
    pub checkpoints: CheckpointSettings,
    /// Where the audit stream goes, if anywhere (`CDVAULT_AUDIT_STREAM`).
    pub audit_stream: Option<cdvault_api::service::AuditStreamSettings>,
    /// How often grants, revocations and the freeze are read again.
    pub access_poll: Duration,
    /// How long the change feeds keep a change.
    pub change_feed_retention: Duration,
    /// Sellers per credential kind in each replica's issue cache.
    pub issue_cache_sellers: u64,
    /// The HTTP surface: GraphiQL, introspection, rate limits, WebSocket limits.
    pub http: cdvault_api::http::HttpOptions,
    /// Where webhooks may go, and how they are retried.
    pub webhooks: cdvault_api::service::WebhookSettings,
    root_key: Required<Secret>,
    verification_key: Required<VerificationKey>,
    jwt_issuer: Required<String>,
    jwt_audience: Required<String>,
    /// Whether the `CDVAULT_JWT_*` issuer is configured: always in development, else when one of its settings
    /// is given or the file names no other issuer.
    env_issuer: bool,
    /// The TOML file's `[[jwt.issuers]]`.
    extra_issuers: Vec<ExtraIssuer>,
    /// `CDVAULT_JWT_MAX_LIFETIME`.
    jwt_max_lifetime: Option<Duration>,
}

/// Names only what is safe: secrets and the database URL (its password) stay out.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("dev", &self.is_dev())
            .field("jwt_algorithm", &self.jwt_algorithm)
            .field("extra_issuers", &self.extra_issuers.iter().map(ExtraIssuer::name).collect::<Vec<_>>())
            .field("jwt_max_lifetime", &self.jwt_max_lifetime)
            .field("marketplace", &self.marketplace)
            .field("rewrap", &self.rewrap)
            .field("webhooks", &self.webhooks)
            .field("checkpoints", &self.checkpoints)
            .field("audit_stream", &self.audit_stream)
            .field("http", &self.http)
            .field("telemetry", &self.telemetry)
            .finish_non_exhaustive()
    }
}

impl TryFrom<RawSettings> for Settings {
    type Error = ConfigError;

    /// Without a host name: an unnamed replica gets a random id.
    fn try_from(raw: RawSettings) -> Result<Self, ConfigError> {
        Self::validate(raw, None)
    }
}

impl Settings {
    /// Every rule, once; `host_name` is the environment's `HOSTNAME` (the default replica name).
    pub(super) fn validate(raw: RawSettings, host_name: Option<&str>) -> Result<Self, ConfigError> {
        let set_up = set_up(&raw)?;
        let dev = matches!(set_up, SetUp::Development { .. });
        let required_in_production = |what: &str| format!("{what} is required when CDVAULT_DATABASE_URL is set");
        let jwt_algorithm = jwt_algorithm(raw.jwt_algorithm.as_ref())?;
        let extra_issuers = issuers::validate(raw.jwt.as_ref())?;
        let env_issuer_given = [
            &raw.jwt_algorithm,
            &raw.jwt_hs256_secret,
            &raw.jwt_hs256_secret_file,
            &raw.jwt_public_key_file,
            &raw.jwt_issuer,
            &raw.jwt_audience,
        ]
        .into_iter()
        .any(|given| Text::present(given.as_ref()).is_some());
        let env_issuer = dev || env_issuer_given || extra_issuers.is_empty();
        let claim = |given: Option<&Text>, name: &str, dev_default: &str| match Text::present(given) {
            Some(value) => Ok(value.to_owned()),
            None if dev => Ok(dev_default.to_owned()),
            None => Err(required_in_production(name)),
        };
        let jwt_issuer = claim(raw.jwt_issuer.as_ref(), "CDVAULT_JWT_ISSUER", DEV_ISSUER);
        let jwt_audience = claim(raw.jwt_audience.as_ref(), "CDVAULT_JWT_AUDIENCE", DEV_AUDIENCE);
        let given_root_key = twins::read(Twin {
            name: "CDVAULT_ROOT_KEY",
            inline: raw.root_key.as_ref(),
            file: raw.root_key_file.as_ref(),
        })?;
        if let Some(text) = &given_root_key {
            RootKey::from_base64(text).map_err(|e| err(format!("CDVAULT_ROOT_KEY: {e}")))?;
        }
        let root_key = match given_root_key {
            Some(text) => Ok(Secret::Given(text)),
            None if dev => Ok(Secret::DevelopmentFile(ROOT_KEY_FILE)),
            None => Err(required_in_production("CDVAULT_ROOT_KEY or CDVAULT_ROOT_KEY_FILE")),
        };
        let given_hs256 = twins::read(Twin {
            name: "CDVAULT_JWT_HS256_SECRET",
            inline: raw.jwt_hs256_secret.as_ref(),
            file: raw.jwt_hs256_secret_file.as_ref(),
        })?;
        if given_hs256.as_ref().is_some_and(|secret| secret.len() < MIN_HS256_SECRET_LEN) {
            return Err(err(format!("CDVAULT_JWT_HS256_SECRET must be at least {MIN_HS256_SECRET_LEN} bytes")));
        }
        let public_key_file = Text::present(raw.jwt_public_key_file.as_ref());
        let verification_key = if jwt_algorithm == Algorithm::HS256 {
            if public_key_file.is_some() {
                return Err(err("CDVAULT_JWT_PUBLIC_KEY_FILE is set but CDVAULT_JWT_ALGORITHM is HS256"));
            }
            match given_hs256 {
                Some(secret) => Ok(VerificationKey::Hs256(Secret::Given(secret))),
                None if dev => Ok(VerificationKey::Hs256(Secret::DevelopmentFile(JWT_SECRET_FILE))),
                None => {
                    Err(required_in_production("CDVAULT_JWT_HS256_SECRET or CDVAULT_JWT_HS256_SECRET_FILE for HS256"))
                }
            }
        } else {
            let path = public_key_file.ok_or_else(|| {
                err(format!("CDVAULT_JWT_PUBLIC_KEY_FILE is required for CDVAULT_JWT_ALGORITHM={jwt_algorithm:?}"))
            })?;
            let pem = std::fs::read(path)
                .map_err(|e| err(format!("CDVAULT_JWT_PUBLIC_KEY_FILE: cannot read the file: {}", e.kind())))?;
            Ok(VerificationKey::PublicPem(pem))
        };
        Ok(Self {
            listen: listen(raw.listen.as_ref())?,
            log_filter: log_filter(raw.log.as_ref())?,
            telemetry: super::logs::telemetry(&raw)?,
            marketplace: marketplace(&raw, dev)?,
            rewrap: super::pacing::rewrap(&raw)?,
            checkpoints: super::checkpoints::checkpoints(&raw, data_dir(&set_up), host_name)?,
            audit_stream: super::checkpoints::audit_stream(&raw)?,
            access_poll: super::issuers::access_poll(&raw)?,
            change_feed_retention: super::pacing::change_feed_retention(&raw)?,
            issue_cache_sellers: Text::number(
                raw.issue_cache_sellers.as_ref(),
                "CDVAULT_ISSUE_CACHE_SELLERS",
                1_000..=10_000_000,
            )?
            .unwrap_or(cdvault_api::service::DEFAULT_ISSUE_CACHE_SELLERS),
            http: super::surface::http_options(&raw, dev)?,
            webhooks: super::webhooks::webhooks(&raw)?,
            set_up,
            jwt_algorithm,
            root_key,
            verification_key,
            jwt_issuer,
            jwt_audience,
            env_issuer,
            extra_issuers,
            jwt_max_lifetime: issuers::max_lifetime(raw.jwt_max_lifetime.as_ref())?,
        })
    }
}

impl Settings {
    /// Validates explicit pairs of environment names and values (tests: no process environment involved).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ConfigError> {
        Self::try_from(super::layers::merge(None, pairs)?)
    }

    /// No `CDVAULT_DATABASE_URL`: the development set-up.
    pub fn is_dev(&self) -> bool {
        matches!(self.set_up, SetUp::Development { .. })
    }

    /// The files the development set-up would create for `serve` (those whose setting is not configured).
    pub fn development_files(&self) -> Option<dev_setup::Needed<'_>> {
        let SetUp::Development { data_dir } = &self.set_up else { return None };
        let from_file = |secret: &Required<Secret>| matches!(secret, Ok(Secret::DevelopmentFile(_)));
        Some(dev_setup::Needed {
            data_dir,
            root_key: from_file(&self.root_key),
            hs256_secret: matches!(&self.verification_key, Ok(VerificationKey::Hs256(Secret::DevelopmentFile(_)))),
        })
    }

    /// The database URL to open or create: the configured one, or SQLite in the data directory (created by
    /// `dev_setup`, not here).
    pub fn database_url(&self) -> String {
        match &self.set_up {
            SetUp::Production { database_url } => database_url.clone(),
            SetUp::Development { data_dir } => {
                format!("sqlite://{}?mode=rwc", data_dir.join(DATABASE_FILE).display())
            }
        }
    }

    /// The database URL of an existing database: in the development set-up, nothing is created.
    pub fn existing_database_url(&self) -> Result<String, ConfigError> {
        match &self.set_up {
            SetUp::Production { database_url } => Ok(database_url.clone()),
            SetUp::Development { data_dir } => {
                let file = data_dir.join(DATABASE_FILE);
                if !file.exists() {
                    return Err(err(format!(
                        "no database ({DATABASE_FILE}) in CDVAULT_DATA_DIR (set CDVAULT_DATABASE_URL or CDVAULT_DATA_DIR)"
                    )));
                }
                Ok(format!("sqlite://{}?mode=rw", file.display()))
            }
        }
    }

    /// The root key: configured, or (development) the one in the data directory, which must exist.
    pub fn root_key(&self) -> Result<RootKey, ConfigError> {
        let text = self.secret(&self.root_key)?;
        RootKey::from_base64(&text).map_err(|e| err(format!("CDVAULT_ROOT_KEY: {e}")))
    }

    /// The HS256 secret (for `cdvault token`): configured, or (development) the one in the data directory.
    pub fn hs256_secret(&self) -> Result<SecretBox<Vec<u8>>, ConfigError> {
        match &self.verification_key {
            Ok(VerificationKey::Hs256(secret)) => {
                let text = self.secret(&Ok(secret.clone()))?;
                Ok(SecretBox::new(Box::new(text.as_bytes().to_vec())))
            }
            Ok(VerificationKey::PublicPem(_)) => {
                Err(err(format!("there is no HS256 secret: CDVAULT_JWT_ALGORITHM is {:?}", self.jwt_algorithm)))
            }
            Err(missing) => Err(err(missing.clone())),
        }
    }

    pub fn jwt_issuer(&self) -> Result<&str, ConfigError> {
        self.jwt_issuer.as_deref().map_err(|missing| err(missing.clone()))
    }

    pub fn jwt_audience(&self) -> Result<&str, ConfigError> {
        self.jwt_audience.as_deref().map_err(|missing| err(missing.clone()))
    }

    /// Whether the `CDVAULT_JWT_*` issuer is one of the issuers (production with only `[[jwt.issuers]]` has none).
    pub fn has_env_issuer(&self) -> bool {
        self.env_issuer
    }

    /// How tokens are verified: the `CDVAULT_JWT_*` issuer (if configured), then the file's `[[jwt.issuers]]`.
    pub fn jwt(&self) -> Result<JwtSettings, ConfigError> {
        let mut issuers = Vec::with_capacity(1 + self.extra_issuers.len());
        if self.env_issuer {
            let key = match &self.verification_key {
                Ok(VerificationKey::Hs256(_)) => KeySource::Hs256(self.hs256_secret()?),
                Ok(VerificationKey::PublicPem(pem)) => {
                    KeySource::PublicPem { algorithm: self.jwt_algorithm, pem: pem.clone() }
                }
                Err(missing) => return Err(err(missing.clone())),
            };
            issuers.push(IssuerSettings::new(self.jwt_issuer()?, self.jwt_audience()?, key));
        }
        issuers.extend(self.extra_issuers.iter().map(ExtraIssuer::settings));
        if let Some(duplicate) = issuers
            .iter()
            .enumerate()
            .find_map(|(i, a)| issuers[..i].iter().any(|b| b.issuer == a.issuer).then_some(a.issuer.as_str()))
        {
            return Err(err(format!("the token issuer '{duplicate}' is configured twice")));
        }
        Ok(JwtSettings { issuers, max_lifetime: self.jwt_max_lifetime })
    }

    fn secret(&self, secret: &Required<Secret>) -> Result<Zeroizing<String>, ConfigError> {
        match (secret, &self.set_up) {
            (Ok(Secret::Given(text)), _) => Ok(text.clone()),
            (Ok(Secret::DevelopmentFile(file)), SetUp::Development { data_dir }) => dev_setup::read(data_dir, file),
            (Ok(Secret::DevelopmentFile(_)), SetUp::Production { .. }) => {
                Err(err("a development secret file is never read in production"))
            }
            (Err(missing), _) => Err(err(missing.clone())),
        }
    }
}

fn data_dir(set_up: &SetUp) -> Option<&std::path::Path> {
    match set_up {
        SetUp::Development { data_dir } => Some(data_dir),
        SetUp::Production { .. } => None,
    }
}

fn set_up(raw: &RawSettings) -> Result<SetUp, ConfigError> {
    match Text::present(raw.database_url.as_ref()) {
        Some(url) if !["sqlite:", "postgres:", "postgresql:"].iter().any(|scheme| url.starts_with(scheme)) => {
            Err(err("CDVAULT_DATABASE_URL must start with sqlite:, postgres: or postgresql:"))
        }
        // The audit writer opens its own connection: an in-memory database would not be the same database.
        Some(url) if url.contains(":memory:") || url.contains("mode=memory") => {
            Err(err("CDVAULT_DATABASE_URL: an in-memory SQLite database is not supported (use a file)"))
        }
        Some(url) => Ok(SetUp::Production { database_url: url.to_owned() }),
        None => Ok(SetUp::Development {
            data_dir: PathBuf::from(Text::present(raw.data_dir.as_ref()).unwrap_or(DEFAULT_DATA_DIR)),
        }),
    }
}

fn listen(given: Option<&Text>) -> Result<SocketAddr, ConfigError> {
    Text::present(given)
        .unwrap_or(DEFAULT_LISTEN)
        .parse()
        .map_err(|_| err("CDVAULT_LISTEN is not an address like 127.0.0.1:8080"))
}

fn jwt_algorithm(given: Option<&Text>) -> Result<Algorithm, ConfigError> {
    issuers::algorithm(Text::present(given).unwrap_or("HS256"))
        .ok_or_else(|| err("CDVAULT_JWT_ALGORITHM is not one of HS256, RS256, PS256, ES256, EdDSA"))
}

fn log_filter(given: Option<&Text>) -> Result<String, ConfigError> {
    let filter = Text::present(given).unwrap_or(crate::telemetry::DEFAULT_FILTER);
    // Not the parser's message: it quotes the directive.
    crate::telemetry::parse_filter(filter)
        .map_err(|_| err("CDVAULT_LOG is not a log filter (tracing's EnvFilter syntax, e.g. info,sqlx=warn)"))?;
    Ok(filter.to_owned())
}

/// `CDVAULT_CDISCOUNT_STS_URL` and `CDVAULT_OCTOPIA_AUTH_URL`, each an `http(s)` base URL. Unset, production uses
/// the real Cdiscount hosts; the development set-up uses the fake marketplace on 127.0.0.1, so a local run never
/// reaches Cdiscount by accident.
fn marketplace(raw: &RawSettings, dev: bool) -> Result<Endpoints, ConfigError> {
    let url = |given: Option<&Text>, name: &str, production: &str| -> Result<String, ConfigError> {
        let value = match Text::present(given) {
            Some(value) => value.trim().trim_end_matches('/').to_owned(),
            None if dev => DEV_MARKETPLACE_URL.to_owned(),
            None => production.to_owned(),
        };
        let scheme_ok = value.starts_with("https://") || value.starts_with("http://");
        let host = value.split_once("://").map_or("", |(_, rest)| rest);
        if !scheme_ok || host.is_empty() || host.contains(char::is_whitespace) {
            return Err(err(format!("{name} is not an http(s) base URL")));
        }
        Ok(value)
    };
    Ok(Endpoints {
        sts: url(raw.cdiscount_sts_url.as_ref(), "CDVAULT_CDISCOUNT_STS_URL", Endpoints::PRODUCTION_STS)?,
        octopia_auth: url(
            raw.octopia_auth_url.as_ref(),
            "CDVAULT_OCTOPIA_AUTH_URL",
            Endpoints::PRODUCTION_OCTOPIA_AUTH,
        )?,
    })
}
