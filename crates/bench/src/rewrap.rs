//! The `rewrap` scenario: a key rotation of every seeded credential. First the rewrap alone (ciphertexts per
//! second, from the job's own start and finish times), then issue latency during a second rotation against issue
//! latency before it.

use std::net::SocketAddr;
use std::time::Duration;

use cdvault_api::auth::{TokenRequest, mint_hs256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::load::{self, Stats, Workload};
use crate::{graphql, server};

/// What the scenario measured.
#[derive(Debug)]
pub struct Rotation {
    /// The issue figures before and during the rotation (named `issue-before-rotation`, `issue-during-rotation`).
    pub stats: Vec<Stats>,
    alone: (i64, f64),
    under_load: (i64, f64),
}

impl Rotation {
    /// One line for the report.
    pub fn report(&self, engine: &str, sellers: usize) -> String {
        let rate = |(rows, secs): (i64, f64)| if secs > 0.0 { rows as f64 / secs } else { 0.0 };
        let mut line = format!(
            "{engine} sellers={sellers}: rewrap {} ciphertexts in {:.2} s = {:.0}/s alone; {} in {:.2} s = {:.0}/s under issue load",
            self.alone.0,
            self.alone.1,
            rate(self.alone),
            self.under_load.0,
            self.under_load.1,
            rate(self.under_load)
        );
        if let [before, during] = self.stats.as_slice() {
            line.push_str(&format!(
                "; issue p50 {:.2} -> {:.2} ms, p99 {:.2} -> {:.2} ms ({:.2}x) during the rotation",
                before.p50_ms,
                during.p50_ms,
                before.p99_ms,
                during.p99_ms,
                during.p99_ms / before.p99_ms
            ));
        }
        line
    }
}

const ROTATE: &str = "mutation { rotateEncryptionKey { id total } }";
const JOB: &str = "query($id: ID!) { rotationJob(id: $id) { state total done startedAt finishedAt } }";

async fn call(
    address: SocketAddr,
    token: &str,
    query: &str,
    variables: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let (status, body) = load::fetch(address, &graphql(token, query, variables)).await?;
    anyhow::ensure!(status == 200, "GraphQL answered {status}");
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    anyhow::ensure!(answer.get("errors").is_none(), "GraphQL errors: {answer}");
    Ok(answer)
}

/// Starts a rotation and waits for its job to finish; returns the rows and the job's own duration.
async fn rotate(address: SocketAddr, token: &str) -> anyhow::Result<(i64, f64)> {
    let started = call(address, token, ROTATE, serde_json::json!({})).await?;
    let id = started["data"]["rotateEncryptionKey"]["id"].clone();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let job = call(address, token, JOB, serde_json::json!({ "id": id })).await?;
        let job = &job["data"]["rotationJob"];
        match job["state"].as_str() {
            Some("RUNNING") => continue,
            Some("SUCCEEDED") => {
                let at = |field: &str| -> anyhow::Result<OffsetDateTime> {
                    Ok(OffsetDateTime::parse(job[field].as_str().unwrap_or_default(), &Rfc3339)?)
                };
                let secs = (at("finishedAt")? - at("startedAt")?).as_seconds_f64();
                return Ok((job["done"].as_i64().unwrap_or(0), secs));
            }
            other => anyhow::bail!("the rotation job ended {other:?}: {job}"),
        }
    }
}

/// Runs the scenario against a seeded server.
pub async fn run(
    address: SocketAddr,
    jwt_secret: &str,
    issue: Option<Workload>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Rotation> {
    let request = TokenRequest {
        subject: "security-team".into(),
        scopes: vec!["keys:admin".into()],
        sellers: None,
        ttl: Duration::from_secs(24 * 3600),
    };
    let token = mint_hs256(jwt_secret.as_bytes(), server::ISSUER, server::AUDIENCE, &request)?;
    eprintln!("rewrap: rotating alone");
    let alone = rotate(address, &token).await?;
    let mut stats = Vec::new();
    let mut under_load = (0, 0.0);
    if let Some(mut issue) = issue {
        issue.name = "issue-before-rotation".into();
        stats.push(load::run(&issue, concurrency, warmup, duration).await?);
        // The load lasts about as long as the rotation did alone, so it measures the time during the job.
        issue.name = "issue-during-rotation".into();
        let window = Duration::from_secs_f64(alone.1.max(1.0));
        let load = tokio::spawn(async move { load::run(&issue, concurrency, Duration::ZERO, window).await });
        eprintln!("rewrap: rotating under issue load");
        under_load = rotate(address, &token).await?;
        stats.push(load.await??);
    }
    Ok(Rotation { stats, alone, under_load })
}
