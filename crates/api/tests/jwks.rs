//! Tokens from identity providers: key sets served by a small HTTP server on 127.0.0.1 that each test controls (its
//! keys, whether it is up, how many times it was asked), OIDC discovery, a JWKS file, and the attacks a verifier
//! must refuse. Keys are fixed test vectors in `tests/keys` (made with openssl; they protect nothing).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cdvault_api::auth::{AuthError, IssuerMode, IssuerSettings, JwtSettings, JwtVerifier, KeySource, RefreshTiming};
use cdvault_domain::Reason;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const AUDIENCE: &str = "https://cdvault.internal";
const RSA1: &[u8] = include_bytes!("keys/rsa1.pem");
const RSA1_PUBLIC: &[u8] = include_bytes!("keys/rsa1.pub.pem");
const RSA2: &[u8] = include_bytes!("keys/rsa2.pem");
const EC1: &[u8] = include_bytes!("keys/ec1.pem");
const EC2: &[u8] = include_bytes!("keys/ec2.pem");
const ED1: &[u8] = include_bytes!("keys/ed1.pem");

/// What the test provider serves, and how often it was asked for its keys.
#[derive(Default)]
struct Provider {
    jwks: Mutex<Value>,
    discovery_issuer: Mutex<Option<String>>,
    down: AtomicBool,
    fetches: AtomicUsize,
}

struct Served {
    base: String,
    provider: Arc<Provider>,
}

