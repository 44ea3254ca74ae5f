//! The settings of each token issuer, and the checks one issuer makes: the token's algorithm must be one the issuer
//! accepts (and one its key may verify: no algorithm confusion), then signature, `iss`, `aud`, `exp` and `nbf`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cdvault_domain::identity::{Identity, IssuerMode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretBox};

use super::identity::{Claims, identity};
use super::jwks::ASYMMETRIC;
use super::remote::{Origin, RefreshTiming, RemoteKeys};
use super::{AuthError, JwtConfigError, LEEWAY_SECS, MIN_HS256_SECRET_LEN};

/// How tokens are checked: every accepted issuer, and the longest lifetime (`exp - iat`) accepted, if any.
#[derive(Debug)]
pub struct JwtSettings {
    pub issuers: Vec<IssuerSettings>,
    pub max_lifetime: Option<Duration>,
}

impl JwtSettings {
    /// One issuer, with its key source's default algorithms and mode, and no maximum lifetime.
    pub fn single(source: KeySource, issuer: &str, audience: &str) -> Self {
        Self { issuers: vec![IssuerSettings::new(issuer, audience, source)], max_lifetime: None }
    }
}

/// One issuer whose tokens are accepted.
#[derive(Debug)]
pub struct IssuerSettings {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// The `aud` its tokens must hold.
    pub audience: String,
    /// The algorithms accepted; a token naming another (or `none`) is refused.
    pub algorithms: Vec<Algorithm>,
    pub source: KeySource,
    pub mode: IssuerMode,
}

impl IssuerSettings {
    /// An issuer with the source's default algorithms and mode.
    pub fn new(issuer: &str, audience: &str, source: KeySource) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            algorithms: source.default_algorithms(),
            mode: source.default_mode(),
            source,
        }
    }
}

/// Where an issuer's verification keys come from.
pub enum KeySource {
    /// An HS256 shared secret.
    Hs256(SecretBox<Vec<u8>>),
    /// A PEM public key for RS256, PS256, ES256 or EdDSA.
    PublicPem { algorithm: Algorithm, pem: Vec<u8> },
    /// A JWK set at a URL; `ca_file` adds a root certificate for it.
    JwksUrl { url: String, ca_file: Option<PathBuf> },
    /// OIDC discovery: `<issuer>/.well-known/openid-configuration`, then its `jwks_uri`.
    Discovery { ca_file: Option<PathBuf> },
    /// A JWK set in a file, re-read when it changes.
    JwksFile(PathBuf),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hs256(_) => f.write_str("KeySource::Hs256([REDACTED])"),
            Self::PublicPem { algorithm, .. } => write!(f, "KeySource::PublicPem({algorithm:?})"),
            Self::JwksUrl { url, ca_file } => {
                f.debug_struct("KeySource::JwksUrl").field("url", url).field("ca_file", ca_file).finish()
            }
            Self::Discovery { ca_file } => f.debug_struct("KeySource::Discovery").field("ca_file", ca_file).finish(),
            Self::JwksFile(path) => f.debug_tuple("KeySource::JwksFile").field(path).finish(),
        }
    }
}

impl KeySource {
    /// Whether the keys come from a provider (fetched or read, and refreshed) rather than being given.
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::JwksUrl { .. } | Self::Discovery { .. } | Self::JwksFile(_))
    }

    /// The algorithm of a static key; every asymmetric one for a provider's key set.
    pub fn default_algorithms(&self) -> Vec<Algorithm> {
        match self {
            Self::Hs256(_) => vec![Algorithm::HS256],
            Self::PublicPem { algorithm, .. } => vec![*algorithm],
            Self::JwksUrl { .. } | Self::Discovery { .. } | Self::JwksFile(_) => ASYMMETRIC.to_vec(),
        }
    }

    /// Claims for a static key (today's behaviour), grants for a provider (which knows nothing of our sellers).
    pub fn default_mode(&self) -> IssuerMode {
        match self {
            Self::Hs256(_) | Self::PublicPem { .. } => IssuerMode::Claims,
            Self::JwksUrl { .. } | Self::Discovery { .. } | Self::JwksFile(_) => IssuerMode::Grants,
        }
    }
}

enum Keys {
    Static(DecodingKey),
    Remote(Arc<RemoteKeys>),
}

/// The state of one issuer's keys, read-only (for `/readyz`). Names and counts, never a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerKeys {
    /// The issuer (`iss`).
    pub issuer: String,
    /// Whether its keys are fetched (a JWKS URL, discovery or a JWKS file) rather than configured.
    pub remote: bool,
    /// Usable keys loaded; `None` while none was ever loaded (a static key counts one).
    pub keys: Option<usize>,
    /// Why the last fetch failed, if it did (keys loaded before stay in use).
    pub last_error: Option<String>,
}

/// One issuer, ready to verify.
pub(super) struct Issuer {
    mode: IssuerMode,
    /// One validation per accepted algorithm: jsonwebtoken wants every listed algorithm to fit the key.
    validations: Vec<(Algorithm, Validation)>,
    keys: Keys,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<_> = self.validations.iter().map(|(a, _)| a).collect();
        f.debug_struct("Issuer").field("mode", &self.mode).field("algorithms", &algorithms).finish_non_exhaustive()
    }
}

