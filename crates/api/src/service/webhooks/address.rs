//! Where webhooks may go: an endpoint URL's shape (`https`, unless allowed otherwise; no user info) and the
//! addresses a delivery may connect to. Loopback, private, link-local and other non-public ranges are refused
//! unless a configured network allows them. The check is made on the address actually connected to (the resolver
//! below is the client's), so a name that resolves elsewhere later (DNS rebinding) is checked again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use cdvault_domain::{Reason, ValidationError};
use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The longest endpoint URL.
pub const MAX_URL_CHARS: usize = 2048;

/// What endpoints may be: plain `http` or not, and which non-public networks are allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Whether `http://` endpoints are accepted (development and tests only).
    pub allow_http: bool,
    /// Networks allowed although not public (e.g. `127.0.0.1/32` for a receiver on the same machine).
    pub allowed_networks: Vec<IpNet>,
}

impl AddressPolicy {
    /// Whether a delivery may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        is_public(ip) || self.allowed_networks.iter().any(|net| net.contains(&ip))
    }

    /// Checks an endpoint URL as given: absolute, `https` (or `http` when allowed), a host, no user info, no
    /// fragment; a literal address must be permitted (a name is checked when a delivery connects).
    pub fn check_url(&self, raw: &str) -> Result<Url, ValidationError> {
        let invalid = |message: &str| ValidationError::new("url", Reason::InvalidUrl, message);
        let raw = raw.trim();
        if raw.chars().count() > MAX_URL_CHARS {
            return Err(ValidationError::new("url", Reason::TooLong, format!("at most {MAX_URL_CHARS} characters")));
        }
        let url = Url::parse(raw).map_err(|_| invalid("not an absolute URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(ValidationError::new("url", Reason::NotHttps, "webhook endpoints must be https")),
            _ => return Err(invalid("the scheme must be https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("user info is not allowed in an endpoint URL"));
        }
        if url.fragment().is_some() {
            return Err(invalid("a fragment is not allowed in an endpoint URL"));
        }
        if let Some(ip) = literal_ip(&url) {
            if !self.permits(ip) {
                return Err(ValidationError::new(
                    "url",
                    Reason::AddressNotAllowed,
                    "this address is not public (loopback, private, link-local, ...) and not allowed by configuration",
                ));
            }
        } else if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host"));
        }
        Ok(url)
    }
}

/// The address of a URL whose host is written as one (a client connects to it without resolving anything).
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15, and the reserved 240.0.0.0/4.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7 and link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Documentation 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// The client's resolver: a name's addresses, without those a delivery may not connect to. None left: the
/// connection fails (recorded as `address not allowed`).
#[derive(Debug, Clone)]
pub struct CheckedResolver {
    pub policy: Arc<AddressPolicy>,
}

/// A name that resolved only to refused addresses.
#[derive(Debug, thiserror::Error)]
#[error("address not allowed")]
pub struct AddressRefused;

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| policy.permits(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(AddressRefused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> AddressPolicy {
        AddressPolicy { allow_http: false, allowed_networks: allowed.iter().map(|n| n.parse().unwrap()).collect() }
    }

    #[test]
    fn non_public_addresses_are_refused_unless_a_network_allows_them() {
        let strict = policy(&[]);
        for refused in [
            "127.0.0.1",
            "127.0.0.2",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!strict.permits(refused.parse().unwrap()), "{refused}");
        }
        for public in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"] {
            assert!(strict.permits(public.parse().unwrap()), "{public}");
        }
        let one = policy(&["127.0.0.1/32"]);
        assert!(one.permits("127.0.0.1".parse().unwrap()));
        assert!(!one.permits("127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn an_endpoint_url_must_be_https_without_user_info_unless_http_is_allowed() {
        let strict = policy(&[]);
        assert!(strict.check_url("https://hooks.example.com/cdvault").is_ok());
        assert_eq!(strict.check_url("http://hooks.example.com/").unwrap_err().reason, Reason::NotHttps);
        assert_eq!(strict.check_url("ftp://hooks.example.com/").unwrap_err().reason, Reason::InvalidUrl);
        assert_eq!(strict.check_url("https://user:pw@hooks.example.com/").unwrap_err().reason, Reason::InvalidUrl);
        assert_eq!(strict.check_url("/relative").unwrap_err().reason, Reason::InvalidUrl);
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert_eq!(strict.check_url(&long).unwrap_err().reason, Reason::TooLong);
        let http = AddressPolicy { allow_http: true, ..policy(&[]) };
        assert!(http.check_url("http://hooks.example.com/").is_ok());
    }

    #[test]
    fn a_literal_address_is_checked_when_the_endpoint_is_registered() {
        let strict = policy(&[]);
        assert_eq!(strict.check_url("https://127.0.0.1:8443/").unwrap_err().reason, Reason::AddressNotAllowed);
        assert_eq!(strict.check_url("https://[::1]/").unwrap_err().reason, Reason::AddressNotAllowed);
        // A name is checked when a delivery connects, on the address it then resolves to.
        assert!(strict.check_url("https://localhost/").is_ok());
    }
}
