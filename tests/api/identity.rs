//! Identity end to end: a real OpenID provider (`oidc-provider`) found by discovery, access grants made through
//! GraphQL, revocation, the freeze across two replicas, forged tokens over HTTP, and WebSocket sessions ending with
//! their grant or their token. Skipped (one printed line) without the npm tools, unless `CI=true`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cdvault_api::auth::{IssuerSettings, JwtSettings, KeySource};
use cdvault_tests::oidc::{self, OidcClient, OidcProvider};
use cdvault_tests::operations::STORE_API_CREDENTIAL;
use cdvault_tests::tools::node_modules;
use cdvault_tests::ws::{Socket, closed, connect, next, send};
use cdvault_tests::{Engine, Gql, TestApp, eventually, hs256_settings, on_both_engines, token_for};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

const ERP: OidcClient =
    OidcClient { id: "erp", secret: "erp-secret-of-some-length", scope: "credentials:read audit:read" };
const SELLER: &str = "bestshop";
const OTHER: &str = "othershop";
const PASSWORD: &str = "Sup3r-Secret!";

const VIEWER: &str = "{ viewer { issuer subject grants scopes sellers frozen } }";
const CREATE_GRANT: &str = "mutation($i: CreateAccessGrantInput!) { createAccessGrant(input: $i) { id } }";
const DELETE_GRANT: &str = "mutation($id: ID!) { deleteAccessGrant(id: $id) { id } }";
const REVOKE_TOKEN: &str = "mutation($i: String!, $j: String!) { revokeToken(issuer: $i, jti: $j) { jti } }";
const FREEZE: &str = "mutation { freezeVault(reason: \"leak\") { frozen } }";

/// A cluster-like second provider whose key the test holds (`oidc-provider` never shows its own): the tokens a
/// real provider would not issue (expired, for another audience) are signed with it.
const CLUSTER: &str = "https://cluster.internal";
const CLUSTER_KID: &str = "cluster-1";
const CLUSTER_KEY: &[u8] = include_bytes!("../../crates/api/tests/keys/ec1.pem");

fn admin() -> String {
    token_for("security-admin", "access:admin vault:freeze", Some(&[]))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The test HS256 issuer (for the admins), the provider by discovery, and the cluster by a JWKS file.
fn settings(provider: &str, cluster_jwks: &std::path::Path) -> impl Fn() -> JwtSettings + Send + Sync + 'static {
    let (provider, cluster_jwks) = (provider.to_owned(), cluster_jwks.to_owned());
    move || {
        let mut settings = hs256_settings();
        let discovery = KeySource::Discovery { ca_file: None };
        settings.issuers.push(IssuerSettings::new(&provider, oidc::AUDIENCE, discovery));
        let file = KeySource::JwksFile(cluster_jwks.clone());
        settings.issuers.push(IssuerSettings::new(CLUSTER, oidc::AUDIENCE, file));
        settings
    }
}

/// A running provider and a server that trusts it, with two sellers ready to issue; `None` when the test skips.
struct World {
    provider: OidcProvider,
    app: TestApp,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start(test: &str, engine: Engine) -> Option<Self> {
        let modules = node_modules(test)?;
        let provider = OidcProvider::start(&modules, &[ERP]).await;
        let dir = tempfile::tempdir().unwrap();
        let cluster_jwks = dir.path().join("cluster-jwks.json");
        let key = EncodingKey::from_ec_pem(CLUSTER_KEY).unwrap();
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(CLUSTER_KID.to_owned());
        std::fs::write(&cluster_jwks, json!({ "keys": [jwk] }).to_string()).unwrap();
        let app = TestApp::builder(engine)
            .jwt(settings(&provider.issuer, &cluster_jwks))
            .seller_with_password(SELLER, PASSWORD)
            .seller_with_password(OTHER, "0ther-Secret!")
            .spawn()
            .await;
        Some(Self { provider, app, _dir: dir })
    }

    async fn token(&self, scope: &str) -> String {
        self.provider.client_credentials_token(&ERP, scope).await
    }

    /// Grants the `erp` client `credentials:read` on [`SELLER`]; returns the grant's id.
    async fn grant(&self, on: &TestApp) -> String {
        let input = json!({ "issuer": self.provider.issuer, "clientId": "erp", "scopes": ["credentials:read"], "sellers": [SELLER] });
        let made = on.graphql(Some(&admin()), CREATE_GRANT, json!({ "i": input })).await;
        made.data()["createAccessGrant"]["id"].as_str().unwrap().to_owned()
    }

