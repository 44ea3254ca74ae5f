//! The main listener's transport: TLS (`CDVAULT_TLS_CERT_FILE`, `CDVAULT_TLS_KEY_FILE`, `CDVAULT_TLS_RELOAD_POLL_MS`,
//! `CDVAULT_HSTS_MAX_AGE`) and the browser origins of CORS (`CDVAULT_CORS_ORIGINS`, `CDVAULT_CORS_MAX_AGE`),
//! validated once. The certificate files are read by the server at start-up, which names the setting of a bad one.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use cdvault_api::http::{CorsOptions, TlsOptions};

use super::raw::{RawSettings, Text};
use super::{ConfigError, err};

const TLS_RELOAD_POLL_MS: RangeInclusive<u64> = 100..=3_600_000;
/// Two years: the longest HSTS lifetime in common use (the preload list's).
const HSTS_MAX_AGE: RangeInclusive<u64> = 0..=63_072_000;
/// A day: Firefox's cap on a preflight cache.
const CORS_MAX_AGE: RangeInclusive<u64> = 0..=86_400;

/// TLS when both files are named, plain HTTP when neither is; one alone is an error.
pub(super) fn tls_options(raw: &RawSettings) -> Result<Option<TlsOptions>, ConfigError> {
    let reload_poll = Text::number(raw.tls_reload_poll_ms.as_ref(), "CDVAULT_TLS_RELOAD_POLL_MS", TLS_RELOAD_POLL_MS)?
        .map_or(TlsOptions::DEFAULT_RELOAD_POLL, Duration::from_millis);
    let hsts_max_age = Text::number(raw.hsts_max_age.as_ref(), "CDVAULT_HSTS_MAX_AGE", HSTS_MAX_AGE)?
        .map_or(TlsOptions::DEFAULT_HSTS_MAX_AGE, Duration::from_secs);
    let cert = Text::present(raw.tls_cert_file.as_ref()).map(str::trim);
    let key = Text::present(raw.tls_key_file.as_ref()).map(str::trim);
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsOptions {
            cert_file: PathBuf::from(cert),
            key_file: PathBuf::from(key),
            reload_poll,
            hsts_max_age,
        })),
        (Some(_), None) => Err(err(
            "CDVAULT_TLS_CERT_FILE is set without CDVAULT_TLS_KEY_FILE: give both (TLS) or neither (plain HTTP)",
        )),
        (None, Some(_)) => Err(err(
            "CDVAULT_TLS_KEY_FILE is set without CDVAULT_TLS_CERT_FILE: give both (TLS) or neither (plain HTTP)",
        )),
    }
}

