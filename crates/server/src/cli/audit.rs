//! `cdvault audit verify`: the live table (every link, the head, rows past it, the sealed anchor it starts from),
//! the checkpoints kept outside the database, and the archives given, together: the archives must chain from one to
//! the next and onto the live table's first retained event.

use std::path::PathBuf;

use anyhow::Context;
use cdvault_api::service::CheckpointSink;
use cdvault_domain::audit::{ArchivedRange, AuditKey, Checkpoint, GENESIS_HASH};
use cdvault_storage::audit::{self, Verified};
use cdvault_storage::{Database, StorageError};

use super::archive::read_archive;
use crate::config::Settings;

/// Reads every checkpoint line of `files` (lines that are not checkpoints, such as other log lines, are skipped; a
/// line that claims to be one and is malformed is an error).
fn read_checkpoints(files: &[PathBuf]) -> anyhow::Result<Vec<Checkpoint>> {
    let mut checkpoints = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        for (n, line) in text.lines().enumerate() {
            if !line.contains("\"checkpoint\"") {
                continue;
            }
            let checkpoint =
                Checkpoint::parse_line(line).with_context(|| format!("{} line {}", file.display(), n + 1))?;
            checkpoints.push(checkpoint);
        }
    }
    Ok(checkpoints)
}

/// What the archives given prove together.
struct Archives {
    ranges: Vec<(PathBuf, ArchivedRange)>,
}

impl Archives {
    fn first(&self) -> Option<&ArchivedRange> {
        self.ranges.first().map(|(_, r)| r)
    }

    fn last(&self) -> Option<&ArchivedRange> {
        self.ranges.last().map(|(_, r)| r)
    }

    fn events(&self) -> i64 {
        self.ranges.iter().map(|(_, r)| r.seal.through_seq - r.seal.from_seq + 1).sum()
    }

    /// The link of event `seq` as the archives know it: a range's edges, or an event asked for while reading.
    fn link(&self, seq: i64) -> Option<[u8; 32]> {
        self.ranges.iter().find_map(|(_, r)| {
            if r.seal.through_seq == seq {
                Some(r.seal.head)
            } else if r.seal.from_seq - 1 == seq {
                Some(r.seal.prev_hash)
            } else {
                r.links.get(&seq).copied()
            }
        })
    }
}

/// Reads and checks every archive, then checks that each continues the one before. `Err` is the problem to print.
fn read_archives(key: &AuditKey, files: &[PathBuf], wanted: &[i64]) -> anyhow::Result<Result<Archives, String>> {
    let mut ranges = Vec::new();
    for file in files {
        match read_archive(key, file, wanted.iter().copied())? {
            Ok(range) => ranges.push((file.clone(), range)),
            Err(broken) => return Ok(Err(format!("archive {}: {broken}", file.display()))),
        }
    }
    ranges.sort_by_key(|(_, r)| r.seal.from_seq);
    for pair in ranges.windows(2) {
        let ((a_file, a), (b_file, b)) = (&pair[0], &pair[1]);
        if b.seal.from_seq != a.seal.through_seq + 1 || b.seal.prev_hash != a.seal.head {
            return Ok(Err(format!(
                "archive {} (seq {} to {}) does not continue archive {} (seq {} to {}): pass each archived range once, none missing",
                b_file.display(),
                b.seal.from_seq,
                b.seal.through_seq,
                a_file.display(),
                a.seal.from_seq,
                a.seal.through_seq
            )));
        }
    }
    if let Some(first) = ranges.first().map(|(_, r)| &r.seal)
        && first.from_seq == 1
        && first.prev_hash != GENESIS_HASH
    {
        return Ok(Err("the first archive does not start at the genesis link".into()));
    }
    Ok(Ok(Archives { ranges }))
}