    async fn revoke(&self, on: &TestApp, token: &str) {
        let jti = claims(token)["jti"].as_str().unwrap().to_owned();
        let vars = json!({ "i": self.provider.issuer, "j": jti });
        on.graphql(Some(&admin()), REVOKE_TOKEN, vars).await.data();
    }
}

fn claims(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap()
}

fn password(answer: &Gql) -> Option<&str> {
    answer.body["data"]["issueApiCredential"]["password"].as_str()
}

/// The `extensions` of a refusal, asserting it is 401 `UNAUTHENTICATED`.
fn unauthenticated(answer: &Gql) -> &Value {
    assert_eq!((answer.status, answer.code()), (401, "UNAUTHENTICATED"), "{}", answer.body);
    answer.error()
}

async fn a_provider_token_reaches_only_what_its_grant_gives_narrowed_by_its_scope(engine: Engine) {
    let test = "a_provider_token_reaches_only_what_its_grant_gives_narrowed_by_its_scope";
    let Some(world) = World::start(test, engine).await else { return };
    let (app, issuer) = (&world.app, world.provider.issuer.as_str());
    let token = world.token("credentials:read").await;

    let viewer = app.graphql(Some(&token), VIEWER, json!({})).await;
    assert_eq!(
        viewer.data()["viewer"],
        json!({ "issuer": issuer, "subject": "erp", "grants": [], "scopes": [], "sellers": [], "frozen": false })
    );
    let refused = app.issue_password(&token, SELLER).await;
    assert_eq!((refused.code(), refused.error()["reason"].as_str()), ("FORBIDDEN", Some("MISSING_SCOPE")));

    let id = world.grant(app).await;
    // This replica applied its own change: no poll to wait for.
    assert_eq!(password(&app.issue_password(&token, SELLER).await), Some(PASSWORD));
    assert_eq!(app.issue_password(&token, OTHER).await.code(), "FORBIDDEN", "the grant names one seller");
    let viewer = app.graphql(Some(&token), VIEWER, json!({})).await;
    let viewer = &viewer.data()["viewer"];
    // `credentials:read` implies the token-only scope.
    let scopes = json!(["credentials:read", "credentials:token"]);
    assert_eq!((&viewer["grants"], &viewer["scopes"]), (&json!([id]), &scopes));
    assert_eq!(viewer["sellers"], json!([SELLER]));

    let issues = app.audit(json!({ "action": "credential.issue", "seller": SELLER, "subject": "erp" })).await;
    let issued: Vec<_> = issues.iter().filter(|e| e["outcome"] == "SUCCESS").collect();
    assert_eq!(issued.len(), 1, "{issues:?}");
    assert_eq!((issued[0]["issuer"].as_str(), issued[0]["subject"].as_str()), (Some(issuer), Some("erp")));

    // A token asked for another scope gets nothing from a grant of `credentials:read`: the claim narrows only.
    let narrow = world.token("audit:read").await;
    let refused = app.issue_password(&narrow, SELLER).await;
    assert_eq!((refused.code(), refused.error()["reason"].as_str()), ("FORBIDDEN", Some("MISSING_SCOPE")));
    assert_eq!(app.graphql(Some(&narrow), VIEWER, json!({})).await.data()["viewer"]["scopes"], json!([]));
}
on_both_engines!(a_provider_token_reaches_only_what_its_grant_gives_narrowed_by_its_scope);

async fn a_revoked_provider_token_is_refused_while_a_fresh_one_works_even_with_the_provider_down(engine: Engine) {
    let test = "a_revoked_provider_token_is_refused_while_a_fresh_one_works_even_with_the_provider_down";
    let Some(world) = World::start(test, engine).await else { return };
    let app = &world.app;
    world.grant(app).await;
    let (leaked, fresh) = (world.token("credentials:read").await, world.token("credentials:read").await);
    assert_ne!(claims(&leaked)["jti"], claims(&fresh)["jti"]);
    assert_eq!(password(&app.issue_password(&leaked, SELLER).await), Some(PASSWORD));

    world.revoke(app, &leaked).await;
    let refused = app.issue_password(&leaked, SELLER).await;
    assert_eq!(unauthenticated(&refused)["reason"], "TOKEN_REVOKED");
    assert_eq!(password(&app.issue_password(&fresh, SELLER).await), Some(PASSWORD));
    let denied = app.audit(json!({ "action": "authenticate", "subject": "erp" })).await;
    assert_eq!((denied[0]["outcome"].as_str(), denied[0]["reason"].as_str()), (Some("DENIED"), Some("TOKEN_REVOKED")));
    assert_eq!(denied[0]["issuer"], world.provider.issuer.as_str());

    // The provider goes down: the key already fetched keeps verifying its tokens.
    world.provider.stop().await;
    assert_eq!(password(&app.issue_password(&fresh, SELLER).await), Some(PASSWORD));
    assert_eq!(unauthenticated(&app.issue_password(&leaked, SELLER).await)["reason"], "TOKEN_REVOKED");
}
on_both_engines!(a_revoked_provider_token_is_refused_while_a_fresh_one_works_even_with_the_provider_down);

