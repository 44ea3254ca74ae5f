//! `/graphql/ws` is as strict as HTTP: each limit closes the socket with its code (see docs/websocket.md), and the
//! subscribers of the credential change feed share one database read per change.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdvault_tests::tokens::{token_lasting, token_with_ids};
use cdvault_tests::ws::{Socket, closed, connect, next, open, send, subscribe, try_open};
use cdvault_tests::{ALL_SCOPES, Engine, ISSUER, TestApp, eventually, on_both_engines, token_for};
use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SELLER: &str = "bestshop";
const CHANGES: &str = "subscription($a: String) { credentialChanged(after: $a) { cursor sellerLogin version } }";
const WAIT: Duration = Duration::from_secs(10);

fn console() -> String {
    token_for("console", "credentials:read", Some(&["*"]))
}

/// A socket acknowledged with `token`.
async fn acknowledged(app: &TestApp, token: &str) -> Socket {
    let mut socket = connect(app, Some(token)).await;
    let ack = next(&mut socket, WAIT).await.expect("an answer to connection_init");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

/// Subscribes to credential changes (`after` a cursor) and waits until the subscription listens.
async fn follow_changes(app: &TestApp, socket: &mut Socket, id: &str, after: Option<&str>) {
    let before = app.subscriptions_started();
    subscribe(socket, id, CHANGES, json!({ "a": after })).await;
    app.subscribed(before).await;
}

/// The next credential change on a socket.
async fn change(socket: &mut Socket) -> Value {
    let message = next(socket, WAIT).await.expect("a credential change");
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["credentialChanged"].clone()
}

async fn store(app: &TestApp, version: usize) {
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.store_password(&admin, SELLER, &format!("Passw0rd-{version}!")).await.data();
}

async fn a_message_larger_than_the_http_body_limit_closes_the_socket_with_1009(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let mut socket = acknowledged(&app, &console()).await;
    let query = format!("subscription {{ credentialChanged {{ cursor }} }} # {}", "x".repeat(100 * 1024));
    subscribe(&mut socket, "1", &query, json!({})).await;
    assert_eq!(closed(&mut socket, WAIT).await, (1009, "Message too big".to_owned()));
    assert_eq!(app.subscriptions_started(), 0, "nothing ran");
}
on_both_engines!(a_message_larger_than_the_http_body_limit_closes_the_socket_with_1009);

async fn a_socket_without_connection_init_closes_with_4408_even_while_it_pings(engine: Engine) {
    let app = TestApp::builder(engine).http(|o| o.websocket.init_timeout = Duration::from_millis(300)).spawn().await;
    let mut socket = open(&app).await;
    // WebSocket pings are answered, and keep nothing alive.
    socket.send(Message::Ping(b"still here".to_vec().into())).await.unwrap();
    assert_eq!(closed(&mut socket, WAIT).await, (4408, "Connection initialisation timeout".to_owned()));
}
on_both_engines!(a_socket_without_connection_init_closes_with_4408_even_while_it_pings);

async fn a_subscribe_or_ping_before_connection_init_closes_with_4401_and_nothing_runs(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let mut socket = open(&app).await;
    subscribe(&mut socket, "1", CHANGES, json!({})).await;
    assert_eq!(closed(&mut socket, WAIT).await, (4401, "Unauthorized".to_owned()));
    let mut socket = open(&app).await;
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(closed(&mut socket, WAIT).await, (4401, "Unauthorized".to_owned()));
    assert_eq!(app.subscriptions_started(), 0, "nothing ran");
}
on_both_engines!(a_subscribe_or_ping_before_connection_init_closes_with_4401_and_nothing_runs);

async fn one_subscription_over_the_socket_cap_closes_with_4429_and_completed_ones_free_their_place(engine: Engine) {
    let app = TestApp::builder(engine).http(|o| o.websocket.subscriptions_per_socket = 2).spawn().await;
    let mut socket = acknowledged(&app, &console()).await;
    follow_changes(&app, &mut socket, "1", None).await;
    follow_changes(&app, &mut socket, "2", None).await;
    send(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    follow_changes(&app, &mut socket, "3", None).await;
    subscribe(&mut socket, "4", CHANGES, json!({})).await;
    assert_eq!(closed(&mut socket, WAIT).await, (4429, "Too many subscriptions".to_owned()));
}
on_both_engines!(one_subscription_over_the_socket_cap_closes_with_4429_and_completed_ones_free_their_place);

async fn one_socket_over_the_identity_cap_closes_with_4429_while_another_identity_connects(engine: Engine) {
    let app = TestApp::builder(engine).http(|o| o.websocket.sockets_per_identity = 2).spawn().await;
    let first = acknowledged(&app, &console()).await;
    let _second = acknowledged(&app, &console()).await;
    let mut third = connect(&app, Some(&console())).await;
    assert_eq!(closed(&mut third, WAIT).await, (4429, "Too many sockets".to_owned()));
    let _other = acknowledged(&app, &token_for("other-console", "credentials:read", Some(&["*"]))).await;

    // A closed socket gives its place back.
    drop(first);
    let app = &app;
    eventually("a socket of the identity is accepted again", WAIT, move || async move {
        let mut socket = connect(app, Some(&console())).await;
        next(&mut socket, WAIT).await.is_some_and(|m| m["type"] == "connection_ack")
    })
    .await;
}
on_both_engines!(one_socket_over_the_identity_cap_closes_with_4429_while_another_identity_connects);

async fn a_socket_closes_with_4401_when_its_token_expires(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let short = token_lasting("console", "credentials:read", Some(&["*"]), Duration::from_secs(2));
    let mut socket = acknowledged(&app, &short).await;
    follow_changes(&app, &mut socket, "1", None).await;
    assert_eq!(closed(&mut socket, WAIT).await, (4401, "Token expired".to_owned()));
}
on_both_engines!(a_socket_closes_with_4401_when_its_token_expires);

async fn a_socket_closes_with_4403_when_its_token_is_revoked(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let leaked = token_with_ids("console", "credentials:read", &["*"], Some("leaked"), Some(now));
    let mut socket = acknowledged(&app, &leaked).await;
    follow_changes(&app, &mut socket, "1", None).await;
    let revoke = "mutation($i: String!, $j: String!) { revokeToken(issuer: $i, jti: $j) { jti } }";
    let admin = token_for("security-admin", "access:admin", None);
    app.graphql(Some(&admin), revoke, json!({ "i": ISSUER, "j": "leaked" })).await.data();
    assert_eq!(closed(&mut socket, WAIT).await, (4403, "Token revoked".to_owned()));
    // And it cannot connect again.
    let mut again = connect(&app, Some(&leaked)).await;
    assert_eq!(closed(&mut again, WAIT).await, (4403, "Token revoked".to_owned()));
}
on_both_engines!(a_socket_closes_with_4403_when_its_token_is_revoked);

async fn a_socket_closes_with_1001_when_the_server_shuts_down(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let mut socket = acknowledged(&app, &console()).await;
    let mut unauthenticated = open(&app).await;
    app.vault().close_sessions();
    assert_eq!(closed(&mut socket, WAIT).await, (1001, "Going away".to_owned()));
    assert_eq!(closed(&mut unauthenticated, WAIT).await, (1001, "Going away".to_owned()));
}
on_both_engines!(a_socket_closes_with_1001_when_the_server_shuts_down);

async fn subscribes_over_the_identity_rate_limit_close_with_4429_and_are_audited(engine: Engine) {
    let app = TestApp::builder(engine)
        .http(|o| {
            o.rate_limits.per_identity_burst = NonZeroU32::new(2).unwrap();
            o.rate_limits.per_identity_per_second = NonZeroU32::MIN;
        })
        .spawn()
        .await;
    let mut socket = acknowledged(&app, &console()).await;
    for id in 1..=5 {
        subscribe(&mut socket, &id.to_string(), CHANGES, json!({})).await;
    }
    assert_eq!(closed(&mut socket, WAIT).await, (4429, "Rate limited".to_owned()));
    let denials = app.audit(json!({ "action": "authenticate" })).await;
    assert!(denials.iter().any(|event| event["reason"] == "RATE_LIMITED"), "the denial is audited: {denials:?}");
}
on_both_engines!(subscribes_over_the_identity_rate_limit_close_with_4429_and_are_audited);

async fn a_flood_of_token_less_upgrades_meets_429_before_the_upgrade(engine: Engine) {
    let app = TestApp::builder(engine)
        .http(|o| {
            o.rate_limits.per_address_burst = NonZeroU32::new(3).unwrap();
            o.rate_limits.per_address_per_second = NonZeroU32::MIN;
        })
        .spawn()
        .await;
    let mut refused = 0;
    for _ in 0..20 {
        match try_open(&app).await {
            Ok(socket) => drop(socket),
            Err(status) => {
                assert_eq!(status, 429);
                refused += 1;
            }
        }
    }
    assert!(refused >= 10, "only {refused} of 20 upgrades were refused");
}
on_both_engines!(a_flood_of_token_less_upgrades_meets_429_before_the_upgrade);

async fn subscribers_of_credential_changes_share_one_database_read_per_change(engine: Engine) {
    let app = TestApp::builder(engine).registered(SELLER).spawn().await;
    let mut sockets = Vec::new();
    for _ in 0..5 {
        let mut socket = acknowledged(&app, &console()).await;
        follow_changes(&app, &mut socket, "1", None).await;
        sockets.push(socket);
    }
    let reads = app.vault().credential_change_reads();
    for version in 1..=3 {
        store(&app, version).await;
        for socket in &mut sockets {
            assert_eq!(change(socket).await["version"], version);
        }
    }
    let read = app.vault().credential_change_reads() - reads;
    // One read per change (a poke that finds nothing new reads once too); each subscriber reading would be 15.
    assert!((1..=3).contains(&read), "{read} database reads for 3 changes and 5 subscribers");
}
on_both_engines!(subscribers_of_credential_changes_share_one_database_read_per_change);

async fn a_subscriber_resuming_from_a_cursor_replays_then_follows_live_changes_without_gap_or_duplicate(
    engine: Engine,
) {
    let app = TestApp::builder(engine).registered(SELLER).spawn().await;
    let mut live = acknowledged(&app, &console()).await;
    follow_changes(&app, &mut live, "1", None).await;
    store(&app, 1).await;
    let cursor = change(&mut live).await["cursor"].as_str().unwrap().to_owned();
    for version in 2..=4 {
        store(&app, version).await;
    }

    // Resumes after version 1 while versions 5 to 7 are stored: the replay and the live changes meet.
    let mut resumed = acknowledged(&app, &console()).await;
    follow_changes(&app, &mut resumed, "1", Some(&cursor)).await;
    let writes = async {
        for version in 5..=7 {
            store(&app, version).await;
        }
    };
    let reads = async {
        let mut versions = Vec::new();
        for _ in 2..=7 {
            versions.push(change(&mut resumed).await["version"].as_i64().unwrap());
        }
        versions
    };
    let ((), versions) = tokio::join!(writes, reads);
    assert_eq!(versions, vec![2, 3, 4, 5, 6, 7]);
    assert!(next(&mut resumed, Duration::from_millis(500)).await.is_none(), "no change twice");
    for version in 2..=7 {
        assert_eq!(change(&mut live).await["version"], version);
    }
}
on_both_engines!(a_subscriber_resuming_from_a_cursor_replays_then_follows_live_changes_without_gap_or_duplicate);
