//! A real OpenID Connect provider for the identity tests: `oidc-provider` (npm, OpenID Certified) run by Node.js on
//! 127.0.0.1 from the npm tools `.ci/run` installs (see [`tools`](crate::tools)). It issues ES256 `at+jwt` access
//! tokens (RFC 9068) by the client-credentials grant, with `iss`, `sub`, `aud`, `client_id`, `scope`, `jti`, `iat`,
//! `exp` and no custom claim, as providers in production do.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The audience (resource indicator) the provider puts in the tokens it issues for cdvault.
pub const AUDIENCE: &str = "https://cdvault.internal";

/// A client registered with the provider.
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub id: &'static str,
    pub secret: &'static str,
    /// The scopes it may ask for, space-separated.
    pub scope: &'static str,
}

/// A running provider; stopped when dropped.
#[derive(Debug)]
pub struct OidcProvider {
    /// Its issuer URL (`http://127.0.0.1:<port>`), also the base of its discovery document.
    pub issuer: String,
    child: Child,
    http: reqwest::Client,
}

impl OidcProvider {
    /// Starts a provider that knows `clients`. `modules` is the npm tools' `node_modules`.
    pub async fn start(modules: &Path, clients: &[OidcClient]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support").join("oidc-provider.mjs");
        let clients: Vec<_> =
            clients.iter().map(|c| json!({ "id": c.id, "secret": c.secret, "scope": c.scope })).collect();
        let mut child = Command::new("node")
            .arg(script)
            .arg(AUDIENCE)
            .arg(serde_json::Value::Array(clients).to_string())
            .env("NODE_PATH", modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts the OpenID provider");
        let stdout = child.stdout.take().expect("the provider's stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let issuer = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("the provider's output reads") {
                if let Some(issuer) = line.strip_prefix("ISSUER ") {
                    return issuer.to_owned();
                }
            }
            panic!("the OpenID provider stopped before listening")
        })
        .await
        .expect("the OpenID provider listens within 20 s");
        Self { issuer, child, http: reqwest::Client::new() }
    }

    /// An access token for `client` by the client-credentials grant, for cdvault's audience.
    pub async fn client_credentials_token(&self, client: &OidcClient, scope: &str) -> String {
        let response = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client.id, Some(client.secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope), ("resource", AUDIENCE)])
            .send()
            .await
            .expect("the token endpoint answers");
        let body: serde_json::Value = response.json().await.expect("the token endpoint answers JSON");
        body["access_token"].as_str().unwrap_or_else(|| panic!("no access token: {body}")).to_owned()
    }

    /// The key set the provider publishes: its discovery document's `jwks_uri`, fetched (for the tests of forged
    /// tokens, which use its public keys as an attacker would).
    pub async fn jwks(&self) -> serde_json::Value {
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        let document: serde_json::Value = self.get_json(&discovery).await;
        let jwks_uri = document["jwks_uri"].as_str().unwrap_or_else(|| panic!("no jwks_uri: {document}"));
        self.get_json(jwks_uri).await
    }

    async fn get_json(&self, url: &str) -> serde_json::Value {
        let response = self.http.get(url).send().await.expect("the provider answers");
        response.json().await.expect("the provider answers JSON")
    }

    /// Stops the provider now (a provider that is down, for the tests of cached keys).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
