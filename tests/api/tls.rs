//! The main listener over TLS: every endpoint over HTTPS with HSTS, the certificate reloaded from disk (a broken
//! replacement refused, the old one kept), subscriptions over wss://, a graceful shutdown, and a start-up refused on
//! an unusable pair. Certificates are made in each test (rcgen); clients trust only the test's CA.

use std::time::Duration;

use cdvault_tests::operations::{REGISTER_SELLER, STORE_API_CREDENTIAL};
use cdvault_tests::tls::{CertDir, Pair, https_client, open_wss, served_certificate};
use cdvault_tests::ws::{closed, next, send, subscribe};
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, eventually, on_both_engines};
use serde_json::{Value, json};

const HSTS_ONE_YEAR: &str = "max-age=31536000";

async fn tls_app(engine: Engine, certs: &CertDir) -> TestApp {
    TestApp::builder(engine)
        .http(|http| {
            http.tls = Some(certs.options());
            http.metrics.on_main = true;
        })
        .spawn()
        .await
}

fn https(app: &TestApp, path: &str) -> String {
    format!("https://{}{path}", app.address)
}

/// A GraphQL request over HTTPS with a client that trusts only `ca_pem`.
async fn graphql(app: &TestApp, ca_pem: &str, query: &str, variables: Value) -> (reqwest::StatusCode, Value) {
    let token = app.token(ALL_SCOPES, &["*"]);
    let response = https_client(ca_pem)
        .post(https(app, "/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// The `tls` component of `/readyz`, read over HTTPS.
async fn tls_readiness(app: &TestApp, ca_pem: &str) -> Value {
    let response = https_client(ca_pem).get(https(app, "/readyz")).send().await.unwrap();
    response.json::<Value>().await.unwrap()["components"]["tls"].clone()
}

async fn every_endpoint_answers_over_https_with_hsts_and_plain_http_gets_no_answer(engine: Engine) {
    let pair = Pair::new();
    let certs = CertDir::new(&pair);
    let app = tls_app(engine, &certs).await;
    let client = https_client(&pair.ca_pem);

    let (status, body) = graphql(&app, &pair.ca_pem, REGISTER_SELLER, json!({ "login": "tlsshop" })).await;
    assert_eq!((status.as_u16(), &body["data"]["registerSellerAccount"]["apiLogin"]), (200, &json!("tlsshop-api")));
    for (path, expected) in
        [("/healthz", 200), ("/readyz", 200), ("/metrics", 200), ("/graphql", 200), ("/nowhere", 404)]
    {
        let response = client.get(https(&app, path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{path}");
        let hsts = response.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(hsts.as_deref(), Some(HSTS_ONE_YEAR), "{path}");
    }
    let readiness = tls_readiness(&app, &pair.ca_pem).await;
    assert_eq!(
        (&readiness["enabled"], &readiness["ok"], &readiness["reloads"]),
        (&json!(true), &json!(true), &json!(0))
    );

    // The port speaks TLS only: a plain HTTP request gets no HTTP answer.
    let plain = reqwest::Client::new().get(format!("http://{}/healthz", app.address)).send().await;
    assert!(plain.is_err_and(|e| !e.is_status()), "plain HTTP was answered on the TLS port");
    // A client that does not trust the certificate's CA refuses it.
    let stranger = https_client(&Pair::new().ca_pem).get(https(&app, "/healthz")).send().await;
    assert!(stranger.is_err(), "an untrusted certificate was accepted");
}
on_both_engines!(every_endpoint_answers_over_https_with_hsts_and_plain_http_gets_no_answer);

async fn a_certificate_replaced_on_disk_is_served_to_new_connections_without_a_restart(engine: Engine) {
    let (old, new) = (Pair::new(), Pair::new());
    let certs = CertDir::new(&old);
    let app = tls_app(engine, &certs).await;
    let both = [old.ca_pem.as_str(), new.ca_pem.as_str()];
    assert_eq!(served_certificate(app.address, &both).await.unwrap(), old.cert_der());

    certs.replace(&new.cert_pem, &new.key_pem);
    eventually("the new certificate is served", Duration::from_secs(10), || async {
        served_certificate(app.address, &both).await.is_ok_and(|served| served == new.cert_der())
    })
    .await;
    // A client that trusts only the new CA is served; one that trusts only the old CA no longer is.
    let (status, body) = graphql(&app, &new.ca_pem, REGISTER_SELLER, json!({ "login": "renewed" })).await;
    assert_eq!((status.as_u16(), &body["data"]["registerSellerAccount"]["login"]), (200, &json!("renewed")));
    assert!(https_client(&old.ca_pem).get(https(&app, "/healthz")).send().await.is_err());
    let readiness = tls_readiness(&app, &new.ca_pem).await;
    assert_eq!((&readiness["reloads"], &readiness["refused"]), (&json!(1), &json!(0)), "{readiness}");
}
on_both_engines!(a_certificate_replaced_on_disk_is_served_to_new_connections_without_a_restart);

async fn a_broken_replacement_is_refused_and_the_old_certificate_keeps_serving(engine: Engine) {
    let (old, other) = (Pair::new(), Pair::new());
    let certs = CertDir::new(&old);
    let app = tls_app(engine, &certs).await;

    // First a certificate with another pair's key (a half-finished renewal), then a file that is not PEM at all.
    for (replacement, refusals, error) in [
        ((other.cert_pem.as_str(), old.key_pem.as_str()), 1, "does not match"),
        (("not a certificate", other.key_pem.as_str()), 2, "no PEM certificate"),
    ] {
        certs.replace(replacement.0, replacement.1);
        eventually("the replacement is refused", Duration::from_secs(10), || async {
            tls_readiness(&app, &old.ca_pem).await["refused"] == refusals
        })
        .await;
        let readiness = tls_readiness(&app, &old.ca_pem).await;
        let last_error = readiness["last_error"].as_str().unwrap();
        assert!(last_error.contains(error), "{last_error}");
        assert!(!last_error.contains("PRIVATE KEY") && !last_error.contains("BEGIN"), "{last_error}");
        assert_eq!((&readiness["ok"], &readiness["reloads"]), (&json!(true), &json!(0)));
        let both = [old.ca_pem.as_str(), other.ca_pem.as_str()];
        assert_eq!(served_certificate(app.address, &both).await.unwrap(), old.cert_der());
        let (status, _) = graphql(&app, &old.ca_pem, "{ __typename }", json!({})).await;
        assert_eq!(status.as_u16(), 200);
    }
}
on_both_engines!(a_broken_replacement_is_refused_and_the_old_certificate_keeps_serving);

async fn subscriptions_run_over_wss_and_a_graceful_shutdown_closes_them(engine: Engine) {
    let pair = Pair::new();
    let certs = CertDir::new(&pair);
    let app = tls_app(engine, &certs).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    let mut socket = open_wss(app.address, &pair.ca_pem, None).await.unwrap();
    send(&mut socket, json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {admin}") } }))
        .await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let before = app.subscriptions_started();
    let query = "subscription { credentialChanged(sellerLogin: \"wssshop\") { sellerLogin version } }";
    subscribe(&mut socket, "1", query, json!({})).await;
    app.subscribed(before).await;

    graphql(&app, &pair.ca_pem, REGISTER_SELLER, json!({ "login": "wssshop" })).await;
    let stored = json!({ "i": { "sellerLogin": "wssshop", "password": "Wss-Passw0rd!" } });
    let (status, _) = graphql(&app, &pair.ca_pem, STORE_API_CREDENTIAL, stored).await;
    assert_eq!(status.as_u16(), 200);
    let heard = next(&mut socket, Duration::from_secs(10)).await.unwrap();
    assert_eq!(heard["payload"]["data"]["credentialChanged"], json!({ "sellerLogin": "wssshop", "version": 1 }));

    // The server stops within the bound although a socket is open (it is closed "going away"), and releases
    // its port.
    let address = app.address;
    let stopping = tokio::spawn(async move { drop(app.stop().await) });
    assert_eq!(closed(&mut socket, Duration::from_secs(10)).await.0, 1001);
    tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("the server did not stop").unwrap();
    assert!(served_certificate(address, &[&pair.ca_pem]).await.is_err(), "still serving after shutdown");
}
on_both_engines!(subscriptions_run_over_wss_and_a_graceful_shutdown_closes_them);

async fn a_server_refuses_to_start_on_an_unusable_certificate_naming_the_setting(engine: Engine) {
    let (pair, other) = (Pair::new(), Pair::new());
    let certs = CertDir::new(&pair);
    let start = |tls: cdvault_api::http::TlsOptions| TestApp::builder(engine).http(|http| http.tls = Some(tls));

    let mut missing_key = certs.options();
    missing_key.key_file = certs.cert_file().with_file_name("absent.key");
    let error = format!("{:#}", start(missing_key).try_spawn().await.err().unwrap());
    assert!(error.contains("CDVAULT_TLS_KEY_FILE") && error.contains("not found"), "{error}");

    certs.replace(&pair.cert_pem, &other.key_pem);
    let error = format!("{:#}", start(certs.options()).try_spawn().await.err().unwrap());
    assert!(error.contains("does not match the certificate"), "{error}");
    assert!(!error.contains("BEGIN"), "{error}");
}
on_both_engines!(a_server_refuses_to_start_on_an_unusable_certificate_naming_the_setting);

async fn plain_http_answers_carry_no_hsts_and_readyz_says_tls_is_off(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.headers().get("strict-transport-security"), None);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["components"]["tls"], json!({ "enabled": false, "ok": true }));
}
on_both_engines!(plain_http_answers_carry_no_hsts_and_readyz_says_tls_is_off);
