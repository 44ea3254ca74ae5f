//! The HTTP surface of one replica: GraphiQL, introspection, the rate limits with their trusted proxies, and the
//! WebSocket's limits (`CDVAULT_GRAPHIQL`, `CDVAULT_INTROSPECTION`, `CDVAULT_RATE_*`, `CDVAULT_TRUSTED_PROXIES`,
//! `CDVAULT_WS_*`), validated once. Unset, each is what [`HttpOptions::default`] says (GraphiQL: on in the
//! development set-up).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::time::Duration;

use cdvault_api::http::{HttpOptions, RateLimits, WebSocketLimits};
use ipnet::IpNet;

use super::raw::{RawSettings, Text};
use super::{ConfigError, err};

/// Bounds of the `CDVAULT_WS_*` settings, which the reference table states too.
const WS_INIT_TIMEOUT_MS: RangeInclusive<u64> = 100..=60_000;
const WS_SUBSCRIPTIONS_PER_SOCKET: RangeInclusive<u64> = 1..=10_000;
const WS_SOCKETS_PER_IDENTITY: RangeInclusive<u64> = 1..=100_000;

/// Every setting of the HTTP surface; `dev` turns GraphiQL on by default.
pub(super) fn http_options(raw: &RawSettings, dev: bool) -> Result<HttpOptions, ConfigError> {
    let defaults = HttpOptions::default();
    let (rate, ws) = (&defaults.rate_limits, &defaults.websocket);
    let rate_limits = RateLimits {
        per_identity_per_second: rate_setting(
            raw.rate_identity_per_second.as_ref(),
            "CDVAULT_RATE_IDENTITY_PER_SECOND",
            rate.per_identity_per_second,
        )?,
        per_identity_burst: rate_setting(
            raw.rate_identity_burst.as_ref(),
            "CDVAULT_RATE_IDENTITY_BURST",
            rate.per_identity_burst,
        )?,
        per_address_per_second: rate_setting(
            raw.rate_address_per_second.as_ref(),
            "CDVAULT_RATE_ADDRESS_PER_SECOND",
            rate.per_address_per_second,
        )?,
        per_address_burst: rate_setting(
            raw.rate_address_burst.as_ref(),
            "CDVAULT_RATE_ADDRESS_BURST",
            rate.per_address_burst,
        )?,
        trusted_proxies: trusted_proxies(raw.trusted_proxies.as_ref())?,
        denial_interval: rate.denial_interval,
    };
    let count = |given, name, default: usize, range| -> Result<usize, ConfigError> {
        let Some(value) = number(given, name, range)? else { return Ok(default) };
        usize::try_from(value).map_err(|_| err(format!("{name} is too large for this machine")))
    };
    let websocket = WebSocketLimits {
        init_timeout: number(raw.ws_init_timeout_ms.as_ref(), "CDVAULT_WS_INIT_TIMEOUT_MS", WS_INIT_TIMEOUT_MS)?
            .map_or(ws.init_timeout, Duration::from_millis),
        subscriptions_per_socket: count(
            raw.ws_subscriptions_per_socket.as_ref(),
            "CDVAULT_WS_SUBSCRIPTIONS_PER_SOCKET",
            ws.subscriptions_per_socket,
            WS_SUBSCRIPTIONS_PER_SOCKET,
        )?,
        sockets_per_identity: count(
            raw.ws_sockets_per_identity.as_ref(),
            "CDVAULT_WS_SOCKETS_PER_IDENTITY",
            ws.sockets_per_identity,
            WS_SOCKETS_PER_IDENTITY,
        )?,
    };
    Ok(HttpOptions {
        graphiql: Text::flag(raw.graphiql.as_ref(), "CDVAULT_GRAPHIQL")?.unwrap_or(dev),
        introspection: Text::flag(raw.introspection.as_ref(), "CDVAULT_INTROSPECTION")?
            .unwrap_or(defaults.introspection),
        rate_limits,
        websocket,
        metrics: super::metrics::metrics_options(raw)?,
        tls: super::transport::tls_options(raw)?,
        cors: super::transport::cors_options(raw)?,
        trusted_documents: super::trusted_documents::trusted_documents(raw)?,
    })
}

