//! The audit stream: every committed audit event written as one JSON line to stdout or a file, for a SIEM
//! collector (Vector, Fluent Bit), in sequence order, after commit.
//!
//! A tailer, not a hook in the writer: key acts (keyring retire, rewraps, root rotation, grants, ...) append their
//! event in their own transaction, and other replicas append theirs, so the trail itself is the one source. The
//! tailer reads pages of `seq > last` up to the chain head, woken by the audit writer after each batch and by a
//! short poll for events appended elsewhere.
//!
//! Every replica streams the whole trail (its own events and every other replica's) from its start position; the
//! collector drops duplicates by `seq`. No lease: a replica that dies leaves no hole for another to notice and fill,
//! and each file resumes on its own. Each line names the replica that wrote it (`replica`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdvault_domain::audit::ChainedEvent;
use cdvault_storage::Database;
use cdvault_storage::audit;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::Vault;
use crate::error::ApiError;

/// Events read per query, and written per write.
const PAGE: u64 = 500;

/// How often the trail is read again without a poke (events appended outside this replica's writer), unless
/// configured otherwise.
pub const DEFAULT_STREAM_POLL: Duration = Duration::from_secs(1);

/// Where the stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamTarget {
    /// Standard output, from the chain head at start-up (what came before is not repeated).
    Stdout,
    /// Appended to this file (created 0600), resuming after the last `seq` in it; a new file gets the whole trail.
    File(PathBuf),
}

/// How this replica streams the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditStreamSettings {
    pub target: StreamTarget,
    /// Time between two reads of the trail when nothing pokes the tailer.
    pub poll: Duration,
}

impl AuditStreamSettings {
    /// Streams to `target`, polling every [`DEFAULT_STREAM_POLL`].
    pub fn new(target: StreamTarget) -> Self {
        Self { target, poll: DEFAULT_STREAM_POLL }
    }
}

/// What the tailer has done, for `/readyz`.
#[derive(Debug, Default)]
pub struct StreamStatus {
    /// The last `seq` written to the target (its start position before any).
    streamed: AtomicI64,
    /// The chain head as last read by the tailer.
    head: AtomicI64,
    /// The latest failure (reading the trail or writing the target), cleared by the next page written.
    error: Mutex<Option<String>>,
}

impl StreamStatus {
    /// The last `seq` written to the target.
    pub fn streamed_through(&self) -> i64 {
        self.streamed.load(Ordering::Acquire)
    }

    /// The chain head as the tailer last read it.
    pub fn head_seen(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    /// Why the latest read or write failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn failed(&self, problem: Option<String>) {
        *self.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = problem;
    }
}

/// The running tailer: [`Self::finish`] drains it to the head and stops it.
#[derive(Debug)]
pub struct AuditStream {
    status: Arc<StreamStatus>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AuditStream {
    /// What the tailer has done.
    pub fn status(&self) -> Arc<StreamStatus> {
        self.status.clone()
    }

    /// Streams every event up to the head as it is now, then stops (at shutdown, once the audit writer drained).
    pub async fn finish(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the audit stream task failed");
        }
    }
}

impl Vault {
    /// Starts streaming the audit trail to `settings.target` (see the module). Fails when the target cannot be
    /// opened or the start position read; later failures are logged, retried and reported by `/readyz`.
    pub async fn start_audit_stream(&self, settings: AuditStreamSettings) -> Result<AuditStream, ApiError> {
        let replica = self.checkpoints.settings().replica.clone();
        let (sink, start) = match &settings.target {
            StreamTarget::Stdout => (Sink::Stdout(tokio::io::stdout()), audit::head(&self.db).await?.0),
            StreamTarget::File(path) => {
                let (file, resume) =
                    open_file(path).await.map_err(|e| ApiError::internal("cannot open the audit stream file", e))?;
                (Sink::File { file, needs_newline: resume.needs_newline }, resume.last_seq.unwrap_or(0))
            }
        };
        let status = Arc::new(StreamStatus::default());
        status.streamed.store(start, Ordering::Release);
        status.head.store(start, Ordering::Release);
        // The first stream started is the one `/readyz` reports (a server starts one).
        let _ = self.audit_stream.set(status.clone());
        let (stop, stopping) = watch::channel(false);
        let tailer = Tailer { db: self.db.clone(), sink, replica, status: status.clone(), after: start };
        tracing::info!(after_seq = start, target = ?settings.target, "audit stream started");
        let task = tokio::spawn(tailer.run(self.audit.commits(), stopping, settings.poll));
        Ok(AuditStream { status, stop, task })
    }

