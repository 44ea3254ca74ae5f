//! The example tool on the Rust client (`examples/issuer-tool`, `crates/client`) against the real server and the
//! fake marketplace: it keeps working across a password change and a server restart without being restarted.

use std::time::Duration;

use cdvault_client::{Client, FeedEvent, FileToken, Purpose};
use cdvault_fake_marketplace::FakeMarketplace;
use cdvault_issuer_tool::{Report, Round, Settings, run};
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, on_both_engines, token_for};
use serde_json::json;
use tokio::sync::mpsc;

const SELLER: &str = "bestshop";
const API_LOGIN: &str = "bestshop-api";
const PASSWORDS: [&str; 3] = ["First-Passw0rd!", "Second-Passw0rd!", "Third-Passw0rd!"];
/// Generous: a reconnection waits out a backoff, and rounds during the restart wait out their retries.
const WITHIN: Duration = Duration::from_secs(60);

/// The reports of the running tool, and what has been read of them.
struct Tool {
    reports: mpsc::Receiver<Report>,
    rounds: usize,
}

impl Tool {
    /// Reads reports until `wanted` picks one, failing after [`WITHIN`] with what came last.
    async fn until<T>(&mut self, what: &str, mut wanted: impl FnMut(&Report) -> Option<T>) -> T {
        let mut last = Vec::new();
        let read = async {
            loop {
                let report = self.reports.recv().await.expect("the tool runs");
                if matches!(report, Report::Round(_)) {
                    self.rounds += 1;
                }
                if let Some(found) = wanted(&report) {
                    return found;
                }
                last.push(format!("{report:?}"));
                if last.len() > 20 {
                    last.remove(0);
                }
            }
        };
        match tokio::time::timeout(WITHIN, read).await {
            Ok(found) => found,
            Err(_) => panic!("{what}: not within {WITHIN:?}; last reports: {last:#?}"),
        }
    }

    /// Waits for a round on credential `version` (the password and the brokered token) that the marketplace
    /// accepted.
    async fn works_with(&mut self, version: i64) {
        let good =
            Round { credential_version: version, token_credential_version: version, marketplace_accepted: Some(true) };
        self.until(&format!("a working round on version {version}"), |r| {
            matches!(r, Report::Round(r) if *r == good).then_some(())
        })
        .await;
    }
}

/// A new password, reset in the marketplace's back office and stored in the vault.
async fn change_password(app: &TestApp, fake: &FakeMarketplace, password: &str) {
    fake.add_api_account(API_LOGIN, password);
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    app.store_password(&admin, SELLER, password).await.data();
}

async fn a_tool_on_the_rust_client_follows_a_password_change_and_a_server_restart_without_being_restarted(
    engine: Engine,
) {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account(API_LOGIN, PASSWORDS[0]);
    let app = TestApp::builder(engine).marketplace(&fake).seller_with_password(SELLER, PASSWORDS[0]).spawn().await;
    // The tool's JWT in a file, as a mounted (projected) token would be.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token_for("issuer-tool", "credentials:read", Some(&[SELLER]))).unwrap();
    let vault = Client::builder(app.url("/graphql"), FileToken::new(&token_file), Purpose::new("order sync").unwrap())
        // Longer than the test: only the change feed can make the tool see a new password.
        .credential_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    let settings =
        Settings { seller: SELLER.into(), marketplace: Some(fake.base_url()), every: Duration::from_millis(50) };
    let (reports, received) = mpsc::channel(64);
    let subscribed = app.subscriptions_started();
    let running = tokio::spawn(run(vault, settings, reports));
    let mut tool = Tool { reports: received, rounds: 0 };
    app.subscribed(subscribed).await;
    tool.works_with(1).await;

    change_password(&app, &fake, PASSWORDS[1]).await;
    let cursor = tool
        .until("the change reaches the tool", |r| match r {
            Report::Feed(FeedEvent::Changed(change)) if change.version == 2 => Some(change.cursor.clone()),
            _ => None,
        })
        .await;
    tool.works_with(2).await;
    // Between changes the tool is served from its cache: a handful of issues for many rounds.
    let mut more = 0;
    tool.until("twenty more rounds", |r| {
        more += usize::from(matches!(r, Report::Round(_)));
        (more >= 20).then_some(())
    })
    .await;
    let issued = app.audit(json!({ "seller": SELLER, "action": "credential.issue" })).await.len();
    assert!(issued <= 6, "{issued} issues for {} rounds: the cache was not used", tool.rounds);

    let address = app.address;
    let app = app.stop().await.listen_on(address).spawn().await;
    let resumed = tool
        .until("the tool resumes its feed on the restarted server", |r| match r {
            Report::Feed(FeedEvent::Subscribed { resumed_after }) => Some(resumed_after.clone()),
            _ => None,
        })
        .await;
    assert_eq!(resumed.as_deref(), Some(cursor.as_str()), "the feed resumes after the last change it saw");
    change_password(&app, &fake, PASSWORDS[2]).await;
    tool.works_with(3).await;
    running.abort();
}
on_both_engines!(a_tool_on_the_rust_client_follows_a_password_change_and_a_server_restart_without_being_restarted);
