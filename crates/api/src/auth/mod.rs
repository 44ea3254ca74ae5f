//! Identity: verifying the caller's JWT (algorithm pinned by configuration) and minting development tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdvault_domain::policy::Principal;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// The longest `sub` accepted (it is stored in every audit event).
pub const MAX_SUBJECT_CHARS: usize = 256;
/// The shortest HS256 secret accepted (bytes).
pub const MIN_HS256_SECRET_LEN: usize = 32;

/// The verification key, matching the pinned algorithm.
pub enum JwtKey {
    /// HS256 shared secret.
    Hs256(SecretBox<Vec<u8>>),
    /// A PEM public key for RS256, ES256 or EdDSA.
    PublicPem { algorithm: Algorithm, pem: Vec<u8> },
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hs256(_) => f.write_str("JwtKey::Hs256([REDACTED])"),
            Self::PublicPem { algorithm, .. } => write!(f, "JwtKey::PublicPem({algorithm:?})"),
        }
    }
}

/// How tokens are checked.
#[derive(Debug)]
pub struct JwtSettings {
    pub key: JwtKey,
    pub issuer: String,
    pub audience: String,
}

/// The key or settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    #[error("the HS256 secret must be at least {MIN_HS256_SECRET_LEN} bytes")]
    ShortSecret,
    #[error("the public key is not a valid PEM for {algorithm:?}: {source}")]
    BadPem { algorithm: Algorithm, source: jsonwebtoken::errors::Error },
    #[error("algorithm {0:?} is not supported (use HS256, RS256, ES256 or EdDSA)")]
    UnsupportedAlgorithm(Algorithm),
}

/// Why a presented token was refused. The text is safe to show: it never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header must be 'Bearer <token>'")]
    MalformedHeader,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// The claims cdvault reads. `exp`, `nbf`, `iss` and `aud` are checked by jsonwebtoken's validation and not
/// re-read here, so their standard forms (an `aud` array, a fractional `exp`) are all accepted.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    /// Already checked against the configured issuer; kept for the audit trail.
    iss: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    sellers: Option<Vec<String>>,
    /// Already checked by the validation; read again only to end long-lived sessions (WebSockets) on time.
    #[serde(default)]
    exp: Option<f64>,
}

/// The claims `cdvault token` writes.
#[derive(Debug, Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sellers: Option<&'a [String]>,
    iss: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
}

/// Verifies bearer tokens. Keys are parsed once, at start-up.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier").field("algorithms", &self.validation.algorithms).finish_non_exhaustive()
    }
}

impl JwtVerifier {
    pub fn new(settings: &JwtSettings) -> Result<Self, JwtConfigError> {
        let (algorithm, key) = match &settings.key {
            JwtKey::Hs256(secret) => {
                if secret.expose_secret().len() < MIN_HS256_SECRET_LEN {
                    return Err(JwtConfigError::ShortSecret);
                }
                (Algorithm::HS256, DecodingKey::from_secret(secret.expose_secret()))
            }
            JwtKey::PublicPem { algorithm, pem } => {
                let parsed = match algorithm {
                    Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
                    Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
                    other => return Err(JwtConfigError::UnsupportedAlgorithm(*other)),
                };
                let key = parsed.map_err(|source| JwtConfigError::BadPem { algorithm: *algorithm, source })?;
                (*algorithm, key)
            }
        };
        // One algorithm only: a token naming another (or `none`) is refused, which rules out algorithm confusion.
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Self { key, validation })
    }

    /// Reads an `Authorization` header value: `Ok(None)` when absent.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Option<Principal>, AuthError> {
        Ok(self.authenticate_until(header)?.map(|(principal, _)| principal))
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_until(token).map(|(principal, _)| principal)
    }

    /// Like [`Self::authenticate`], with the moment the token expires: a session that outlives one request (a
    /// WebSocket) must end then.
    pub fn authenticate_until(
        &self,
        header: Option<&str>,
    ) -> Result<Option<(Principal, Option<SystemTime>)>, AuthError> {
        let Some(header) = header else { return Ok(None) };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MalformedHeader)?;
        self.verify_until(token).map(Some)
    }

    fn verify_until(&self, token: &str) -> Result<(Principal, Option<SystemTime>), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::Invalid(describe(&e)))?;
        let claims = data.claims;
        let sub = &claims.sub;
        if sub.trim().is_empty() || sub.chars().count() > MAX_SUBJECT_CHARS || sub.chars().any(char::is_control) {
            return Err(AuthError::Invalid(format!(
                "the subject must have 1 to {MAX_SUBJECT_CHARS} printable characters"
            )));
        }
        // An `exp` too far ahead for the clock type is no deadline at all (never a panic).
        let expires = claims
            .exp
            .filter(|e| e.is_finite() && *e > 0.0)
            .and_then(|e| Duration::try_from_secs_f64(e).ok())
            .and_then(|d| UNIX_EPOCH.checked_add(d));
        Ok((Principal::from_claims(claims.iss, claims.sub, claims.scope.as_deref(), claims.sellers), expires))
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

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub subject: String,
    pub scopes: Vec<String>,
    /// `None` leaves the claim out (the token reaches no seller); `["*"]` reaches all.
    pub sellers: Option<Vec<String>>,
    pub ttl: Duration,
}

/// Mints an HS256 token (the `cdvault token` command and tests).
pub fn mint_hs256(
    secret: &[u8],
    issuer: &str,
    audience: &str,
    request: &TokenRequest,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = MintedClaims {
        sub: &request.subject,
        scope: (!request.scopes.is_empty()).then(|| request.scopes.join(" ")),
        sellers: request.sellers.as_deref(),
        iss: issuer,
        aud: audience,
        exp: now + request.ttl.as_secs(),
        nbf: now,
        iat: now,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!";

    fn verifier() -> JwtVerifier {
        let key = JwtKey::Hs256(SecretBox::new(Box::new(SECRET.to_vec())));
        JwtVerifier::new(&JwtSettings { key, issuer: "issuer".into(), audience: "cdvault".into() }).unwrap()
    }

    /// Found by the `jwt_claims` fuzz target: `exp` at `i64::MAX` seconds passed validation, then adding it to
    /// `UNIX_EPOCH` overflowed `SystemTime` and panicked.
    #[test]
    fn a_token_expiring_past_what_system_time_holds_is_accepted_without_an_end() {
        for exp in [i64::MAX as u64, 1 << 63, u64::MAX] {
            let claims = serde_json::json!({ "sub": "tool", "iss": "issuer", "aud": "cdvault", "exp": exp });
            let header = Header::new(Algorithm::HS256);
            let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap();
            let (principal, expires) =
                verifier().authenticate_until(Some(&format!("Bearer {token}"))).unwrap().unwrap();
            assert_eq!((principal.subject.as_str(), expires), ("tool", None), "exp {exp}");
            assert_eq!(principal.issuer, "issuer");
        }
    }
}
