//! Browsers on other origins: CORS headers for the configured origins only (preflights, answers, refusals), never
//! credentials mode, and the same list held against the `Origin` of a WebSocket upgrade.

use std::num::NonZeroU32;
use std::time::Duration;

use cdvault_tests::ws::{next, send, try_open_from};
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, on_both_engines};
use reqwest::header::HeaderMap;
use serde_json::json;

const CONSOLE: &str = "https://console.example.com";
const DEV_CONSOLE: &str = "http://localhost:5173";
const FOREIGN: &str = "https://evil.example.net";

async fn app_with_origins(engine: Engine) -> TestApp {
    TestApp::builder(engine)
        .http(|http| http.cors.origins = vec![CONSOLE.to_owned(), DEV_CONSOLE.to_owned()])
        .spawn()
        .await
}

/// What a browser sends before a cross-origin POST with a token and a JSON body.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type,x-request-id")
        .send()
        .await
        .unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

/// A comma-separated header as a list of lower-case names.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    header(headers, name).unwrap_or_default().split(',').map(|item| item.trim().to_ascii_lowercase()).collect()
}

async fn a_preflight_from_an_allowed_origin_gets_the_cors_headers_and_another_origin_gets_none(engine: Engine) {
    let app = app_with_origins(engine).await;
    for origin in [CONSOLE, DEV_CONSOLE] {
        let answer = preflight(&app, origin).await;
        assert!(answer.status().is_success(), "{origin}: {}", answer.status());
        let headers = answer.headers();
        assert_eq!(header(headers, "access-control-allow-origin"), Some(origin));
        let methods = list(headers, "access-control-allow-methods");
        for method in ["get", "post", "options"] {
            assert!(methods.contains(&method.to_owned()), "{methods:?}");
        }
        let allowed = list(headers, "access-control-allow-headers");
        for name in ["authorization", "content-type", "x-request-id"] {
            assert!(allowed.contains(&name.to_owned()), "{allowed:?}");
        }
        assert_eq!(header(headers, "access-control-max-age"), Some("600"));
        assert_eq!(header(headers, "access-control-allow-credentials"), None, "never credentials mode");
        assert!(list(headers, "vary").contains(&"origin".to_owned()), "caches must key on the origin");
    }
    // No `Access-Control-Allow-Origin` for a foreign origin: the browser refuses the call. (tower-http still lists
    // the methods, headers and max-age, which are the same for everyone and grant nothing.)
    let foreign = preflight(&app, FOREIGN).await;
    for name in ["access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers"] {
        assert_eq!(header(foreign.headers(), name), None, "a foreign origin got {name}");
    }
}
on_both_engines!(a_preflight_from_an_allowed_origin_gets_the_cors_headers_and_another_origin_gets_none);

async fn answers_to_an_allowed_origin_expose_the_request_id_and_retry_after_even_when_rate_limited(engine: Engine) {
    let app = TestApp::builder(engine)
        .http(|http| {
            http.cors.origins = vec![CONSOLE.to_owned()];
            http.rate_limits.per_address_burst = NonZeroU32::MIN;
            http.rate_limits.per_address_per_second = NonZeroU32::MIN;
        })
        .spawn()
        .await;
    let post = || {
        app.client
            .post(app.url("/graphql"))
            .header("origin", CONSOLE)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
    };
    let answered = post().await.unwrap();
    assert_eq!(answered.status().as_u16(), 200);
    let limited = post().await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    for answer in [&answered, &limited] {
        let headers = answer.headers();
        assert_eq!(header(headers, "access-control-allow-origin"), Some(CONSOLE));
        let exposed = list(headers, "access-control-expose-headers");
        assert!(
            exposed.contains(&"x-request-id".to_owned()) && exposed.contains(&"retry-after".to_owned()),
            "{exposed:?}"
        );
        assert!(header(headers, "x-request-id").is_some());
        assert_eq!(header(headers, "access-control-allow-credentials"), None);
    }
    assert!(header(limited.headers(), "retry-after").is_some(), "what the script reads after a 429");
    assert_eq!(limited.json::<serde_json::Value>().await.unwrap()["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}
on_both_engines!(answers_to_an_allowed_origin_expose_the_request_id_and_retry_after_even_when_rate_limited);

async fn without_configured_origins_no_cors_header_is_sent(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    let answer = preflight(&app, CONSOLE).await;
    assert!(answer.headers().keys().all(|name| !name.as_str().starts_with("access-control-")), "{answer:?}");
    let post =
        app.client.post(app.url("/graphql")).header("origin", CONSOLE).json(&json!({ "query": "{ __typename }" }));
    let answer = post.send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(header(answer.headers(), "access-control-allow-origin"), None);
    // Nor is a WebSocket from any origin refused.
    assert!(try_open_from(&app, Some(FOREIGN)).await.is_ok());
}
on_both_engines!(without_configured_origins_no_cors_header_is_sent);

async fn a_websocket_upgrade_from_a_foreign_origin_is_refused_and_an_allowed_or_absent_origin_is_served(
    engine: Engine,
) {
    let app = app_with_origins(engine).await;
    let (status, body) = try_open_from(&app, Some(FOREIGN)).await.expect_err("a foreign origin was upgraded");
    assert_eq!(status, 403);
    assert_eq!(body["errors"][0]["extensions"]["code"], "ORIGIN_NOT_ALLOWED", "{body}");
    assert!(body["errors"][0]["extensions"]["requestId"].is_string(), "{body}");
    // Same host, another scheme or port: another origin.
    for other in ["http://console.example.com", "https://console.example.com:8443"] {
        assert_eq!(try_open_from(&app, Some(other)).await.err().map(|(status, _)| status), Some(403), "{other}");
    }

    let token = app.token(ALL_SCOPES, &["*"]);
    // An allowed page (as browsers serialise it) and a tool that sends no Origin both get a working session.
    for origin in [Some(CONSOLE), Some(DEV_CONSOLE), None] {
        let mut socket = try_open_from(&app, origin).await.unwrap_or_else(|refused| panic!("{origin:?}: {refused:?}"));
        send(
            &mut socket,
            json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }),
        )
        .await;
        assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"], "connection_ack", "{origin:?}");
    }
}
on_both_engines!(a_websocket_upgrade_from_a_foreign_origin_is_refused_and_an_allowed_or_absent_origin_is_served);