/// The archives against the live table: they must reach its anchor (every deleted event archived) and, where they
/// overlap it (an archival interrupted before its delete), agree with it.
async fn join(
    db: &Database,
    key: &AuditKey,
    archives: &Archives,
    verified: &Verified,
    checkpoints: &[Checkpoint],
) -> anyhow::Result<Result<usize, String>> {
    let (Some(first), Some(last)) = (archives.first(), archives.last()) else { return Ok(Ok(0)) };
    let (anchor, end) = (verified.archived.0, last.seal.through_seq);
    if anchor > end {
        return Ok(Err(format!(
            "events {} to {anchor} are out of the live table but in none of the archives given (they end at seq {end})",
            end + 1
        )));
    }
    if anchor < first.seal.from_seq - 1 {
        return Ok(Err(format!(
            "the archives given start at seq {}, after the live table's first event (seq {})",
            first.seal.from_seq,
            anchor + 1
        )));
    }
    if anchor > 0 && archives.link(anchor) != Some(verified.archived.1) {
        return Ok(Err(format!(
            "the live table starts after seq {anchor}, which no archive given ends on with the same link"
        )));
    }
    if end > anchor {
        // Archived and still live: the same events, or the chain was rewritten on one side.
        let live = audit::link_at(db, end).await.context("cannot read the audit trail")?;
        if live != Some(last.seal.head) {
            return Ok(Err(format!("event seq {end} differs between the archive and the live table")));
        }
    }
    let mut matched = 0;
    for checkpoint in checkpoints.iter().filter(|c| verified.archived_checkpoints.contains(&c.seq)) {
        // Older than every archive given: nothing here can match it.
        if checkpoint.seq < first.seal.from_seq {
            continue;
        }
        let link = archives.link(checkpoint.seq);
        if let Err(broken) = checkpoint.check(key, end, |_| link) {
            return Ok(Err(format!("{broken} (in the archives)")));
        }
        matched += 1;
    }
    Ok(Ok(matched))
}

pub(super) async fn verify(
    settings: &Settings,
    files: Vec<PathBuf>,
    archive_files: Vec<PathBuf>,
) -> anyhow::Result<i32> {
    let db = Database::connect(&settings.existing_database_url()?).await.context("cannot open the database")?;
    let root = settings.root_key().context(
        "audit verify checks keyed links: it needs the root key (CDVAULT_ROOT_KEY or CDVAULT_ROOT_KEY_FILE)",
    )?;
    let Some(key) = cdvault_storage::audit::existing_key(&db, &root)
        .await
        .context("cannot open the audit MAC key (is CDVAULT_ROOT_KEY the key this database was created with?)")?
    else {
        println!(
            "audit chain BROKEN: the audit MAC key is missing (deleted, or no server has started on this database)"
        );
        return Ok(1);
    };
    let db = db.with_audit_key(key.clone());
    // Without --checkpoints, the configured checkpoint file (the development set-up's default) if there is one.
    let files = match &settings.checkpoints.sink {
        CheckpointSink::File(path) if files.is_empty() && path.exists() => {
            println!("reading checkpoints from {} (CDVAULT_AUDIT_CHECKPOINTS)", path.display());
            vec![path.clone()]
        }
        _ => files,
    };
    let checkpoints = read_checkpoints(&files)?;
    let verified = match cdvault_storage::audit::verify(&db, &checkpoints).await {
        Ok(verified) => verified,
        Err(StorageError::ChainBroken(link)) => return Ok(broken(&link.to_string())),
        Err(e) => return Err(e).context("cannot read the audit trail"),
    };
    let wanted = verified.archived_checkpoints.clone();
    let archives = match read_archives(&key, &archive_files, &wanted)? {
        Ok(archives) => archives,
        Err(problem) => return Ok(broken(&problem)),
    };
    let archived_matched = match join(&db, &key, &archives, &verified, &checkpoints).await? {
        Ok(matched) => matched,
        Err(problem) => return Ok(broken(&problem)),
    };
    println!(
        "audit chain OK: {} events verified up to seq {}, {} checkpoint(s) from {} file(s) matched",
        verified.checked,
        verified.head.0,
        verified.checkpoints + archived_matched,
        files.len()
    );
    report_archives(&archives, &verified, &archive_files);
    if files.is_empty() {
        println!("without checkpoints a deleted tail with the head moved back cannot be seen: pass --checkpoints");
    }
    Ok(0)
}

fn broken(problem: &str) -> i32 {
    println!("audit chain BROKEN: {problem}");
    1
}

fn report_archives(archives: &Archives, verified: &Verified, files: &[PathBuf]) {
    let anchor = verified.archived.0;
    match (archives.first(), archives.last()) {
        (Some(first), Some(last)) => {
            println!(
                "archives OK: {} events (seq {} to {}) in {} file(s), chained onto the live table from seq {}",
                archives.events(),
                first.seal.from_seq,
                last.seal.through_seq,
                files.len(),
                anchor + 1
            );
            if first.seal.from_seq > 1 {
                println!("events 1 to {} were not checked: their archive was not given", first.seal.from_seq - 1);
            }
        }
        _ if anchor > 0 => {
            println!(
                "events 1 to {anchor} are archived (the live table starts at seq {}, its anchor is sealed): pass --archive to check them",
                anchor + 1
            );
            if !verified.archived_checkpoints.is_empty() {
                println!(
                    "{} checkpoint(s) older than the live table were not checked",
                    verified.archived_checkpoints.len()
                );
            }
        }
        _ => {}
    }
}
