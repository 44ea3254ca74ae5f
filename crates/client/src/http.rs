//! One GraphQL operation over `POST /graphql`: the document's text with its hash (Apollo's `persistedQuery`
//! extension, for servers that accept only trusted documents), the bearer token, and the answer read into a result
//! or an [`Error`] with the server's code.

use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::documents::Document;
use crate::error::{Error, ServerError};

/// The request body: the text, its variables, and its hash.
pub(crate) fn request_body(document: &Document, variables: &Value) -> Value {
    json!({
        "query": document.text,
        "operationName": document.name,
        "variables": variables,
        "extensions": { "persistedQuery": { "version": 1, "sha256Hash": document.sha256() } },
    })
}

/// Sends `document` once and reads the field `field` of `data`.
pub(crate) async fn execute<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &Url,
    token: &SecretString,
    document: &Document,
    variables: &Value,
    field: &str,
) -> Result<T, Error> {
    let response = http
        .post(url.clone())
        .bearer_auth(token.expose_secret())
        .json(&request_body(document, variables))
        .send()
        .await
        .map_err(Error::Transport)?;
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(Error::RateLimited { retry_after: retry_after(response.headers()) });
    }
    let body = response.bytes().await.map_err(Error::Transport)?;
    read_answer(status, &body, field)
}

/// `Retry-After` in seconds (the form the vault sends; an HTTP date is not worth a dependency).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The result in `data.<field>`, or the first error with its code.
fn read_answer<T: DeserializeOwned>(status: StatusCode, body: &[u8], field: &str) -> Result<T, Error> {
    let mut answer: Value = serde_json::from_slice(body)
        .map_err(|_| Error::Protocol(format!("HTTP {status} with a body that is not JSON")))?;
    if let Some(first) = answer["errors"].as_array().and_then(|errors| errors.first()) {
        return Err(Error::Server(ServerError::from_json(first)));
    }
    let data = answer.get_mut("data").and_then(|d| d.get_mut(field)).map(Value::take);
    match data {
        // serde's message may quote a value, a secret perhaps: it is left out.
        Some(value) if !value.is_null() => serde_json::from_value(value)
            .map_err(|_| Error::Protocol(format!("`{field}` does not have the expected shape"))),
        _ => Err(Error::Protocol(format!("HTTP {status} without `data.{field}` nor errors"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ErrorCode;
    use crate::documents::ISSUE_API_CREDENTIAL;

    #[test]
    fn the_request_carries_the_text_and_its_persisted_query_hash() {
        let body = request_body(&ISSUE_API_CREDENTIAL, &json!({ "sellerLogin": "s", "purpose": "p" }));
        assert_eq!(body["query"], ISSUE_API_CREDENTIAL.text);
        assert_eq!(body["extensions"]["persistedQuery"]["version"], 1);
        assert_eq!(body["extensions"]["persistedQuery"]["sha256Hash"], ISSUE_API_CREDENTIAL.sha256());
    }

    #[test]
    fn an_error_answer_gives_its_code_and_a_data_answer_its_field() {
        let frozen = br#"{"data":null,"errors":[{"message":"frozen","extensions":{"code":"FROZEN"}}]}"#;
        let error = read_answer::<Value>(StatusCode::OK, frozen, "issueApiCredential").unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::Frozen));
        let refused = br#"{"errors":[{"message":"no","extensions":{"code":"UNAUTHENTICATED"}}]}"#;
        let error = read_answer::<Value>(StatusCode::UNAUTHORIZED, refused, "x").unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::Unauthenticated));
        let ok = br#"{"data":{"x":{"a":1}}}"#;
        assert_eq!(read_answer::<Value>(StatusCode::OK, ok, "x").unwrap(), json!({ "a": 1 }));
        assert!(matches!(read_answer::<Value>(StatusCode::BAD_GATEWAY, b"<html>", "x"), Err(Error::Protocol(_))));
    }
}
