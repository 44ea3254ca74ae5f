//! `payoutChangeFeed`: every transition of a payout change request, in commit order, resumable from a cursor, and
//! nothing lost when a replica's LISTEN connection to PostgreSQL drops.

use std::time::Duration;

use cdvault_storage::change_feed::LISTENER_APPLICATION_NAME;
use cdvault_tests::operations::{SUBMIT_PAYOUT_CHANGE, payout_move};
use cdvault_tests::ws::{Socket, connect, next, send};
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, eventually, on_both_engines, token_for};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};

pub(crate) const FEED: &str = "subscription($s: String, $a: String) { payoutChangeFeed(sellerLogin: $s, after: $a) { cursor requestId sellerLogin status version changedBy occurredAt request { id status version } } }";

/// An acknowledged socket subscribed to `query` (with `variables`), once the server counts it as listening.
pub(crate) async fn subscribe_to(app: &TestApp, token: &str, query: &str, variables: Value) -> Socket {
    let mut socket = connect(app, Some(token)).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let before = app.subscriptions_started();
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } }))
        .await;
    tokio::select! {
        () = app.subscribed(before) => socket,
        message = next(&mut socket, Duration::from_secs(10)) => panic!("answered instead of listening: {message:?}"),
    }
}

/// The next entry of subscription `field` on `socket`.
pub(crate) async fn entry(socket: &mut Socket, field: &str) -> Value {
    let message = next(socket, Duration::from_secs(10)).await.expect("an entry of the feed");
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"][field].clone()
}

fn reviewer() -> String {
    token_for("reviewer-alice", "kyc:review", Some(&["*"]))
}

pub(crate) async fn submit(app: &TestApp, login: &str) -> String {
    let agent = token_for("support-agent", "kyc:submit", Some(&["*"]));
    let input = json!({ "sellerLogin": login, "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP", "accountHolder": "Shop" });
    let answer = app.graphql(Some(&agent), SUBMIT_PAYOUT_CHANGE, json!({ "i": input })).await;
    answer.data()["submitPayoutChange"]["id"].as_str().unwrap().to_owned()
}

/// Moves request `id` from `version` by `mutation` (with `extra` arguments), as the reviewer.
pub(crate) async fn review(app: &TestApp, mutation: &str, id: &str, version: i64, extra: &str) {
    let query = payout_move(mutation, version).replace("expectedVersion", &format!("{extra} expectedVersion"));
    app.graphql(Some(&reviewer()), &query, json!({ "id": id })).await.data();
}

/// The review of one request after its submission: each move as (mutation, extra arguments, status reached).
const REVIEW: [(&str, &str, &str); 6] = [
    ("startPayoutReview", "", "IN_REVIEW"),
    ("requestPayoutDocuments", "documents: [IBAN_CERTIFICATE],", "DOCUMENTS_REQUESTED"),
    ("resumePayoutReview", "", "IN_REVIEW"),
    ("requestPayoutDocuments", "documents: [COMPANY_REGISTRATION],", "DOCUMENTS_REQUESTED"),
    ("resumePayoutReview", "", "IN_REVIEW"),
    ("approvePayoutChange", "", "APPROVED"),
];

