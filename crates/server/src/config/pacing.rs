//! How the rewrap worker paces itself: `CDVAULT_REWRAP_BATCH_SIZE`, `CDVAULT_REWRAP_BATCH_PAUSE_MS`,
//! `CDVAULT_JOB_LEASE_TTL`, validated once.

use std::time::Duration;

use cdvault_api::service::RewrapSettings;

use super::raw::{RawSettings, Text};
use super::{ConfigError, err};

/// The rewrap worker's pacing: batch size 1 to 100,000 (default 500), pause 0 to 60,000 ms (default 0), lease
/// 5 to 3600 s (default 30).
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
    })
}
