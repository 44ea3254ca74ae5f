//! `/readyz` in detail: one entry per component (audit writer, database, keyring, identity providers' keys,
//! freeze, audit stream), 200 while the audit writer and the database work, 503 naming the one that does not.

use std::time::Duration;

use cdvault_tests::{ALL_SCOPES, Engine, TestApp, eventually, on_both_engines};
use serde_json::Value;

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn readiness_names_every_component_of_a_ready_server(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let (status, body) = readyz(&app).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")), "{body}");
    assert_eq!(body["problem"], Value::Null);
    let components = &body["components"];
    assert_eq!(components["audit_writer"]["state"], "alive", "{body}");
    assert_eq!(components["database"]["reachable"], true);
    assert_eq!(components["keyring"]["active_version"], 1);
    assert_eq!(components["freeze"]["frozen"], false);
    assert_eq!(components["audit_stream"]["enabled"], false);
    for name in ["audit_writer", "database", "keyring", "freeze", "audit_stream"] {
        assert_eq!(components[name]["ok"], true, "{name}: {body}");
    }
    let providers = components["identity_providers"].as_array().unwrap();
    assert_eq!(providers.len(), 1, "{body}");
    assert_eq!((providers[0]["source"].as_str(), providers[0]["keys"].as_u64()), (Some("configured"), Some(1)));
    assert_eq!(providers[0]["ok"], true);
}
on_both_engines!(readiness_names_every_component_of_a_ready_server);

async fn readiness_reports_the_audit_streams_lag_until_it_catches_up(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::builder(engine)
        .audit_stream_file(&dir.path().join("audit-stream.jsonl"))
        .seller_with_password("readyshop", "Ready-Passw0rd!")
        .spawn()
        .await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.issue_password(&admin, "readyshop").await.data();
    eventually("the stream reported caught up", Duration::from_secs(20), || async {
        let (_, body) = readyz(&app).await;
        let stream = &body["components"]["audit_stream"];
        stream["enabled"] == true && stream["lag"] == 0 && stream["head"].as_i64() >= Some(3)
    })
    .await;
    let (status, body) = readyz(&app).await;
    let stream = &body["components"]["audit_stream"];
    assert_eq!((status, &stream["ok"], &stream["last_error"]), (200, &Value::Bool(true), &Value::Null), "{body}");
    assert_eq!(stream["streamed_through"], stream["head"]);
}
on_both_engines!(readiness_reports_the_audit_streams_lag_until_it_catches_up);

async fn a_killed_audit_writer_makes_readiness_503_naming_the_writer(engine: Engine) {
    let app = TestApp::builder(engine).seller_with_password("deadshop", "Dead-Passw0rd!").spawn().await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.vault().inject_audit_writer_panic();
    // The issue in flight when the writer panics fails closed.
    let refused = app.issue_password(&admin, "deadshop").await;
    assert_eq!(refused.code(), "INTERNAL_SERVER_ERROR", "{}", refused.body);
    // Red while it restarts (half a second before the first restart); it may already be back when we look, so
    // the test asserts on the first red answer it sees, which the restart pause makes all but certain.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = readyz(&app).await;
        if status == 503 {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "/readyz still green: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["problem"], "audit writer restarting", "{body}");
    assert_eq!(body["components"]["audit_writer"]["ok"], false);
    assert_eq!(body["components"]["audit_writer"]["state"], "restarting");
    assert_eq!(body["components"]["database"]["ok"], true, "the database is not blamed");
    eventually("/readyz green again", Duration::from_secs(10), || async { readyz(&app).await.0 == 200 }).await;
}
on_both_engines!(a_killed_audit_writer_makes_readiness_503_naming_the_writer);
