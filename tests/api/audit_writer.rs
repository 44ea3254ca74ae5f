//! The audit writer's liveness: a killed writer turns `/readyz` red and is restarted, a writer killed more often
//! than it is restarted stays dead and stops the server, and a seller deactivated by SQL stops getting issues within
//! the writer's bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cdvault_api::service::Vault;
use cdvault_domain::crypto::RootKey;
use cdvault_server::Application;
use cdvault_server::config::ServeConfig;
use cdvault_storage::audit::{MAX_KNOWN_AGE, MAX_RESTARTS, WriterHealth};
use cdvault_tests::operations::{AUDIT_EVENTS, ISSUE_API_CREDENTIAL, REGISTER_SELLER, STORE_API_CREDENTIAL};
use cdvault_tests::{ALL_SCOPES, Engine, Options, TestApp, TestDb, eventually, on_both_engines, token_for};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const PASSWORD: &str = "Lively-Passw0rd!";

/// A server started here rather than through `TestApp`, which hands out neither its `Vault` (where the
/// fault-injection hook is) nor the result of its run.
struct Served {
    vault: Arc<Vault>,
    address: SocketAddr,
    client: reqwest::Client,
    run: JoinHandle<anyhow::Result<()>>,
    _stop: oneshot::Sender<()>,
    _db: TestDb,
}

impl Served {
    /// The server as `TestApp` starts it, with one seller ready to issue.
    async fn start(engine: Engine) -> Self {
        let db = TestDb::create(engine).await;
        let options = Options::default();
        let config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: db.url.clone(),
            dev: false,
            root_key: RootKey::from_base64(&options.root_key).unwrap(),
            jwt: (options.jwt)(),
            marketplace: cdvault_cdiscount::Endpoints::same(&options.marketplace),
            clock: options.clock.clone(),
            rewrap: options.rewrap,
            checkpoints: options.checkpoints.clone(),
            audit_stream: None,
            access_poll: cdvault_api::service::DEFAULT_ACCESS_POLL,
            http: cdvault_api::http::HttpOptions { graphiql: true, ..Default::default() },
            change_feed_retention: cdvault_api::service::DEFAULT_CHANGE_FEED_RETENTION,
            issue_cache_sellers: cdvault_api::service::DEFAULT_ISSUE_CACHE_SELLERS,
            webhooks: Default::default(),
        };
        let app = Application::build(config).await.unwrap();
        let (vault, address) = (app.vault(), app.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let run = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let served = Self { vault, address, client, run, _stop: stop, _db: db };
        served.graphql(REGISTER_SELLER, json!({ "login": "lively" })).await;
        let input = json!({ "sellerLogin": "lively", "password": PASSWORD });
        served.graphql(STORE_API_CREDENTIAL, json!({ "i": input })).await;
        served
    }

    async fn graphql(&self, query: &str, variables: Value) -> Value {
        let token = token_for("tool", ALL_SCOPES, Some(&["*"]));
        let body = json!({ "query": query, "variables": variables });
        let url = format!("http://{}/graphql", self.address);
        let response = self.client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
        response.json().await.unwrap()
    }

    async fn issue(&self) -> Value {
        self.graphql(ISSUE_API_CREDENTIAL, json!({ "login": "lively" })).await
    }

    /// The status of `/readyz` and what its JSON body says: the problem named when unready, else `ready`; `None`
    /// once nothing answers (the server has stopped).
    async fn readyz(&self) -> Option<(u16, String)> {
        let response = self.client.get(format!("http://{}/readyz", self.address)).send().await.ok()?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        let said = body["problem"].as_str().or_else(|| body["status"].as_str()).unwrap_or_default();
        Some((status, said.to_owned()))
    }

