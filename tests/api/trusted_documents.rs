//! Trusted documents (`CDVAULT_TRUSTED_DOCUMENTS`): with the TypeScript client's manifest configured, its operations
//! run whether named by hash, by text or both, over HTTP and WebSocket; anything else is refused with a code before
//! it is parsed. Off (the default), any operation runs.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use cdvault_tests::tools::{TYPESCRIPT_MANIFEST, typescript_trusted_documents};
use cdvault_tests::ws::{Socket, connect, next, send, subscribe};
use cdvault_tests::{Engine, Gql, TestApp, token_for};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
/// Not in the manifest: the manifest's `Viewer` asks for more fields.
const OUTSIDE: &str = "query Viewer { viewer { subject } }";

/// The TypeScript client's manifest: hash -> document.
fn manifest() -> BTreeMap<String, String> {
    serde_json::from_str(&std::fs::read_to_string(TYPESCRIPT_MANIFEST).unwrap()).unwrap()
}

async fn trusting_app() -> TestApp {
    TestApp::builder(Engine::Sqlite).http(|o| o.trusted_documents = Some(typescript_trusted_documents())).spawn().await
}

/// A token that may read but not freeze: the manifest's mutations are answered, not carried out.
fn reader() -> String {
    token_for("tool", "credentials:read", Some(&["*"]))
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// The three ways a client may name a document: by hash only, by text only, by both.
fn ways(hash: &str, text: &str) -> [(&'static str, Value); 3] {
    // `after: 1` is not a String: the subscription fails its variables at once instead of listening, and the
    // documents without `$after` ignore it. Every document then answers with one result.
    let variables = json!({ "after": 1 });
    [
        ("hash", json!({ "extensions": persisted(hash), "variables": variables })),
        ("text", json!({ "query": text, "variables": variables })),
        ("both", json!({ "query": text, "extensions": persisted(hash), "variables": variables })),
    ]
}

/// The codes of an answer's errors.
fn codes(body: &Value) -> Vec<String> {
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    errors.iter().map(|e| e["extensions"]["code"].as_str().unwrap_or_default().to_owned()).collect()
}

/// An answer without its request ids, to compare the answers to the three ways.
fn without_request_ids(mut body: Value) -> Value {
    if let Some(errors) = body["errors"].as_array_mut() {
        for error in errors {
            error["extensions"].as_object_mut().map(|e| e.remove("requestId"));
        }
    }
    body
}

fn refused_as(answer: &Gql, code: &str) {
    assert_eq!((answer.status, answer.code()), (400, code), "{}", answer.body);
    assert!(answer.body["data"].is_null(), "{}", answer.body);
    assert!(answer.error()["requestId"].is_string(), "{}", answer.body);
}

/// The first message of operation `id`: its result (`next`) or its refusal (`error`).
async fn answer(socket: &mut Socket, id: &str) -> Value {
    loop {
        let message = next(socket, WAIT).await.unwrap_or_else(|| panic!("no answer to operation {id}"));
        if message["id"] == id && message["type"] != "complete" {
            return message;
        }
    }
}

async fn acknowledged(app: &TestApp) -> Socket {
    let mut socket = connect(app, Some(&reader())).await;
    assert_eq!(next(&mut socket, WAIT).await.unwrap()["type"], "connection_ack");
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_the_typescript_manifest_runs_by_hash_by_text_and_by_both_over_http() {
    let app = trusting_app().await;
    let token = reader();
    let manifest = manifest();
    assert!(manifest.len() >= 8, "the manifest holds the client's operations");
    for (hash, text) in &manifest {
        let mut answers = Vec::new();
        for (way, body) in ways(hash, text) {
            let answer = app.post_json(Some(&token), &body).await;
            let codes = codes(&answer.body);
            assert_eq!(answer.status, 200, "{way} {text}: {}", answer.body);
            assert!(
                !codes.iter().any(|c| c == "DOCUMENT_NOT_TRUSTED" || c == "PERSISTED_QUERY_NOT_FOUND"),
                "{codes:?}"
            );
            answers.push(without_request_ids(answer.body));
        }
        assert!(answers.iter().all(|a| *a == answers[0]), "the three ways differ for {text}: {answers:?}");
    }
    // And the reads read: the hash alone names the manifest's text.
    let viewer = manifest.iter().find(|(_, text)| text.starts_with("query Viewer")).unwrap().0;
    let answer = app.post_json(Some(&token), &json!({ "extensions": persisted(viewer) })).await;
    assert_eq!(answer.data()["viewer"]["subject"], "tool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_the_typescript_manifest_runs_by_hash_by_text_and_by_both_over_websocket() {
    let app = trusting_app().await;
    let mut socket = acknowledged(&app).await;
    let mut id = 0;
    for (hash, text) in &manifest() {
        for (way, request) in ways(hash, text) {
            id += 1;
            send(&mut socket, json!({ "id": id.to_string(), "type": "subscribe", "payload": request })).await;
            let answer = answer(&mut socket, &id.to_string()).await;
            // A result, errors of its own included (the WebSocket runs no mutation), never a refusal.
            assert_eq!(answer["type"], "next", "{way} {text}: {answer}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_outside_the_manifest_an_unknown_hash_or_a_mismatch_is_refused_over_http() {
    let app = trusting_app().await;
    let token = reader();
    let manifest = manifest();
    let (hash, text) = manifest.iter().next().unwrap();

    refused_as(&app.graphql(Some(&token), OUTSIDE, json!({})).await, "DOCUMENT_NOT_TRUSTED");
    let introspection = "{ __schema { queryType { name } } }";
    refused_as(&app.graphql(Some(&token), introspection, json!({})).await, "DOCUMENT_NOT_TRUSTED");
    // Never parsed: a document the parser would refuse (or choke on) is refused as untrusted.
    let deep = format!("{}{}", "{ a ".repeat(5_000), "}".repeat(5_000));
    refused_as(&app.graphql(Some(&token), &deep, json!({})).await, "DOCUMENT_NOT_TRUSTED");
    refused_as(&app.post_json(Some(&token), &json!({ "variables": {} })).await, "DOCUMENT_NOT_TRUSTED");

    let unknown = "0".repeat(64);
    let by_unknown_hash = app.post_json(Some(&token), &json!({ "extensions": persisted(&unknown) })).await;
    refused_as(&by_unknown_hash, "PERSISTED_QUERY_NOT_FOUND");
    let mismatch = json!({ "query": OUTSIDE, "extensions": persisted(hash) });
    refused_as(&app.post_json(Some(&token), &mismatch).await, "DOCUMENT_NOT_TRUSTED");
    let edited = json!({ "query": format!("{text} "), "extensions": persisted(hash) });
    refused_as(&app.post_json(Some(&token), &edited).await, "DOCUMENT_NOT_TRUSTED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_outside_the_manifest_an_unknown_hash_or_a_mismatch_is_refused_over_websocket() {
    let app = trusting_app().await;
    let mut socket = acknowledged(&app).await;
    let manifest = manifest();
    let (hash, _) = manifest.iter().next().unwrap();
    let unknown = "0".repeat(64);
    let before = app.subscriptions_started();
    for (id, request, code) in [
        ("1", json!({ "query": "subscription { credentialChanged { cursor } }" }), "DOCUMENT_NOT_TRUSTED"),
        ("2", json!({ "extensions": persisted(&unknown) }), "PERSISTED_QUERY_NOT_FOUND"),
        ("3", json!({ "query": OUTSIDE, "extensions": persisted(hash) }), "DOCUMENT_NOT_TRUSTED"),
    ] {
        send(&mut socket, json!({ "id": id, "type": "subscribe", "payload": request })).await;
        let refusal = answer(&mut socket, id).await;
        assert_eq!(refusal["type"], "error", "{refusal}");
        assert_eq!(refusal["payload"][0]["extensions"]["code"], code, "{refusal}");
        assert!(refusal["payload"][0]["extensions"]["requestId"].is_string(), "{refusal}");
    }
    assert_eq!(app.subscriptions_started(), before, "nothing ran");
    // The socket stays open for the client's trusted operations, and a refused id may be used again.
    let viewer = manifest.iter().find(|(_, text)| text.starts_with("query Viewer")).unwrap().0;
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "extensions": persisted(viewer) } })).await;
    let answer = answer(&mut socket, "1").await;
    assert_eq!(answer["payload"]["data"]["viewer"]["subject"], "tool", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_documents_any_operation_runs() {
    let app = TestApp::builder(Engine::Sqlite).spawn().await;
    assert_eq!(app.graphql(Some(&reader()), OUTSIDE, json!({})).await.data()["viewer"]["subject"], "tool");
    let unparsable = app.graphql(Some(&reader()), "{ viewer {", json!({})).await;
    assert_eq!(unparsable.code(), "GRAPHQL_PARSE_FAILED", "the parser saw it");

    let mut socket = acknowledged(&app).await;
    subscribe(&mut socket, "1", OUTSIDE, json!({})).await;
    assert_eq!(answer(&mut socket, "1").await["payload"]["data"]["viewer"]["subject"], "tool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_start_with_a_manifest_whose_hash_is_not_that_of_its_document() {
    let dir = tempfile::tempdir().unwrap();
    let mut edited = manifest();
    let (_, text) = edited.iter_mut().next().unwrap();
    text.push_str(" # widened by hand");
    let path = dir.path().join("edited.json");
    std::fs::write(&path, serde_json::to_string(&edited).unwrap()).unwrap();

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cdvault-replica"));
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("CDVAULT_")) {
        command.env_remove(key);
    }
    let output = command
        .arg("serve")
        .current_dir(dir.path())
        .env("CDVAULT_LISTEN", "127.0.0.1:0")
        .env("CDVAULT_TRUSTED_DOCUMENTS", format!("{TYPESCRIPT_MANIFEST},{}", path.display()))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT, output).await.expect("the server stops at once").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it started: {stderr}");
    assert!(stderr.contains("CDVAULT_TRUSTED_DOCUMENTS: manifest 2"), "{stderr}");
    assert!(stderr.contains("is not the sha256 of its document"), "{stderr}");
    assert!(!dir.path().join("cdvault-data").exists(), "nothing was created before the refusal");
}
