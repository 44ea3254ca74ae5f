//! `cdvault audit archive`: moves the events that happened before a date to a file of JSON lines, then out of the
//! live table. The file is written beside its final name, synced, read back and checked, and only then put in
//! place; the events are deleted afterwards, in one transaction with the seal that anchors the live table. A crash
//! between the two leaves the events both archived and live: running the same command again finishes the job.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use cdvault_domain::audit::{
    ARCHIVE_REPLICA, ArchiveBreak, ArchiveReader, ArchivedRange, AuditAction, AuditKey, ChainBreak, ChainVerifier,
    archive_event_line, archive_header_line, archive_trailer_line,
};
use cdvault_storage::audit::{self, ArchiveCommitError, Position};
use cdvault_storage::{Database, StorageError};
use serde_json::json;
use time::OffsetDateTime;

use super::acts::{open_keyed, operator, record};
use crate::config::Settings;

/// Events read from the database per query while writing.
const PAGE: u64 = 1000;

/// Reads and checks an archive file with `key`, keeping the links of the events `wanted`.
pub(super) fn read_archive(
    key: &AuditKey,
    path: &Path,
    wanted: impl IntoIterator<Item = i64>,
) -> anyhow::Result<Result<ArchivedRange, ArchiveBreak>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = ArchiveReader::new(key.clone()).want(wanted);
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if let Err(broken) = reader.push(&line) {
            return Ok(Err(broken));
        }
    }
    Ok(reader.finish())
}

/// Writes events `after.0 + 1 ..= through` to `partial`, checking each link on the way (a broken chain is never
/// archived), and syncs it. The error side of the inner result is the first broken link.
async fn write_partial(
    db: &Database,
    key: &AuditKey,
    after: Position,
    through: i64,
    before: OffsetDateTime,
    partial: &Path,
) -> anyhow::Result<Result<(), ChainBreak>> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = BufWriter::new(file);
    writeln!(out, "{}", archive_header_line(after, before))?;
    let mut chain = ChainVerifier::resume(key.clone(), after.0, after.1);
    let mut next = after.0;
    'pages: while next < through {
        let page = audit::page_after(db, next, PAGE).await.context("cannot read the audit trail")?;
        if page.is_empty() {
            break;
        }
        for event in &page {
            if event.seq > through {
                break 'pages;
            }
            if let Err(broken) = chain.check(event) {
                return Ok(Err(broken));
            }
            writeln!(out, "{}", archive_event_line(event))?;
            next = event.seq;
        }
    }
    let (last, head) = chain.position();
    if last != through {
        return Ok(Err(ChainBreak::Gap { previous: last, found: through }));
    }
    let now = OffsetDateTime::now_utc();
    let seal = key.seal_archive((after.0 + 1, after.1), (through, head), now);
    let checkpoint = key.checkpoint(through, head, now, ARCHIVE_REPLICA);
    writeln!(out, "{}", archive_trailer_line(&seal, &checkpoint))?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all().with_context(|| format!("cannot sync {}", partial.display()))?;
    Ok(Ok(()))
}

/// Puts `partial` in place as `out` without ever replacing a file there, and syncs the directory so the name
/// survives a crash.
fn publish(partial: &Path, out: &Path) -> anyhow::Result<()> {
    std::fs::hard_link(partial, out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::remove_file(partial).with_context(|| format!("cannot remove {}", partial.display()))?;
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}

pub(super) async fn archive(settings: &Settings, before: OffsetDateTime, out: PathBuf) -> anyhow::Result<i32> {
    let (db, _) = open_keyed(settings).await?;
    let key = db.audit_key()?.clone();
    let anchor = match audit::anchor(&db).await {
        Ok(anchor) => anchor,
        Err(StorageError::ChainBroken(broken)) => {
            println!("audit chain BROKEN: {broken}; nothing archived");
            return Ok(1);
        }
        Err(e) => return Err(e).context("cannot read the audit trail"),
    };
    if out.exists() {
        return finish_existing(&db, &key, &out).await;
    }
    let through = audit::archivable_through(&db, anchor.0, before).await.context("cannot read the audit trail")?;
    if through <= anchor.0 {
        println!("nothing to archive: no event after seq {} happened before {before}", anchor.0);
        return Ok(0);
    }
    let mut partial = out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    if let Err(broken) = write_partial(&db, &key, anchor, through, before, &partial).await? {
        let _ = std::fs::remove_file(&partial);
        println!("audit chain BROKEN: {broken}; nothing archived (run `cdvault audit verify`)");
        return Ok(1);
    }
    // What is on the disk, not what was meant to be written, decides what may leave the live table.
    let range = match read_archive(&key, &partial, [])? {
        Ok(range) => range,
        Err(broken) => anyhow::bail!("the archive just written does not read back ({broken}): nothing archived"),
    };
    publish(&partial, &out)?;
    commit(&db, &range, &out).await
}

/// `out` exists: a complete archive whose events are still live is committed (a run interrupted after the file
/// was written); one already committed is reported; anything else is refused and left alone.
async fn finish_existing(db: &Database, key: &AuditKey, out: &Path) -> anyhow::Result<i32> {
    match read_archive(key, out, [])? {
        Ok(range) => commit(db, &range, out).await,
        Err(broken) => {
            println!(
                "refused: {} exists and is not a complete archive ({broken}); choose another --out",
                out.display()
            );
            Ok(1)
        }
    }
}

async fn commit(db: &Database, range: &ArchivedRange, out: &Path) -> anyhow::Result<i32> {
    let seal = &range.seal;
    let who = operator();
    let file = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let details = json!({ "fromSeq": seal.from_seq, "throughSeq": seal.through_seq, "file": file, "via": "cli" });
    let event = record(&who, AuditAction::AuditArchive, details);
    match audit::commit_archive(db, seal, &who, event).await {
        Ok(deleted) => {
            println!(
                "archived events {} to {} to {} ({deleted} deleted from the live table); it now starts at seq {}",
                seal.from_seq,
                seal.through_seq,
                out.display(),
                seal.through_seq + 1
            );
            println!("keep the archive off this host; `cdvault audit verify --archive` proves it with the live table");
            Ok(0)
        }
        Err(ArchiveCommitError::AlreadyArchived { from, through }) => {
            println!("{} is archived already: events {from} to {through} are out of the live table", out.display());
            Ok(0)
        }
        Err(ArchiveCommitError::Mismatch(why)) => {
            println!("refused: {} cannot be committed: {why}", out.display());
            Ok(1)
        }
        Err(ArchiveCommitError::Storage(StorageError::ChainBroken(broken))) => {
            println!("audit chain BROKEN: {broken}; nothing archived");
            Ok(1)
        }
        Err(ArchiveCommitError::Storage(e)) => Err(e).context("cannot commit the archive"),
    }
}
