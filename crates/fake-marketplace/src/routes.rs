//! The HTTP handlers: the STS and Octopia token endpoints, scripted misbehaviour, and the demo call counter.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng as _;
use serde_json::json;

use crate::state::Shared;
use crate::{CALLS_PATH, Failure, HANG_FOR, OCTOPIA_TOKEN_PATH, STS_PATH, STS_REALM};

const STS_BODY_PREFIX: &str = r#"<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">"#;
const STS_BODY_SUFFIX: &str = "</string>";
const REJECT_HTML: &str = "<html><head><title>401 - Unauthorized</title></head>\
<body><h1>401 - Unauthorized: Access is denied due to invalid credentials.</h1></body></html>";
const BOT_PAGE_HTML: &str = "<html><head><title>Access denied</title></head>\
<body><p>Please enable JavaScript and cookies to continue.</p>\
<p>Complete the captcha below to prove you are not a robot.</p></body></html>";

/// Which endpoint a failure is rendered for, since the two speak different body formats.
#[derive(Clone, Copy)]
enum Route {
    Sts,
    Octopia,
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(STS_PATH, get(sts))
        .route(STS_PATH.trim_end_matches('/'), get(sts))
        .route(OCTOPIA_TOKEN_PATH, post(octopia_token))
        .route(CALLS_PATH, get(calls))
        .with_state(shared)
}

/// Lowercase hex, like the real STS tokens, so clients' format assumptions get exercised.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0_u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

/// Parses `Authorization: Basic base64(login:password)`; anything malformed counts as no credentials.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (login, password) = decoded.split_once(':')?;
    Some((login.to_owned(), password.to_owned()))
}

/// Applies the delay and any scripted failure; `Some` means that response replaces the normal one.
async fn misbehave(shared: &Shared, route: Route) -> Option<Response> {
    let (delay, failure) = shared.on_arrival();
    shared.sleep(delay).await;
    let response = match failure? {
        Failure::TooManyRequests { retry_after_secs } => {
            let mut response = match route {
                Route::Sts => StatusCode::TOO_MANY_REQUESTS.into_response(),
                Route::Octopia => {
                    (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": "too_many_requests"}))).into_response()
                }
            };
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Failure::ServerError => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Failure::BotPage => html(StatusCode::OK, BOT_PAGE_HTML),
        Failure::Hang => {
            shared.sleep(HANG_FOR).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    };
    Some(response)
}

fn html(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The legacy STS: Basic auth in, an XML-wrapped opaque token out.
async fn sts(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    shared.sts_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = misbehave(&shared, Route::Sts).await {
        return response;
    }
    let realm_ok = query.as_ref().ok().and_then(|Query(q)| q.get("realm")).is_some_and(|realm| realm == STS_REALM);
    if !realm_ok {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let credentials = basic_credentials(&headers);
    let (authorized, reject_with_html) = {
        let inner = shared.lock();
        let authorized = credentials
            .as_ref()
            .is_some_and(|(login, password)| inner.api_accounts.get(login).is_some_and(|known| known == password));
        (authorized, inner.reject_with_html)
    };
    if !authorized {
        return if reject_with_html {
            html(StatusCode::UNAUTHORIZED, REJECT_HTML)
        } else {
            StatusCode::UNAUTHORIZED.into_response()
        };
    }
    let token = random_hex(16);
    shared.record_token(&token);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        format!("{STS_BODY_PREFIX}{token}{STS_BODY_SUFFIX}"),
    )
        .into_response()
}

fn oauth_error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// A JWT-shaped token with a random payload: clients must treat it as opaque, but may log its shape.
fn fake_jwt(client_id: &str, expires_in: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "fake-marketplace"});
    let payload = json!({
        "exp": now.saturating_add(expires_in),
        "iat": now,
        "jti": random_hex(16),
        "iss": "fake-marketplace/auth/realms/maas",
        "azp": client_id,
        "typ": "Bearer",
        "scope": "profile email",
    });
    let mut signature = [0_u8; 32];
    rand::rng().fill(&mut signature);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Octopia's Keycloak client-credentials grant; also accepts credentials via Basic auth, as Keycloak does.
async fn octopia_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    shared.octopia_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = misbehave(&shared, Route::Octopia).await {
        return response;
    }
    let invalid_request = || oauth_error(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
    let Ok(Form(mut fields)) = form else {
        return invalid_request();
    };
    let Some(grant_type) = fields.remove("grant_type") else {
        return invalid_request();
    };
    if grant_type != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}),
        );
    }
    let credentials = match (fields.remove("client_id"), fields.remove("client_secret")) {
        (Some(id), Some(secret)) => Some((id, secret)),
        _ => basic_credentials(&headers),
    };
    let Some((client_id, client_secret)) = credentials else {
        return invalid_request();
    };
    let (authorized, expires_in) = {
        let inner = shared.lock();
        (inner.octopia_clients.get(&client_id).is_some_and(|known| *known == client_secret), inner.octopia_expires_in)
    };
    if !authorized {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}),
        );
    }
    let token = fake_jwt(&client_id, expires_in);
    shared.record_token(&token);
    Json(json!({
        "access_token": token,
        "expires_in": expires_in,
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    }))
    .into_response()
}

/// Demo control endpoint: lets a human (or a shell script) see how many calls the client made.
async fn calls(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({
        "sts": shared.sts_calls.load(Ordering::SeqCst),
        "octopia": shared.octopia_calls.load(Ordering::SeqCst),
    }))
}