/// Two replicas share only a PostgreSQL database (each SQLite test database is its own file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_revocations_and_freezes_made_on_one_replica_take_effect_on_the_other() {
    if Engine::postgres_admin_url().is_none() {
        return;
    }
    let test = "grants_revocations_and_freezes_made_on_one_replica_take_effect_on_the_other";
    let Some(world) = World::start(test, Engine::Postgres).await else { return };
    let first = &world.app;
    let second = &first.replica().spawn().await;
    let token = &world.token("credentials:read").await;
    assert_eq!(second.issue_password(token, SELLER).await.code(), "FORBIDDEN");
    let within = Duration::from_secs(5);

    world.grant(first).await;
    eventually("the other replica applies the grant", within, || async move {
        password(&second.issue_password(token, SELLER).await) == Some(PASSWORD)
    })
    .await;

    world.revoke(second, token).await;
    eventually("the first replica refuses the revoked token", within, || async move {
        let answer = first.issue_password(token, SELLER).await;
        answer.status == 401 && answer.body["errors"][0]["extensions"]["reason"] == "TOKEN_REVOKED"
    })
    .await;

    let fresh = &world.token("credentials:read").await;
    assert_eq!(password(&second.issue_password(fresh, SELLER).await), Some(PASSWORD));
    first.graphql(Some(&admin()), FREEZE, json!({})).await.data();
    eventually("the other replica is frozen", within, || async move {
        second.issue_password(fresh, SELLER).await.body["errors"][0]["extensions"]["code"] == "FROZEN"
    })
    .await;
}

/// A token with `header` and `claims`, signed with `key` (unsigned when `None`).
fn forge(header: &Value, claims: &Value, key: Option<(&EncodingKey, Algorithm)>) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let message = format!("{}.{}", part(header), part(claims));
    let signature =
        key.map_or_else(String::new, |(key, alg)| jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap());
    format!("{message}.{signature}")
}

/// The SubjectPublicKeyInfo PEM of a P-256 JWK, as an attacker builds it from the published key set.
fn p256_pem(jwk: &Value) -> String {
    const SPKI_P256_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
    let coordinate = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let mut der = hex::decode(SPKI_P256_PREFIX).unwrap();
    der.push(0x04);
    der.extend(coordinate("x"));
    der.extend(coordinate("y"));
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(der))
}