    /// Polls `/readyz` every 25 ms until `wanted` holds of its answer, and returns that answer.
    async fn readyz_until(&self, what: &str, wanted: impl Fn(&Option<(u16, String)>) -> bool) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ready = self.readyz().await;
            if wanted(&ready) {
                return ready;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: still {ready:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn ready_again(&self) {
        self.readyz_until("/readyz green", |ready| ready == &Some((200, "ready".to_owned()))).await;
    }

    /// Kills the writer with the next issue in flight, which fails closed, and returns the first red `/readyz`.
    async fn kill_writer(&self) -> Option<(u16, String)> {
        self.vault.inject_audit_writer_panic();
        let refused = self.issue().await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR", "{refused}");
        assert_eq!(refused["data"], json!(null));
        assert!(!refused.to_string().contains(PASSWORD));
        self.readyz_until("/readyz red", |ready| ready.as_ref().is_none_or(|(status, _)| *status == 503)).await
    }
}

fn issued(answer: &Value) -> bool {
    answer["data"]["issueApiCredential"]["password"] == PASSWORD
}

async fn a_killed_writer_turns_readiness_red_fails_its_batch_closed_and_is_restarted(engine: Engine) {
    let served = Served::start(engine).await;
    assert!(issued(&served.issue().await));
    assert_eq!(served.readyz().await, Some((200, "ready".to_owned())));

    // Red for as long as it restarts: the pause before the first restart is half a second.
    assert_eq!(served.kill_writer().await, Some((503, "audit writer restarting".to_owned())));

    served.ready_again().await;
    assert_eq!(served.vault.audit_health(), WriterHealth::Alive);
    let again = served.issue().await;
    assert!(issued(&again), "{again}");
    // Two issues succeeded, each with its event; the one in flight at the panic left none.
    let events = served.graphql(AUDIT_EVENTS, json!({ "action": "credential.issue" })).await;
    let outcomes: Vec<&Value> =
        events["data"]["auditEvents"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["outcome"]).collect();
    assert_eq!(outcomes, [&json!("SUCCESS"), &json!("SUCCESS")], "{events}");
}
on_both_engines!(a_killed_writer_turns_readiness_red_fails_its_batch_closed_and_is_restarted);

async fn a_writer_killed_more_often_than_it_is_restarted_stays_dead_and_stops_the_server(engine: Engine) {
    let served = Served::start(engine).await;
    for _ in 0..MAX_RESTARTS {
        served.kill_writer().await;
        served.ready_again().await;
    }
    // Red for good: the server says why while it shuts down, then nothing answers.
    let red = served.kill_writer().await;
    assert!(red.is_none() || red == Some((503, "audit writer dead".to_owned())), "{red:?}");
    assert_eq!(served.vault.audit_health(), WriterHealth::Dead);
    let after = served.readyz().await;
    assert!(after.is_none() || after == Some((503, "audit writer dead".to_owned())), "{after:?}");

    let ended = tokio::time::timeout(Duration::from_secs(10), served.run).await.expect("the server keeps running");
    let error = ended.unwrap().expect_err("the server ends with an error");
    assert!(format!("{error:#}").contains("audit"), "{error:#}");
}
on_both_engines!(a_writer_killed_more_often_than_it_is_restarted_stays_dead_and_stops_the_server);

async fn a_seller_deactivated_by_sql_gets_no_issue_after_the_writers_bound(engine: Engine) {
    let app = TestApp::builder(engine).seller_with_password("sqlshop", PASSWORD).spawn().await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    // The writer now knows the seller active.
    app.issue_password(&admin, "sqlshop").await.data();

    let conn = app.db.raw().await;
    let deactivate = "UPDATE sellers SET status = 'INACTIVE' WHERE login = 'sqlshop'";
    sea_orm::ConnectionTrait::execute_raw(&conn, app.db.statement(deactivate, vec![])).await.unwrap();
    // No audit event tells the writer: only the age of what it knows does.
    let (app_ref, admin_ref) = (&app, &admin);
    eventually("an issue refused", MAX_KNOWN_AGE * 4, move || async move {
        app_ref.issue_password(admin_ref, "sqlshop").await.body.get("errors").is_some()
    })
    .await;
    let refused = app.issue_password(&admin, "sqlshop").await;
    assert_eq!((refused.code(), refused.error()["reason"].as_str()), ("FORBIDDEN", Some("SELLER_INACTIVE")));
}
on_both_engines!(a_seller_deactivated_by_sql_gets_no_issue_after_the_writers_bound);
