//! Figures of `cdvault audit archive` and `cdvault audit verify --archive`: fills a fresh database with N audit
//! events through the group-committing writer, then times the real binary archiving all of them and verifying the
//! archive with the live table. A program, not a test: it prints figures and asserts nothing but success.
//!
//! ```sh
//! cargo build -p cdvault-server --bin cdvault --example audit_archive_figures
//! target/debug/examples/audit_archive_figures 100000                      # SQLite in a temporary directory
//! target/debug/examples/audit_archive_figures 100000 postgres://.../db    # an empty PostgreSQL database
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::Command;
use std::time::Instant;

use cdvault_domain::audit::{AuditAction, AuditRecord, Outcome};
use cdvault_domain::crypto::RootKey;
use cdvault_storage::Database;
use cdvault_storage::audit::{AuditSink, open_key};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("cdvault-archive-figures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = args.next().unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("cdvault.db").display()));
    let root_text = RootKey::generate_base64();
    let root = RootKey::from_base64(&root_text).unwrap();
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let key = open_key(&db, &root).await.unwrap();

    let started = Instant::now();
    let (sink, writer) = AuditSink::start(&url, key).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let sink = sink.clone();
        let record = AuditRecord::new("figures", AuditAction::CredentialIssue, Outcome::Success, &format!("req-{i}"))
            .issuer("https://issuer.figures")
            .seller("bestshop")
            .purpose("nightly order sync")
            .details(serde_json::json!({ "kind": "MARKETPLACE_API", "version": 1 }));
        tasks.spawn(async move { sink.append(record).await.unwrap() });
        if tasks.len() >= 2048 {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    drop(sink);
    writer.stopped().await.unwrap();
    println!("filled {n} events in {:.1} s", started.elapsed().as_secs_f64());
    db.close().await.unwrap();

    let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("cdvault");
    let before = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    let out = dir.join("audit-archive.jsonl");
    let run = |args: &[&str]| {
        let started = Instant::now();
        let output = Command::new(&bin)
            .args(args)
            .env("CDVAULT_DATABASE_URL", &url)
            .env("CDVAULT_ROOT_KEY", root_text.as_str())
            .env("CDVAULT_JWT_HS256_SECRET", "figures-secret-of-at-least-32-bytes!!")
            .env("CDVAULT_JWT_ISSUER", "figures")
            .env("CDVAULT_JWT_AUDIENCE", "cdvault")
            .output()
            .unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (seconds, String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let (archive_s, text) = run(&["audit", "archive", "--before", &before, "--out", out.to_str().unwrap()]);
    print!("{text}");
    let size = std::fs::metadata(&out).unwrap().len();
    println!(
        "archive: {archive_s:.1} s for {n} events ({:.0} events/s), file {:.1} MB ({} bytes/event)",
        n as f64 / archive_s,
        size as f64 / 1e6,
        size / n as u64
    );
    let (verify_s, text) = run(&["audit", "verify", "--archive", out.to_str().unwrap()]);
    print!("{text}");
    println!("verify --archive: {verify_s:.1} s ({:.0} events/s)", n as f64 / verify_s);
    std::fs::remove_dir_all(&dir).unwrap();
}
