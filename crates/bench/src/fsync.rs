//! The machine's durable-write latency, measured before the scenarios: what one durable commit costs at least, to
//! read the one-client issue p50 against (each issue waits for its audit event's commit). Both kinds of `fdatasync`
//! are timed: an append (the file grows, so the file system's journal commits its size too) and an overwrite in
//! place (what a WAL does once its file is allocated: SQLite reuses its WAL from the start after a checkpoint,
//! PostgreSQL preallocates its segments).

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use serde::Serialize;

use crate::load::new_histogram;

/// Appends (and syncs) per probe.
const SAMPLES: usize = 200;
/// Bytes per append: a page.
const APPEND: usize = 4096;

/// One latency probe's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// A short name: `in-place fdatasync`, `appending fdatasync` or `PostgreSQL commit`.
    pub label: String,
    /// What was timed, e.g. `4 KiB append + fdatasync in /tmp/.tmpX`.
    pub what: String,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn new(label: &str, what: String, durations: &[Duration]) -> anyhow::Result<Self> {
        let mut histogram = new_histogram()?;
        for d in durations {
            histogram.record(d.as_micros().max(1) as u64)?;
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Ok(Self {
            label: label.to_owned(),
            what,
            samples: durations.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        })
    }

    pub fn line(&self) -> String {
        format!(
            "{}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} times",
            self.what, self.p50_ms, self.p99_ms, self.max_ms, self.samples
        )
    }
}

/// Appends a 4 KiB page to a fresh file in `dir` and `fdatasync`s it, [`SAMPLES`] times, then overwrites those
/// pages one by one from the start, each synced again; returns the overwrites, then the appends.
pub fn file(dir: &Path, note: &str) -> anyhow::Result<[Latency; 2]> {
    let path = dir.join("cdvault-bench-fsync.probe");
    let mut file = std::fs::OpenOptions::new().create_new(true).read(true).write(true).open(&path)?;
    let page = [0x5au8; APPEND];
    let timed = |file: &mut std::fs::File| -> anyhow::Result<Vec<Duration>> {
        let mut durations = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let began = Instant::now();
            file.write_all(&page)?;
            file.sync_data()?;
            durations.push(began.elapsed());
        }
        Ok(durations)
    };
    let appends = timed(&mut file)?;
    file.seek(SeekFrom::Start(0))?;
    let overwrites = timed(&mut file)?;
    drop(file);
    std::fs::remove_file(&path)?;
    let place = format!("in {}{note}", dir.display());
    Ok([
        Latency::new("in-place fdatasync", format!("4 KiB overwrite + fdatasync {place}"), &overwrites)?,
        Latency::new("appending fdatasync", format!("4 KiB append + fdatasync {place}"), &appends)?,
    ])
}

/// Times [`SAMPLES`] one-row `INSERT`s, each its own transaction, on the run's PostgreSQL database: one commit as
/// PostgreSQL makes it durable (its WAL flush, `synchronous_commit` as configured), plus a local round trip.
pub async fn postgres_commit(url: &str) -> anyhow::Result<Latency> {
    let conn = sea_orm::Database::connect(url).await?;
    conn.execute_unprepared("CREATE TABLE bench_commit_probe (id bigserial PRIMARY KEY, pad text NOT NULL)").await?;
    let mut durations = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let began = Instant::now();
        conn.execute_unprepared("INSERT INTO bench_commit_probe (pad) VALUES ('cdvault-bench')").await?;
        durations.push(began.elapsed());
    }
    conn.execute_unprepared("DROP TABLE bench_commit_probe").await?;
    let synchronous = conn
        .query_one_raw(sea_orm::Statement::from_string(conn.get_database_backend(), "SHOW synchronous_commit"))
        .await?
        .and_then(|row| row.try_get_by_index::<String>(0).ok())
        .unwrap_or_else(|| "?".into());
    conn.close().await?;
    Latency::new(
        "PostgreSQL commit",
        format!("PostgreSQL one-row INSERT commit (synchronous_commit={synchronous})"),
        &durations,
    )
}

/// Whether `dir` is on the same device as PostgreSQL's `data_directory` (None when either cannot be read).
pub async fn same_device_as_postgres(url: &str, dir: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let conn = sea_orm::Database::connect(url).await.ok()?;
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(conn.get_database_backend(), "SHOW data_directory"))
        .await
        .ok()??;
    let data: String = row.try_get_by_index(0).ok()?;
    let _ = conn.close().await;
    Some(std::fs::metadata(data).ok()?.dev() == std::fs::metadata(dir).ok()?.dev())
}