impl Issuer {
    pub(super) fn new(
        settings: &IssuerSettings,
        shared_client: Option<&reqwest::Client>,
        timing: RefreshTiming,
    ) -> Result<Self, JwtConfigError> {
        let name = settings.issuer.as_str();
        let problem = |problem: String| JwtConfigError::Issuer { issuer: name.to_owned(), problem };
        if name.trim().is_empty() || settings.audience.trim().is_empty() {
            return Err(JwtConfigError::EmptyName);
        }
        if settings.algorithms.is_empty() {
            return Err(problem("no algorithm is accepted".into()));
        }
        let fits = |fitting: &[Algorithm]| {
            settings
                .algorithms
                .iter()
                .find(|a| !fitting.contains(a))
                .map_or(Ok(()), |a| Err(problem(format!("the algorithm {a:?} does not fit its key source"))))
        };
        let remote = |origin: Origin, ca_file: Option<&PathBuf>| -> Result<Keys, JwtConfigError> {
            fits(ASYMMETRIC)?;
            let client = match ca_file {
                Some(path) => super::discovery::client(Some(path)).map_err(&problem)?,
                None => shared_client.cloned().ok_or_else(|| problem("no HTTP client".into()))?,
            };
            let keys = RemoteKeys::new(name, origin, client, settings.algorithms.clone(), timing);
            Ok(Keys::Remote(Arc::new(keys)))
        };
        let keys = match &settings.source {
            KeySource::Hs256(secret) => {
                if secret.expose_secret().len() < MIN_HS256_SECRET_LEN {
                    return Err(JwtConfigError::ShortSecret);
                }
                fits(&[Algorithm::HS256])?;
                Keys::Static(DecodingKey::from_secret(secret.expose_secret()))
            }
            KeySource::PublicPem { algorithm, pem } => {
                let (parsed, fitting): (_, &[Algorithm]) = match algorithm {
                    Algorithm::RS256 | Algorithm::PS256 => {
                        (DecodingKey::from_rsa_pem(pem), &[Algorithm::RS256, Algorithm::PS256])
                    }
                    Algorithm::ES256 => (DecodingKey::from_ec_pem(pem), &[Algorithm::ES256]),
                    Algorithm::EdDSA => (DecodingKey::from_ed_pem(pem), &[Algorithm::EdDSA]),
                    other => return Err(JwtConfigError::UnsupportedAlgorithm(*other)),
                };
                fits(fitting)?;
                Keys::Static(parsed.map_err(|source| JwtConfigError::BadPem { algorithm: *algorithm, source })?)
            }
            KeySource::JwksUrl { url, ca_file } => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(problem("the JWKS URL is not an http(s) URL".into()));
                }
                remote(Origin::Url(url.clone()), ca_file.as_ref())?
            }
            KeySource::Discovery { ca_file } => {
                if !(name.starts_with("https://") || name.starts_with("http://")) {
                    return Err(problem("discovery needs an issuer that is an http(s) URL".into()));
                }
                remote(Origin::Discovery, ca_file.as_ref())?
            }
            KeySource::JwksFile(path) => remote(Origin::File(path.clone()), None)?,
        };
        let validations = settings
            .algorithms
            .iter()
            .map(|&algorithm| {
                let mut validation = Validation::new(algorithm);
                validation.leeway = LEEWAY_SECS;
                validation.validate_exp = true;
                validation.validate_nbf = true;
                validation.set_issuer(&[name]);
                validation.set_audience(&[settings.audience.as_str()]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                (algorithm, validation)
            })
            .collect();
        Ok(Self { mode: settings.mode, validations, keys })
    }

    /// Starts the background refresh of a provider's key set (nothing for a static key).
    pub(super) fn start(&self) -> Option<tokio::task::JoinHandle<()>> {
        match &self.keys {
            Keys::Remote(remote) => Some(remote.spawn_refresh()),
            Keys::Static(_) => None,
        }
    }

    /// The state of this issuer's keys, for `/readyz`.
    pub(super) fn key_status(&self, issuer: &str) -> IssuerKeys {
        match &self.keys {
            Keys::Static(_) => IssuerKeys { issuer: issuer.to_owned(), remote: false, keys: Some(1), last_error: None },
            Keys::Remote(remote) => {
                let (keys, last_error) = remote.status();
                IssuerKeys { issuer: issuer.to_owned(), remote: true, keys, last_error }
            }
        }
    }

    pub(super) async fn verify(&self, token: &str, max_lifetime: Option<Duration>) -> Result<Identity, AuthError> {
        // `alg: none` and unknown algorithms do not even parse as a header.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::invalid("malformed header"))?;
        let Some((_, validation)) = self.validations.iter().find(|(a, _)| *a == header.alg) else {
            return Err(AuthError::invalid("algorithm not accepted"));
        };
        let fetched;
        let key = match &self.keys {
            Keys::Static(key) => key,
            Keys::Remote(remote) => {
                let kid = header.kid.as_deref().ok_or_else(|| AuthError::invalid("it names no key (kid)"))?;
                fetched = remote.key(kid, header.alg).await?;
                &fetched
            }
        };
        let data =
            jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| AuthError::Invalid(describe(&e)))?;
        identity(data.claims, self.mode, max_lifetime)
    }
}

fn describe(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => "it has expired".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAlgorithm => "algorithm not accepted".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the claim '{claim}' is required"),
        _ => "malformed".into(),
    }
}