    /// The audit stream's status, if this server streams.
    pub fn audit_stream_status(&self) -> Option<Arc<StreamStatus>> {
        self.audit_stream.get().cloned()
    }
}

enum Sink {
    Stdout(tokio::io::Stdout),
    File { file: tokio::fs::File, needs_newline: bool },
}

struct Tailer {
    db: Database,
    sink: Sink,
    replica: String,
    status: Arc<StreamStatus>,
    /// The last `seq` written.
    after: i64,
}

impl Tailer {
    async fn run(mut self, mut commits: watch::Receiver<u64>, mut stopping: watch::Receiver<bool>, poll: Duration) {
        let mut writer_gone = false;
        loop {
            let stop = *stopping.borrow_and_update();
            match self.drain().await {
                Ok(()) => self.status.failed(None),
                Err(problem) => {
                    tracing::error!(%problem, after_seq = self.after, "the audit stream fell behind; retrying");
                    self.status.failed(Some(problem));
                }
            }
            if stop {
                tracing::info!(streamed_through = self.after, "audit stream drained and stopped");
                return;
            }
            tokio::select! {
                changed = commits.changed(), if !writer_gone => writer_gone = changed.is_err(),
                () = tokio::time::sleep(poll) => {}
                _ = stopping.changed() => {}
            }
        }
    }

    /// Writes every event up to the head, page by page; the position moves only past pages written.
    async fn drain(&mut self) -> Result<(), String> {
        loop {
            let page = audit::page_after(&self.db, self.after, PAGE).await.map_err(|e| format!("reading: {e}"))?;
            let Some(last) = page.last().map(|e| e.seq) else { break };
            let mut text = String::new();
            for event in &page {
                text.push_str(&line(event, &self.replica).to_string());
                text.push('\n');
            }
            self.write(text).await.map_err(|e| format!("writing: {e}"))?;
            self.after = last;
            self.status.streamed.store(last, Ordering::Release);
        }
        let head = audit::head(&self.db).await.map_err(|e| format!("reading the head: {e}"))?.0;
        self.status.head.store(head, Ordering::Release);
        Ok(())
    }

    async fn write(&mut self, text: String) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(out) => {
                out.write_all(text.as_bytes()).await?;
                out.flush().await
            }
            Sink::File { file, needs_newline } => {
                // A line cut short by a crash stays a line of its own: the collector drops it, the next parses.
                let text = if *needs_newline { format!("\n{text}") } else { text };
                file.write_all(text.as_bytes()).await?;
                file.sync_data().await?;
                *needs_newline = false;
                Ok(())
            }
        }
    }
}

/// One event as the flat JSON object a collector reads. The audit holds no secret (records never carry one).
pub fn line(event: &ChainedEvent, replica: &str) -> Value {
    let record = &event.record;
    let details = match record.details_json() {
        Some(object) => object,
        None => record.detail.clone().map_or(Value::Null, Value::String),
    };
    json!({
        "source": "cdvault.audit",
        "seq": event.seq,
        "timestamp": record.occurred_at.format(&Rfc3339).unwrap_or_default(),
        "event_id": record.id,
        "record_version": event.version.number(),
        "action": record.action.as_str(),
        "outcome": record.outcome.as_str(),
        "reason": record.reason.map(|r| r.as_str()),
        "actor": record.subject,
        "issuer": record.issuer,
        "seller": record.seller_login,
        "purpose": record.purpose,
        "request_id": record.request_id,
        "caller_request_id": record.caller_request_id,
        "details": details,
        "prev_hash": hex::encode(event.prev_hash),
        "hash": hex::encode(event.hash),
        "replica": replica,
    })
}