/// On PostgreSQL, terminates the servers' LISTEN connections to this test's database again and again, so they are
/// down most of the time, until `stop` is sent; returns once a first round was made, with the task that counts how
/// many were terminated.
async fn keep_killing_listeners(
    app: &TestApp,
    conn: &DatabaseConnection,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<usize> {
    let sql = "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity \
               WHERE datname = current_database() AND application_name = ?";
    let kill = app.db.statement(sql, vec![LISTENER_APPLICATION_NAME.into()]);
    let conn = conn.clone();
    let (round, mut rounds) = tokio::sync::watch::channel(0u64);
    let killer = tokio::spawn(async move {
        let mut killed = 0;
        loop {
            let rows = conn.query_all_raw(kill.clone()).await.unwrap();
            killed += rows.iter().filter(|row| row.try_get::<bool>("", "killed").unwrap_or(false)).count();
            round.send_modify(|n| *n += 1);
            if *stop.borrow() {
                return killed;
            }
            tokio::task::yield_now().await;
        }
    });
    rounds.wait_for(|n| *n > 0).await.unwrap();
    killer
}

async fn listeners(app: &TestApp, conn: &DatabaseConnection) -> i64 {
    let sql = "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = ?";
    let row = conn.query_one_raw(app.db.statement(sql, vec![LISTENER_APPLICATION_NAME.into()])).await.unwrap();
    row.unwrap().try_get("", "n").unwrap()
}

async fn a_console_gets_every_transition_of_the_sellers_it_reaches_in_order_and_resumes_from_its_cursor(
    engine: Engine,
) {
    let app = cdvault_tests::spawn_app(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    for login in ["bestshop", "othershop"] {
        app.register(&admin, login).await.data();
    }
    let console = token_for("console", "kyc:review", Some(&["bestshop"]));
    let mut socket = subscribe_to(&app, &console, FEED, json!({})).await;

    let other = submit(&app, "othershop").await;
    let id = submit(&app, "bestshop").await;
    review(&app, REVIEW[0].0, &id, 1, REVIEW[0].1).await;
    let first = entry(&mut socket, "payoutChangeFeed").await;
    assert_eq!(
        (first["sellerLogin"].as_str(), first["status"].as_str(), first["version"].as_i64()),
        (Some("bestshop"), Some("SUBMITTED"), Some(1)),
        "nothing of a seller out of reach: {first}"
    );
    assert_eq!((first["requestId"].as_str(), first["changedBy"].as_str()), (Some(id.as_str()), Some("support-agent")));
    let second = entry(&mut socket, "payoutChangeFeed").await;
    assert_eq!((second["status"].as_str(), second["changedBy"].as_str()), (Some("IN_REVIEW"), Some("reviewer-alice")));
    assert_eq!(second["request"]["id"], json!(id));
    drop(socket);

    // While the console is away: the rest of the review.
    for (at, (mutation, extra, _)) in REVIEW.iter().enumerate().skip(1) {
        review(&app, mutation, &id, at as i64 + 1, extra).await;
    }
    let variables = json!({ "a": second["cursor"] });
    let mut socket = subscribe_to(&app, &console, FEED, variables).await;
    for (at, (_, _, status)) in REVIEW.iter().enumerate().skip(1) {
        let missed = entry(&mut socket, "payoutChangeFeed").await;
        assert_eq!((missed["status"].as_str(), missed["version"].as_i64()), (Some(*status), Some(at as i64 + 2)));
        // Each transition is delivered, even when the request read with it is already further on.
        assert_eq!(missed["request"]["status"], "APPROVED");
    }
    // Then live ones, of the reached seller only.
    review(&app, "startPayoutReview", &other, 1, "").await;
    let again = submit(&app, "bestshop").await;
    let live = entry(&mut socket, "payoutChangeFeed").await;
    assert_eq!((live["requestId"].as_str(), live["status"].as_str()), (Some(again.as_str()), Some("SUBMITTED")));
    assert!(next(&mut socket, Duration::from_millis(300)).await.is_none(), "nothing of a seller out of reach");
}
on_both_engines!(a_console_gets_every_transition_of_the_sellers_it_reaches_in_order_and_resumes_from_its_cursor);

async fn no_transition_is_lost_when_the_replica_loses_its_listening_connection(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    app.register(&app.token(ALL_SCOPES, &["*"]), "bestshop").await.data();
    // Changes are made through another replica on PostgreSQL: only the notifications tell this one.
    let other = match engine {
        Engine::Postgres => Some(app.replica().spawn().await),
        Engine::Sqlite => None,
    };
    let writer = other.as_ref().unwrap_or(&app);
    let conn = app.db.raw().await;
    let mut socket = subscribe_to(&app, &reviewer(), FEED, json!({ "s": "bestshop" })).await;

    // Each transition is made while both replicas' LISTEN connections are being terminated (on PostgreSQL), so
    // most of them commit while this replica is not listening.
    let mut killed = 0;
    let id = submit(writer, "bestshop").await;
    for (at, (mutation, extra, _)) in REVIEW.iter().enumerate() {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let killer = match engine {
            Engine::Postgres => Some(keep_killing_listeners(&app, &conn, stopped).await),
            Engine::Sqlite => None,
        };
        review(writer, mutation, &id, at as i64 + 1, extra).await;
        stop.send_replace(true);
        if let Some(killer) = killer {
            killed += killer.await.unwrap();
        }
    }
    let mut cursors = Vec::new();
    let expected = std::iter::once("SUBMITTED").chain(REVIEW.iter().map(|(_, _, status)| *status));
    for (at, status) in expected.enumerate() {
        let seen = entry(&mut socket, "payoutChangeFeed").await;
        assert_eq!((seen["status"].as_str(), seen["version"].as_i64()), (Some(status), Some(at as i64 + 1)));
        cursors.push(seen["cursor"].as_str().unwrap().to_owned());
    }
    cursors.dedup();
    assert_eq!(cursors.len(), 1 + REVIEW.len(), "each transition once");
    if engine == Engine::Postgres {
        assert!(killed >= REVIEW.len(), "the listening connections were terminated ({killed})");
        eventually("both replicas listen again", Duration::from_secs(10), || async {
            listeners(&app, &conn).await == 2
        })
        .await;
    }
    // The connection that listens again still delivers, live.
    let next_one = submit(writer, "bestshop").await;
    let live = entry(&mut socket, "payoutChangeFeed").await;
    assert_eq!((live["requestId"].as_str(), live["version"].as_i64()), (Some(next_one.as_str()), Some(1)));
}
on_both_engines!(no_transition_is_lost_when_the_replica_loses_its_listening_connection);

async fn the_feed_needs_a_kyc_scope_and_a_cursor_of_its_own(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    let mut socket = connect(&app, Some(&app.token("credentials:read", &["*"]))).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": FEED } })).await;
    let refused = next(&mut socket, Duration::from_secs(5)).await.unwrap();
    let extensions = &refused["payload"]["errors"][0]["extensions"];
    assert_eq!(
        (extensions["code"].as_str(), extensions["reason"].as_str()),
        (Some("FORBIDDEN"), Some("MISSING_SCOPE"))
    );

    // A cursor of the credential change feed is not one of this feed.
    let mut socket = connect(&app, Some(&reviewer())).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let credential_cursor = "Y3JlZGVudGlhbC1jaGFuZ2U6MQ"; // base64 of "credential-change:1"
    let payload = json!({ "query": FEED, "variables": { "a": credential_cursor } });
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": payload })).await;
    let refused = next(&mut socket, Duration::from_secs(5)).await.unwrap();
    let extensions = &refused["payload"]["errors"][0]["extensions"];
    assert_eq!(
        (extensions["code"].as_str(), extensions["reason"].as_str()),
        (Some("BAD_USER_INPUT"), Some("INVALID_CURSOR"))
    );
}
on_both_engines!(the_feed_needs_a_kyc_scope_and_a_cursor_of_its_own);
