//! Which key of a provider's JWK set may verify which algorithm. A JWK that names an `alg` is used with that
//! algorithm only; one without (Entra publishes such keys) with the issuer's algorithms that fit its key type.
//! Symmetric (`oct`) keys are never used: a published secret is no secret, and accepting one would let anybody
//! sign. Keys cdvault cannot use are skipped one by one, never failing the whole set.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The algorithms a provider's key may verify (never a symmetric one).
pub(super) const ASYMMETRIC: &[Algorithm] = &[Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];

/// A key and the algorithms it may verify.
#[derive(Clone)]
struct UsableKey {
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// The usable keys of one JWK set, by `kid`.
#[derive(Clone, Default)]
pub(super) struct KeySet {
    keys: HashMap<String, Vec<UsableKey>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("kids", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

/// What a `kid` and an algorithm find in a set.
pub(super) enum Selection {
    Found(DecodingKey),
    /// The key exists but may not verify that algorithm.
    WrongAlgorithm,
    UnknownKid,
}

impl KeySet {
    /// The usable keys of a JWKS document for an issuer that accepts `accepted`. `Err` only when the document is
    /// not a JWK set at all.
    pub(super) fn parse(document: &[u8], issuer: &str, accepted: &[Algorithm]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document =
            serde_json::from_slice(document).map_err(|_| "the document is not a JWK set".to_owned())?;
        let mut set = Self::default();
        for value in document.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                tracing::warn!(issuer, "a key of the issuer's JWK set cannot be read: skipped");
                continue;
            };
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            match usable(&jwk, accepted) {
                Ok(key) if !kid.is_empty() => set.keys.entry(kid).or_default().push(key),
                Ok(_) => tracing::warn!(issuer, "a key of the issuer's JWK set has no kid: skipped"),
                Err(why) => tracing::warn!(issuer, kid, why, "a key of the issuer's JWK set is not used"),
            }
        }
        Ok(set)
    }

    /// The key named `kid` that may verify `algorithm`.
    pub(super) fn select(&self, kid: &str, algorithm: Algorithm) -> Selection {
        let Some(keys) = self.keys.get(kid) else { return Selection::UnknownKid };
        keys.iter()
            .find(|k| k.algorithms.contains(&algorithm))
            .map_or(Selection::WrongAlgorithm, |k| Selection::Found(k.key.clone()))
    }

    pub(super) fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }
}

/// The algorithms a key's type allows, narrowed by its `alg` and by what the issuer accepts.
fn usable(jwk: &Jwk, accepted: &[Algorithm]) -> Result<UsableKey, &'static str> {
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
        return Err("not a signature key (use)");
    }
    let fitting: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[Algorithm::RS256, Algorithm::PS256],
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => &[Algorithm::ES256],
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric (oct) key is never used from a JWK set"),
        _ => return Err("an unsupported key type or curve"),
    };
    let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
        None => fitting.to_vec(),
        Some(named) => match algorithm_of(named).filter(|a| fitting.contains(a)) {
            Some(algorithm) => vec![algorithm],
            None => return Err("its alg does not fit its key type, or is not supported"),
        },
    };
    let algorithms: Vec<Algorithm> = algorithms.into_iter().filter(|a| accepted.contains(a)).collect();
    if algorithms.is_empty() {
        return Err("none of the issuer's algorithms fits it");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "its parameters are not a valid key")?;
    Ok(UsableKey { algorithms, key })
}

fn algorithm_of(named: KeyAlgorithm) -> Option<Algorithm> {
    match named {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::PS256 => Some(Algorithm::PS256),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // A P-256 point and an Ed25519 key from RFC 7515 A.3 and RFC 8037 A.2; the RSA modulus only needs to parse.
    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";

    fn set(keys: serde_json::Value, accepted: &[Algorithm]) -> KeySet {
        KeySet::parse(json!({ "keys": keys }).to_string().as_bytes(), "test", accepted).unwrap()
    }

    fn finds(set: &KeySet, kid: &str, algorithm: Algorithm) -> bool {
        matches!(set.select(kid, algorithm), Selection::Found(_))
    }

    #[test]
    fn a_key_with_an_alg_verifies_that_algorithm_only() {
        let s = set(json!([{ "kty": "RSA", "kid": "r", "alg": "PS256", "n": RSA_N, "e": "AQAB" }]), ASYMMETRIC);
        assert!(finds(&s, "r", Algorithm::PS256));
        assert!(matches!(s.select("r", Algorithm::RS256), Selection::WrongAlgorithm));
    }

    #[test]
    fn a_key_without_alg_verifies_the_issuers_algorithms_that_fit_its_type() {
        let keys = json!([
            { "kty": "RSA", "kid": "r", "n": RSA_N, "e": "AQAB" },
            { "kty": "EC", "kid": "e", "crv": "P-256", "x": EC_X, "y": EC_Y },
            { "kty": "OKP", "kid": "o", "crv": "Ed25519", "x": ED_X },
        ]);
        let s = set(keys.clone(), ASYMMETRIC);
        assert!(finds(&s, "r", Algorithm::RS256) && finds(&s, "r", Algorithm::PS256));
        assert!(!finds(&s, "r", Algorithm::ES256) && !finds(&s, "r", Algorithm::HS256));
        assert!(finds(&s, "e", Algorithm::ES256) && !finds(&s, "e", Algorithm::RS256));
        assert!(finds(&s, "o", Algorithm::EdDSA) && !finds(&s, "o", Algorithm::ES256));
        let only_rs256 = set(keys, &[Algorithm::RS256]);
        assert!(finds(&only_rs256, "r", Algorithm::RS256) && !finds(&only_rs256, "r", Algorithm::PS256));
        assert_eq!(only_rs256.len(), 1, "keys no accepted algorithm fits are dropped");
    }

    #[test]
    fn symmetric_and_mismatched_keys_are_never_used() {
        let keys = json!([
            { "kty": "oct", "kid": "secret", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA" },
            { "kty": "oct", "kid": "bare", "k": "c2VjcmV0" },
            { "kty": "RSA", "kid": "hs", "alg": "HS256", "n": RSA_N, "e": "AQAB" },
            { "kty": "EC", "kid": "rs", "alg": "RS256", "crv": "P-256", "x": EC_X, "y": EC_Y },
            { "kty": "EC", "kid": "p384", "crv": "P-384", "x": EC_X, "y": EC_Y },
            { "kty": "RSA", "kid": "enc", "use": "enc", "n": RSA_N, "e": "AQAB" },
            { "kty": "RSA", "n": RSA_N, "e": "AQAB" },
            { "kty": "what", "kid": "odd" },
        ]);
        let s = set(keys, &[Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(s.len(), 0, "{s:?}");
        assert!(matches!(s.select("secret", Algorithm::HS256), Selection::UnknownKid));
    }

    #[test]
    fn a_document_that_is_not_a_jwk_set_is_an_error() {
        assert!(KeySet::parse(b"<html>", "test", ASYMMETRIC).is_err());
        assert!(KeySet::parse(b"{\"keys\": 3}", "test", ASYMMETRIC).is_err());
    }
}
