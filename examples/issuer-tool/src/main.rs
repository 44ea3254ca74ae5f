//! `cdvault-issuer-tool`: the example tool, configured from the environment.
//!
//! - `CDVAULT_URL`: the vault's GraphQL endpoint, e.g. `http://127.0.0.1:8080/graphql`
//! - `CDVAULT_TOKEN_FILE` (a file re-read when it changes) or `CDVAULT_TOKEN`: the tool's JWT, with
//!   `credentials:read` on the seller
//! - `SELLER`: the seller login; `MARKETPLACE_URL` (optional): where to log in with the password
//! - `EVERY_MS` (optional, default 1000): the pause between rounds

use std::time::Duration;

use cdvault_client::{Client, FileToken, Purpose, StaticToken};
use cdvault_issuer_tool::{Report, Settings, run};
use tokio::sync::mpsc;

fn setting(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn client() -> Result<Client, String> {
    let url = setting("CDVAULT_URL")?;
    let purpose = Purpose::new("issuer-tool example").map_err(|e| e.to_string())?;
    let builder = match (setting("CDVAULT_TOKEN_FILE"), setting("CDVAULT_TOKEN")) {
        (Ok(path), _) => Client::builder(url, FileToken::new(path), purpose),
        (_, Ok(token)) => Client::builder(url, StaticToken::new(token), purpose),
        _ => return Err("set CDVAULT_TOKEN_FILE or CDVAULT_TOKEN".into()),
    };
    builder.build().map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let vault = client()?;
    let every = setting("EVERY_MS").ok().and_then(|ms| ms.parse().ok()).unwrap_or(1000);
    let settings = Settings {
        seller: setting("SELLER")?,
        marketplace: setting("MARKETPLACE_URL").ok(),
        every: Duration::from_millis(every),
    };
    let (reports, mut received) = mpsc::channel(16);
    tokio::spawn(run(vault, settings, reports));
    // Versions and outcomes only: never a secret.
    while let Some(report) = received.recv().await {
        match report {
            Report::Round(round) => println!("{round:?}"),
            Report::Failed(error) => eprintln!("round failed: {error}"),
            Report::Feed(event) => println!("feed: {event:?}"),
        }
    }
    Ok(())
}
