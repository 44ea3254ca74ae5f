//! The example tool on the Rust client (`examples/issuer-tool`, `crates/client`) against the real server and the
//! fake marketplace: it keeps working across a password change, a rotation of its own token and a server restart
//! without being restarted. And the client's `ClientCredentials` token source against a real OpenID provider
//! (`oidc-provider`, skipped with one printed line without the npm tools unless `CI=true`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cdvault_api::auth::{IssuerSettings, KeySource};
use cdvault_client::{
    Client, ClientCredentials, CredentialKind, ErrorCode, ExposeSecret, FeedEvent, FileToken, FollowOptions, Purpose,
    RetryPolicy, StaticToken,
};
use cdvault_fake_marketplace::{Failure, FakeMarketplace};
use cdvault_issuer_tool::{Report, Round, Settings, run};
use cdvault_tests::oidc::{self, OidcClient, OidcProvider};
use cdvault_tests::tokens::token_with_ids;
use cdvault_tests::tools::{clients_trusted_documents, node_modules, run_typescript_operation};
use cdvault_tests::{ALL_SCOPES, Engine, ISSUER, Octopia, TestApp, hs256_settings, on_both_engines, token_for};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
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

/// The tool's JWT, with `jti` (so that it can be revoked alone) and `iat`.
fn tool_token(jti: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    token_with_ids("issuer-tool", "credentials:read", &[SELLER], Some(jti), Some(now))
}

/// A new password, reset in the marketplace's back office and stored in the vault.
async fn change_password(app: &TestApp, fake: &FakeMarketplace, password: &str) {
    fake.add_api_account(API_LOGIN, password);
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    app.store_password(&admin, SELLER, password).await.data();
}

