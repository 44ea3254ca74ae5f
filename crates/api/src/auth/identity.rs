//! The claims cdvault reads from a verified token, and the [`Identity`] they make. What that identity may do is
//! decided by the vault (`Vault::principal_for`: its claims, or the access grants kept in the vault).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdvault_domain::identity::{Identity, IssuerMode};
use serde::Deserialize;

use super::{AuthError, MAX_SUBJECT_CHARS};

/// The claims cdvault reads. `exp`, `nbf`, `iss` and `aud` are checked by jsonwebtoken's validation first, so
/// their standard forms (an `aud` array, a fractional `exp`) are all accepted.
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    // Defaults only so that a missing one is named by the validation (which requires both), not "malformed".
    #[serde(default)]
    sub: String,
    #[serde(default)]
    iss: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    sellers: Option<Vec<String>>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(default)]
    exp: Option<f64>,
}

/// The identity of verified claims, after the checks jsonwebtoken does not make: the subject's form and, when
/// configured, the longest lifetime (`exp - iat`) accepted.
pub(super) fn identity(
    claims: Claims,
    mode: IssuerMode,
    max_lifetime: Option<Duration>,
) -> Result<Identity, AuthError> {
    let sub = &claims.sub;
    if sub.trim().is_empty() || sub.chars().count() > MAX_SUBJECT_CHARS || sub.chars().any(char::is_control) {
        return Err(AuthError::Invalid(format!("the subject must have 1 to {MAX_SUBJECT_CHARS} printable characters")));
    }
    let seconds = |value: Option<f64>| value.filter(|v| v.is_finite() && *v >= 0.0);
    let (iat, exp) = (seconds(claims.iat), seconds(claims.exp));
    if let Some(max) = max_lifetime {
        let iat = iat.ok_or_else(|| AuthError::invalid("the claim 'iat' is required (a maximum lifetime applies)"))?;
        let lifetime = exp.map_or(f64::INFINITY, |exp| exp - iat);
        if lifetime > max.as_secs_f64() {
            return Err(AuthError::Invalid(format!("its lifetime is over the {} s accepted", max.as_secs())));
        }
    }
    // An `exp` too far ahead for the clock type is no deadline at all (never a panic).
    let expires_at = exp
        .filter(|e| *e > 0.0)
        .and_then(|e| Duration::try_from_secs_f64(e).ok())
        .and_then(|d| UNIX_EPOCH.checked_add(d))
        .filter(|at| *at > SystemTime::UNIX_EPOCH);
    Ok(Identity {
        issuer: claims.iss,
        subject: claims.sub,
        mode,
        scope: claims.scope,
        // Only a claims-mode issuer's tokens name sellers; a provider's claim of that name means nothing here.
        sellers: claims.sellers.filter(|_| mode == IssuerMode::Claims),
        client_id: claims.client_id,
        azp: claims.azp,
        groups: claims.groups.unwrap_or_default(),
        jti: claims.jti,
        issued_at: iat.map(whole_seconds),
        expires_at,
    })
}

/// Seconds are whole in every provider's tokens; a fraction is dropped (the value is finite and not negative).
fn whole_seconds(value: f64) -> u64 {
    value as u64
}