impl Served {
    fn set_keys(&self, keys: Vec<Value>) {
        *self.provider.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn fetches(&self) -> usize {
        self.provider.fetches.load(Ordering::SeqCst)
    }

    fn down(&self, down: bool) {
        self.provider.down.store(down, Ordering::SeqCst);
    }
}

async fn serve(keys: Vec<Value>) -> Served {
    async fn jwks(State(p): State<Arc<Provider>>) -> Response {
        if p.down.load(Ordering::SeqCst) {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        p.fetches.fetch_add(1, Ordering::SeqCst);
        let body = p.jwks.lock().unwrap().clone();
        ([("cache-control", "public, max-age=3600")], Json(body)).into_response()
    }
    async fn discovery(State(p): State<Arc<Provider>>) -> Response {
        let issuer = p.discovery_issuer.lock().unwrap().clone().unwrap_or_default();
        Json(json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks") })).into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let provider = Arc::new(Provider::default());
    *provider.jwks.lock().unwrap() = json!({ "keys": keys });
    *provider.discovery_issuer.lock().unwrap() = Some(base.clone());
    let app = axum::Router::new()
        .route("/jwks", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .with_state(provider.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Served { base, provider }
}

/// The public JWK of a private PEM, with a `kid` and, if given, an `alg`.
fn jwk(pem: &[u8], algorithm: Algorithm, kid: &str, with_alg: bool) -> Value {
    let mut jwk = Jwk::from_encoding_key(&encoding_key(pem, algorithm), algorithm).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    if !with_alg {
        jwk.common.key_algorithm = None;
    }
    serde_json::to_value(jwk).unwrap()
}

fn encoding_key(pem: &[u8], algorithm: Algorithm) -> EncodingKey {
    match algorithm {
        Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(pem).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem).unwrap(),
        _ => EncodingKey::from_secret(pem),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Claims like `oidc-provider`'s client-credentials access tokens.
fn claims(issuer: &str) -> Value {
    json!({ "iss": issuer, "sub": "billing-tool", "aud": AUDIENCE, "client_id": "billing-tool",
            "scope": "credentials:read", "jti": "j-1", "iat": now(), "exp": now() + 300 })
}

fn sign(pem: &[u8], algorithm: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding_key(pem, algorithm)).unwrap()
}

/// An edit of a token's claims.
type Change = dyn Fn(&mut Value);

fn fast() -> RefreshTiming {
    RefreshTiming { min_refetch: Duration::from_millis(200), ..RefreshTiming::default() }
}

fn verifier(issuers: Vec<IssuerSettings>, timing: RefreshTiming) -> JwtVerifier {
    JwtVerifier::with_timing(&JwtSettings { issuers, max_lifetime: None }, timing).unwrap()
}

fn jwks_issuer(served: &Served, issuer: &str) -> IssuerSettings {
    let source = KeySource::JwksUrl { url: format!("{}/jwks", served.base), ca_file: None };
    IssuerSettings::new(issuer, AUDIENCE, source)
}

fn refused_because(result: Result<cdvault_api::auth::Identity, AuthError>, reason: Reason) -> String {
    match result {
        Err(e) => {
            assert_eq!(e.reason(), reason, "{e}");
            e.to_string()
        }
        Ok(identity) => panic!("accepted: {identity:?}"),
    }
}

#[tokio::test]
async fn a_token_signed_by_a_rotated_in_key_is_accepted_after_one_refresh() {
    let served = serve(vec![jwk(RSA1, Algorithm::RS256, "k1", true)]).await;
    let v = verifier(vec![jwks_issuer(&served, "idp")], fast());
    let identity = v.verify(&sign(RSA1, Algorithm::RS256, Some("k1"), &claims("idp"))).await.unwrap();
    assert_eq!((identity.issuer.as_str(), identity.subject.as_str()), ("idp", "billing-tool"));
    assert_eq!(identity.mode, IssuerMode::Grants, "a provider's issuer is grants-only by default");
    assert_eq!(identity.client_id.as_deref(), Some("billing-tool"));
    assert_eq!(served.fetches(), 1);

    served.set_keys(vec![jwk(RSA1, Algorithm::RS256, "k1", true), jwk(EC2, Algorithm::ES256, "k2", true)]);
    tokio::time::sleep(fast().min_refetch).await;
    let rotated = sign(EC2, Algorithm::ES256, Some("k2"), &claims("idp"));
    assert_eq!(v.verify(&rotated).await.unwrap().subject, "billing-tool");
    assert_eq!(served.fetches(), 2, "one refresh brought the new key");
    v.verify(&rotated).await.unwrap();
    assert_eq!(served.fetches(), 2, "a known key needs no fetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_causes_at_most_one_fetch_per_interval() {
    let served = serve(vec![jwk(RSA1, Algorithm::RS256, "k1", true)]).await;
    let v = Arc::new(verifier(vec![jwks_issuer(&served, "idp")], RefreshTiming::default()));
    let flood = || {
        (0..200).map(|i| {
            let (v, token) = (v.clone(), sign(RSA1, Algorithm::RS256, Some(&format!("random-{i}")), &claims("idp")));
            tokio::spawn(async move { v.verify(&token).await })
        })
    };
    for result in futures::future::join_all(flood()).await {
        refused_because(result.unwrap(), Reason::InvalidToken);
    }
    assert_eq!(served.fetches(), 1, "the first request fetched; the others waited for it");
    for result in futures::future::join_all(flood()).await {
        refused_because(result.unwrap(), Reason::InvalidToken);
    }
    assert_eq!(served.fetches(), 1, "within the interval, no fetch at all");
    v.verify(&sign(RSA1, Algorithm::RS256, Some("k1"), &claims("idp"))).await.unwrap();
}

#[tokio::test]
async fn a_provider_down_keeps_known_keys_working_and_new_ones_unavailable() {
    let served = serve(vec![jwk(RSA1, Algorithm::RS256, "k1", true)]).await;
    let v = verifier(vec![jwks_issuer(&served, "idp")], fast());
    let known = sign(RSA1, Algorithm::RS256, Some("k1"), &claims("idp"));
    v.verify(&known).await.unwrap();
    served.down(true);
    tokio::time::sleep(fast().min_refetch).await;
    let new = sign(EC1, Algorithm::ES256, Some("k9"), &claims("idp"));
    refused_because(v.verify(&new).await, Reason::IssuerKeysUnavailable);
    v.verify(&known).await.unwrap();
}

#[tokio::test]
async fn a_provider_down_at_start_up_gives_keys_unavailable_until_its_keys_arrive() {
    let served = serve(vec![jwk(ED1, Algorithm::EdDSA, "ed", false)]).await;
    served.down(true);
    let v = verifier(vec![jwks_issuer(&served, "idp")], fast());
    v.start();
    let token = sign(ED1, Algorithm::EdDSA, Some("ed"), &claims("idp"));
    refused_because(v.verify(&token).await, Reason::IssuerKeysUnavailable);
    served.down(false);
    tokio::time::sleep(fast().min_refetch).await;
    assert_eq!(v.verify(&token).await.unwrap().subject, "billing-tool", "an EdDSA key without alg");
}

#[tokio::test]
async fn discovery_finds_the_keys_and_a_document_naming_another_issuer_is_refused() {
    let served = serve(vec![jwk(EC1, Algorithm::ES256, "e1", true)]).await;
    let issuer = served.base.clone();
    let settings = || IssuerSettings::new(&issuer, AUDIENCE, KeySource::Discovery { ca_file: None });
    let token = sign(EC1, Algorithm::ES256, Some("e1"), &claims(&issuer));
    assert_eq!(verifier(vec![settings()], fast()).verify(&token).await.unwrap().issuer, issuer);

    *served.provider.discovery_issuer.lock().unwrap() = Some(format!("{issuer}/elsewhere"));
    let fetches = served.fetches();
    refused_because(verifier(vec![settings()], fast()).verify(&token).await, Reason::IssuerKeysUnavailable);
    assert_eq!(served.fetches(), fetches, "the keys of a mismatched document are never fetched");
}

#[tokio::test]
async fn an_oct_key_in_a_jwks_is_never_used() {
    let secret = b"a-shared-secret-of-at-least-32-bytes!!";
    let oct = json!({ "kty": "oct", "kid": "shared", "alg": "HS256",
                      "k": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret) });
    let served = serve(vec![oct, jwk(RSA1, Algorithm::RS256, "k1", true)]).await;
    let v = verifier(vec![jwks_issuer(&served, "idp")], fast());
    let token = sign(secret, Algorithm::HS256, Some("shared"), &claims("idp"));
    refused_because(v.verify(&token).await, Reason::InvalidToken);
    let mut only_rsa = jwks_issuer(&served, "idp");
    only_rsa.algorithms = vec![Algorithm::HS256];
    assert!(
        JwtVerifier::new(&JwtSettings { issuers: vec![only_rsa], max_lifetime: None }).is_err(),
        "HS256 from a JWKS"
    );
}

#[tokio::test]
async fn a_key_used_with_another_algorithm_than_its_jwk_names_is_refused() {
    let served = serve(vec![jwk(RSA1, Algorithm::RS256, "k1", true), jwk(RSA2, Algorithm::RS256, "bare", false)]).await;
    let v = verifier(vec![jwks_issuer(&served, "idp")], fast());
    let e = refused_because(
        v.verify(&sign(RSA1, Algorithm::PS256, Some("k1"), &claims("idp"))).await,
        Reason::InvalidToken,
    );
    assert!(e.contains("algorithm"), "{e}");
    // Without `alg`, an RSA key verifies both RSA algorithms the issuer accepts.
    v.verify(&sign(RSA2, Algorithm::PS256, Some("bare"), &claims("idp"))).await.unwrap();
    v.verify(&sign(RSA2, Algorithm::RS256, Some("bare"), &claims("idp"))).await.unwrap();
}

#[tokio::test]
async fn hs256_signed_with_an_rsa_public_keys_bytes_is_refused() {
    let served = serve(vec![jwk(RSA1, Algorithm::RS256, "k1", true)]).await;
    let pem = KeySource::PublicPem { algorithm: Algorithm::RS256, pem: RSA1_PUBLIC.to_vec() };
    let v = verifier(vec![IssuerSettings::new("pem", AUDIENCE, pem), jwks_issuer(&served, "idp")], fast());
    for issuer in ["pem", "idp"] {
        let forged = sign(RSA1_PUBLIC, Algorithm::HS256, Some("k1"), &claims(issuer));
        refused_because(v.verify(&forged).await, Reason::InvalidToken);
    }
    let genuine = v.verify(&sign(RSA1, Algorithm::RS256, None, &claims("pem"))).await.unwrap();
    assert_eq!(genuine.mode, IssuerMode::Claims, "a static key keeps claims mode");
}

#[tokio::test]
async fn an_unsigned_token_is_refused() {
    let served = serve(vec![jwk(RSA1, Algorithm::RS256, "k1", true)]).await;
    let v = verifier(vec![jwks_issuer(&served, "idp")], fast());
    let b64 = |v: &Value| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v.to_string());
    for alg in ["none", "None", "NONE"] {
        let token = format!("{}.{}.", b64(&json!({ "alg": alg, "kid": "k1" })), b64(&claims("idp")));
        refused_because(v.verify(&token).await, Reason::InvalidToken);
    }
}

#[tokio::test]
async fn a_kid_of_another_issuer_is_refused() {
    let served = serve(vec![jwk(RSA1, Algorithm::RS256, "a-key", true)]).await;
    let other = serve(vec![jwk(EC1, Algorithm::ES256, "b-key", true)]).await;
    let v = verifier(vec![jwks_issuer(&served, "a"), jwks_issuer(&other, "b")], fast());
    v.verify(&sign(EC1, Algorithm::ES256, Some("b-key"), &claims("b"))).await.unwrap();
    let e = refused_because(
        v.verify(&sign(EC1, Algorithm::ES256, Some("b-key"), &claims("a"))).await,
        Reason::InvalidToken,
    );
    assert!(e.contains("kid"), "{e}");
}

#[tokio::test]
async fn wrong_issuer_or_audience_expired_and_too_long_lived_tokens_are_refused() {
    let served = serve(vec![jwk(RSA1, Algorithm::RS256, "k1", true)]).await;
    let settings =
        JwtSettings { issuers: vec![jwks_issuer(&served, "idp")], max_lifetime: Some(Duration::from_secs(3600)) };
    let v = JwtVerifier::with_timing(&settings, fast()).unwrap();
    let token = |change: &Change| {
        let mut c = claims("idp");
        change(&mut c);
        sign(RSA1, Algorithm::RS256, Some("k1"), &c)
    };
    v.verify(&token(&|_| {})).await.unwrap();
    let cases: [(&str, &Change); 6] = [
        ("wrong issuer", &|c| c["iss"] = json!("https://evil.example")),
        ("wrong audience", &|c| c["aud"] = json!("someone-else")),
        ("expired", &|c| c["exp"] = json!(now() - 120)),
        ("lifetime is over", &|c| c["exp"] = json!(now() + 7200)),
        ("'iat'", &|c| drop(c.as_object_mut().unwrap().remove("iat"))),
        ("'sub'", &|c| drop(c.as_object_mut().unwrap().remove("sub"))),
    ];
    for (what, change) in cases {
        let e = refused_because(v.verify(&token(change)).await, Reason::InvalidToken);
        assert!(e.contains(what), "{what}: {e}");
    }
}

#[tokio::test]
async fn kubernetes_service_account_tokens_are_verified_with_a_jwks_file_reread_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let write = |keys: Vec<Value>| std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
    write(vec![jwk(RSA1, Algorithm::RS256, "sa-1", true)]);
    let issuer = "https://kubernetes.default.svc.cluster.local";
    let v = verifier(vec![IssuerSettings::new(issuer, AUDIENCE, KeySource::JwksFile(path.clone()))], fast());
    let sa = |pem: &[u8], alg: Algorithm, kid: &str| {
        let c = json!({ "iss": issuer, "aud": [AUDIENCE], "sub": "system:serviceaccount:billing:exporter",
                        "iat": now(), "nbf": now(), "exp": now() + 3600,
                        "kubernetes.io": { "namespace": "billing", "serviceaccount": { "name": "exporter" } } });
        sign(pem, alg, Some(kid), &c)
    };
    let identity = v.verify(&sa(RSA1, Algorithm::RS256, "sa-1")).await.unwrap();
    assert_eq!(identity.subject, "system:serviceaccount:billing:exporter");
    assert_eq!(identity.mode, IssuerMode::Grants);

    write(vec![jwk(EC2, Algorithm::ES256, "sa-2", true)]);
    tokio::time::sleep(fast().min_refetch).await;
    v.verify(&sa(EC2, Algorithm::ES256, "sa-2")).await.unwrap();
    refused_because(v.verify(&sa(RSA1, Algorithm::RS256, "sa-1")).await, Reason::InvalidToken);
}
