//! Two replicas of the `cdvault` binary on one private PostgreSQL: one killed with SIGKILL mid-load, then both
//! restarted in turn under load.

use std::time::Duration;

use base64::Engine as _;
use cdvault_tests::operations::{REGISTER_SELLER, STORE_API_CREDENTIAL};
use cdvault_tests::pg_cluster::{PgCluster, free_port};
use cdvault_tests::ws::{Socket, connect_at, next, send};
use cdvault_tests::{ALL_SCOPES, token_for};
use serde_json::{Value, json};

use crate::load::{Load, Outcome, Target, audit_matches, codes};
use crate::replica::{ROOT_KEY, Replica};

const SELLER: &str = "replicashop";

async fn graphql(address: &str, query: &str, variables: Value) -> Value {
    let admin = token_for("admin", ALL_SCOPES, Some(&["*"]));
    let body = json!({ "query": query, "variables": variables });
    let answer = reqwest::Client::new().post(format!("http://{address}/graphql")).bearer_auth(admin).json(&body);
    let answer: Value = answer.send().await.unwrap().json().await.unwrap();
    assert!(answer.get("errors").is_none(), "{answer}");
    answer
}

/// Stores a new password for the seller (the next version) through the replica at `address`.
async fn store(address: &str, version: u32) {
    let input = json!({ "sellerLogin": SELLER, "password": format!("Replica-Passw0rd-{version}!") });
    graphql(address, STORE_API_CREDENTIAL, json!({ "i": input })).await;
}

/// Follows the seller's credential changes on the replica at `address`, after `cursor`.
async fn follow(address: &str, after: &str) -> Socket {
    let mut socket = connect_at(address, &token_for("console", "credentials:read", Some(&[SELLER]))).await;
    assert_eq!(next(&mut socket, Duration::from_secs(10)).await.unwrap()["type"], "connection_ack");
    let query = "subscription($s: String, $a: String) { credentialChanged(sellerLogin: $s, after: $a) { cursor version change } }";
    let payload = json!({ "query": query, "variables": { "s": SELLER, "a": after } });
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": payload })).await;
    socket
}

/// The next change on `socket`: its version and cursor.
async fn change(socket: &mut Socket) -> (i64, String) {
    let message = next(socket, Duration::from_secs(15)).await.expect("a credential change");
    assert_eq!(message["type"], "next", "{message}");
    let change = &message["payload"]["data"]["credentialChanged"];
    (change["version"].as_i64().unwrap(), change["cursor"].as_str().unwrap().to_owned())
}

/// The cursor before the first change of the feed (sequence 0), so that a subscriber receives every change.
fn cursor_before_everything() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("credential-change:0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_load_loses_nothing_committed_and_a_subscription_resumes_on_the_survivor() {
    let test = "a_replica_killed_mid_load_loses_nothing_committed_and_a_subscription_resumes_on_the_survivor";
    let Some(cluster) = PgCluster::start(test) else { return };
    let url = cluster.create_database("cdvault").await;
    let doomed = Replica::start(&url, "127.0.0.1:0").await;
    let survivor = Replica::start(&url, "127.0.0.1:0").await;
    graphql(&doomed.address, REGISTER_SELLER, json!({ "login": SELLER })).await;
    store(&doomed.address, 1).await;

    // A console follows the seller on the replica about to die, from the first change on.
    let mut console = follow(&doomed.address, &cursor_before_everything()).await;
    assert_eq!(change(&mut console).await.0, 1);
    let addresses = vec![doomed.address.clone(), survivor.address.clone()];
    let token = token_for("tool", "credentials:read", Some(&[SELLER]));
    let load = Load::start(16, Target { addresses, retry_on_connection_error: false }, &token, SELLER);
    load.issues_more(100, Duration::from_secs(30)).await;
    store(&survivor.address, 2).await;
    let (version, cursor) = change(&mut console).await;
    assert_eq!(version, 2, "a change made on the other replica reaches the console");

    let doomed_address = doomed.address.clone();
    doomed.kill().await;
    store(&survivor.address, 3).await;
    store(&survivor.address, 4).await;
    load.issues_more(100, Duration::from_secs(30)).await;
    let requests = load.finish().await;

    // The console reconnects to the survivor with its last cursor: the changes it missed come first, none lost.
    let mut resumed = follow(&survivor.address, &cursor).await;
    assert_eq!(change(&mut resumed).await.0, 3);
    assert_eq!(change(&mut resumed).await.0, 4);

    let audited = audit_matches(&cdvault_tests::TestDb::postgres_at(&url), &requests).await;
    let killed: Vec<_> = requests.iter().filter(|r| r.outcome != Outcome::Issued).collect();
    eprintln!(
        "fault: replica killed with SIGKILL: {} requests, {} issued, {} failed {:?} (all to the killed replica), {} \
         of them committed with the reply lost",
        requests.len(),
        audited.issued,
        audited.failed,
        codes(&requests),
        audited.lost_replies,
    );
    for request in &killed {
        assert!(matches!(request.outcome, Outcome::NoAnswer(_)), "{request:?}");
        assert_eq!(request.address, doomed_address, "the survivor failed a request: {request:?}");
    }
    let db = cdvault_tests::keyed_db(&url, ROOT_KEY).await;
    let verified = cdvault_storage::audit::verify(&db, &[]).await.expect("the audit chain verifies");
    assert!(verified.checked >= u64::try_from(audited.issued).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_fails_no_request_of_a_client_that_retries_once_on_the_other_replica() {
    let test = "a_rolling_restart_under_load_fails_no_request_of_a_client_that_retries_once_on_the_other_replica";
    let Some(cluster) = PgCluster::start(test) else { return };
    let url = cluster.create_database("cdvault").await;
    let listen = [format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port())];
    let mut replicas = vec![Replica::start(&url, &listen[0]).await, Replica::start(&url, &listen[1]).await];
    graphql(&replicas[0].address, REGISTER_SELLER, json!({ "login": SELLER })).await;
    store(&replicas[0].address, 1).await;
    let addresses = replicas.iter().map(|r| r.address.clone()).collect();
    let token = token_for("tool", "credentials:read", Some(&[SELLER]));
    let load = Load::start(16, Target { addresses, retry_on_connection_error: true }, &token, SELLER);
    load.issues_more(100, Duration::from_secs(30)).await;

    // One replica after the other: stopped (SIGTERM), served by the other meanwhile, started again on its address.
    for (i, listen) in listen.iter().enumerate() {
        let replica = replicas.remove(i);
        replica.terminate().await;
        load.issues_more(50, Duration::from_secs(30)).await;
        let restarted = Replica::start(&url, listen).await;
        restarted.ready(Duration::from_secs(30)).await;
        replicas.insert(i, restarted);
        load.issues_more(50, Duration::from_secs(30)).await;
    }
    let requests = load.finish().await;

    let audited = audit_matches(&cdvault_tests::TestDb::postgres_at(&url), &requests).await;
    let retried = requests.iter().filter(|r| r.purposes.len() > 1).count();
    eprintln!(
        "fault: rolling restart: {} requests, {} issued, {} failed {:?}, {retried} retried once, {} tries committed \
         with the reply lost",
        requests.len(),
        audited.issued,
        audited.failed,
        codes(&requests),
        audited.lost_replies,
    );
    assert_eq!(audited.failed, 0, "{:?}", codes(&requests));
    let db = cdvault_tests::keyed_db(&url, ROOT_KEY).await;
    cdvault_storage::audit::verify(&db, &[]).await.expect("the audit chain verifies");
}
