//! Token issuers beyond the one of the `CDVAULT_JWT_*` settings: the TOML file's `[[jwt.issuers]]` tables (an
//! array of tables does not fit the flat settings, so it has its own typed struct, read from the same figment),
//! and `CDVAULT_JWT_MAX_LIFETIME`. Validated once; files named here are read at load.

use std::path::PathBuf;
use std::time::Duration;

use cdvault_api::auth::{IssuerMode, IssuerSettings, KeySource, MIN_HS256_SECRET_LEN};
use jsonwebtoken::Algorithm;
use secrecy::SecretBox;
use zeroize::Zeroizing;

use super::raw::Text;
use super::written::{JwtTable, TomlIssuer};
use super::{ConfigError, err};

/// A validated issuer of the file. Its key material is read at load; the `KeySource` is made on each use
/// (an HS256 secret box cannot be cloned).
#[derive(Clone)]
pub(super) struct ExtraIssuer {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    mode: IssuerMode,
    source: Source,
}

#[derive(Clone)]
enum Source {
    Hs256(Zeroizing<Vec<u8>>),
    PublicPem(Algorithm, Vec<u8>),
    JwksUrl(String, Option<PathBuf>),
    Discovery(Option<PathBuf>),
    JwksFile(PathBuf),
}

impl ExtraIssuer {
    pub(super) fn name(&self) -> &str {
        &self.issuer
    }

    pub(super) fn settings(&self) -> IssuerSettings {
        let source = match &self.source {
            Source::Hs256(secret) => KeySource::Hs256(SecretBox::new(Box::new(secret.to_vec()))),
            Source::PublicPem(algorithm, pem) => KeySource::PublicPem { algorithm: *algorithm, pem: pem.clone() },
            Source::JwksUrl(url, ca_file) => KeySource::JwksUrl { url: url.clone(), ca_file: ca_file.clone() },
            Source::Discovery(ca_file) => KeySource::Discovery { ca_file: ca_file.clone() },
            Source::JwksFile(path) => KeySource::JwksFile(path.clone()),
        };
        IssuerSettings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            algorithms: self.algorithms.clone(),
            mode: self.mode,
            source,
        }
    }
}

/// The algorithm of a name as the settings write it.
pub(super) fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "HS256" => Some(Algorithm::HS256),
        "RS256" => Some(Algorithm::RS256),
        "PS256" => Some(Algorithm::PS256),
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" | "EDDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// Validates the file's issuers: exactly one key source each, known algorithms and mode, readable files.
pub(super) fn validate(table: Option<&JwtTable>) -> Result<Vec<ExtraIssuer>, ConfigError> {
    let Some(table) = table else { return Ok(Vec::new()) };
    table.issuers.iter().enumerate().map(|(index, raw)| one(index, raw)).collect()
}

fn one(index: usize, raw: &TomlIssuer) -> Result<ExtraIssuer, ConfigError> {
    let at = format!("[[jwt.issuers]] #{} ('{}')", index + 1, raw.issuer);
    let fail = |what: &str| err(format!("{at}: {what}"));
    if raw.issuer.trim().is_empty() || raw.audience.trim().is_empty() {
        return Err(fail("issuer and audience must not be empty"));
    }
    let algorithms = match &raw.algorithms {
        Some(names) => names
            .iter()
            .map(|name| algorithm(name).ok_or_else(|| fail("algorithms: use HS256, RS256, PS256, ES256 or EdDSA")))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let sources = [
        raw.hs256_secret_file.is_some(),
        raw.public_key_file.is_some(),
        raw.jwks_url.is_some(),
        raw.discovery == Some(true),
        raw.jwks_file.is_some(),
    ];
    if sources.iter().filter(|given| **given).count() != 1 {
        return Err(fail(
            "set exactly one of hs256_secret_file, public_key_file, jwks_url, discovery = true, jwks_file",
        ));
    }
    let remote = raw.jwks_url.is_some() || raw.discovery == Some(true);
    if raw.ca_file.is_some() && !remote {
        return Err(fail("ca_file goes with jwks_url or discovery"));
    }
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path).map_err(|e| fail(&format!("cannot read the {what}: {}", e.kind())))
    };
    let source = if let Some(path) = &raw.hs256_secret_file {
        let text = Zeroizing::new(read(path, "HS256 secret file")?);
        let secret = Zeroizing::new(text.trim_ascii().to_vec());
        if secret.len() < MIN_HS256_SECRET_LEN {
            return Err(fail(&format!("the HS256 secret must be at least {MIN_HS256_SECRET_LEN} bytes")));
        }
        Source::Hs256(secret)
    } else if let Some(path) = &raw.public_key_file {
        // The PEM's algorithm is the first listed; the others must fit the same key (RS256 with PS256).
        let first = *algorithms.first().ok_or_else(|| fail("public_key_file needs algorithms"))?;
        Source::PublicPem(first, read(path, "public key file")?)
    } else if let Some(url) = &raw.jwks_url {
        Source::JwksUrl(url.clone(), raw.ca_file.clone())
    } else if let Some(path) = &raw.jwks_file {
        Source::JwksFile(path.clone())
    } else {
        Source::Discovery(raw.ca_file.clone())
    };
    let mode = match raw.mode.as_deref() {
        None => None,
        Some("claims") => Some(IssuerMode::Claims),
        Some("grants") => Some(IssuerMode::Grants),
        Some(_) => return Err(fail("mode must be \"claims\" or \"grants\"")),
    };
    let mut issuer = ExtraIssuer {
        issuer: raw.issuer.clone(),
        audience: raw.audience.clone(),
        algorithms,
        mode: IssuerMode::Claims,
        source,
    };
    // The defaults of the key source, unless written.
    let defaults = issuer.settings();
    issuer.mode = mode.unwrap_or(defaults.source.default_mode());
    if issuer.algorithms.is_empty() {
        issuer.algorithms = defaults.source.default_algorithms();
    }
    Ok(issuer)
}

/// `CDVAULT_JWT_MAX_LIFETIME`: seconds, 60 to 31,536,000; unset is no limit.
pub(super) fn max_lifetime(given: Option<&Text>) -> Result<Option<Duration>, ConfigError> {
    let Some(text) = Text::present(given) else { return Ok(None) };
    let seconds: u64 =
        text.trim().parse().map_err(|_| err("CDVAULT_JWT_MAX_LIFETIME is not a whole number of seconds"))?;
    if !(60..=31_536_000).contains(&seconds) {
        return Err(err("CDVAULT_JWT_MAX_LIFETIME is outside 60..=31536000"));
    }
    Ok(Some(Duration::from_secs(seconds)))
}

/// `CDVAULT_ACCESS_POLL_MS`: how often each replica reads grants, revocations and the freeze again.
pub(super) fn access_poll(raw: &super::raw::RawSettings) -> Result<Duration, super::ConfigError> {
    let Some(text) = Text::present(raw.access_poll_ms.as_ref()) else {
        return Ok(cdvault_api::service::DEFAULT_ACCESS_POLL);
    };
    let millis: u64 = text.trim().parse().map_err(|_| err("CDVAULT_ACCESS_POLL_MS is not a whole number"))?;
    if !(100..=60_000).contains(&millis) {
        return Err(err("CDVAULT_ACCESS_POLL_MS is outside 100..=60000"));
    }
    Ok(Duration::from_millis(millis))
}
