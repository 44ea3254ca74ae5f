//! The audit checkpoints' settings: where they go (`CDVAULT_AUDIT_CHECKPOINTS`), how often
//! (`CDVAULT_AUDIT_CHECKPOINT_INTERVAL`), and the replica name they are signed with (`CDVAULT_REPLICA`, else the
//! host name read once with the environment, else a random id).

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdvault_api::service::{AuditStreamSettings, CheckpointSettings, CheckpointSink, StreamTarget, random_replica_id};

use super::raw::{RawSettings, Text};
use super::{ConfigError, err};

/// The development set-up's checkpoint file, in the data directory (`cdvault audit verify` reads it by default).
pub const CHECKPOINT_FILE: &str = "audit-checkpoints.jsonl";
/// Seconds between two checkpoints unless configured.
pub const DEFAULT_INTERVAL_SECS: u64 = 60;
/// The longest replica name: a DNS host name's length.
const MAX_REPLICA_LEN: usize = 253;

/// The checkpoints' settings. `data_dir` is the development set-up's (its default sink is a file there);
/// `host_name` the `HOSTNAME` the environment gave, if any.
pub fn checkpoints(
    raw: &RawSettings,
    data_dir: Option<&Path>,
    host_name: Option<&str>,
) -> Result<CheckpointSettings, ConfigError> {
    let sink = match Text::present(raw.audit_checkpoints.as_ref()).map(str::trim) {
        None => match data_dir {
            Some(dir) => CheckpointSink::File(dir.join(CHECKPOINT_FILE)),
            None => CheckpointSink::Log,
        },
        Some("log") => CheckpointSink::Log,
        Some(other) => match other.strip_prefix("file:").map(str::trim) {
            Some(path) if !path.is_empty() => CheckpointSink::File(PathBuf::from(path)),
            _ => return Err(err("CDVAULT_AUDIT_CHECKPOINTS is not `log` or `file:<path>`")),
        },
    };
    let interval = match Text::present(raw.audit_checkpoint_interval.as_ref()) {
        None => DEFAULT_INTERVAL_SECS,
        Some(text) => {
            let name = "CDVAULT_AUDIT_CHECKPOINT_INTERVAL";
            let secs: u64 = text.trim().parse().map_err(|_| err(format!("{name} is not a whole number")))?;
            if !(1..=86_400).contains(&secs) {
                return Err(err(format!("{name} is outside 1..=86400 (seconds)")));
            }
            secs
        }
    };
    let replica = match Text::present(raw.replica.as_ref()) {
        Some(name) if is_replica_name(name.trim()) => name.trim().to_owned(),
        Some(_) => {
            return Err(err(format!(
                "CDVAULT_REPLICA must be 1 to {MAX_REPLICA_LEN} characters without spaces or control characters"
            )));
        }
        // An odd host name is not worth refusing to start over: a random id names the replica instead.
        None => {
            host_name.map(str::trim).filter(|name| is_replica_name(name)).map_or_else(random_replica_id, str::to_owned)
        }
    };
    Ok(CheckpointSettings { sink, interval: Duration::from_secs(interval), replica })
}

fn is_replica_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_REPLICA_LEN && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The audit stream (`CDVAULT_AUDIT_STREAM`): `stdout`, `file:<path>`, or off when unset.
pub fn audit_stream(raw: &RawSettings) -> Result<Option<AuditStreamSettings>, ConfigError> {
    let target = match Text::present(raw.audit_stream.as_ref()).map(str::trim) {
        None => return Ok(None),
        Some("stdout") => StreamTarget::Stdout,
        Some(other) => match other.strip_prefix("file:").map(str::trim) {
            Some(path) if !path.is_empty() => StreamTarget::File(PathBuf::from(path)),
            _ => return Err(err("CDVAULT_AUDIT_STREAM is not `stdout` or `file:<path>`")),
        },
    };
    Ok(Some(AuditStreamSettings::new(target)))
}
