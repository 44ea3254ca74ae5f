//! An internal tool as cdvault expects one: it asks the vault for a seller's Marketplace API credential and a
//! brokered token every round, through `cdvault-client`'s cache, and logs in to the marketplace with the password
//! to show that it still works. A password change and a vault restart need nothing from it: the change feed
//! invalidates its cache, and the client reconnects and resumes from its last cursor.
//!
//! `main.rs` runs it from the environment; the end-to-end test (`tests/api/rust_client.rs`) runs [`run`] as a task.

use std::time::Duration;

use cdvault_client::{Client, CredentialKind, ExposeSecret, FeedEvent, FollowOptions};
use tokio::sync::mpsc;

/// The realm of the legacy token service (the marketplace refuses any other).
const STS_REALM: &str = "https://wsvc.cdiscount.com/MarketplaceAPIService.svc";

/// What one round saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// The credential version the vault issued (or the cache kept).
    pub credential_version: i64,
    /// The credential version the brokered token was obtained with.
    pub token_credential_version: i64,
    /// Whether the marketplace accepted the password, when the tool was told where it is.
    pub marketplace_accepted: Option<bool>,
}

/// What the tool reports: each round, each failed round, and what its change feed does.
#[derive(Debug, Clone)]
pub enum Report {
    Round(Round),
    Failed(String),
    Feed(FeedEvent),
}

/// The tool's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The seller whose credential the tool uses.
    pub seller: String,
    /// The marketplace's base URL, to log in with the issued password (optional).
    pub marketplace: Option<String>,
    /// The pause between rounds.
    pub every: Duration,
}

/// Runs rounds until `reports` is closed.
pub async fn run(vault: Client, settings: Settings, reports: mpsc::Sender<Report>) {
    let following = vault.follow_changes(FollowOptions { seller_login: Some(settings.seller.clone()), after: None });
    let mut feed = following.events();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
    loop {
        while let Ok(event) = feed.try_recv() {
            if reports.send(Report::Feed(event)).await.is_err() {
                return;
            }
        }
        let report = match round(&vault, &http, &settings).await {
            Ok(round) => Report::Round(round),
            Err(error) => Report::Failed(error),
        };
        if reports.send(report).await.is_err() {
            return;
        }
        tokio::time::sleep(settings.every).await;
    }
}

async fn round(vault: &Client, http: &reqwest::Client, settings: &Settings) -> Result<Round, String> {
    let credential = vault.api_credential(&settings.seller).await.map_err(|e| e.to_string())?;
    let token =
        vault.access_token(&settings.seller, Some(CredentialKind::MarketplaceApi)).await.map_err(|e| e.to_string())?;
    let marketplace_accepted = match &settings.marketplace {
        Some(base) => {
            let url = format!("{}/users/httpIssue.svc/?realm={STS_REALM}", base.trim_end_matches('/'));
            let answer = http
                .get(url)
                .basic_auth(&credential.api_login, Some(credential.password.expose_secret()))
                .send()
                .await
                .map_err(|e| format!("the marketplace could not be reached: {e}"))?;
            Some(answer.status().is_success())
        }
        None => None,
    };
    Ok(Round {
        credential_version: credential.version,
        token_credential_version: token.credential_version,
        marketplace_accepted,
    })
}
