//! How the rewrap worker paces itself (`CDVAULT_REWRAP_BATCH_SIZE`, `CDVAULT_REWRAP_BATCH_PAUSE_MS`,
//! `CDVAULT_REWRAP_WORKERS`, `CDVAULT_JOB_LEASE_TTL`) and how long the change feeds keep a change (`CDVAULT_CHANGE_FEED_RETENTION`),
//! validated once.

use std::time::Duration;

use cdvault_api::service::RewrapSettings;

use super::raw::{RawSettings, Text};
use super::{ConfigError, err};

/// The rewrap worker's pacing: batch size 1 to 100,000 (default 500), pause 0 to 60,000 ms (default 0), lease
/// 5 to 3600 s (default 30), batches at once on PostgreSQL 1 to 16 (default 1).
pub(super) fn rewrap(raw: &RawSettings) -> Result<RewrapSettings, ConfigError> {
    let number = |given: Option<&Text>, name: &str, default: u64, range: std::ops::RangeInclusive<u64>| {
        let Some(text) = Text::present(given) else { return Ok(default) };
        let value: u64 = text.trim().parse().map_err(|_| err(format!("{name} is not a whole number")))?;
        if !range.contains(&value) {
            return Err(err(format!("{name} is outside {}..={}", range.start(), range.end())));
        }
        Ok(value)
    };
    Ok(RewrapSettings {
        batch_size: number(raw.rewrap_batch_size.as_ref(), "CDVAULT_REWRAP_BATCH_SIZE", 500, 1..=100_000)?,
        pause: Duration::from_millis(number(
            raw.rewrap_batch_pause_ms.as_ref(),
            "CDVAULT_REWRAP_BATCH_PAUSE_MS",
            0,
            0..=60_000,
        )?),
        lease: Duration::from_secs(number(raw.job_lease_ttl.as_ref(), "CDVAULT_JOB_LEASE_TTL", 30, 5..=3600)?),
        workers: usize::try_from(number(raw.rewrap_workers.as_ref(), "CDVAULT_REWRAP_WORKERS", 1, 1..=16)?)
            .unwrap_or(1),
    })
}

/// `CDVAULT_CHANGE_FEED_RETENTION`: a duration with a unit (`7d`, `36h`), 1 hour to 3650 days (default 7 days).
pub(super) fn change_feed_retention(raw: &RawSettings) -> Result<Duration, ConfigError> {
    const NAME: &str = "CDVAULT_CHANGE_FEED_RETENTION";
    let Some(text) = Text::present(raw.change_feed_retention.as_ref()) else {
        return Ok(cdvault_api::service::DEFAULT_CHANGE_FEED_RETENTION);
    };
    let retention = humantime::parse_duration(text.trim())
        .map_err(|_| err(format!("{NAME} is not a duration with a unit, e.g. 7d or 36h")))?;
    let (least, most) = (Duration::from_secs(3600), Duration::from_secs(3650 * 24 * 3600));
    if !(least..=most).contains(&retention) {
        return Err(err(format!("{NAME} is outside 1h..=3650d")));
    }
    Ok(retention)
}
