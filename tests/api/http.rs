use cdvault_tests::{Engine, on_both_engines, spawn_app};

async fn health_readiness_and_graphiql_answer(engine: Engine) {
    let app = spawn_app(engine).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let graphiql = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(graphiql.status().as_u16(), 200);
    assert!(graphiql.text().await.unwrap().to_lowercase().contains("graphiql"));
}
on_both_engines!(health_readiness_and_graphiql_answer);

#[tokio::test]
async fn the_graphiql_page_loads_only_from_our_own_origin_under_a_strict_policy() {
    let app = spawn_app(Engine::Sqlite).await;
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    let policy = headers["content-security-policy"].to_str().unwrap().to_owned();
    for directive in ["default-src 'self'", "script-src 'self';", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    let host = app.address.to_string();
    assert!(policy.contains(&format!("connect-src 'self' ws://{host} wss://{host};")), "{policy}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("https://") && !html.contains("http://") && !html.contains("//"), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");
    let assets: Vec<&str> =
        html.split("\"/graphql/assets/").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    assert!(assets.len() >= 4, "{html}");
    for asset in assets {
        let answer = app.client.get(app.url(&format!("/graphql/assets/{asset}"))).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 200, "{asset}");
        let content_type = answer.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = if asset.ends_with(".js") { "text/javascript" } else { "text/css" };
        assert!(content_type.starts_with(expected), "{asset}: {content_type}");
        assert!(answer.headers()["cache-control"].to_str().unwrap().contains("max-age="), "{asset}");
        let body = answer.text().await.unwrap();
        assert!(!body.is_empty(), "{asset}");
        if asset.ends_with(".css") {
            assert!(!body.contains("url(http") && !body.contains("@import"), "{asset} loads from elsewhere");
        }
    }
    let missing = app.client.get(app.url("/graphql/assets/missing.js")).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test]
async fn every_graphql_answer_forbids_caching_with_or_without_a_token() {
    let app = spawn_app(Engine::Sqlite).await;
    let token = app.token(cdvault_tests::ALL_SCOPES, &["*"]);
    let body = serde_json::json!({ "query": "{ __typename }" });
    for token in [Some(token.as_str()), Some("not.a.jwt"), None] {
        let mut request = app.client.post(app.url("/graphql")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.headers()["cache-control"], "no-store", "token {token:?}: {}", answer.status());
    }
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(health.headers().get("cache-control").is_none(), "only /graphql is concerned");
}

#[tokio::test]
async fn every_response_carries_our_own_request_id_whatever_the_caller_sent() {
    let app = spawn_app(Engine::Sqlite).await;
    let fresh = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = fresh.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    for theirs in ["trace-42", "bad id", &"x".repeat(65)] {
        let replaced = app.client.get(app.url("/healthz")).header("x-request-id", theirs).send().await.unwrap();
        let id = replaced.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{theirs:?} was replaced by our id, got {id}");
    }
}

/// Sends `head` (the request line and headers) then `body` over a raw connection, and returns the status, the
/// headers and the JSON body of the answer. Raw, because the HTTP client cannot lie about a length or stream chunks.
async fn raw_exchange(app: &cdvault_tests::TestApp, head: &str, body: &[u8]) -> (u16, String, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before reading all of it.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 8192];
    while let Ok(read @ 1..) = stream.read(&mut buffer).await {
        answer.extend_from_slice(&buffer[..read]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (headers, rest) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no complete answer: {answer:?}"));
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    let json = &rest[rest.find('{').unwrap()..=rest.rfind('}').unwrap()];
    (status, headers.to_lowercase(), serde_json::from_str(json).unwrap())
}

fn assert_too_large(status: u16, headers: &str, body: &serde_json::Value) {
    assert_eq!(status, 413, "{headers}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "REQUEST_TOO_LARGE", "{body}");
    let request_id = body["errors"][0]["extensions"]["requestId"].as_str().unwrap();
    assert!(headers.contains(&format!("x-request-id: {request_id}")), "the id is echoed: {headers}");
    assert!(headers.contains("content-type: application/json"), "{headers}");
}

#[tokio::test]
async fn a_body_declared_too_long_gets_the_graphql_too_large_answer_before_it_is_sent() {
    let app = spawn_app(Engine::Sqlite).await;
    let token = app.token(cdvault_tests::ALL_SCOPES, &["*"]);
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: cdvault\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        cdvault_api::http::MAX_BODY_BYTES + 1
    );
    let (status, headers, body) = raw_exchange(&app, &head, b"").await;
    assert_too_large(status, &headers, &body);
}

#[tokio::test]
async fn a_chunked_body_that_grows_past_the_limit_is_too_large_whatever_its_token() {
    let app = spawn_app(Engine::Sqlite).await;
    let size = cdvault_api::http::MAX_BODY_BYTES + 4096;
    let mut chunk = format!("{size:x}\r\n").into_bytes();
    chunk.extend(std::iter::repeat_n(b' ', size));
    for token in [app.token(cdvault_tests::ALL_SCOPES, &["*"]), "not.a.jwt".to_owned()] {
        let head = format!(
            "POST /graphql HTTP/1.1\r\nhost: cdvault\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        let (status, headers, body) = raw_exchange(&app, &head, &chunk).await;
        assert_too_large(status, &headers, &body);
    }
    let refusals = app.audit(serde_json::json!({ "action": "authenticate" })).await;
    assert!(refusals.is_empty(), "the body is refused before the token is read: {refusals:?}");
}

#[tokio::test]
async fn with_graphiql_off_get_graphql_answers_404_and_the_api_still_works() {
    let app = cdvault_tests::TestApp::builder(Engine::Sqlite).graphiql(false).spawn().await;
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 404);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let asset = app.client.get(app.url("/graphql/assets/start.js")).send().await.unwrap();
    assert_eq!(asset.status().as_u16(), 404);
    let token = app.token(cdvault_tests::ALL_SCOPES, &["*"]);
    let answer = app.graphql(Some(&token), "{ viewer { subject } }", serde_json::json!({})).await;
    assert_eq!(answer.data()["viewer"]["subject"], "tool");
}