async fn forged_and_misdirected_tokens_are_refused_with_401_and_audited(engine: Engine) {
    let test = "forged_and_misdirected_tokens_are_refused_with_401_and_audited";
    let Some(world) = World::start(test, engine).await else { return };
    let app = &world.app;
    world.grant(app).await;
    let genuine = world.token("credentials:read").await;
    let kid = jsonwebtoken::decode_header(&genuine).unwrap().kid.unwrap();
    let real = claims(&genuine);
    let published = world.provider.jwks().await["keys"][0].clone();
    assert_eq!(published["kid"].as_str(), Some(kid.as_str()));
    let es256 = |kid: &str| json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
    let hs256 = json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid });
    let cluster_key = EncodingKey::from_ec_pem(CLUSTER_KEY).unwrap();
    let by_cluster = (&cluster_key, Algorithm::ES256);
    let cluster = |edit: &dyn Fn(&mut Value)| {
        let mut claims = json!({ "iss": CLUSTER, "sub": "system:serviceaccount:payments:sync", "aud": oidc::AUDIENCE,
                                  "iat": now(), "exp": now() + 300, "jti": "c-1" });
        edit(&mut claims);
        forge(&es256(CLUSTER_KID), &claims, Some(by_cluster))
    };
    // The cluster's own well-formed token passes: its refusals below are for what was changed.
    let control = app.graphql(Some(&cluster(&|_| {})), VIEWER, json!({})).await;
    assert_eq!(control.data()["viewer"]["issuer"], CLUSTER);

    let pem = p256_pem(&published);
    let mut tampered = real.clone();
    tampered["sub"] = "security-admin".into();
    let signature = genuine.rsplit('.').next().unwrap();
    let attacks = [
        ("alg none", forge(&json!({ "alg": "none", "typ": "at+jwt", "kid": kid }), &real, None), "malformed header"),
        (
            "HS256 keyed with the provider's public key as PEM",
            forge(&hs256, &real, Some((&EncodingKey::from_secret(pem.as_bytes()), Algorithm::HS256))),
            "algorithm not accepted",
        ),
        (
            "HS256 keyed with the provider's JWK",
            forge(&hs256, &real, Some((&EncodingKey::from_secret(published.to_string().as_bytes()), Algorithm::HS256))),
            "algorithm not accepted",
        ),
        (
            "a genuine token with its subject edited",
            format!("{}.{signature}", forge(&es256(&kid), &tampered, None).trim_end_matches('.')),
            "bad signature",
        ),
        ("another audience", cluster(&|c| c["aud"] = "https://other.internal".into()), "wrong audience"),
        (
            "expired",
            cluster(&|c| {
                c["iat"] = (now() - 7200).into();
                c["exp"] = (now() - 3600).into();
            }),
            "it has expired",
        ),
        ("a kid the provider never published", forge(&es256("rogue"), &real, Some(by_cluster)), "is not the issuer's"),
        ("a kid of another issuer", forge(&es256(CLUSTER_KID), &real, Some(by_cluster)), "is not the issuer's"),
        ("an unknown issuer", cluster(&|c| c["iss"] = "https://evil.example".into()), "wrong issuer"),
    ];
    for (attack, token, why) in &attacks {
        let answer = app.issue_password(token, SELLER).await;
        assert_eq!(unauthenticated(&answer)["reason"], "INVALID_TOKEN", "{attack}: {}", answer.body);
        let message = answer.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{attack}: refused for another reason: {message}");
        assert!(!answer.body.to_string().contains(PASSWORD), "{attack}");
    }
    let denied = app.audit(json!({ "action": "authenticate" })).await;
    let reasons: Vec<_> = denied.iter().map(|e| (e["outcome"].as_str(), e["reason"].as_str())).collect();
    assert_eq!(reasons, vec![(Some("DENIED"), Some("INVALID_TOKEN")); attacks.len()]);
    assert_eq!(password(&app.issue_password(&genuine, SELLER).await), Some(PASSWORD), "the genuine one still works");
}
on_both_engines!(forged_and_misdirected_tokens_are_refused_with_401_and_audited);

/// Subscribes to [`SELLER`]'s credential changes with `token` and waits until the server listens.
async fn subscribe(app: &TestApp, token: &str) -> Socket {
    let mut socket = connect(app, Some(token)).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let query = "subscription($s: String) { credentialChanged(sellerLogin: $s) { sellerLogin } }";
    let before = app.subscriptions_started();
    let payload = json!({ "query": query, "variables": { "s": SELLER } });
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": payload })).await;
    app.subscribed(before).await;
    socket
}

/// Stores a new password for [`SELLER`] and asserts the session hears of it: it is alive.
async fn assert_listening(app: &TestApp, socket: &mut Socket) {
    let writer = token_for("writer", "credentials:write", Some(&["*"]));
    let input = json!({ "sellerLogin": SELLER, "password": "N3w-Secret!" });
    app.graphql(Some(&writer), STORE_API_CREDENTIAL, json!({ "i": input })).await.data();
    let heard = next(socket, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (heard["type"].as_str(), &heard["payload"]["data"]["credentialChanged"]["sellerLogin"]),
        (Some("next"), &json!(SELLER))
    );
}

/// The session ends: the socket closes with 4403 and `reason` (a `complete` of the subscription may come first).
async fn assert_closed(socket: &mut Socket, after: &str, reason: &str) {
    let close = closed(socket, Duration::from_secs(5)).await;
    assert_eq!(close, (4403, reason.to_owned()), "the session did not end as it should after {after}");
}

async fn a_provider_session_ends_when_its_grant_is_deleted_or_its_token_revoked(engine: Engine) {
    let test = "a_provider_session_ends_when_its_grant_is_deleted_or_its_token_revoked";
    let Some(world) = World::start(test, engine).await else { return };
    let app = &world.app;

    let id = world.grant(app).await;
    let mut socket = subscribe(app, &world.token("credentials:read").await).await;
    assert_listening(app, &mut socket).await;
    app.graphql(Some(&admin()), DELETE_GRANT, json!({ "id": id })).await.data();
    assert_closed(&mut socket, "its grant was deleted", "Forbidden").await;

    world.grant(app).await;
    let token = world.token("credentials:read").await;
    let mut socket = subscribe(app, &token).await;
    assert_listening(app, &mut socket).await;
    world.revoke(app, &token).await;
    assert_closed(&mut socket, "its token was revoked", "Token revoked").await;
}
on_both_engines!(a_provider_session_ends_when_its_grant_is_deleted_or_its_token_revoked);