/// Where a file left off.
struct Resume {
    /// The `seq` of its last whole line, if any.
    last_seq: Option<i64>,
    /// The file ends in the middle of a line (a crash during a write).
    needs_newline: bool,
}

/// Opens `path` for appending (created 0600) and reads where it left off.
async fn open_file(path: &Path) -> std::io::Result<(tokio::fs::File, Resume)> {
    let mut options = tokio::fs::OpenOptions::new();
    options.append(true).create(true).read(true);
    #[cfg(unix)]
    options.mode(0o600);
    let file = options.open(path).await?;
    let std_file = file.try_clone().await?.into_std().await;
    let resume = tokio::task::spawn_blocking(move || last_seq(std_file))
        .await
        .map_err(|_| std::io::Error::other("reading the file's end did not finish"))??;
    Ok((file, resume))
}

/// The `seq` of the last whole line of `file`, reading backwards from its end in growing chunks.
fn last_seq(mut file: std::fs::File) -> std::io::Result<Resume> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Resume { last_seq: None, needs_newline: false });
    }
    let mut chunk = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(chunk);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        file.by_ref().take(len - start).read_to_end(&mut tail)?;
        let needs_newline = tail.last() != Some(&b'\n');
        // Whole lines only: the bytes after the last newline are a line cut short.
        let whole = match tail.iter().rposition(|&b| b == b'\n') {
            Some(end) => &tail[..end],
            None if start == 0 => &tail[..0],
            None => {
                chunk = chunk.saturating_mul(4);
                continue;
            }
        };
        // The first line of a chunk may be cut at its start: only lines after a newline (or the file's first) count.
        let lines: Vec<&[u8]> = whole.split(|&b| b == b'\n').collect();
        let complete = if start == 0 { &lines[..] } else { &lines[1.min(lines.len())..] };
        let found = complete.iter().rev().find_map(|l| seq_of(l));
        if found.is_some() || start == 0 {
            return Ok(Resume { last_seq: found, needs_newline });
        }
        chunk = chunk.saturating_mul(4);
    }
}

fn seq_of(line: &[u8]) -> Option<i64> {
    serde_json::from_slice::<Value>(line).ok()?.get("seq")?.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> std::fs::File {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, text).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // The open file outlives the directory's removal on unix; keep the directory anyway.
        std::mem::forget(dir);
        file
    }

    #[test]
    fn an_empty_file_resumes_from_the_start() {
        let resume = last_seq(file_with("")).unwrap();
        assert_eq!((resume.last_seq, resume.needs_newline), (None, false));
    }

    #[test]
    fn a_file_resumes_after_its_last_whole_line() {
        let resume = last_seq(file_with("{\"seq\":1}\n{\"seq\":2}\n")).unwrap();
        assert_eq!((resume.last_seq, resume.needs_newline), (Some(2), false));
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_ignored_and_closed_by_the_next_write() {
        let resume = last_seq(file_with("{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3,\"ac")).unwrap();
        assert_eq!((resume.last_seq, resume.needs_newline), (Some(2), true));
    }

    #[test]
    fn a_file_longer_than_one_chunk_is_read_from_its_end() {
        let mut text = String::new();
        for seq in 1..=5000 {
            text.push_str(&format!("{{\"seq\":{seq},\"pad\":\"{}\"}}\n", "x".repeat(40)));
        }
        assert_eq!(last_seq(file_with(&text)).unwrap().last_seq, Some(5000));
    }
}