async fn a_tool_on_the_rust_client_follows_a_password_change_a_token_rotation_and_a_server_restart_without_being_restarted(
    engine: Engine,
) {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account(API_LOGIN, PASSWORDS[0]);
    let app = TestApp::builder(engine).marketplace(&fake).seller_with_password(SELLER, PASSWORDS[0]).spawn().await;
    // The tool's JWT in a file, as a mounted (projected) token would be.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, tool_token("first")).unwrap();
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

    // The tool's token is rotated (a new projected token in the file) and the old one revoked: the server closes
    // the feed's socket, and the tool reconnects with the new token, read again for `connection_init`.
    std::fs::write(&token_file, tool_token("second")).unwrap();
    let revoke = "mutation($i: String!, $j: String!) { revokeToken(issuer: $i, jti: $j) { jti } }";
    let admin = token_for("security-admin", "access:admin", None);
    app.graphql(Some(&admin), revoke, json!({ "i": ISSUER, "j": "first" })).await.data();
    let why = tool
        .until("the revoked token's socket closes", |r| match r {
            Report::Feed(FeedEvent::Disconnected(why)) => Some(why.clone()),
            _ => None,
        })
        .await;
    assert!(why.contains("4403"), "{why}");
    let resumed = tool
        .until("the tool resumes its feed with the new token", |r| match r {
            Report::Feed(FeedEvent::Subscribed { resumed_after }) => Some(resumed_after.clone()),
            _ => None,
        })
        .await;
    assert_eq!(resumed.as_deref(), Some(cursor.as_str()));
    tool.works_with(2).await;

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
on_both_engines!(
    a_tool_on_the_rust_client_follows_a_password_change_a_token_rotation_and_a_server_restart_without_being_restarted
);

/// The next feed event `wanted` picks, within [`WITHIN`].
async fn next_event<T>(
    events: &mut tokio::sync::broadcast::Receiver<FeedEvent>,
    mut wanted: impl FnMut(FeedEvent) -> Option<T>,
) -> T {
    let read = async {
        loop {
            if let Some(found) = wanted(events.recv().await.expect("the feed runs")) {
                return found;
            }
        }
    };
    tokio::time::timeout(WITHIN, read).await.expect("the feed event came")
}

async fn a_client_resuming_from_a_pruned_cursor_drops_its_cache_and_follows_changes_from_now(engine: Engine) {
    let app = TestApp::builder(engine).seller_with_password(SELLER, PASSWORDS[0]).spawn().await;
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    let tool = token_for("issuer-tool", "credentials:read", Some(&[SELLER]));
    let client = || {
        let purpose = Purpose::new("order sync").unwrap();
        Client::builder(app.url("/graphql"), StaticToken::new(tool.clone()), purpose).build().unwrap()
    };
    let only_seller = || FollowOptions { seller_login: Some(SELLER.into()), after: None };
    let subscribed = app.subscriptions_started();
    let first = client().follow_changes(only_seller());
    let mut events = first.events();
    app.subscribed(subscribed).await;
    let mut cursors = Vec::new();
    for password in ["Second-Passw0rd!", "Third-Passw0rd!", "Fourth-Passw0rd!"] {
        app.store_password(&admin, SELLER, password).await.data();
        cursors.push(
            next_event(&mut events, |e| match e {
                FeedEvent::Changed(change) => Some(change.cursor),
                _ => None,
            })
            .await,
        );
    }
    drop(first);
    // Eight days later (the retention is seven), only the newest change is kept.
    app.options.clock.advance(time::Duration::days(8));
    assert!(app.vault().prune_change_feeds().await.unwrap() > 0);

    let vault = client();
    let stale = FollowOptions { after: Some(cursors[0].clone()), ..only_seller() };
    let following = vault.follow_changes(stale);
    let mut events = following.events();
    next_event(&mut events, |e| matches!(e, FeedEvent::CursorExpired).then_some(())).await;
    let resumed = next_event(&mut events, |e| match e {
        FeedEvent::Subscribed { resumed_after } => Some(resumed_after),
        _ => None,
    })
    .await;
    assert_eq!(resumed, None, "after an expired cursor the feed goes on from now");
    assert_eq!(following.cursor(), None);
    assert_eq!(vault.api_credential(SELLER).await.unwrap().version, 4);
    app.store_password(&admin, SELLER, "Fifth-Passw0rd!").await.data();
    let version = next_event(&mut events, |e| match e {
        FeedEvent::Changed(change) => Some(change.version),
        _ => None,
    })
    .await;
    assert_eq!(version, 5);
    assert_eq!(vault.api_credential(SELLER).await.unwrap().version, 5);
}
on_both_engines!(a_client_resuming_from_a_pruned_cursor_drops_its_cache_and_follows_changes_from_now);

async fn the_rust_client_issues_octopia_credentials_and_tokens_and_reports_refusals_by_code(engine: Engine) {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_octopia_client("client-1", "octo-s3cret");
    let app = TestApp::builder(engine).marketplace(&fake).registered(SELLER).spawn().await;
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    let octopia = Octopia { client_id: "client-1", client_secret: "octo-s3cret", seller_id: "4242" };
    app.store_octopia(&admin, SELLER, &octopia).await.data();
    let client = |scope: &str| {
        let token = StaticToken::new(token_for("issuer-tool", scope, Some(&[SELLER])));
        Client::builder(app.url("/graphql"), token, Purpose::new("catalogue sync").unwrap()).build().unwrap()
    };

    let vault = client("credentials:read");
    let credential = vault.octopia_credential(SELLER).await.unwrap();
    assert_eq!((credential.client_id.as_str(), credential.seller_id.as_str()), ("client-1", "4242"));
    assert_eq!(credential.client_secret.expose_secret(), "octo-s3cret");
    let token = vault.access_token(SELLER, Some(CredentialKind::Octopia)).await.unwrap();
    assert_eq!((token.kind, token.seller_id.as_deref()), (CredentialKind::Octopia, Some("4242")));
    assert!(fake.tokens_issued().contains(&token.token.expose_secret().to_owned()));
    // Cached until shortly before it expires: the same token, without asking the vault.
    assert!(Arc::ptr_eq(&token, &vault.access_token(SELLER, Some(CredentialKind::Octopia)).await.unwrap()));
    assert!(!format!("{credential:?} {token:?}").contains("octo-s3cret"));

    let out_of_reach = vault.api_credential("othershop").await.unwrap_err();
    assert_eq!(out_of_reach.code(), Some(ErrorCode::Forbidden), "{out_of_reach}");
    let brokered_only = client("credentials:token");
    let refused = brokered_only.octopia_credential(SELLER).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
    assert!(matches!(&refused, cdvault_client::Error::Server(e) if e.reason.as_deref() == Some("MISSING_SCOPE")));
    assert!(brokered_only.access_token(SELLER, None).await.is_ok());
}
on_both_engines!(the_rust_client_issues_octopia_credentials_and_tokens_and_reports_refusals_by_code);

async fn the_rust_client_retries_an_unavailable_marketplace_and_returns_it_when_told_not_to_retry(engine: Engine) {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account(API_LOGIN, PASSWORDS[0]);
    let app = TestApp::builder(engine).marketplace(&fake).seller_with_password(SELLER, PASSWORDS[0]).spawn().await;
    let client = |retry: RetryPolicy| {
        let token = StaticToken::new(token_for("issuer-tool", "credentials:token", Some(&[SELLER])));
        let purpose = Purpose::new("order sync").unwrap();
        Client::builder(app.url("/graphql"), token, purpose).retry(retry).build().unwrap()
    };
    // More failures in a row than the vault's own tries of one request.
    let outage = 3;
    fake.push_failures(outage, Failure::ServerError);
    let refused = client(RetryPolicy::none()).access_token(SELLER, Some(CredentialKind::MarketplaceApi)).await;
    assert_eq!(refused.unwrap_err().code(), Some(ErrorCode::UpstreamUnavailable));

    fake.push_failures(outage, Failure::ServerError);
    let token = client(RetryPolicy::default()).access_token(SELLER, Some(CredentialKind::MarketplaceApi)).await;
    assert_eq!(token.unwrap().credential_version, 1);
}
on_both_engines!(the_rust_client_retries_an_unavailable_marketplace_and_returns_it_when_told_not_to_retry);

async fn every_operation_of_the_rust_client_passes_a_server_that_trusts_only_the_clients_manifests(engine: Engine) {
    let fake = FakeMarketplace::start().await.unwrap();
    fake.add_api_account(API_LOGIN, PASSWORDS[0]);
    let app = TestApp::builder(engine)
        .marketplace(&fake)
        .http(|o| o.trusted_documents = Some(clients_trusted_documents()))
        .spawn()
        .await;
    // The tests' own helpers are refused here: the seller is made with the TypeScript client's operations.
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    assert_eq!(app.register(&admin, SELLER).await.code(), "DOCUMENT_NOT_TRUSTED");
    let store = |password: &str| json!({ "input": { "sellerLogin": SELLER, "password": password } });
    let seller = json!({ "input": { "login": SELLER, "displayName": "Best shop" } });
    run_typescript_operation(&app, "RegisterSeller", seller).await.data();
    run_typescript_operation(&app, "StoreApiCredential", store(PASSWORDS[0])).await.data();

    let tool = token_for("issuer-tool", "credentials:read credentials:token", Some(&[SELLER]));
    let vault = Client::builder(app.url("/graphql"), StaticToken::new(tool), Purpose::new("order sync").unwrap())
        .build()
        .unwrap();
    let subscribed = app.subscriptions_started();
    let following = vault.follow_changes(FollowOptions { seller_login: Some(SELLER.into()), after: None });
    let mut events = following.events();
    app.subscribed(subscribed).await;
    assert_eq!(vault.api_credential(SELLER).await.unwrap().password.expose_secret(), PASSWORDS[0]);
    let token = vault.access_token(SELLER, None).await.unwrap();
    assert!(fake.tokens_issued().contains(&token.token.expose_secret().to_owned()));

    fake.add_api_account(API_LOGIN, PASSWORDS[1]);
    run_typescript_operation(&app, "StoreApiCredential", store(PASSWORDS[1])).await.data();
    let version = next_event(&mut events, |e| match e {
        FeedEvent::Changed(change) => Some(change.version),
        _ => None,
    })
    .await;
    assert_eq!(version, 2);
    assert_eq!(vault.api_credential(SELLER).await.unwrap().password.expose_secret(), PASSWORDS[1]);
}
on_both_engines!(every_operation_of_the_rust_client_passes_a_server_that_trusts_only_the_clients_manifests);

/// A pass-through to the token endpoint at `upstream` that counts the requests it forwards: the tool's client
/// credentials go to the real provider, and the test sees how often the Rust client asked for a token. One request
/// per connection (it answers `connection: close`).
async fn counting_token_endpoint(upstream: String) -> (reqwest::Url, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = reqwest::Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (head, body) = read_http_request(&mut socket).await;
            counter.fetch_add(1, Ordering::SeqCst);
            let mut forwarded = http.post(&upstream).body(body);
            for line in head.lines().skip(1) {
                if let Some((name, value)) = line.split_once(':')
                    && ["authorization", "content-type", "accept"].contains(&name.trim().to_ascii_lowercase().as_str())
                {
                    forwarded = forwarded.header(name.trim(), value.trim());
                }
            }
            let answer = forwarded.send().await.expect("the provider's token endpoint answers");
            let status = answer.status();
            let content_type = answer.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            let body = answer.bytes().await.unwrap();
            let head = format!(
                "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                content_type.unwrap_or_else(|| "application/json".into()),
                body.len()
            );
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.write_all(&body).await.unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    (url, count)
}

/// One whole HTTP/1.1 request: its head (request line and headers) and as many body bytes as `content-length` says.
async fn read_http_request(socket: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    let mut request = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .map_or(0, |v| v.parse::<usize>().unwrap());
            if request.len() >= end + 4 + length {
                return (head, request[end + 4..end + 4 + length].to_vec());
            }
        }
        let read = socket.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the token request ended early");
        request.extend_from_slice(&chunk[..read]);
    }
}

