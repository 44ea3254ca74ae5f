//! GraphiQL on `GET /graphql`, from files embedded in the binary (`crates/api/assets/graphiql`, see its README):
//! operators paste bearer tokens into this page and read passwords on it, so it loads nothing from another origin and
//! carries a Content-Security-Policy that forbids it. Switched off (the default in production), `GET /graphql` and
//! the assets answer 404.

use axum::Router;
use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

const INDEX: &str = include_str!("../../assets/graphiql/index.html");

/// The assets the page loads, by file name. Vendored names carry their version, so a year of `immutable` caching is
/// safe; ours (`start.*`) change without renaming, so they are cached briefly.
const ASSETS: &[(&str, &[u8], &str, &str)] = &[
    ("graphiql-3.9.0.min.js", include_bytes!("../../assets/graphiql/graphiql-3.9.0.min.js"), JAVASCRIPT, VERSIONED),
    ("graphiql-3.9.0.min.css", include_bytes!("../../assets/graphiql/graphiql-3.9.0.min.css"), CSS, VERSIONED),
    (
        "react-18.3.1.production.min.js",
        include_bytes!("../../assets/graphiql/react-18.3.1.production.min.js"),
        JAVASCRIPT,
        VERSIONED,
    ),
    (
        "react-dom-18.3.1.production.min.js",
        include_bytes!("../../assets/graphiql/react-dom-18.3.1.production.min.js"),
        JAVASCRIPT,
        VERSIONED,
    ),
    ("start.js", include_bytes!("../../assets/graphiql/start.js"), JAVASCRIPT, UNVERSIONED),
    ("start.css", include_bytes!("../../assets/graphiql/start.css"), CSS, UNVERSIONED),
];

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const VERSIONED: &str = "public, max-age=31536000, immutable";
const UNVERSIONED: &str = "public, max-age=3600";

/// Adds `GET` to the `/graphql` route: the page when GraphiQL is on, a 404 when off (not axum's 405 for a method
/// the route lacks: with GraphiQL off there is simply no page there).
pub(super) fn page<S: Clone + Send + Sync + 'static>(graphql: MethodRouter<S>, enabled: bool) -> MethodRouter<S> {
    if enabled { graphql.get(serve_page) } else { graphql.get(|| async { StatusCode::NOT_FOUND }) }
}

/// The routes of the assets, none when GraphiQL is off.
pub(super) fn assets<S: Clone + Send + Sync + 'static>(enabled: bool) -> Router<S> {
    if enabled { Router::new().route("/graphql/assets/{file}", get(serve_asset)) } else { Router::new() }
}

async fn serve_page(headers: HeaderMap) -> Response {
    let policy = content_security_policy(headers.get(HOST));
    let mut response = ([(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], INDEX).into_response();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        response.headers_mut().insert(CONTENT_SECURITY_POLICY, policy);
    }
    response
}

async fn serve_asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, ..)| *name == file) {
        Some((_, bytes, content_type, cache)) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (CACHE_CONTROL, HeaderValue::from_static(cache)),
                (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Scripts and styles from this origin only; no inline script (the start-up code is `start.js`). Inline styles are
/// allowed because GraphiQL injects `<style>` elements at run time. `connect-src` names the WebSocket origin
/// explicitly: older browsers do not let `'self'` cover `ws:`/`wss:`. The host comes from the request, so only a
/// plain `host[:port]` is echoed, never anything that could add a directive.
fn content_security_policy(host: Option<&HeaderValue>) -> String {
    let socket = host
        .and_then(|host| host.to_str().ok())
        .filter(|host| is_plain_host(host))
        .map(|host| format!(" ws://{host} wss://{host}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         font-src 'self' data:; connect-src 'self'{socket}; object-src 'none'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_websocket_origin_of_a_plain_host() {
        let policy = content_security_policy(Some(&HeaderValue::from_static("vault.internal:8080")));
        assert!(policy.contains("connect-src 'self' ws://vault.internal:8080 wss://vault.internal:8080;"), "{policy}");
        assert!(policy.starts_with("default-src 'self'; script-src 'self';"), "{policy}");
    }

    #[test]
    fn a_host_that_could_add_a_directive_is_left_out_of_the_policy() {
        for host in ["evil; script-src *", "a b", "x,y", ""] {
            let policy = content_security_policy(HeaderValue::from_str(host).ok().as_ref());
            assert!(policy.contains("connect-src 'self'; object-src"), "{host:?}: {policy}");
        }
    }

    #[test]
    fn the_page_loads_every_asset_it_names_and_nothing_else() {
        for (name, ..) in ASSETS {
            assert!(INDEX.contains(&format!("/graphql/assets/{name}")), "{name} is served but not loaded");
        }
        assert_eq!(INDEX.matches("/graphql/assets/").count(), ASSETS.len());
    }

    async fn status(router: &Router, method: &str, uri: &str) -> StatusCode {
        use tower::ServiceExt;
        let request = axum::http::Request::builder().method(method).uri(uri).body(axum::body::Body::empty()).unwrap();
        router.clone().oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn with_graphiql_off_the_page_and_its_assets_answer_404_while_post_still_runs() {
        let graphql = axum::routing::post(|| async { "ran" });
        let router = Router::new().route("/graphql", page(graphql, false)).merge(assets(false));
        assert_eq!(status(&router, "GET", "/graphql").await, StatusCode::NOT_FOUND);
        assert_eq!(status(&router, "GET", "/graphql/assets/start.js").await, StatusCode::NOT_FOUND);
        assert_eq!(status(&router, "POST", "/graphql").await, StatusCode::OK);
    }

    #[tokio::test]
    async fn with_graphiql_on_an_unknown_asset_answers_404() {
        let graphql = axum::routing::post(|| async { "ran" });
        let router = Router::new().route("/graphql", page(graphql, true)).merge(assets(true));
        assert_eq!(status(&router, "GET", "/graphql").await, StatusCode::OK);
        assert_eq!(status(&router, "GET", "/graphql/assets/start.js").await, StatusCode::OK);
        assert_eq!(status(&router, "GET", "/graphql/assets/..%2Fsecret").await, StatusCode::NOT_FOUND);
    }
}
