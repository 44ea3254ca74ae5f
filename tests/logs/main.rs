//! Runs the server with every log line captured (trace level) and checks that no plaintext password, client secret
//! or JWT appears in them. In a test binary of its own: it installs the process-wide subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use cdvault_tests::{ALL_SCOPES, Engine, spawn_app, token_for};
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
    // The server's own log format; the test's HTTP client is left out (it is not the server).
    let subscriber = cdvault_server::telemetry::subscriber("trace,reqwest=off,hyper_util::client=off", capture.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let password = "Log-Marker-Passw0rd!";
    let client_secret = "log-marker-client-secret";
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.register(&admin, "logshop").await.data();
    app.store_password(&admin, "logshop", password).await.data();
    app.store_octopia(&admin, "logshop", "client-1", client_secret, "77").await.data();
    assert_eq!(app.issue_password(&admin, "logshop").await.data()["issueApiCredential"]["password"], password);
    assert_eq!(
        app.issue_octopia(&admin, "logshop").await.data()["issueOctopiaCredential"]["clientSecret"],
        client_secret
    );
    // Refusals and errors are logged too: a forged token, a too-long password, a failing variable.
    let forged = format!("{}x", &admin[..admin.len() - 1]);
    assert_eq!(app.graphql(Some(&forged), "{ viewer { subject } }", json!({})).await.code(), "UNAUTHENTICATED");
    let long = format!("{password}{}", "x".repeat(200));
    assert_eq!(app.store_password(&admin, "logshop", &long).await.code(), "BAD_USER_INPUT");

    // Payout bank details: submitted, moved to approval, revealed, and refused when invalid.
    let (iban, holder) = ("DE89370400440532013000", "Log-Marker Holder GmbH");
    let agent = token_for("agent", "kyc:submit", Some(&["*"]));
    let reviewer = token_for("reviewer", "kyc:review", Some(&["*"]));
    let submit = "mutation($i: SubmitPayoutChangeInput!) { submitPayoutChange(input: $i) { id } }";
    let input = |iban: &str| json!({ "i": { "sellerLogin": "logshop", "iban": iban, "bic": "COBADEFFXXX", "accountHolder": holder } });
    let id = app.graphql(Some(&agent), submit, input(iban)).await.data()["submitPayoutChange"]["id"].clone();
    for (mutation, version) in [("startPayoutReview", 1), ("approvePayoutChange", 2)] {
        let query = format!("mutation($id: ID!) {{ {mutation}(id: $id, expectedVersion: {version}) {{ id }} }}");
        app.graphql(Some(&reviewer), &query, json!({ "id": id })).await.data();
    }
    let reveal =
        "mutation { revealPayoutAccount(sellerLogin: \"logshop\", purpose: \"log test\") { iban accountHolder } }";
    assert_eq!(app.graphql(Some(&reviewer), reveal, json!({})).await.data()["revealPayoutAccount"]["iban"], iban);
    let bad_checksum = "DE89370400440532013001";
    assert_eq!(app.graphql(Some(&agent), submit, input(bad_checksum)).await.code(), "BAD_USER_INPUT");
    let (db, options) = app.stop().await;
    drop((db, options));

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
    ] {
        assert!(!logs.contains(needle), "the {what} appears in the logs");
    }
}
