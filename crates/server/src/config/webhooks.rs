//! How webhooks are delivered (`CDVAULT_WEBHOOK_*`), validated once.

use std::net::IpAddr;
use std::time::Duration;

use cdvault_api::service::{AddressPolicy, WebhookSettings};
use cdvault_domain::webhook::RetrySchedule;
use ipnet::IpNet;

use super::raw::{RawSettings, Text};
use super::{ConfigError, err};

pub(super) fn webhooks(raw: &RawSettings) -> Result<WebhookSettings, ConfigError> {
    let defaults = WebhookSettings::default();
    let millis = |given: Option<&Text>, name: &str, range: std::ops::RangeInclusive<u64>, default: Duration| {
        Ok::<_, ConfigError>(Text::number(given, name, range)?.map(Duration::from_millis).unwrap_or(default))
    };
    let base = millis(
        raw.webhook_retry_base_ms.as_ref(),
        "CDVAULT_WEBHOOK_RETRY_BASE_MS",
        10..=3_600_000,
        defaults.retry.base,
    )?;
    let max =
        millis(raw.webhook_retry_max_ms.as_ref(), "CDVAULT_WEBHOOK_RETRY_MAX_MS", 10..=86_400_000, defaults.retry.max)?;
    if max < base {
        return Err(err("CDVAULT_WEBHOOK_RETRY_MAX_MS is less than CDVAULT_WEBHOOK_RETRY_BASE_MS".to_owned()));
    }
    let max_attempts = Text::number(raw.webhook_max_attempts.as_ref(), "CDVAULT_WEBHOOK_MAX_ATTEMPTS", 1..=1000)?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(defaults.retry.max_attempts);
    let timeout =
        millis(raw.webhook_timeout_ms.as_ref(), "CDVAULT_WEBHOOK_TIMEOUT_MS", 100..=60_000, defaults.timeout)?;
    let lease = millis(raw.webhook_lease_ms.as_ref(), "CDVAULT_WEBHOOK_LEASE_MS", 1_000..=600_000, defaults.lease)?;
    if lease <= timeout {
        return Err(err("CDVAULT_WEBHOOK_LEASE_MS must be longer than CDVAULT_WEBHOOK_TIMEOUT_MS".to_owned()));
    }
    Ok(WebhookSettings {
        addresses: AddressPolicy {
            allow_http: Text::flag(raw.webhook_allow_http.as_ref(), "CDVAULT_WEBHOOK_ALLOW_HTTP")?.unwrap_or(false),
            allowed_networks: networks(raw.webhook_allowed_networks.as_ref())?,
        },
        retry: RetrySchedule { base, max, max_attempts },
        timeout,
        lease,
        poll: millis(raw.webhook_poll_ms.as_ref(), "CDVAULT_WEBHOOK_POLL_MS", 10..=60_000, defaults.poll)?,
    })
}

/// `CDVAULT_WEBHOOK_ALLOWED_NETWORKS`: addresses and CIDR ranges, comma-separated; never every address.
fn networks(given: Option<&Text>) -> Result<Vec<IpNet>, ConfigError> {
    const NAME: &str = "CDVAULT_WEBHOOK_ALLOWED_NETWORKS";
    let Some(text) = Text::present(given) else { return Ok(Vec::new()) };
    let mut ranges = Vec::new();
    for (position, entry) in text.split(',').map(str::trim).enumerate() {
        let number = position + 1;
        let range = entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
            err(format!("{NAME}: entry {number} is not an IP address or a CIDR range (e.g. 10.20.0.0/16)"))
        })?;
        if range.prefix_len() == 0 {
            return Err(err(format!("{NAME}: entry {number} allows every address; name the receivers' networks")));
        }
        ranges.push(range.trunc());
    }
    Ok(ranges)
}
