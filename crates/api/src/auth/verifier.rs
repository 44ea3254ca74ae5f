//! Verifies bearer tokens: a token is routed to its issuer by its unverified `iss`, then fully verified with that
//! issuer's keys and rules. The unverified `iss` only picks which rules apply; an unknown one is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cdvault_domain::identity::Identity;

use super::issuer::{Issuer, IssuerKeys, JwtSettings};
use super::remote::RefreshTiming;
use super::{AuthError, JwtConfigError};

/// Verifies bearer tokens against the configured issuers. Static keys are parsed at construction; providers'
/// key sets are fetched by [`JwtVerifier::start`] (and on demand).
pub struct JwtVerifier {
    issuers: HashMap<String, Issuer>,
    max_lifetime: Option<Duration>,
    /// The background refreshes, ended with the verifier.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuers", &self.issuers)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

impl Drop for JwtVerifier {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.get_mut() {
            tasks.iter().for_each(tokio::task::JoinHandle::abort);
        }
    }
}

impl JwtVerifier {
    /// Checks the settings and parses static keys. No I/O beyond reading CA files; no task started.
    pub fn new(settings: &JwtSettings) -> Result<Self, JwtConfigError> {
        Self::with_timing(settings, RefreshTiming::default())
    }

    /// [`Self::new`] with other refresh intervals (tests).
    pub fn with_timing(settings: &JwtSettings, timing: RefreshTiming) -> Result<Self, JwtConfigError> {
        if settings.issuers.is_empty() {
            return Err(JwtConfigError::NoIssuer);
        }
        // One client for every provider without its own CA file; none at all with static keys only.
        let shared = match settings.issuers.iter().any(|i| i.source.is_remote()) {
            true => Some(
                super::discovery::client(None)
                    .map_err(|problem| JwtConfigError::Issuer { issuer: "*".into(), problem })?,
            ),
            false => None,
        };
        let mut issuers = HashMap::new();
        for issuer in &settings.issuers {
            if issuers.contains_key(&issuer.issuer) {
                return Err(JwtConfigError::DuplicateIssuer(issuer.issuer.clone()));
            }
            issuers.insert(issuer.issuer.clone(), Issuer::new(issuer, shared.as_ref(), timing)?);
        }
        Ok(Self { issuers, max_lifetime: settings.max_lifetime, tasks: Mutex::new(Vec::new()) })
    }

    /// Starts fetching and refreshing the providers' key sets in the background (call once, inside the runtime).
    /// A provider down does not stop anything: its tokens are answered `KeysUnavailable` until keys arrive.
    pub fn start(&self) {
        let started: Vec<_> = self.issuers.values().filter_map(Issuer::start).collect();
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.extend(started);
        }
    }

    /// The state of every issuer's keys, by issuer name (for `/readyz`).
    pub fn key_sets(&self) -> Vec<IssuerKeys> {
        let mut sets: Vec<IssuerKeys> = self.issuers.iter().map(|(name, issuer)| issuer.key_status(name)).collect();
        sets.sort_by(|a, b| a.issuer.cmp(&b.issuer));
        sets
    }

    /// Reads an `Authorization` header value: `Ok(None)` when absent.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Option<Identity>, AuthError> {
        let Some(header) = header else { return Ok(None) };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MalformedHeader)?;
        self.verify(token).await.map(Some)
    }

    /// Verifies a token: routed by its `iss`, then checked with that issuer's keys, algorithms and audience.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        #[derive(serde::Deserialize)]
        struct Unverified {
            #[serde(default)]
            iss: Option<String>,
        }
        let unverified: Unverified =
            jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|_| AuthError::invalid("malformed"))?;
        let iss = unverified.iss.ok_or_else(|| AuthError::invalid("the claim 'iss' is required"))?;
        let issuer = self.issuers.get(&iss).ok_or_else(|| AuthError::invalid("wrong issuer"))?;
        issuer.verify(token, self.max_lifetime).await
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use secrecy::SecretBox;

    use super::*;
    use crate::auth::KeySource;

    const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!";

    fn verifier() -> JwtVerifier {
        let key = KeySource::Hs256(SecretBox::new(Box::new(SECRET.to_vec())));
        JwtVerifier::new(&JwtSettings::single(key, "issuer", "cdvault")).unwrap()
    }

    /// Found by the `jwt_claims` fuzz target: `exp` at `i64::MAX` seconds passed validation, then adding it to
    /// `UNIX_EPOCH` overflowed `SystemTime` and panicked.
    #[tokio::test]
    async fn a_token_expiring_past_what_system_time_holds_is_accepted_without_an_end() {
        for exp in [i64::MAX as u64, 1 << 63, u64::MAX] {
            let claims = serde_json::json!({ "sub": "tool", "iss": "issuer", "aud": "cdvault", "exp": exp });
            let header = Header::new(Algorithm::HS256);
            let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap();
            let identity = verifier().authenticate(Some(&format!("Bearer {token}"))).await.unwrap().unwrap();
            assert_eq!((identity.subject.as_str(), identity.expires_at), ("tool", None), "exp {exp}");
            assert_eq!(identity.issuer, "issuer");
        }
    }

    #[tokio::test]
    async fn a_token_of_an_unknown_issuer_is_refused_before_any_key_is_tried() {
        let claims = serde_json::json!({ "sub": "tool", "iss": "other", "aud": "cdvault", "exp": u32::MAX });
        let token = jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(matches!(verifier().verify(&token).await, Err(AuthError::Invalid(why)) if why == "wrong issuer"));
    }

    #[test]
    fn two_issuers_of_one_name_are_refused() {
        let key = || KeySource::Hs256(SecretBox::new(Box::new(SECRET.to_vec())));
        let mut settings = JwtSettings::single(key(), "issuer", "cdvault");
        settings.issuers.extend(JwtSettings::single(key(), "issuer", "other").issuers);
        assert!(matches!(JwtVerifier::new(&settings), Err(JwtConfigError::DuplicateIssuer(_))));
    }
}
