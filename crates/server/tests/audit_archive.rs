//! `cdvault audit archive` and `cdvault audit verify --archive` in the real binary, on SQLite (the development
//! set-up) and PostgreSQL: archived events leave the live table, the archive and the live table verify together,
//! an edited or cut archive and a deleted oldest live event are caught, the server serves and chains on, and an
//! archival interrupted between its file and its delete is finished by running it again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod support;

use support::pg::{PgDatabase, execute};
use support::{Server, cdvault, graphql, run, text};

/// Where a scenario runs: a directory, and the settings (none: the development set-up's SQLite in the directory).
struct Setup {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
    url: String,
}

impl Setup {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rw", dir.path().join("cdvault-data").join("cdvault.db").display());
        Self { dir, env: Vec::new(), url }
    }

    fn postgres(db: &PgDatabase) -> Self {
        Self { dir: tempfile::tempdir().unwrap(), env: db.env(), url: db.url.clone() }
    }

    fn command(&self) -> std::process::Command {
        let mut command = cdvault(self.dir.path());
        command.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        command
    }

    /// Runs `cdvault` with `args`: exit code and standard output (standard error appended, for messages).
    fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let output = run(self.command().args(args));
        (output.status.code(), format!("{}{}", text(&output.stdout), text(&output.stderr)))
    }

    fn verify(&self, archives: &[&Path]) -> (Option<i32>, String) {
        let mut command = self.command();
        command.args(["audit", "verify"]);
        if !archives.is_empty() {
            command.arg("--archive").args(archives);
        }
        let output = run(&mut command);
        (output.status.code(), format!("{}{}", text(&output.stdout), text(&output.stderr)))
    }

    fn archive(&self, before: OffsetDateTime, out: &Path) -> (Option<i32>, String) {
        let before = before.format(&Rfc3339).unwrap();
        self.cli(&["audit", "archive", "--before", &before, "--out", out.to_str().unwrap()])
    }

    fn token(&self) -> String {
        let scope = "audit:read credentials:read credentials:write";
        let (code, out) = self.cli(&["token", "--sub", "auditor", "--scope", scope, "--sellers", "*"]);
        assert_eq!(code, Some(0), "{out}");
        out.trim().to_owned()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Sends `n` requests with a bad token to a running server: each leaves one audit event.
fn refusals(address: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for _ in 0..n {
            let answer = graphql(address, "not-a-token", "{ viewer { subject } }", serde_json::json!({})).await;
            assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        }
    });
}

fn query(address: &str, token: &str, document: &str) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(graphql(address, token, document, serde_json::json!({})))
}

/// Polls `auditChainStatus` until the verifier has finished a round (bounded: 30 s).
fn settled_chain_status(address: &str, token: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer =
            query(address, token, "{ auditChainStatus { state problem firstRetainedSeq verifiedThroughSeq } }");
        let status = answer["data"]["auditChainStatus"].clone();
        if status["state"] != "PENDING" || Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Four events, a cut-off time, three more, then an archive of the first four: what every scenario starts with.
/// Returns the archive's path and the cut-off.
fn archived_four(setup: &Setup) -> (PathBuf, OffsetDateTime) {
    let server = Server::start(setup.command());
    refusals(&server.address, 4);
    let before = OffsetDateTime::now_utc();
    refusals(&server.address, 3);
    server.terminate();
    let archive = setup.path("audit-1.jsonl");
    let (code, out) = setup.archive(before, &archive);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("archived events 1 to 4") && out.contains("it now starts at seq 5"), "{out}");
    (archive, before)
}