/// The allowed origins, each as a browser serialises it in `Origin`; none: CORS off.
pub(super) fn cors_options(raw: &RawSettings) -> Result<CorsOptions, ConfigError> {
    let max_age = Text::number(raw.cors_max_age.as_ref(), "CDVAULT_CORS_MAX_AGE", CORS_MAX_AGE)?
        .map_or(CorsOptions::DEFAULT_MAX_AGE, Duration::from_secs);
    let mut origins: Vec<String> = Vec::new();
    if let Some(text) = Text::present(raw.cors_origins.as_ref()) {
        for (position, entry) in text.split(',').map(str::trim).enumerate() {
            let origin = origin(entry, position + 1)?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
    }
    Ok(CorsOptions { origins, max_age })
}

/// One entry of `CDVAULT_CORS_ORIGINS`: exactly `scheme://host[:port]`, normalised as browsers send it (lower case,
/// no default port, an international name in punycode). Errors name the entry by its position, like every setting.
fn origin(entry: &str, position: usize) -> Result<String, ConfigError> {
    let refused = |why: &str| err(format!("CDVAULT_CORS_ORIGINS: entry {position} {why}"));
    if entry == "*" {
        return Err(refused(
            "is `*`, which is refused: list each origin (any site could otherwise read the API's answers)",
        ));
    }
    if entry.eq_ignore_ascii_case("null") {
        return Err(refused("is `null` (sandboxed or local pages), which is refused"));
    }
    let Some((scheme, rest)) = entry.split_once("://") else {
        return Err(refused("is not an origin like https://console.example.com"));
    };
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Err(refused("must start with https:// or http://"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', '*']) || rest.contains(char::is_whitespace) {
        return Err(refused(
            "must be scheme://host[:port] exactly: no path (not even a final /), query, user or wildcard",
        ));
    }
    let url = url::Url::parse(entry).map_err(|_| refused("is not an origin like https://console.example.com"))?;
    if url.host().is_none() {
        return Err(refused("has no host"));
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cdvault_api::http::{CorsOptions, TlsOptions};

    use super::super::{SETTINGS, Settings, merge};

    fn refused<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
        Settings::from_pairs(pairs).err().unwrap().0
    }

    fn documented(env: &str) -> &'static str {
        SETTINGS.iter().find(|setting| setting.env == env).unwrap().default
    }

    #[test]
    fn without_tls_or_cors_settings_the_listener_is_plain_http_without_cors() {
        let http = Settings::from_pairs([]).unwrap().http;
        assert_eq!(http.tls, None);
        assert_eq!(http.cors, CorsOptions::default());
        assert!(http.cors.origins.is_empty());
    }

    #[test]
    fn a_certificate_and_a_key_together_turn_tls_on_with_the_documented_defaults() {
        let http = Settings::from_pairs([
            ("CDVAULT_TLS_CERT_FILE", "/tls/tls.crt"),
            ("CDVAULT_TLS_KEY_FILE", " /tls/tls.key "),
        ])
        .unwrap()
        .http;
        let tls = http.tls.unwrap();
        assert_eq!((tls.cert_file.to_str(), tls.key_file.to_str()), (Some("/tls/tls.crt"), Some("/tls/tls.key")));
        assert_eq!(documented("CDVAULT_TLS_RELOAD_POLL_MS"), format!("`{}`", tls.reload_poll.as_millis()));
        assert_eq!(documented("CDVAULT_HSTS_MAX_AGE"), format!("`{}`", tls.hsts_max_age.as_secs()));
        assert_eq!(documented("CDVAULT_CORS_MAX_AGE"), format!("`{}`", CorsOptions::DEFAULT_MAX_AGE.as_secs()));
        assert_eq!(tls.reload_poll, TlsOptions::DEFAULT_RELOAD_POLL);
    }

    #[test]
    fn tls_settings_are_read_from_the_file_and_the_environment() {
        let toml = "tls_cert_file = \"/a.crt\"\ntls_key_file = \"/a.key\"\ntls_reload_poll_ms = 250\n";
        let raw = merge(Some(toml), [("CDVAULT_HSTS_MAX_AGE", "0"), ("CDVAULT_CORS_MAX_AGE", "60")]).unwrap();
        let http = Settings::try_from(raw).unwrap().http;
        let tls = http.tls.unwrap();
        assert_eq!((tls.reload_poll, tls.hsts_max_age), (Duration::from_millis(250), Duration::ZERO));
        assert_eq!(http.cors.max_age, Duration::from_secs(60));
    }

    #[test]
    fn only_one_of_the_certificate_and_the_key_is_refused_naming_the_missing_one() {
        let e = refused([("CDVAULT_TLS_CERT_FILE", "/tls/tls.crt")]);
        assert!(e.contains("CDVAULT_TLS_CERT_FILE is set without CDVAULT_TLS_KEY_FILE"), "{e}");
        let e = refused([("CDVAULT_TLS_KEY_FILE", "/tls/tls.key"), ("CDVAULT_TLS_CERT_FILE", " ")]);
        assert!(e.contains("CDVAULT_TLS_KEY_FILE is set without CDVAULT_TLS_CERT_FILE"), "{e}");
    }

    #[test]
    fn out_of_range_tls_and_cors_numbers_are_refused_naming_their_setting() {
        for (name, bad) in [
            ("CDVAULT_TLS_RELOAD_POLL_MS", "99"),
            ("CDVAULT_TLS_RELOAD_POLL_MS", "soon"),
            ("CDVAULT_HSTS_MAX_AGE", "63072001"),
            ("CDVAULT_HSTS_MAX_AGE", "-1"),
            ("CDVAULT_CORS_MAX_AGE", "86401"),
        ] {
            let e = refused([(name, bad)]);
            assert!(e.contains(name), "{name}={bad}: {e}");
        }
    }

    #[test]
    fn origins_are_kept_as_browsers_send_them() {
        let given = "https://Console.Example.com, http://localhost:5173,https://console.example.com:443, \
                     https://[::1]:8443, https://bücher.example";
        let cors = Settings::from_pairs([("CDVAULT_CORS_ORIGINS", given)]).unwrap().http.cors;
        assert_eq!(
            cors.origins,
            [
                "https://console.example.com",
                "http://localhost:5173",
                "https://[::1]:8443",
                "https://xn--bcher-kva.example"
            ]
        );
    }

    #[test]
    fn a_wildcard_a_path_or_a_bad_origin_is_refused_by_its_position() {
        for (given, position, why) in [
            ("*", 1, "`*`"),
            ("https://a.example, *", 2, "`*`"),
            ("https://*.example.com", 1, "wildcard"),
            ("https://console.example.com/", 1, "no path"),
            ("https://console.example.com/app", 1, "no path"),
            ("https://user@console.example.com", 1, "user"),
            ("console.example.com", 1, "origin like"),
            ("ftp://console.example.com", 1, "https://"),
            ("null", 1, "`null`"),
            ("https://a.example,", 2, "origin like"),
            ("https://a.example:99999", 1, "origin like"),
        ] {
            let e = refused([("CDVAULT_CORS_ORIGINS", given)]);
            assert!(e.contains("CDVAULT_CORS_ORIGINS") && e.contains(&format!("entry {position}")), "{given}: {e}");
            assert!(e.contains(why), "{given}: {e}");
        }
        // The value is never quoted (the house rule for every setting).
        let e = refused([("CDVAULT_CORS_ORIGINS", "https://secret-host.example/path")]);
        assert!(!e.contains("secret-host"), "{e}");
    }
}
