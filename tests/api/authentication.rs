use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cdvault_api::auth::{JwtKey, JwtSettings};
use cdvault_tests::operations::VIEWER;
use cdvault_tests::{ALL_SCOPES, AUDIENCE, Engine, ISSUER, JWT_SECRET, TestApp, on_both_engines, spawn_app, token_for};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn claims() -> Value {
    json!({
        "sub": "tool", "scope": ALL_SCOPES, "sellers": ["*"],
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "iat": now(),
    })
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn with(key: &str, value: Value) -> Value {
    let mut c = claims();
    c[key] = value;
    c
}

async fn viewer_code(app: &TestApp, token: &str) -> (u16, String) {
    let answer = app.graphql(Some(token), VIEWER, json!({})).await;
    (answer.status, answer.code().to_owned())
}

async fn expired_unsigned_forged_and_misaddressed_tokens_are_unauthenticated(engine: Engine) {
    let app = spawn_app(engine).await;
    let secret = JWT_SECRET.as_bytes();
    let header_none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());
    let cases = [
        ("expired beyond the leeway", sign(&with("exp", json!(now() - 120)), secret)),
        ("not valid yet", sign(&with("nbf", json!(now() + 600)), secret)),
        ("alg none", format!("{header_none}.{body}.")),
        ("wrongly signed", sign(&claims(), b"another-secret-of-at-least-32-bytes!!")),
        ("wrong audience", sign(&with("aud", json!("someone-else")), secret)),
        ("wrong issuer", sign(&with("iss", json!("evil")), secret)),
        ("without exp", {
            let mut c = claims();
            c.as_object_mut().unwrap().remove("exp");
            sign(&c, secret)
        }),
        ("sellers not an array", sign(&with("sellers", json!("*")), secret)),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (case, token) in cases {
        assert_eq!(viewer_code(&app, &token).await, (401, "UNAUTHENTICATED".to_owned()), "{case}");
    }
    // The leeway is 30 s: 45 s past `exp` is refused, 5 s past is accepted.
    assert_eq!(viewer_code(&app, &sign(&with("exp", json!(now() - 45)), secret)).await.1, "UNAUTHENTICATED");
    assert_eq!(
        app.graphql(Some(&sign(&with("exp", json!(now() - 5)), secret)), VIEWER, json!({})).await.data()["viewer"]["subject"],
        "tool"
    );
    let refusals = app.audit(json!({ "action": "authenticate" })).await;
    assert_eq!(refusals.len(), 10, "every refused token is audited: {refusals:?}");
    assert!(refusals.iter().all(|e| e["outcome"] == "DENIED"));
}
on_both_engines!(expired_unsigned_forged_and_misaddressed_tokens_are_unauthenticated);

async fn a_request_without_a_token_is_unauthenticated(engine: Engine) {
    let app = spawn_app(engine).await;
    let answer = app.graphql(None, VIEWER, json!({})).await;
    assert_eq!(answer.code(), "UNAUTHENTICATED");
    let answer = app
        .graphql(None, "mutation { issueApiCredential(sellerLogin: \"x1\", purpose: \"p\") { password } }", json!({}))
        .await;
    assert_eq!(answer.code(), "UNAUTHENTICATED");
    let malformed = app
        .client
        .post(app.url("/graphql"))
        .header("authorization", "Basic abc")
        .json(&json!({"query": VIEWER}))
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 401);
}
on_both_engines!(a_request_without_a_token_is_unauthenticated);

async fn a_token_for_seller_a_cannot_issue_seller_bs_credential(engine: Engine) {
    let app = spawn_app(engine).await;
    app.seller_with_password("seller-a", "Passw0rd-A!").await;
    app.seller_with_password("seller-b", "Passw0rd-B!").await;
    let token_a = app.token("credentials:read", &["seller-a"]);

    assert_eq!(app.issue_password(&token_a, "seller-a").await.data()["issueApiCredential"]["password"], "Passw0rd-A!");
    let denied = app.issue_password(&token_a, "seller-b").await;
    assert_eq!(denied.code(), "FORBIDDEN");
    assert_eq!(denied.error()["reason"], "SELLER_NOT_ALLOWED");
    assert!(!denied.body.to_string().contains("Passw0rd-B!"));

    let events = app.audit(json!({ "seller": "seller-b", "action": "credential.issue" })).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["outcome"], "DENIED");
    assert_eq!(events[0]["reason"], "SELLER_NOT_ALLOWED");
    assert_eq!(events[0]["subject"], "tool");
}
on_both_engines!(a_token_for_seller_a_cannot_issue_seller_bs_credential);