fn an_archived_trail_verifies_with_its_archive_and_the_server_chains_on(setup: &Setup) {
    let (archive, _) = archived_four(setup);
    let lines = std::fs::read_to_string(&archive).unwrap();
    assert_eq!(lines.lines().count(), 6, "a header, four events, a trailer: {lines}");
    assert!(!lines.contains("not-a-token"), "no token in the archive");

    let (code, out) = setup.verify(&[&archive]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("audit chain OK") && out.contains("archives OK: 4 events (seq 1 to 4)"), "{out}");
    let (code, out) = setup.verify(&[]);
    assert_eq!(code, Some(0), "the live table alone verifies from its sealed anchor: {out}");
    assert!(out.contains("events 1 to 4 are archived") && out.contains("pass --archive"), "{out}");

    // The server starts on a table that no longer begins at seq 1, serves it, and new events chain on.
    let token = setup.token();
    let server = Server::start(setup.command());
    let status = settled_chain_status(&server.address, &token);
    assert_eq!(status["state"], "INTACT", "{status}");
    assert_eq!(status["firstRetainedSeq"], 5, "{status}");
    let events = query(&server.address, &token, "{ auditEvents(first: 100) { edges { node { seq action } } } }");
    let seqs: Vec<i64> = events["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![8, 7, 6, 5], "the three kept refusals and the archival's own event: {events}");
    assert_eq!(events["data"]["auditEvents"]["edges"][0]["node"]["action"], "audit.archive", "{events}");
    let issue = [
        "mutation { registerSellerAccount(input: {login: \"archshop\", displayName: \"A\"}) { id } }",
        "mutation { storeApiCredential(input: {sellerLogin: \"archshop\", password: \"Arch-Passw0rd!\"}) { warnings } }",
        "mutation { issueApiCredential(sellerLogin: \"archshop\", purpose: \"after archival\") { password } }",
    ];
    for document in issue {
        let answer = query(&server.address, &token, document);
        assert!(answer["errors"].is_null(), "{answer}");
    }
    server.terminate();
    let (code, out) = setup.verify(&[&archive]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("up to seq 11"), "{out}");

    // A second archive continues the first; both together prove the trail from seq 1.
    let second = setup.path("audit-2.jsonl");
    let (code, out) = setup.archive(OffsetDateTime::now_utc(), &second);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("archived events 5 to 11"), "{out}");
    let (code, out) = setup.verify(&[&second, &archive]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("archives OK: 11 events (seq 1 to 11) in 2 file(s)"), "{out}");
    let (code, out) = setup.verify(&[&second]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("events 1 to 4 were not checked"), "{out}");
}

fn an_edited_or_cut_archive_and_a_deleted_oldest_live_event_fail_verification(setup: &Setup) {
    let (archive, _) = archived_four(setup);
    let original = std::fs::read_to_string(&archive).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();

    // One archived event edited (who acted).
    let edited = setup.path("edited.jsonl");
    std::fs::write(&edited, original.replacen("\"actor\":\"anonymous\"", "\"actor\":\"someone\"", 1)).unwrap();
    let (code, out) = setup.verify(&[&edited]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("audit chain BROKEN") && out.contains("line 2") && out.contains("seq 1 was edited"), "{out}");

    // Its last line (the trailer) deleted.
    let cut = setup.path("cut.jsonl");
    lines.pop();
    std::fs::write(&cut, lines.join("\n") + "\n").unwrap();
    let (code, out) = setup.verify(&[&cut]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("audit chain BROKEN") && out.contains("cut short"), "{out}");

    // The last archived event deleted, the trailer kept.
    let holed = setup.path("holed.jsonl");
    let mut kept: Vec<&str> = original.lines().collect();
    kept.remove(4);
    std::fs::write(&holed, kept.join("\n") + "\n").unwrap();
    let (code, out) = setup.verify(&[&holed]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("audit chain BROKEN") && out.contains("trailer seals seq 1 to 4"), "{out}");

    // The archive still proves itself; the oldest live event deleted does not pass for an archival.
    assert_eq!(setup.verify(&[&archive]).0, Some(0));
    execute(&setup.url, "DELETE FROM audit_events WHERE seq = 5");
    let (code, out) = setup.verify(&[&archive]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("audit chain BROKEN") && out.contains("missing (deleted)"), "{out}");
    let (code, out) = setup.verify(&[]);
    assert_eq!(code, Some(1), "{out}");

    // Nor does an archival record moved forward by hand (it would hide event 5's deletion).
    execute(&setup.url, "UPDATE audit_archives SET through_seq = 5");
    let (code, out) = setup.verify(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("archival record of events up to seq 5 is not authentic"), "{out}");
}

