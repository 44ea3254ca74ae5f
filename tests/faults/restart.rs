//! PostgreSQL stopped for a few seconds and started again under load: requests fail fast with a clear code, the
//! service recovers by itself, and the audit trail has exactly one event per issued credential.

use std::time::{Duration, Instant};

use cdvault_tests::pg_cluster::PgCluster;
use cdvault_tests::{ALL_SCOPES, TestApp, TestDb};

use crate::load::{Load, Outcome, Target, audit_matches, codes};

/// The code of a request refused because the database cannot be reached.
const UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";

/// The longest any request may take, outage or not: the audit writer's acquire timeout (3 s), which bounds the
/// writer's batch the request waits for, plus room for a slow machine. Past it, a request "hangs" (before the fix,
/// requests waited out the whole outage, up to 10 s).
const FAIL_FAST: Duration = Duration::from_secs(6);

/// Longer than [`FAIL_FAST`]: a request that waits for the database to come back is caught.
const OUTAGE: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_during_a_database_restart_fail_fast_with_a_clear_code_and_the_service_recovers_by_itself() {
    let test = "requests_during_a_database_restart_fail_fast_with_a_clear_code_and_the_service_recovers_by_itself";
    let Some(cluster) = PgCluster::start(test) else { return };
    let url = cluster.create_database("cdvault").await;
    let app = TestApp::builder_on(TestDb::postgres_at(&url))
        .seller_with_password("faultshop", "Fault-Passw0rd!")
        .spawn()
        .await;
    let token = app.token(ALL_SCOPES, &["*"]);
    let target = Target { addresses: vec![app.address.to_string()], retry_on_connection_error: false };
    let load = Load::start(32, target, &token, "faultshop");
    load.issues_more(200, Duration::from_secs(30)).await;

    let stopped_at = Instant::now();
    cluster.stop();
    // A few seconds of outage, while the clients keep asking.
    tokio::time::sleep(OUTAGE.saturating_sub(stopped_at.elapsed())).await;
    cluster.start_again();
    let accepting = Instant::now();
    let before = load.issued();
    cdvault_tests::eventually("the service issues again", Duration::from_secs(30), || async { load.issued() > before })
        .await;
    let first_success_after = accepting.elapsed();
    load.issues_more(200, Duration::from_secs(30)).await;
    let requests = load.finish().await;

    // Recovery: from PostgreSQL accepting connections to the first request sent after that which issued.
    let recovered = requests
        .iter()
        .filter(|r| r.sent >= accepting && r.outcome == Outcome::Issued)
        .map(|r| (r.sent + r.took).duration_since(accepting))
        .min()
        .unwrap();
    let failed: Vec<_> = requests.iter().filter(|r| r.outcome != Outcome::Issued).collect();
    let slowest_failure = failed.iter().map(|r| r.took).max().unwrap_or_default();
    let slowest = requests.iter().map(|r| r.took).max().unwrap_or_default();
    let audited = audit_matches(&app.db, &requests).await;
    eprintln!(
        "fault: PostgreSQL restart: outage {:.1} s, {} requests, {} issued, {} failed {:?}, slowest failure {:.2} s, \
         slowest request {:.2} s, recovery {:.2} s after PostgreSQL accepted connections (first success seen {:.2} s), {} failed requests \
         whose audit event committed (reply lost)",
        accepting.duration_since(stopped_at).as_secs_f64(),
        requests.len(),
        audited.issued,
        audited.failed,
        codes(&requests),
        slowest_failure.as_secs_f64(),
        slowest.as_secs_f64(),
        recovered.as_secs_f64(),
        first_success_after.as_secs_f64(),
        audited.lost_replies,
    );

    assert!(!failed.is_empty(), "the outage was seen by the clients");
    for request in &failed {
        assert_eq!(request.outcome, Outcome::Refused(UNAVAILABLE.into()), "{request:?}");
    }
    assert!(slowest < FAIL_FAST, "a request hung for {slowest:?}");
    let verified = cdvault_storage::audit::verify(&app.keyed_db().await, &[]).await.expect("the audit chain verifies");
    assert!(verified.checked >= u64::try_from(audited.issued).unwrap());
}
