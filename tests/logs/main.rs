//! Runs the server with every log line captured (trace level) and checks that no plaintext password, client secret,
//! JWT or TLS private key appears in them. In a test binary of its own: it installs the process-wide subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdvault_fake_marketplace::FakeMarketplace;
use cdvault_tests::operations::{SUBMIT_PAYOUT_CHANGE, VIEWER, payout_move};
use cdvault_tests::tls::{CertDir, Pair};
use cdvault_tests::{ALL_SCOPES, Engine, Octopia, TestApp, token_for};
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_appears_in_the_logs_even_at_trace_level() {
    let capture = Capture::default();
    // The server's own log format, everything at trace level (the marketplace client's reqwest and hyper too).
    let subscriber = cdvault_server::telemetry::subscriber("trace", capture.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let password = "Log-Marker-Passw0rd!";
    let client_secret = "log-marker-client-secret";
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account("logshop-api", password);
    fake.add_octopia_client("client-1", client_secret);
    let app = TestApp::builder(Engine::Sqlite).marketplace(&fake).spawn().await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.register(&admin, "logshop").await.data();
    app.store_password(&admin, "logshop", password).await.data();
    app.store_octopia(&admin, "logshop", &Octopia { client_id: "client-1", client_secret, seller_id: "77" })
        .await
        .data();

    // The marketplace: checks with good and bad secrets, and brokered tokens of both kinds.
    app.store_password_verifying(&admin, "logshop", password).await.data();
    let wrong = "Wr0ng-Log-Marker!";
    assert_eq!(app.store_password_verifying(&admin, "logshop", wrong).await.code(), "BAD_USER_INPUT");
    let verify = "mutation { verifyCredential(sellerLogin: \"logshop\") { outcome } }";
    assert_eq!(app.graphql(Some(&admin), verify, json!({})).await.data()["verifyCredential"]["outcome"], "VERIFIED");
    for kind in ["OCTOPIA", "MARKETPLACE_API"] {
        let issue = format!(
            "mutation {{ issueAccessToken(sellerLogin: \"logshop\", purpose: \"logs\", kind: {kind}) {{ token }} }}"
        );
        app.graphql(Some(&admin), &issue, json!({})).await.data();
    }
    let marketplace_tokens = fake.tokens_issued();
    assert!(marketplace_tokens.len() >= 3, "{} tokens", marketplace_tokens.len());
    assert_eq!(app.issue_password(&admin, "logshop").await.data()["issueApiCredential"]["password"], password);
    assert_eq!(
        app.issue_octopia(&admin, "logshop").await.data()["issueOctopiaCredential"]["clientSecret"],
        client_secret
    );
    // Refusals and errors are logged too: a forged token, a too-long password, a failing variable.
    let forged = format!("{}x", &admin[..admin.len() - 1]);
    assert_eq!(app.graphql(Some(&forged), VIEWER, json!({})).await.code(), "UNAUTHENTICATED");
    let long = format!("{password}{}", "x".repeat(200));
    assert_eq!(app.store_password(&admin, "logshop", &long).await.code(), "BAD_USER_INPUT");

    // Payout bank details: submitted, moved to approval, revealed, and refused when invalid.
    let (iban, holder) = ("DE89370400440532013000", "Log-Marker Holder GmbH");
    let agent = token_for("agent", "kyc:submit", Some(&["*"]));
    let reviewer = token_for("reviewer", "kyc:review", Some(&["*"]));
    let input = |iban: &str| json!({ "i": { "sellerLogin": "logshop", "iban": iban, "bic": "COBADEFFXXX", "accountHolder": holder } });
    let id =
        app.graphql(Some(&agent), SUBMIT_PAYOUT_CHANGE, input(iban)).await.data()["submitPayoutChange"]["id"].clone();
    for (mutation, version) in [("startPayoutReview", 1), ("approvePayoutChange", 2)] {
        app.graphql(Some(&reviewer), &payout_move(mutation, version), json!({ "id": id })).await.data();
    }
    let reveal =
        "mutation { revealPayoutAccount(sellerLogin: \"logshop\", purpose: \"log test\") { iban accountHolder } }";
    assert_eq!(app.graphql(Some(&reviewer), reveal, json!({})).await.data()["revealPayoutAccount"]["iban"], iban);
    let bad_checksum = "DE89370400440532013001";
    assert_eq!(app.graphql(Some(&agent), SUBMIT_PAYOUT_CHANGE, input(bad_checksum)).await.code(), "BAD_USER_INPUT");
    drop(app.stop().await);

    // TLS: a private key refused on reload (another pair's), then a good pair reloaded; neither key is logged.
    let (served, other, renewed) = (Pair::new(), Pair::new(), Pair::new());
    let certs = CertDir::new(&served);
    let tls = TestApp::builder(Engine::Sqlite).http(|http| http.tls = Some(certs.options())).spawn().await;
    let has = |line: &str| String::from_utf8_lossy(&capture.0.lock().unwrap()).contains(line);
    certs.replace(&served.cert_pem, &other.key_pem);
    cdvault_tests::eventually("the refusal is logged", Duration::from_secs(10), || async {
        has("a new TLS certificate was refused")
    })
    .await;
    certs.replace(&renewed.cert_pem, &renewed.key_pem);
    cdvault_tests::eventually("the reload is logged", Duration::from_secs(10), || async {
        has("TLS certificate reloaded")
    })
    .await;
    drop(tls.stop().await);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("served"), "the capture is real: it holds the access log");
    assert!(logs.contains("cdvault listening"), "the capture holds start-up lines");
    let signature = admin.rsplit('.').next().unwrap();
    for (what, needle) in [
        ("password", password),
        ("client secret", client_secret),
        ("JWT", admin.as_str()),
        ("JWT signature", signature),
        ("forged JWT", forged.as_str()),
        ("IBAN", iban),
        ("account holder", holder),
        ("invalid IBAN", bad_checksum),
        ("BIC", "COBADEFFXXX"),
        ("rejected password", wrong),
    ] {
        assert!(!logs.contains(needle), "the {what} appears in the logs");
    }
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("logshop-api:{password}"));
    assert!(!logs.contains(&basic), "the STS Basic authorization appears in the logs");
    for token in &marketplace_tokens {
        assert!(!logs.contains(token.as_str()), "a marketplace token appears in the logs");
    }
    for key in [&served.key_pem, &other.key_pem, &renewed.key_pem] {
        // Any line of the key's base64 body.
        let body = key.lines().find(|line| !line.starts_with("-----")).unwrap();
        assert!(!logs.contains(body), "a TLS private key appears in the logs");
    }
    assert!(!logs.contains("PRIVATE KEY"), "a PEM private key header appears in the logs");
    assert!(logs.contains("marketplace endpoints"), "the capture holds the marketplace client's start-up line");
}
