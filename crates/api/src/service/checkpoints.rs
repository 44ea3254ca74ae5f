//! Checkpoints of the audit chain head, written outside the database ([`CheckpointEmitter`]), and the memory of
//! the background verifier ([`ChainMonitor`]): what the [`Vault`](super::Vault) holds. The use cases over them
//! (emission at start-up and every interval, the verifier's rounds) are in `chain_status`.
//!
//! A database writer can delete the tail and move the head back; a checkpoint shipped off the host before that
//! still names the deleted events. A failing sink never blocks issuance: it is logged at error level, counted, and
//! reported by `auditChainStatus`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cdvault_domain::audit::Checkpoint;
use cdvault_storage::Database;
use cdvault_storage::audit::{self, Position};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::error::ApiError;

/// The tracing target of checkpoint lines (a log collector can route them by it).
pub const CHECKPOINT_LOG_TARGET: &str = "cdvault::audit::checkpoint";

/// Where checkpoints go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointSink {
    /// One `info` line at target [`CHECKPOINT_LOG_TARGET`] whose message is the checkpoint's JSON line: the
    /// production default, since the root filesystem is read-only; the log collector ships it off the host.
    Log,
    /// One line appended to this file (created 0600), synced after each write.
    File(PathBuf),
}

/// How this replica emits checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSettings {
    pub sink: CheckpointSink,
    /// Time between two periodic checkpoints.
    pub interval: Duration,
    /// The name this replica signs its checkpoints with.
    pub replica: String,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        Self { sink: CheckpointSink::Log, interval: Duration::from_secs(60), replica: random_replica_id() }
    }
}

/// A replica name for a process that has no host name: random, so two such replicas never share one.
pub fn random_replica_id() -> String {
    format!("replica-{}", uuid::Uuid::now_v7().simple())
}

/// Signs the head and writes it to the sink; remembers the last checkpoint and the last sink failure. Held by the
/// vault and, apart from it, by the server for the checkpoint at shutdown (after the vault is gone).
#[derive(Debug)]
pub struct CheckpointEmitter {
    db: Database,
    settings: CheckpointSettings,
    last: Mutex<Option<Checkpoint>>,
    /// The failure of the latest write, cleared by the next write that succeeds.
    sink_error: Mutex<Option<String>>,
    failures: AtomicU64,
}

impl CheckpointEmitter {
    pub fn new(db: Database, settings: CheckpointSettings) -> Self {
        Self { db, settings, last: Mutex::new(None), sink_error: Mutex::new(None), failures: AtomicU64::new(0) }
    }

    pub fn settings(&self) -> &CheckpointSettings {
        &self.settings
    }

    /// Reads the head, signs it for this replica, writes it to the sink and remembers it. Fails only when the head
    /// cannot be read or signed; a sink failure is logged, counted and kept for the status.
    pub async fn emit(&self) -> Result<Checkpoint, ApiError> {
        let key = self.db.audit_key()?;
        let (seq, head) = audit::head(&self.db).await?;
        let checkpoint = key.checkpoint(seq, head, OffsetDateTime::now_utc(), &self.settings.replica);
        // Remembered even when the sink fails: this replica's verifier still checks the chain against it.
        set(&self.last, Some(checkpoint.clone()));
        let written = write(&self.settings.sink, checkpoint.to_line()).await;
        crate::metrics::checkpoint(written.is_ok());
        match written {
            Ok(()) => set(&self.sink_error, None),
            Err(problem) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(%problem, failures, seq, "the audit checkpoint could not be written to its sink");
                set(&self.sink_error, Some(problem));
            }
        }
        Ok(checkpoint)
    }

    /// The last checkpoint emitted by this replica.
    pub fn last(&self) -> Option<Checkpoint> {
        get(&self.last)
    }

    /// Why the latest write to the sink failed, if it did.
    pub fn sink_error(&self) -> Option<String> {
        get(&self.sink_error)
    }

    /// How many writes to the sink failed since start-up.
    pub fn sink_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

fn set<T>(slot: &Mutex<T>, value: T) {
    // A panic elsewhere cannot leave a half-written Option: take the value whatever the poison.
    *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

fn get<T: Clone>(slot: &Mutex<T>) -> T {
    slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// Writes one line to `sink`; the error is a message fit for the log and the status (no secret in a checkpoint).
async fn write(sink: &CheckpointSink, line: String) -> Result<(), String> {
    match sink {
        CheckpointSink::Log => {
            tracing::info!(target: CHECKPOINT_LOG_TARGET, "{line}");
            Ok(())
        }
        CheckpointSink::File(path) => {
            let path = path.clone();
            let shown = path.display().to_string();
            tokio::task::spawn_blocking(move || append_line(&path, &line))
                .await
                .map_err(|_| format!("the write to {shown} did not finish"))?
                .map_err(|e| format!("cannot append to {shown}: {e}"))
        }
    }
}

/// Appends `line` and a newline in one write, then syncs the data: a crash leaves whole lines.
pub(crate) fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_data()
}

/// What the verifier concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainState {
    /// No round has finished yet (start-up).
    Pending,
    /// Every link up to `verified_through` holds, and so does the last checkpoint of this replica.
    Intact,
    /// A link, the head or a checkpoint disagrees: see `problem`. It stays so until a full walk passes.
    Broken,
}