async fn the_rust_client_gets_its_token_from_a_real_openid_provider_by_client_credentials(engine: Engine) {
    let test = "the_rust_client_gets_its_token_from_a_real_openid_provider_by_client_credentials";
    let Some(modules) = node_modules(test) else { return };
    // The tool's identity at the provider; its token carries no seller: an access grant gives it one.
    let tool = OidcClient { id: "order-sync", secret: "order-sync-secret-of-some-length", scope: "credentials:read" };
    let provider = OidcProvider::start(&modules, std::slice::from_ref(&tool)).await;
    let issuer = provider.issuer.clone();
    let trusted = issuer.clone();
    let app = TestApp::builder(engine)
        .jwt(move || {
            // The tests' HS256 issuer (for the admin) and the provider, found by discovery.
            let mut settings = hs256_settings();
            let discovery = KeySource::Discovery { ca_file: None };
            settings.issuers.push(IssuerSettings::new(&trusted, oidc::AUDIENCE, discovery));
            settings
        })
        .seller_with_password(SELLER, PASSWORDS[0])
        .spawn()
        .await;
    let admin = token_for("security-admin", "access:admin", Some(&[]));
    let grant = json!({ "issuer": issuer, "clientId": tool.id, "scopes": ["credentials:read"], "sellers": [SELLER] });
    let create = "mutation($i: CreateAccessGrantInput!) { createAccessGrant(input: $i) { id } }";
    app.graphql(Some(&admin), create, json!({ "i": grant })).await.data();

    // The token endpoint, as a tool would find it: in the provider's discovery document.
    let discovery: serde_json::Value =
        reqwest::get(format!("{issuer}/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    let token_endpoint = discovery["token_endpoint"].as_str().unwrap_or_else(|| panic!("{discovery}")).to_owned();
    let (token_url, token_requests) = counting_token_endpoint(token_endpoint).await;
    let tokens =
        ClientCredentials::new(token_url, tool.id, tool.secret).scope("credentials:read").resource(oidc::AUDIENCE);
    let vault = Client::builder(app.url("/graphql"), tokens, Purpose::new("order sync").unwrap()).build().unwrap();

    let credential = vault.api_credential(SELLER).await.unwrap();
    assert_eq!((credential.password.expose_secret(), credential.version), (PASSWORDS[0], 1));
    // Issued credentials are not cached without the change feed: the second issue goes to the vault again, with
    // the same token.
    let again = vault.api_credential(SELLER).await.unwrap();
    assert_eq!(again.password.expose_secret(), PASSWORDS[0]);
    assert_eq!(token_requests.load(Ordering::SeqCst), 1, "the provider's token is reused until shortly before expiry");

    let issues = app.audit(json!({ "action": "credential.issue", "seller": SELLER, "subject": tool.id })).await;
    let issued: Vec<_> = issues.iter().filter(|e| e["outcome"] == "SUCCESS").collect();
    assert_eq!(issued.len(), 2, "{issues:?}");
    assert!(issued.iter().all(|e| e["issuer"] == issuer.as_str()), "{issued:?}");
}
on_both_engines!(the_rust_client_gets_its_token_from_a_real_openid_provider_by_client_credentials);
