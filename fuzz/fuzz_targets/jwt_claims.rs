//! `JwtVerifier::verify` and `authenticate` on any text, and on HS256 tokens signed with the right secret whose
//! claims are fuzzed (values of any JSON type, times from the past to `u64::MAX`, raw claims and header text).
//! Never panics; a token accepted names the subject it was minted with, and `authenticate` agrees with `verify`.
#![no_main]

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cdvault_api::auth::{JwtKey, JwtSettings, JwtVerifier};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretBox;
use serde_json::{Map, Value, json};

const SECRET: &[u8] = b"cdvault-fuzz-hs256-secret-of-at-least-32-bytes";
const ISSUER: &str = "https://issuer.fuzz.invalid";
const AUDIENCE: &str = "cdvault-fuzz";

fn verifier() -> &'static JwtVerifier {
    static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let key = JwtKey::Hs256(SecretBox::new(Box::new(SECRET.to_vec())));
        let settings = JwtSettings::single(key, ISSUER, AUDIENCE);
        JwtVerifier::new(&settings).unwrap_or_else(|e| panic!("fuzz verifier settings: {e}"))
    })
}

#[derive(Debug, Arbitrary)]
enum Input<'a> {
    /// Any text, as a token and as an `Authorization` header.
    Raw(&'a str),
    /// A signed token whose claims are built from fuzzed values.
    Claims(Claims<'a>),
    /// A signed token whose header and claims are fuzzed text.
    Text { header: Option<&'a str>, claims: &'a [u8] },
}

#[derive(Debug, Arbitrary)]
enum Scalar<'a> {
    Text(&'a str),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    Null,
    List(Vec<&'a str>),
}

#[derive(Debug, Arbitrary)]
enum Time<'a> {
    /// Seconds from now (either way), as an integer.
    FromNow(i64),
    /// Seconds from now as a fraction.
    FromNowFloat(f64),
    Exactly(Scalar<'a>),
    Omitted,
}

#[derive(Debug, Arbitrary)]
enum Expected<'a> {
    Right,
    RightInList,
    Other(Scalar<'a>),
    Omitted,
}

#[derive(Debug, Arbitrary)]
struct Claims<'a> {
    /// Mostly text; any other JSON type must be refused.
    sub: Result<&'a str, Scalar<'a>>,
    scope: Option<Scalar<'a>>,
    sellers: Option<Scalar<'a>>,
    exp: Time<'a>,
    nbf: Time<'a>,
    iat: Time<'a>,
    iss: Expected<'a>,
    aud: Expected<'a>,
}

fn scalar(value: &Scalar<'_>) -> Value {
    match value {
        Scalar::Text(text) => json!(text),
        Scalar::Unsigned(n) => json!(n),
        Scalar::Signed(n) => json!(n),
        // NaN and infinities have no JSON form: serde_json writes null.
        Scalar::Float(x) => json!(x),
        Scalar::Bool(b) => json!(b),
        Scalar::Null => Value::Null,
        Scalar::List(items) => json!(items),
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn time(value: &Time<'_>) -> Option<Value> {
    match value {
        Time::FromNow(offset) => Some(json!(now().saturating_add(*offset))),
        Time::FromNowFloat(offset) => Some(json!(now() as f64 + offset)),
        Time::Exactly(value) => Some(scalar(value)),
        Time::Omitted => None,
    }
}

fn expected(value: &Expected<'_>, right: &str) -> Option<Value> {
    match value {
        Expected::Right => Some(json!(right)),
        Expected::RightInList => Some(json!(["someone-else", right])),
        Expected::Other(other) => Some(scalar(other)),
        Expected::Omitted => None,
    }
}

fn claims_json(claims: &Claims<'_>) -> Value {
    let sub = match &claims.sub {
        Ok(sub) => json!(sub),
        Err(other) => scalar(other),
    };
    let mut map = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            map.insert(name.to_owned(), value);
        }
    };
    put("sub", Some(sub));
    put("scope", claims.scope.as_ref().map(scalar));
    put("sellers", claims.sellers.as_ref().map(scalar));
    put("exp", time(&claims.exp));
    put("nbf", time(&claims.nbf));
    put("iat", time(&claims.iat));
    put("iss", expected(&claims.iss, ISSUER));
    put("aud", expected(&claims.aud, AUDIENCE));
    Value::Object(map)
}

/// An HS256 token over exactly these header and claims bytes, signed with [`SECRET`].
fn sign(header: &[u8], claims: &[u8]) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &EncodingKey::from_secret(SECRET), Algorithm::HS256)
        .unwrap_or_else(|e| panic!("signing failed: {e}"));
    format!("{input}.{signature}")
}

/// Runs the verifier's futures: a static key needs no I/O, so no runtime, but the API is async.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

/// Verifies `token` both ways; returns the subject accepted, if any.
fn check(token: &str) -> Option<String> {
    let verified = block_on(verifier().verify(token));
    let authenticated = block_on(verifier().authenticate(Some(&format!("Bearer {token}"))));
    match (&verified, &authenticated) {
        (Ok(principal), Ok(Some(same))) => assert_eq!(principal.subject, same.subject),
        (Err(_), Err(_)) => {}
        _ if token.trim() != token || token.is_empty() => {} // the header form trims the token
        _ => panic!("verify and authenticate disagree: {verified:?} / {authenticated:?}"),
    }
    verified.ok().map(|principal| principal.subject)
}

const HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

fuzz_target!(|input: Input<'_>| {
    assert!(matches!(block_on(verifier().authenticate(None)), Ok(None)), "no header is no identity, not an error");
    match input {
        Input::Raw(text) => {
            let _ = block_on(verifier().authenticate(Some(text)));
            let _ = check(text);
        }
        Input::Claims(claims) => {
            let body = claims_json(&claims);
            let token = sign(HEADER, body.to_string().as_bytes());
            if let Some(subject) = check(&token) {
                let minted = body.get("sub").and_then(Value::as_str);
                assert_eq!(Some(subject.as_str()), minted, "an accepted token names the subject it was minted with");
            }
        }
        Input::Text { header, claims } => {
            let token = sign(header.map_or(HEADER, str::as_bytes), claims);
            if let Some(subject) = check(&token) {
                let sent: Option<Value> = serde_json::from_slice(claims).ok();
                let sent = sent.as_ref().and_then(|c| c.get("sub")).and_then(Value::as_str);
                assert_eq!(Some(subject.as_str()), sent, "an accepted token names the subject it was minted with");
            }
        }
    }
});