/// The verifier's last result, and this replica's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    pub state: ChainState,
    /// The last sequence number verified (0 before any).
    pub verified_through: i64,
    /// The first event still in the live table (older ones were archived): 1 until `cdvault audit archive` ran.
    pub first_retained_seq: i64,
    /// When the last round finished.
    pub checked_at: Option<OffsetDateTime>,
    /// What broke (the `ChainBreak` text, naming the sequence number).
    pub problem: Option<String>,
    /// The sequence number and time of the last checkpoint this replica emitted.
    pub last_checkpoint: Option<(i64, OffsetDateTime)>,
    /// Why the latest write of a checkpoint to its sink failed, if it did.
    pub checkpoint_sink_error: Option<String>,
}

impl Default for ChainStatus {
    fn default() -> Self {
        Self {
            state: ChainState::Pending,
            verified_through: 0,
            first_retained_seq: 1,
            checked_at: None,
            problem: None,
            last_checkpoint: None,
            checkpoint_sink_error: None,
        }
    }
}

/// The verifier's memory: the last result, and the position an incremental round starts from (the lock also
/// keeps two rounds from running at once).
#[derive(Debug, Default)]
pub(super) struct ChainMonitor {
    pub(super) status: watch::Sender<ChainStatus>,
    pub(super) position: tokio::sync::Mutex<Option<Position>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cdvault-checkpoints-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn the_file_sink_appends_one_line_per_checkpoint() {
        let path = scratch("audit-checkpoints.jsonl");
        append_line(&path, "{\"checkpoint\":1,\"seq\":1}").unwrap();
        append_line(&path, "{\"checkpoint\":1,\"seq\":2}").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"checkpoint\":1,\"seq\":1}\n{\"checkpoint\":1,\"seq\":2}\n");
    }

    #[cfg(unix)]
    #[test]
    fn the_file_sink_creates_its_file_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let path = scratch("audit-checkpoints.jsonl");
        append_line(&path, "x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn a_failing_file_sink_is_reported_not_raised() {
        // A directory that does not exist: every append fails.
        let path = scratch("missing").join("nested").join("audit-checkpoints.jsonl");
        let problem = write(&CheckpointSink::File(path), "x".into()).await.unwrap_err();
        assert!(problem.starts_with("cannot append to "), "{problem}");
    }

    /// A migrated SQLite database with its audit MAC key, in a fresh directory.
    pub(crate) async fn keyed_sqlite() -> Database {
        let url = format!("sqlite://{}?mode=rwc", scratch("cdvault.db").display());
        let db = Database::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let root =
            cdvault_domain::crypto::RootKey::from_base64(&cdvault_domain::crypto::RootKey::generate_base64()).unwrap();
        let key = audit::open_key(&db, &root).await.unwrap();
        db.with_audit_key(key)
    }

    #[tokio::test]
    async fn a_failing_sink_does_not_fail_the_emission_and_is_reported() {
        let sink = CheckpointSink::File(scratch("missing").join("nested").join("audit-checkpoints.jsonl"));
        let settings = CheckpointSettings { sink, ..CheckpointSettings::default() };
        let emitter = CheckpointEmitter::new(keyed_sqlite().await, settings);
        let checkpoint = emitter.emit().await.unwrap();
        assert_eq!(emitter.last(), Some(checkpoint));
        assert!(emitter.sink_error().is_some_and(|e| e.starts_with("cannot append to ")));
        emitter.emit().await.unwrap();
        assert_eq!(emitter.sink_failures(), 2);
    }

    #[tokio::test]
    async fn an_emission_to_a_file_writes_a_line_that_parses_back_and_clears_the_last_failure() {
        let path = scratch("audit-checkpoints.jsonl");
        let settings = CheckpointSettings { sink: CheckpointSink::File(path.clone()), ..CheckpointSettings::default() };
        let db = keyed_sqlite().await;
        let emitter = CheckpointEmitter::new(db.clone(), settings);
        set(&emitter.sink_error, Some("earlier".into()));
        let checkpoint = emitter.emit().await.unwrap();
        assert_eq!(emitter.sink_error(), None);
        let text = std::fs::read_to_string(&path).unwrap();
        let read: Vec<Checkpoint> = text.lines().map(|l| Checkpoint::parse_line(l).unwrap()).collect();
        assert_eq!(read, vec![checkpoint.clone()]);
        assert!(db.audit_key().unwrap().is_authentic(&checkpoint));
    }

    #[tokio::test]
    async fn the_log_sink_never_fails() {
        write(&CheckpointSink::Log, "{\"checkpoint\":1}".into()).await.unwrap();
    }

    #[test]
    fn replicas_without_a_name_get_distinct_random_ones() {
        assert_ne!(random_replica_id(), random_replica_id());
    }
}