/// A whole number within `range`, or `None` when unset.
fn number(given: Option<&Text>, name: &str, range: RangeInclusive<u64>) -> Result<Option<u64>, ConfigError> {
    Text::number(given, name, range)
}

/// A rate or a burst: a positive whole number of requests.
fn rate_setting(given: Option<&Text>, name: &str, default: NonZeroU32) -> Result<NonZeroU32, ConfigError> {
    let Some(value) = number(given, name, 1..=u64::from(u32::MAX))? else { return Ok(default) };
    u32::try_from(value).ok().and_then(NonZeroU32::new).ok_or_else(|| err(format!("{name} is out of range")))
}

/// `CDVAULT_TRUSTED_PROXIES`: addresses and CIDR ranges, comma-separated. A range that holds every address (`/0`)
/// is refused: any client could then choose its source address with `X-Forwarded-For`.
fn trusted_proxies(given: Option<&Text>) -> Result<Vec<IpNet>, ConfigError> {
    let Some(text) = Text::present(given) else { return Ok(Vec::new()) };
    let mut ranges = Vec::new();
    for (position, entry) in text.split(',').map(str::trim).enumerate() {
        let entry_number = position + 1;
        let range = entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
            err(format!(
                "CDVAULT_TRUSTED_PROXIES: entry {entry_number} is not an IP address or a CIDR range (e.g. 10.0.0.0/8)"
            ))
        })?;
        if range.prefix_len() == 0 {
            return Err(err(format!(
                "CDVAULT_TRUSTED_PROXIES: entry {entry_number} trusts every address, which would let any client choose its source address"
            )));
        }
        ranges.push(range.trunc());
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use cdvault_api::http::HttpOptions;

    use super::super::{SETTINGS, Settings, merge};

    fn http<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> HttpOptions {
        Settings::from_pairs(pairs).unwrap().http
    }

    fn refused(name: &str, value: &str) -> String {
        Settings::from_pairs([(name, value)]).err().unwrap().0
    }

    fn rate(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn unset_the_http_surface_is_the_routers_default_with_graphiql_only_in_development() {
        let production = http([("CDVAULT_DATABASE_URL", "postgres://localhost/x")]);
        assert_eq!(production, HttpOptions::default());
        assert_eq!(http([]), HttpOptions { graphiql: true, ..HttpOptions::default() });
    }

    /// The reference states the defaults in words: this keeps them the router's.
    #[test]
    fn the_documented_defaults_are_the_routers() {
        let defaults = HttpOptions::default();
        let documented = |env: &str| SETTINGS.iter().find(|setting| setting.env == env).unwrap().default;
        let (rate, ws) = (&defaults.rate_limits, &defaults.websocket);
        for (env, value) in [
            ("CDVAULT_RATE_IDENTITY_PER_SECOND", rate.per_identity_per_second.to_string()),
            ("CDVAULT_RATE_IDENTITY_BURST", rate.per_identity_burst.to_string()),
            ("CDVAULT_RATE_ADDRESS_PER_SECOND", rate.per_address_per_second.to_string()),
            ("CDVAULT_RATE_ADDRESS_BURST", rate.per_address_burst.to_string()),
            ("CDVAULT_INTROSPECTION", defaults.introspection.to_string()),
            ("CDVAULT_WS_INIT_TIMEOUT_MS", ws.init_timeout.as_millis().to_string()),
            ("CDVAULT_WS_SUBSCRIPTIONS_PER_SOCKET", ws.subscriptions_per_socket.to_string()),
            ("CDVAULT_WS_SOCKETS_PER_IDENTITY", ws.sockets_per_identity.to_string()),
        ] {
            assert_eq!(documented(env), format!("`{value}`"), "{env}");
        }
    }

    #[test]
    fn every_limit_is_read_from_the_environment_and_from_the_file() {
        let given = http([
            ("CDVAULT_RATE_IDENTITY_PER_SECOND", "500"),
            ("CDVAULT_RATE_IDENTITY_BURST", "1000"),
            ("CDVAULT_RATE_ADDRESS_PER_SECOND", " 5 "),
            ("CDVAULT_RATE_ADDRESS_BURST", "10"),
            ("CDVAULT_INTROSPECTION", "false"),
            ("CDVAULT_GRAPHIQL", "false"),
            ("CDVAULT_WS_INIT_TIMEOUT_MS", "2500"),
            ("CDVAULT_WS_SUBSCRIPTIONS_PER_SOCKET", "7"),
            ("CDVAULT_WS_SOCKETS_PER_IDENTITY", "3"),
        ]);
        assert_eq!(
            (given.rate_limits.per_identity_per_second, given.rate_limits.per_identity_burst),
            (rate(500), rate(1000))
        );
        assert_eq!(
            (given.rate_limits.per_address_per_second, given.rate_limits.per_address_burst),
            (rate(5), rate(10))
        );
        assert!(!given.introspection && !given.graphiql);
        assert_eq!(given.websocket.init_timeout, Duration::from_millis(2500));
        assert_eq!((given.websocket.subscriptions_per_socket, given.websocket.sockets_per_identity), (7, 3));
        let toml = "rate_address_burst = 3\nintrospection = false\ntrusted_proxies = \"10.0.0.0/8\"\n";
        let from_file = Settings::try_from(merge(Some(toml), []).unwrap()).unwrap().http;
        assert_eq!(from_file.rate_limits.per_address_burst, rate(3));
        assert!(!from_file.introspection);
        assert_eq!(from_file.rate_limits.trusted_proxies, vec!["10.0.0.0/8".parse().unwrap()]);
    }

    #[test]
    fn trusted_proxies_are_addresses_and_ranges_separated_by_commas() {
        let given = http([("CDVAULT_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.10 ,fd00::/8,2001:db8::1,172.16.5.9/12")]);
        let expected: Vec<ipnet::IpNet> =
            ["10.0.0.0/8", "192.0.2.10/32", "fd00::/8", "2001:db8::1/128", "172.16.0.0/12"]
                .iter()
                .map(|range| range.parse().unwrap())
                .collect();
        assert_eq!(given.rate_limits.trusted_proxies, expected);
    }

    #[test]
    fn a_bad_limit_is_refused_naming_its_setting() {
        for name in [
            "CDVAULT_RATE_IDENTITY_PER_SECOND",
            "CDVAULT_RATE_IDENTITY_BURST",
            "CDVAULT_RATE_ADDRESS_PER_SECOND",
            "CDVAULT_RATE_ADDRESS_BURST",
        ] {
            for bad in ["0", "-1", "1.5", "many", "4294967296"] {
                let e = refused(name, bad);
                assert!(e.contains(name), "{name}={bad}: {e}");
            }
        }
        for (name, bad) in [
            ("CDVAULT_WS_INIT_TIMEOUT_MS", "99"),
            ("CDVAULT_WS_INIT_TIMEOUT_MS", "60001"),
            ("CDVAULT_WS_SUBSCRIPTIONS_PER_SOCKET", "0"),
            ("CDVAULT_WS_SUBSCRIPTIONS_PER_SOCKET", "10001"),
            ("CDVAULT_WS_SOCKETS_PER_IDENTITY", "0"),
            ("CDVAULT_WS_SOCKETS_PER_IDENTITY", "lots"),
            ("CDVAULT_INTROSPECTION", "off"),
            ("CDVAULT_INTROSPECTION", "1"),
        ] {
            let e = refused(name, bad);
            assert!(e.contains(name), "{name}={bad}: {e}");
        }
    }

    #[test]
    fn a_bad_trusted_proxy_entry_is_refused_by_its_position() {
        let e = refused("CDVAULT_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal");
        assert!(e.contains("CDVAULT_TRUSTED_PROXIES") && e.contains("entry 2") && !e.contains("proxy.internal"), "{e}");
        assert!(refused("CDVAULT_TRUSTED_PROXIES", "10.0.0.0/33").contains("entry 1"));
        assert!(refused("CDVAULT_TRUSTED_PROXIES", "10.0.0.1,").contains("entry 2"), "an empty entry");
        for everyone in ["0.0.0.0/0", "::/0"] {
            let e = refused("CDVAULT_TRUSTED_PROXIES", everyone);
            assert!(e.contains("entry 1") && e.contains("every address"), "{e}");
        }
    }
}