async fn a_missing_scope_is_forbidden_like_a_foreign_seller_and_audited(engine: Engine) {
    let app = spawn_app(engine).await;
    app.seller_with_password("shop1", "Passw0rd-1!").await;
    let writer = app.token("credentials:write", &["*"]);
    let denied = app.issue_password(&writer, "shop1").await;
    assert_eq!(denied.code(), "FORBIDDEN");
    assert_eq!(denied.error()["reason"], "MISSING_SCOPE");

    let reader = app.token("credentials:read", &["*"]);
    assert_eq!(app.register(&reader, "shop2").await.code(), "FORBIDDEN");
    assert_eq!(app.store_password(&reader, "shop1", "x").await.code(), "FORBIDDEN");
    let audit = app.graphql(Some(&reader), "{ auditEvents { edges { node { seq } } } }", json!({})).await;
    assert_eq!(audit.code(), "FORBIDDEN");

    let denials = app.audit(json!({})).await.into_iter().filter(|e| e["outcome"] == "DENIED").count();
    assert_eq!(denials, 4);
}
on_both_engines!(a_missing_scope_is_forbidden_like_a_foreign_seller_and_audited);

async fn a_token_without_a_sellers_claim_reaches_no_seller(engine: Engine) {
    let app = spawn_app(engine).await;
    app.seller_with_password("shop1", "Passw0rd-1!").await;
    let token = token_for("tool", ALL_SCOPES, None);
    assert_eq!(app.issue_password(&token, "shop1").await.code(), "FORBIDDEN");
    let list = app.graphql(Some(&token), "{ sellerAccounts { edges { node { login } } } }", json!({})).await;
    assert_eq!(list.data()["sellerAccounts"]["edges"], json!([]));
}
on_both_engines!(a_token_without_a_sellers_claim_reaches_no_seller);

fn eddsa_settings() -> JwtSettings {
    let pem = include_bytes!("../fixtures/ed25519-public.pem").to_vec();
    JwtSettings::single(JwtKey::PublicPem { algorithm: Algorithm::EdDSA, pem }, ISSUER, AUDIENCE)
}

async fn an_eddsa_server_accepts_its_key_and_refuses_hs256_tokens(engine: Engine) {
    let app = TestApp::builder(engine).jwt(eddsa_settings).spawn().await;
    let private = EncodingKey::from_ed_pem(include_bytes!("../fixtures/ed25519-private.pem")).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims(), &private).unwrap();
    let me = app.graphql(Some(&token), VIEWER, json!({})).await;
    assert_eq!(me.data()["viewer"]["subject"], "tool");

    // Algorithm confusion: an HS256 token "signed" with the public key bytes is refused.
    let confused = sign(&claims(), include_bytes!("../fixtures/ed25519-public.pem"));
    assert_eq!(viewer_code(&app, &confused).await.1, "UNAUTHENTICATED");
}
on_both_engines!(an_eddsa_server_accepts_its_key_and_refuses_hs256_tokens);

async fn a_denial_for_a_garbage_seller_login_is_audited_without_it(engine: Engine) {
    let app = spawn_app(engine).await;
    let writer = app.token("credentials:write", &["*"]);
    let garbage = "x".repeat(5000);
    let denied = app.issue_password(&writer, &garbage).await;
    assert_eq!(denied.code(), "FORBIDDEN");
    let events = app.audit(json!({ "action": "credential.issue" })).await;
    assert_eq!(events.len(), 1, "the denial is recorded");
    assert_eq!(events[0]["sellerLogin"], json!(null));

    let long_subject = token_for(&"s".repeat(300), ALL_SCOPES, Some(&["*"]));
    assert_eq!(viewer_code(&app, &long_subject).await.1, "UNAUTHENTICATED");
}
on_both_engines!(a_denial_for_a_garbage_seller_login_is_audited_without_it);

async fn standard_claim_forms_from_identity_providers_are_accepted(engine: Engine) {
    let app = spawn_app(engine).await;
    let secret = JWT_SECRET.as_bytes();
    let mut without_iat = claims();
    without_iat.as_object_mut().unwrap().remove("iat");
    let cases = [
        ("an audience array", with("aud", json!(["other-service", AUDIENCE]))),
        ("no iat", without_iat),
        ("a fractional exp", with("exp", json!(now() as f64 + 600.5))),
    ];
    for (case, claims) in cases {
        let me = app.graphql(Some(&sign(&claims, secret)), VIEWER, json!({})).await;
        assert_eq!(me.data()["viewer"]["subject"], "tool", "{case}");
    }
    let control = sign(&with("sub", json!("tool\u{0}")), secret);
    assert_eq!(viewer_code(&app, &control).await.1, "UNAUTHENTICATED");
}
on_both_engines!(standard_claim_forms_from_identity_providers_are_accepted);

async fn a_viewer_query_without_a_token_is_an_audited_denial(engine: Engine) {
    let app = spawn_app(engine).await;
    assert_eq!(app.graphql(None, VIEWER, json!({})).await.code(), "UNAUTHENTICATED");
    let events = app.audit(json!({ "action": "viewer" })).await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0]["outcome"].as_str(), events[0]["reason"].as_str()), (Some("DENIED"), Some("MISSING_TOKEN")));
}
on_both_engines!(a_viewer_query_without_a_token_is_an_audited_denial);
