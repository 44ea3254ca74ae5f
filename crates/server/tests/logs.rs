//! The real `cdvault` binary's logs and traces: JSON lines that each parse, carry the request id, the caller and the
//! root fields, and never a password or a token; spans exported over OTLP/HTTP to a collector (a tiny one here),
//! whose trace ids the log lines carry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::Value;

mod support;

use support::{cdvault, run, text};

const PASSWORD: &str = "Logs-Passw0rd!";

/// A `cdvault serve` child whose whole stderr is kept.
struct Serving {
    child: Child,
    address: String,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Serving {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .arg("serve")
            .env("CDVAULT_LISTEN", "127.0.0.1:0")
            .env("CDVAULT_LOG_FORMAT", "json")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let address = wait_for(|| {
            lines.lock().unwrap().iter().find_map(|line| {
                let line: Value = serde_json::from_str(line).ok()?;
                line["message"]
                    .as_str()?
                    .strip_prefix("cdvault listening on http://")?
                    .split('/')
                    .next()
                    .map(str::to_owned)
            })
        });
        Self { child, address, lines, reader: Some(reader) }
    }

    /// Stops the server with SIGTERM, waits for it to exit cleanly, and returns every line it wrote.
    fn stop(mut self) -> Vec<String> {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(self.child.wait().unwrap().success(), "the server stops cleanly");
        // The pipe closes with the process: the reader has every line once it ends.
        self.reader.take().unwrap().join().unwrap();
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `found` until it finds something, for 30 seconds at most.
fn wait_for<T>(mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mint(dir: &std::path::Path, subject: &str) -> String {
    let minted = run(cdvault(dir).args([
        "token",
        "--sub",
        subject,
        "--scope",
        "credentials:read credentials:write",
        "--sellers",
        "*",
    ]));
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    text(&minted.stdout).trim().to_owned()
}

/// POSTs `query` with `token` (and `headers`); returns the request id the server answered with.
async fn post(address: &str, token: &str, query: &str, headers: &[(&str, &str)]) -> String {
    let mut request = reqwest::Client::new().post(format!("http://{address}/graphql")).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.json(&serde_json::json!({ "query": query })).send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    response.text().await.unwrap();
    id
}

fn parsed(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect()
}

/// The `served` line of the request `id`.
fn served<'a>(lines: &'a [Value], id: &str) -> &'a Value {
    lines
        .iter()
        .find(|line| line["message"] == "served" && line["request_id"] == id)
        .unwrap_or_else(|| panic!("no served line for {id}: {lines:#?}"))
}

#[test]
fn json_logs_name_the_request_its_caller_and_root_fields_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serving::start(cdvault(dir.path()));
    let token = mint(dir.path(), "logs-admin");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (viewer, store, refused) = rt.block_on(async {
        let address = &server.address;
        post(address, &token, "mutation { registerSellerAccount(input: {login: \"logshop\", displayName: \"L\"}) { id } }", &[]).await;
        let store = format!(
            "mutation {{ stored: storeApiCredential(input: {{sellerLogin: \"logshop\", password: \"{PASSWORD}\"}}) {{ warnings }} }}"
        );
        let store = post(address, &token, &store, &[]).await;
        post(address, &token, "mutation { issueApiCredential(sellerLogin: \"logshop\", purpose: \"logs\") { password } }", &[])
            .await;
        let viewer = post(address, &token, "query Mine { me: viewer { subject } }", &[]).await;
        let refused = post(address, "not-a-token", "{ viewer { subject } }", &[]).await;
        (viewer, store, refused)
    });
    let raw = server.stop();
    let lines = parsed(&raw);

    let viewer = served(&lines, &viewer);
    assert_eq!((&viewer["issuer"], &viewer["subject"]), (&"cdvault-dev".into(), &"logs-admin".into()), "{viewer}");
    assert_eq!(viewer["root_fields"], "viewer", "the schema's name, not the alias or the operation name");
    assert_eq!(viewer["level"], "INFO");
    assert_eq!(viewer["status"], 200);
    assert_eq!(served(&lines, &store)["root_fields"], "storeApiCredential");
    let refused = served(&lines, &refused);
    assert_eq!(refused["status"], 401);
    assert!(refused.get("subject").is_none(), "a refused token names nobody: {refused}");
    assert!(lines.iter().all(|line| line.get("trace_id").is_none()), "no span is exported");
    for line in &raw {
        assert!(!line.contains(PASSWORD) && !line.contains(&token), "a secret in the log: {line}");
        assert!(!line.contains(&token[token.len() - 20..]), "part of the token in the log: {line}");
    }
}

/// A collector's OTLP/HTTP traces receiver: keeps the body of every `POST /v1/traces`.
fn collector(rt: &tokio::runtime::Runtime) -> (String, Arc<Mutex<Vec<ExportTraceServiceRequest>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| async move {
            kept.lock().unwrap().push(ExportTraceServiceRequest::decode(body).unwrap());
            // An empty ExportTraceServiceResponse.
            ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn spans_reach_the_otlp_collector_as_cdvault_and_log_lines_carry_their_trace_id() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (endpoint, received) = collector(&rt);
    let dir = tempfile::tempdir().unwrap();
    let mut command = cdvault(dir.path());
    command.env("CDVAULT_OTLP_ENDPOINT", &endpoint);
    let server = Serving::start(command);
    let token = mint(dir.path(), "traced");
    // The caller's trace: the request span joins it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let joined = rt.block_on(post(&server.address, &token, "{ viewer { subject } }", &[("traceparent", &traceparent)]));
    let own = rt.block_on(post(&server.address, &token, "{ viewer { subject } }", &[]));
    // The shutdown flushes the exporter's last batch.
    let lines = parsed(&server.stop());

    let exports = received.lock().unwrap().clone();
    assert!(!exports.is_empty(), "the collector received spans");
    let mut spans = Vec::new();
    for export in &exports {
        for resource in &export.resource_spans {
            let attributes = &resource.resource.as_ref().unwrap().attributes;
            let service = attributes.iter().find(|kv| kv.key == "service.name").unwrap();
            let name = service.value.as_ref().and_then(|v| v.value.clone());
            assert_eq!(name, Some(AnyValue::StringValue("cdvault".to_owned())));
            spans.extend(resource.scope_spans.iter().flat_map(|scope| scope.spans.iter()));
        }
    }
    let requests: Vec<_> = spans.iter().filter(|span| span.name == "request").collect();
    assert!(requests.len() >= 2, "{spans:#?}");

    let joined = served(&lines, &joined);
    assert_eq!(joined["trace_id"], trace_id, "the traceparent's trace: {joined}");
    let own = served(&lines, &own);
    let own_trace = own["trace_id"].as_str().unwrap();
    assert_ne!(own_trace, trace_id);
    for line in [joined, own] {
        let (trace, span) = (line["trace_id"].as_str().unwrap(), line["span_id"].as_str().unwrap());
        assert!(
            requests.iter().any(|s| hex(&s.trace_id) == trace && hex(&s.span_id) == span),
            "the log line's ids are those of an exported request span: {line}"
        );
    }
}