#[test]
fn an_archived_trail_verifies_with_its_archive_and_the_server_chains_on_on_sqlite() {
    an_archived_trail_verifies_with_its_archive_and_the_server_chains_on(&Setup::sqlite());
}

#[test]
fn an_archived_trail_verifies_with_its_archive_and_the_server_chains_on_on_postgres() {
    let Some(db) = PgDatabase::create("cdvault_archive") else { return };
    an_archived_trail_verifies_with_its_archive_and_the_server_chains_on(&Setup::postgres(&db));
}

#[test]
fn an_edited_or_cut_archive_and_a_deleted_oldest_live_event_fail_verification_on_sqlite() {
    an_edited_or_cut_archive_and_a_deleted_oldest_live_event_fail_verification(&Setup::sqlite());
}

#[test]
fn an_edited_or_cut_archive_and_a_deleted_oldest_live_event_fail_verification_on_postgres() {
    let Some(db) = PgDatabase::create("cdvault_archive") else { return };
    an_edited_or_cut_archive_and_a_deleted_oldest_live_event_fail_verification(&Setup::postgres(&db));
}

#[test]
fn an_archival_interrupted_between_its_file_and_its_delete_verifies_and_is_finished_by_running_it_again() {
    let setup = Setup::sqlite();
    let server = Server::start(setup.command());
    refusals(&server.address, 4);
    let before = OffsetDateTime::now_utc();
    refusals(&server.address, 2);
    server.terminate();
    // The state a crash after the file's sync leaves: the file in place, every event still live. Made by archiving
    // from a copy of the database, then putting the untouched original back.
    let data = setup.dir.path().join("cdvault-data");
    let copy = setup.path("copy.db");
    execute(&setup.url, &format!("VACUUM INTO '{}'", copy.display()));
    let original = setup.path("original.db");
    // A database file moves with its WAL and shared-memory files, or SQLite reads another database's frames.
    let live = data.join("cdvault.db");
    let with_suffix =
        |path: &std::path::Path, suffix: &str| std::path::PathBuf::from(format!("{}{suffix}", path.display()));
    let move_db = |from: &std::path::Path, to: &std::path::Path| {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(to, suffix));
            if with_suffix(from, suffix).exists() {
                std::fs::rename(with_suffix(from, suffix), with_suffix(to, suffix)).unwrap();
            }
        }
        std::fs::rename(from, to).unwrap();
    };
    move_db(&live, &original);
    std::fs::copy(&copy, &live).unwrap();
    let archive = setup.path("audit-1.jsonl");
    assert_eq!(setup.archive(before, &archive).0, Some(0));
    move_db(&original, &live);

    let (code, out) = setup.verify(&[&archive]);
    assert_eq!(code, Some(0), "archived and still live: the same events, {out}");
    assert!(out.contains("audit chain OK: 6 events") && out.contains("archives OK: 4 events"), "{out}");

    let (code, out) = setup.archive(before, &archive);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("archived events 1 to 4") && out.contains("(4 deleted"), "{out}");
    let (code, out) = setup.archive(before, &archive);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("is archived already"), "{out}");
    let (code, out) = setup.verify(&[&archive]);
    assert_eq!(code, Some(0), "{out}");

    // A file there that is no complete archive is never replaced.
    let other = setup.path("notes.txt");
    std::fs::write(&other, "not an archive\n").unwrap();
    let (code, out) = setup.archive(OffsetDateTime::now_utc(), &other);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("refused") && out.contains("not a complete archive"), "{out}");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "not an archive\n");
}
