//! Rotation jobs: rewrapping every sealed field to the active key version while tools issue and store, followed
//! live, shared by replicas, and robust to a ciphertext that cannot be opened.

use cdvault_tests::app::rewrap_pacing;
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, eventually, on_both_engines, token_for};
use futures::FutureExt;
use serde_json::{Value, json};

use super::keys::{KEYS, rotated_elsewhere};
const ROTATE: &str = "mutation { rotateEncryptionKey { id state toVersion total done failed startedBy } }";
const JOB: &str = "query($id: ID!) { rotationJob(id: $id) { id state toVersion total done failed finishedAt failures { table rowId reason } } }";

/// Polls the job until it is no longer running (bounded generously: the outcome does not depend on how long).
async fn finished(app: &TestApp, id: &Value) -> Value {
    let keys_admin = token_for("security-team", "keys:admin", None);
    for _ in 0..2400 {
        let answer = app.graphql(Some(&keys_admin), JOB, json!({ "id": id })).await;
        let job = answer.data()["rotationJob"].clone();
        if job["state"] != "RUNNING" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the rotation job did not finish");
}

/// Issued once before the rotation and not again until version 1 is retired: its version-1 ciphertext stays in the
/// issue cache of the replica that issued it.
const NEIGHBOUR: &str = "shop18";
/// Its row is planted back under version 1 once that version is retired.
const PLANTED: &str = "shop19";

async fn rotating_while_tools_issue_and_store_loses_nothing_and_empties_the_old_version(engine: Engine) {
    // This replica's worker does one batch and then stalls, so the job is still running whatever the scheduling
    // until `worker`, a second replica started beside the tools below, finishes it.
    let app = TestApp::builder(engine).rewrap_pacing(rewrap_pacing::stalled_after_one_batch()).spawn().await;
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    let sellers: Vec<String> = (0..20).map(|i| format!("shop{i:02}")).collect();
    for login in &sellers {
        app.register(&admin, login).await.data();
        app.store_password(&admin, login, &format!("Pw-{login}-v1!")).await.data();
    }
    assert_eq!(app.issue_password(&admin, NEIGHBOUR).await.data()["issueApiCredential"]["password"], "Pw-shop18-v1!");
    let keys_admin = token_for("security-team", "keys:admin", None);
    let started = app.graphql(Some(&keys_admin), ROTATE, json!({})).await;
    let job = started.data()["rotateEncryptionKey"].clone();
    assert_eq!(
        (job["state"].as_str(), job["toVersion"].as_i64(), job["total"].as_i64()),
        (Some("RUNNING"), Some(2), Some(20))
    );
    assert_eq!(app.graphql(Some(&keys_admin), ROTATE, json!({})).await.code(), "CONFLICT", "one job at a time");

    // While it runs: the first five sellers get new passwords, every other seller but the neighbour is issued
    // again and again, and a second replica comes up and rewraps beside them.
    let writers = sellers[..5].iter().map(|login| {
        let (app, admin) = (&app, &admin);
        async move {
            let password = format!("Pw-{login}-v2!");
            app.store_password(admin, login, &password).await.data();
            let issued = app.issue_password(admin, login).await;
            assert_eq!(issued.data()["issueApiCredential"]["password"], password.as_str());
        }
    });
    let readers = sellers[5..].iter().filter(|login| *login != NEIGHBOUR).cycle().take(60).map(|login| {
        let (app, admin) = (&app, &admin);
        async move {
            let issued = app.issue_password(admin, login).await;
            assert_eq!(issued.data()["issueApiCredential"]["password"], format!("Pw-{login}-v1!").as_str());
        }
    });
    let worker = app.replica().rewrap_pacing(rewrap_pacing::slow()).spawn();
    let (worker, (), ()) = futures::join!(
        worker,
        futures::future::join_all(writers).map(drop),
        futures::future::join_all(readers).map(drop)
    );

    let done = finished(&app, &job["id"]).await;
    assert_eq!((done["state"].as_str(), done["failed"].as_i64()), (Some("SUCCEEDED"), Some(0)), "{done}");
    let answer = app.graphql(Some(&keys_admin), KEYS, json!({})).await;
    let keys = answer.data()["encryptionKeys"].as_array().unwrap().clone();
    assert_eq!(
        (keys[0]["state"].as_str(), keys[0]["ciphertexts"].as_i64()),
        (Some("DECRYPT_ONLY"), Some(0)),
        "{keys:?}"
    );
    assert_eq!(keys[1]["ciphertexts"], 25, "20 first versions and 5 second ones, all under version 2");
    for (i, login) in sellers.iter().enumerate() {
        let expected = if i < 5 { format!("Pw-{login}-v2!") } else { format!("Pw-{login}-v1!") };
        assert_eq!(app.issue_password(&admin, login).await.data()["issueApiCredential"]["password"], expected.as_str());
    }
    let audited = app.audit(json!({ "action": "keys.rewrap" })).await;
    assert_eq!((audited.len(), audited[0]["outcome"].as_str()), (1, Some("SUCCESS")));
    drop(worker);

    // Retirement: not the active version; then version 1, whose material is destroyed.
    let retire = "mutation($v: Int!) { retireEncryptionKey(version: $v) { version state ciphertexts } }";
    assert_eq!(app.graphql(Some(&keys_admin), retire, json!({ "v": 2 })).await.code(), "CONFLICT");
    assert_eq!(app.graphql(Some(&keys_admin), retire, json!({ "v": 7 })).await.code(), "NOT_FOUND");
    let retired = app.graphql(Some(&keys_admin), retire, json!({ "v": 1 })).await;
    assert_eq!(retired.data()["retireEncryptionKey"]["state"], "RETIRED");
    assert_eq!(app.graphql(Some(&keys_admin), retire, json!({ "v": 1 })).await.code(), "CONFLICT");

    // A ciphertext that still claims version 1 (planted) fails cleanly: a coded error, audited, nothing leaked. It
    // is asked of a replica started now, which has nothing cached and so reads the planted row.
    let raw = app.db.raw().await;
    use sea_orm::ConnectionTrait;
    raw.execute_raw(app.db.statement(
        "UPDATE credential_versions SET key_version = 1 WHERE seller_id = (SELECT id FROM sellers WHERE login = ?)",
        vec![PLANTED.into()],
    ))
    .await
    .unwrap();
    let fresh = app.replica().spawn().await;
    let planted = fresh.issue_password(&admin, PLANTED).await;
    assert_eq!(planted.code(), "INTERNAL_SERVER_ERROR");
    assert!(!planted.body.to_string().contains("Pw-shop19-v1!"), "{}", planted.body);
    let failed = app.audit(json!({ "action": "credential.issue", "seller": PLANTED })).await;
    assert_eq!(failed[0]["reason"], "DECRYPT_FAILED");
    // The neighbour, whose version-1 ciphertext this replica has cached since before the rotation, still issues:
    // that ciphertext no longer opens, so the row is read again.
    assert_eq!(app.issue_password(&admin, NEIGHBOUR).await.data()["issueApiCredential"]["password"], "Pw-shop18-v1!");
}
on_both_engines!(rotating_while_tools_issue_and_store_loses_nothing_and_empties_the_old_version);

async fn a_ciphertext_that_cannot_be_opened_is_listed_and_does_not_block_the_rest(engine: Engine) {
    let app = TestApp::builder(engine).rewrap_pacing(rewrap_pacing::slow()).spawn().await;
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    for login in ["bestshop", "brokenshop", "othershop"] {
        app.register(&admin, login).await.data();
        app.store_password(&admin, login, "Sup3r-Secret!").await.data();
    }
    // Damage one ciphertext behind the vault's back: its tag no longer verifies.
    let raw = app.db.raw().await;
    use sea_orm::ConnectionTrait;
    let broken = raw
        .query_one_raw(app.db.statement(
            "SELECT v.id AS id, v.ciphertext AS ciphertext FROM credential_versions v JOIN sellers s ON s.id = v.seller_id WHERE s.login = ?",
            vec!["brokenshop".into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let id: uuid::Uuid = broken.try_get("", "id").unwrap();
    let mut ciphertext: Vec<u8> = broken.try_get("", "ciphertext").unwrap();
    ciphertext[0] ^= 0xff;
    raw.execute_raw(
        app.db.statement(
            "UPDATE credential_versions SET ciphertext = ? WHERE id = ?",
            vec![ciphertext.into(), id.into()],
        ),
    )
    .await
    .unwrap();

    let keys_admin = token_for("security-team", "keys:admin", None);
    let job = app.graphql(Some(&keys_admin), ROTATE, json!({})).await.data()["rotateEncryptionKey"].clone();
    let done = finished(&app, &job["id"]).await;
    assert_eq!(
        (done["state"].as_str(), done["done"].as_i64(), done["failed"].as_i64()),
        (Some("FAILED"), Some(2), Some(1))
    );
    let failure = &done["failures"][0];
    assert_eq!(
        (failure["table"].as_str(), failure["reason"].as_str()),
        (Some("credential_versions"), Some("DECRYPT_FAILED"))
    );
    assert_eq!(failure["rowId"], id.to_string());
    assert_eq!(app.issue_password(&admin, "othershop").await.data()["issueApiCredential"]["password"], "Sup3r-Secret!");
    let audited = app.audit(json!({ "action": "keys.rewrap" })).await;
    assert_eq!((audited[0]["outcome"].as_str(), audited[0]["reason"].as_str()), (Some("FAILED"), Some("ROWS_FAILED")));

    // The damaged row still uses version 1: it cannot be retired until the row is stored anew.
    let retire = "mutation { retireEncryptionKey(version: 1) { state } }";
    let refused = app.graphql(Some(&keys_admin), retire, json!({})).await;
    assert_eq!(refused.code(), "CONFLICT");
    assert!(refused.body["errors"][0]["message"].as_str().unwrap().contains("1 ciphertexts"), "{}", refused.body);
    app.store_password(&admin, "brokenshop", "Fresh-Passw0rd!").await.data();
    raw.execute_raw(app.db.statement("DELETE FROM credential_versions WHERE id = ?", vec![id.into()])).await.unwrap();
    assert_eq!(
        app.graphql(Some(&keys_admin), retire, json!({})).await.data()["retireEncryptionKey"]["state"],
        "RETIRED"
    );
}
on_both_engines!(a_ciphertext_that_cannot_be_opened_is_listed_and_does_not_block_the_rest);

async fn a_rotation_can_be_followed_live_until_it_finishes(engine: Engine) {
    use cdvault_tests::ws::{connect, next, send};
    // The job stalls after one batch until a second replica is started, so the subscriber sees it running first.
    let app = TestApp::builder(engine).rewrap_pacing(rewrap_pacing::stalled_after_one_batch()).spawn().await;
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    for i in 0..12 {
        let login = format!("shop{i:02}");
        app.register(&admin, &login).await.data();
        app.store_password(&admin, &login, "Sup3r-Secret!").await.data();
    }
    let keys_admin = token_for("security-team", "keys:admin", None);
    let job = app.graphql(Some(&keys_admin), ROTATE, json!({})).await.data()["rotateEncryptionKey"].clone();

    let mut socket = connect(&app, Some(&keys_admin)).await;
    assert_eq!(next(&mut socket, std::time::Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    let query = "subscription($id: ID!) { rotationProgress(jobId: $id) { state done total failed } }";
    let payload = json!({ "query": query, "variables": { "id": job["id"] } });
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": payload })).await;
    let first = next(&mut socket, std::time::Duration::from_secs(20)).await.expect("the job as it is now");
    assert_eq!(first["type"], "next", "{first}");
    let mut seen = vec![first["payload"]["data"]["rotationProgress"].clone()];
    assert_eq!(seen[0]["state"], "RUNNING", "{seen:?}");
    let _worker = app.replica().rewrap_pacing(rewrap_pacing::slow()).spawn().await;
    loop {
        let message = next(&mut socket, std::time::Duration::from_secs(60)).await.expect("progress or completion");
        if message["type"] == "complete" {
            break;
        }
        assert_eq!(message["type"], "next", "{message}");
        seen.push(message["payload"]["data"]["rotationProgress"].clone());
    }
    let done: Vec<i64> = seen.iter().map(|p| p["done"].as_i64().unwrap()).collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    let last = seen.last().unwrap();
    assert_eq!(
        (last["state"].as_str(), last["done"].as_i64(), last["total"].as_i64()),
        (Some("SUCCEEDED"), Some(12), Some(12))
    );

    let everyone_else = token_for("ops", ALL_SCOPES, Some(&["*"]));
    let mut socket = connect(&app, Some(&everyone_else)).await;
    assert_eq!(next(&mut socket, std::time::Duration::from_secs(5)).await.unwrap()["type"], "connection_ack");
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": payload })).await;
    let refused = next(&mut socket, std::time::Duration::from_secs(5)).await.unwrap();
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
}
on_both_engines!(a_rotation_can_be_followed_live_until_it_finishes);

/// What one worker (one replica) did for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct WorkerShare {
    rows: i64,
    batches: i64,
}

/// Each worker's share of job `id`, the smallest first (the one place that reads `rewrap::workers`).
async fn shares(db: &cdvault_storage::Database, id: uuid::Uuid) -> Vec<WorkerShare> {
    let workers = cdvault_storage::rewrap::workers(db, id).await.unwrap();
    let mut shares: Vec<WorkerShare> =
        workers.iter().map(|w| WorkerShare { rows: w.rows, batches: w.batches }).collect();
    shares.sort_unstable();
    shares
}

/// Registers `count` sellers named `{prefix}000`... with the password `Pw-{login}!`, 25 at a time.
async fn seed_sellers(app: &TestApp, admin: &str, prefix: &str, count: usize) -> Vec<String> {
    let sellers: Vec<String> = (0..count).map(|i| format!("{prefix}{i:03}")).collect();
    for chunk in sellers.chunks(25) {
        let writes = chunk.iter().map(|login| async move {
            app.register(admin, login).await.data();
            app.store_password(admin, login, &format!("Pw-{login}!")).await.data();
        });
        futures::future::join_all(writes).await;
    }
    sellers
}

async fn two_replicas_share_one_rewrap_job_on_disjoint_batches(engine: Engine) {
    // `first` does one batch and then stalls; `second`, started only once that batch is recorded, does the rest.
    // So both replicas work on the job whatever the scheduling (on SQLite, `second` takes it over once `first`'s
    // one-second lease has lapsed; on PostgreSQL, batches of every replica may run at once on disjoint rows).
    let first = TestApp::builder(engine).rewrap_pacing(rewrap_pacing::stalled_after_one_batch()).spawn().await;
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    let sellers = seed_sellers(&first, &admin, "pair", 200).await;
    // Started as the CLI does: no rotation on `first` wakes its worker, which takes the job on its next idle look.
    let db = first.keyed_db().await;
    let root = cdvault_domain::crypto::RootKey::from_base64(&first.options.root_key).unwrap();
    let job = cdvault_storage::rewrap::start(&db, &root, "security-team", |_| rotated_elsewhere(0)).await.unwrap();
    assert_eq!((job.to_version, job.total), (2, 200));
    eventually("the first replica did its one batch", std::time::Duration::from_secs(60), || async {
        cdvault_storage::rewrap::get(&db, job.id).await.unwrap().is_some_and(|job| job.done >= 4)
    })
    .await;
    let second = first.replica().rewrap_pacing(rewrap_pacing::slow()).spawn().await;

    let done = finished(&first, &json!(job.id.to_string())).await;
    assert_eq!(
        (done["state"].as_str(), done["done"].as_i64(), done["failed"].as_i64()),
        (Some("SUCCEEDED"), Some(200), Some(0)),
        "{done}"
    );
    // Every row was rewrapped exactly once: the batches add up to the 200 rows, and none is left under version 1.
    let shares = shares(&db, job.id).await;
    assert_eq!(shares.len(), 2, "{shares:?}");
    assert_eq!(shares[0], WorkerShare { rows: 4, batches: 1 }, "the first replica's one batch: {shares:?}");
    assert_eq!(shares[1].rows, 196, "the second replica did the rest: {shares:?}");
    let census = cdvault_storage::keyring::census(&db).await.unwrap();
    let totals: Vec<(i32, i64)> = census.iter().map(|k| (k.version, k.total())).collect();
    assert_eq!(totals, vec![(1, 0), (2, 200)]);
    db.close().await.unwrap();
    for login in &sellers {
        let issued = second.issue_password(&admin, login).await;
        assert_eq!(issued.data()["issueApiCredential"]["password"], format!("Pw-{login}!").as_str());
    }
}
on_both_engines!(two_replicas_share_one_rewrap_job_on_disjoint_batches);

async fn racing_rotation_starts_make_one_job_that_targets_the_active_version(engine: Engine) {
    let app = cdvault_tests::spawn_app(engine).await;
    let root = cdvault_domain::crypto::RootKey::from_base64(&app.options.root_key).unwrap();
    let db = app.keyed_db().await;
    let starts = (0..4).map(|_| cdvault_storage::rewrap::start(&db, &root, "race", |_| rotated_elsewhere(0)));
    let results = futures::future::join_all(starts).await;
    let jobs: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(jobs.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(cdvault_storage::rewrap::StartError::AlreadyRunning(_))))
    );
    let census = cdvault_storage::keyring::census(&db).await.unwrap();
    let active = census.iter().find(|k| k.state == Some(cdvault_domain::crypto::KeyState::Active)).unwrap();
    assert_eq!(active.version, jobs[0].to_version, "a refused start leaves no extra version behind");
    db.close().await.unwrap();
}
on_both_engines!(racing_rotation_starts_make_one_job_that_targets_the_active_version);

async fn a_batch_larger_than_one_write_turn_rewraps_every_row_once(engine: Engine) {
    // 300 rows and batches of 1,000: on SQLite one batch written in turns of 128 rows (three recorded batches of
    // one worker); on PostgreSQL two workers of one replica, each batch one transaction.
    let app = TestApp::builder(engine).rewrap_pacing(rewrap_pacing::large_batches()).spawn().await;
    let admin = token_for("security-admin", ALL_SCOPES, Some(&["*"]));
    let sellers = seed_sellers(&app, &admin, "turn", 300).await;
    let keys_admin = token_for("security-team", "keys:admin", None);
    let job = app.graphql(Some(&keys_admin), ROTATE, json!({})).await.data()["rotateEncryptionKey"]["id"].clone();

    let done = finished(&app, &job).await;
    assert_eq!(
        (done["state"].as_str(), done["done"].as_i64(), done["failed"].as_i64()),
        (Some("SUCCEEDED"), Some(300), Some(0)),
        "{done}"
    );
    let db = app.keyed_db().await;
    let id = uuid::Uuid::parse_str(job.as_str().unwrap()).unwrap();
    let shares = shares(&db, id).await;
    assert_eq!(shares.iter().map(|s| s.rows).sum::<i64>(), 300, "every row counted once: {shares:?}");
    if engine == Engine::Sqlite {
        assert_eq!(shares, vec![WorkerShare { rows: 300, batches: 3 }], "128 + 128 + 44 rows");
    }
    let census = cdvault_storage::keyring::census(&db).await.unwrap();
    let totals: Vec<(i32, i64)> = census.iter().map(|k| (k.version, k.total())).collect();
    assert_eq!(totals, vec![(1, 0), (2, 300)]);
    db.close().await.unwrap();
    for login in sellers.iter().step_by(37) {
        let issued = app.issue_password(&admin, login).await;
        assert_eq!(issued.data()["issueApiCredential"]["password"], format!("Pw-{login}!").as_str());
    }
}
on_both_engines!(a_batch_larger_than_one_write_turn_rewraps_every_row_once);
