//! Reading the token services' answers: only the documented success forms give a token; everything else is a typed
//! refusal or an "unavailable" with a stable reason.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use zeroize::Zeroizing;

use crate::{AccessToken, MarketplaceError, STS_TOKEN_LIFETIME};

const STS_PREFIX: &str = "<string xmlns=\"http://schemas.microsoft.com/2003/10/Serialization/\">";
const STS_SUFFIX: &str = "</string>";

fn is_html(headers: &HeaderMap, body: &[u8]) -> bool {
    let typed_html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
    let start: Vec<u8> = body.iter().skip_while(|b| b.is_ascii_whitespace()).take(15).copied().collect();
    let start = String::from_utf8_lossy(&start).to_ascii_lowercase();
    typed_html || start.starts_with("<!doctype html") || start.starts_with("<html")
}

pub(crate) fn parse_sts(headers: &HeaderMap, body: &[u8]) -> Result<AccessToken, MarketplaceError> {
    if is_html(headers, body) {
        return Err(MarketplaceError::unavailable(
            "BOT_PROTECTION",
            "the STS answered an HTML page instead of a token",
        ));
    }
    if body.is_empty() {
        return Err(MarketplaceError::unavailable("UNEXPECTED_RESPONSE", "the STS answered an empty body"));
    }
    let unexpected = || MarketplaceError::unavailable("UNEXPECTED_RESPONSE", "the STS answer is not a token string");
    let text = std::str::from_utf8(body).map_err(|_| unexpected())?.trim();
    let token = text.strip_prefix(STS_PREFIX).and_then(|t| t.strip_suffix(STS_SUFFIX)).ok_or_else(unexpected)?;
    if !plausible_sts_token(token) {
        return Err(unexpected());
    }
    Ok(AccessToken::new(Zeroizing::new(token.to_owned()), STS_TOKEN_LIFETIME))
}

/// Cdiscount's tokens are 32 hexadecimal characters; a little slack in length, none in the alphabet.
fn plausible_sts_token(token: &str) -> bool {
    (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[derive(serde::Deserialize)]
struct OctopiaAnswer {
    access_token: Zeroizing<String>,
    expires_in: u64,
}

#[derive(serde::Deserialize)]
struct OctopiaRefusal {
    error: String,
}

pub(crate) fn parse_octopia(body: &[u8]) -> Result<AccessToken, MarketplaceError> {
    let unexpected =
        |what: &str| MarketplaceError::unavailable("UNEXPECTED_RESPONSE", format!("the Octopia token answer {what}"));
    let answer: OctopiaAnswer = serde_json::from_slice(body).map_err(|_| unexpected("is not the expected JSON"))?;
    let token = answer.access_token;
    if token.is_empty() || token.len() > 16 * 1024 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(unexpected("has no usable access_token"));
    }
    if answer.expires_in == 0 {
        return Err(unexpected("says the token is already expired"));
    }
    Ok(AccessToken::new(token, Duration::from_secs(answer.expires_in)))
}

pub(crate) fn octopia_refusal(status: StatusCode, body: &[u8]) -> Result<AccessToken, MarketplaceError> {
    let error = serde_json::from_slice::<OctopiaRefusal>(body).map(|r| r.error).unwrap_or_default();
    match error.as_str() {
        "unauthorized_client" => Err(MarketplaceError::Rejected { reason: "UNAUTHORIZED_CLIENT" }),
        "invalid_client" => Err(MarketplaceError::Rejected { reason: "INVALID_CLIENT" }),
        _ if status == StatusCode::UNAUTHORIZED => Err(MarketplaceError::Rejected { reason: "UNAUTHORIZED" }),
        _ => Err(MarketplaceError::unavailable("UNEXPECTED_RESPONSE", format!("the Octopia server answered {status}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn html() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "text/html; charset=utf-8".parse().unwrap());
        headers
    }

    #[test]
    fn the_sts_string_form_gives_a_token_valid_for_48_hours() {
        let body = format!("{STS_PREFIX}0123456789abcdef0123456789abcdef{STS_SUFFIX}");
        let token = parse_sts(&HeaderMap::new(), body.as_bytes()).unwrap();
        assert_eq!(token.expose(), "0123456789abcdef0123456789abcdef");
        assert_eq!(token.lifetime, Duration::from_secs(172_800));
    }

    #[test]
    fn anything_but_the_sts_string_form_is_an_error() {
        let cases: [(&HeaderMap, &str, &str); 5] = [
            (&HeaderMap::new(), "", "UNEXPECTED_RESPONSE"),
            (&html(), "<html><body>captcha</body></html>", "BOT_PROTECTION"),
            (&HeaderMap::new(), "  <!DOCTYPE html><html></html>", "BOT_PROTECTION"),
            (&HeaderMap::new(), "<string>0123456789abcdef0123456789abcdef</string>", "UNEXPECTED_RESPONSE"),
            (&HeaderMap::new(), &format!("{STS_PREFIX}not a token!{STS_SUFFIX}"), "UNEXPECTED_RESPONSE"),
        ];
        for (headers, body, reason) in cases {
            assert_eq!(parse_sts(headers, body.as_bytes()).unwrap_err().reason(), reason, "{body}");
        }
    }

    #[test]
    fn octopia_answers_are_parsed_and_refusals_classified() {
        let token = parse_octopia(br#"{"access_token":"a.b.c","expires_in":7199,"token_type":"Bearer"}"#).unwrap();
        assert_eq!((token.expose(), token.lifetime.as_secs()), ("a.b.c", 7199));
        assert_eq!(
            parse_octopia(br#"{"access_token":"","expires_in":1}"#).unwrap_err().reason(),
            "UNEXPECTED_RESPONSE"
        );
        let refusal = octopia_refusal(StatusCode::UNAUTHORIZED, br#"{"error":"unauthorized_client"}"#);
        assert_eq!(refusal.unwrap_err(), MarketplaceError::Rejected { reason: "UNAUTHORIZED_CLIENT" });
        let odd = octopia_refusal(StatusCode::BAD_REQUEST, br#"{"error":"unsupported_grant_type"}"#);
        assert_eq!(odd.unwrap_err().reason(), "UNEXPECTED_RESPONSE");
    }
}
