//! Retention of the change feeds: changes older than `CDVAULT_CHANGE_FEED_RETENTION` are pruned, and a subscriber
//! resuming from a cursor whose next changes were pruned is told `CURSOR_EXPIRED` on both feeds. Time is the test
//! clock's, moved forward instead of waited for.

use std::time::Duration;

use cdvault_tests::ws::{Socket, connect, next, send};
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, on_both_engines, token_for};
use serde_json::{Value, json};

use crate::payout_feed::{FEED, entry, review, submit, subscribe_to};

const CREDENTIALS: &str = "subscription($a: String) { credentialChanged(after: $a) { cursor version } }";

/// Subscribes with `after`, expecting a refusal: its `extensions`.
async fn refused(app: &TestApp, token: &str, query: &str, after: &Value) -> Value {
    let mut socket: Socket = connect(app, Some(token)).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let payload = json!({ "query": query, "variables": { "a": after } });
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": payload })).await;
    let message = next(&mut socket, Duration::from_secs(5)).await.expect("an answer");
    // The error is the subscription's only result; it completes.
    let completed = next(&mut socket, Duration::from_secs(5)).await;
    assert!(completed.as_ref().is_none_or(|m| m["type"] == "complete"), "{completed:?}");
    message["payload"]["errors"][0]["extensions"].clone()
}

async fn a_cursor_older_than_the_kept_changes_is_refused_as_expired_on_both_feeds(engine: Engine) {
    let app = TestApp::builder(engine).registered("bestshop").spawn().await;
    let (admin, tool, console) = (
        app.token(ALL_SCOPES, &["*"]),
        app.token("credentials:read", &["*"]),
        token_for("console", "kyc:review", Some(&["*"])),
    );
    let mut credentials = subscribe_to(&app, &tool, CREDENTIALS, json!({})).await;
    let mut payouts = subscribe_to(&app, &console, FEED, json!({})).await;
    for password in ["First-passw0rd", "Second-passw0rd", "Third-passw0rd"] {
        app.store_password(&admin, "bestshop", password).await.data();
    }
    let id = submit(&app, "bestshop").await;
    review(&app, "startPayoutReview", &id, 1, "").await;
    review(&app, "requestPayoutDocuments", &id, 2, "documents: [IBAN_CERTIFICATE],").await;
    let mut c = Vec::new();
    let mut p = Vec::new();
    for _ in 0..3 {
        c.push(entry(&mut credentials, "credentialChanged").await["cursor"].clone());
        p.push(entry(&mut payouts, "payoutChangeFeed").await["cursor"].clone());
    }

    // Within the retention, nothing is pruned and the oldest cursor still resumes.
    assert_eq!(app.vault().prune_change_feeds().await.unwrap(), 0);
    let mut resumed = subscribe_to(&app, &console, FEED, json!({ "a": p[0] })).await;
    assert_eq!(entry(&mut resumed, "payoutChangeFeed").await["status"], "IN_REVIEW");
    drop(resumed);

    // Eight days later (the default retention is seven), every change but the newest of each feed is pruned.
    app.options.clock.advance(time::Duration::days(8));
    assert_eq!(app.vault().prune_change_feeds().await.unwrap(), 4);
    assert_eq!(app.vault().prune_change_feeds().await.unwrap(), 0, "the newest change of each feed is kept");

    // A cursor whose next change is gone: expired, on both feeds.
    for (token, query, after) in [(&tool, CREDENTIALS, &c[0]), (&console, FEED, &p[0])] {
        let extensions = refused(&app, token, query, after).await;
        assert_eq!(
            (extensions["code"].as_str(), extensions["field"].as_str()),
            (Some("CURSOR_EXPIRED"), Some("after")),
            "{query}"
        );
    }

    // The cursor just before the kept change still resumes, then follows live changes.
    let mut credentials = subscribe_to(&app, &tool, CREDENTIALS, json!({ "a": c[1] })).await;
    assert_eq!(entry(&mut credentials, "credentialChanged").await["version"], 3);
    let mut payouts = subscribe_to(&app, &console, FEED, json!({ "a": p[1] })).await;
    assert_eq!(entry(&mut payouts, "payoutChangeFeed").await["status"], "DOCUMENTS_REQUESTED");
    app.store_password(&admin, "bestshop", "Fourth-passw0rd").await.data();
    review(&app, "resumePayoutReview", &id, 3, "").await;
    assert_eq!(entry(&mut credentials, "credentialChanged").await["version"], 4);
    assert_eq!(entry(&mut payouts, "payoutChangeFeed").await["status"], "IN_REVIEW");
    // And a subscriber that starts over without `after` gets what comes next.
    let mut fresh = subscribe_to(&app, &console, FEED, json!({})).await;
    review(&app, "approvePayoutChange", &id, 4, "").await;
    assert_eq!(entry(&mut fresh, "payoutChangeFeed").await["status"], "APPROVED");
}
on_both_engines!(a_cursor_older_than_the_kept_changes_is_refused_as_expired_on_both_feeds);
