//! The real `cdvault` binary's lifecycle: a graceful stop under load, a rewrap killed with SIGKILL and resumed, and
//! an offline root key rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;

use support::{Server, cdvault, graphql, run, text};

#[test]
fn on_sigterm_in_flight_issues_finish_and_their_audit_events_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(cdvault(dir.path()));
    let minted = run(cdvault(dir.path()).args([
        "token",
        "--sub",
        "admin",
        "--scope",
        "credentials:read credentials:write",
        "--sellers",
        "*",
    ]));
    let token = text(&minted.stdout).trim().to_owned();
    let url = format!("http://{}/graphql", server.address);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let successes = rt.block_on(async {
        let client = reqwest::Client::new();
        let post = |query: &'static str| {
            client.post(&url).bearer_auth(&token).json(&serde_json::json!({ "query": query })).send()
        };
        post("mutation { registerSellerAccount(input: {login: \"termshop\", displayName: \"T\"}) { id } }").await.unwrap();
        post("mutation { storeApiCredential(input: {sellerLogin: \"termshop\", password: \"Term-Passw0rd!\"}) { warnings } }")
            .await
            .unwrap();
        let issues: Vec<_> = (0..64)
            .map(|_| {
                let request =
                    post("mutation { issueApiCredential(sellerLogin: \"termshop\", purpose: \"shutdown\") { password } }");
                tokio::spawn(async move {
                    match request.await {
                        Ok(response) => response.text().await.unwrap_or_default().contains("Term-Passw0rd!"),
                        Err(_) => false,
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status().unwrap();
        let mut successes = 0;
        for issue in issues {
            successes += usize::from(issue.await.unwrap());
        }
        successes
    });
    let status = server.child.wait().unwrap();
    assert!(status.success(), "the server exits cleanly on SIGTERM: {status}");

    let db = format!("sqlite://{}?mode=rw", dir.path().join("cdvault-data").join("cdvault.db").display());
    let audited: i64 = rt.block_on(async {
        use sea_orm::ConnectionTrait;
        let conn = sea_orm::Database::connect(db.as_str()).await.unwrap();
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT count(*) AS n FROM audit_events WHERE action = 'credential.issue' AND outcome = 'SUCCESS'",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    });
    assert!(successes > 0, "some issues were in flight and finished");
    assert_eq!(audited, i64::try_from(successes).unwrap(), "every credential that left has a committed audit event");
}

/// Starts a rewrap of many rows, kills the server with SIGKILL mid-job, restarts it, and checks that the job
/// finishes and that every secret still opens to what was stored. `env` chooses the database.
fn a_rewrap_survives_sigkill(dir: &Path, env: &[(&str, String)]) {
    let with_env = |command: &mut Command| {
        for (key, value) in env {
            command.env(key, value);
        }
        // Slow, small batches and a short lease, so the kill lands mid-job and the restart takes over soon.
        command.env("CDVAULT_REWRAP_BATCH_SIZE", "3").env("CDVAULT_REWRAP_BATCH_PAUSE_MS", "150");
        command.env("CDVAULT_JOB_LEASE_TTL", "5");
    };
    let mut command = cdvault(dir);
    with_env(&mut command);
    let mut server = Server::start(command);
    let mut mint = cdvault(dir);
    with_env(&mut mint);
    let scopes = "credentials:read credentials:write keys:admin";
    let minted = run(mint.args(["token", "--sub", "security", "--scope", scopes, "--sellers", "*"]));
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let token = text(&minted.stdout).trim().to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sellers: Vec<String> = (0..30).map(|i| format!("crash{i:02}")).collect();
    let job = rt.block_on(async {
        for login in &sellers {
            let register = "mutation($l: String!) { registerSellerAccount(input: {login: $l, displayName: \"C\"}) { id } }";
            graphql(&server.address, &token, register, serde_json::json!({ "l": login })).await;
            let store = "mutation($l: String!, $p: String!) { storeApiCredential(input: {sellerLogin: $l, password: $p}) { warnings } }";
            let password = format!("Pw-{login}!");
            graphql(&server.address, &token, store, serde_json::json!({ "l": login, "p": password })).await;
        }
        let started = graphql(&server.address, &token, "mutation { rotateEncryptionKey { id total } }", serde_json::json!({})).await;
        assert_eq!(started["data"]["rotateEncryptionKey"]["total"], 30, "{started}");
        started["data"]["rotateEncryptionKey"]["id"].clone()
    });
    let job_query = "query($id: ID!) { rotationJob(id: $id) { state done } }";
    rt.block_on(async {
        for _ in 0..400 {
            let job = graphql(&server.address, &token, job_query, serde_json::json!({ "id": job })).await;
            if job["data"]["rotationJob"]["done"].as_i64().unwrap_or(0) >= 6 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the rewrap made no progress");
    });
    // SIGKILL: no shutdown, no drained queue, the lease left held.
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let mut command = cdvault(dir);
    with_env(&mut command);
    let server = Server::start(command);
    rt.block_on(async {
        let mut state = serde_json::Value::Null;
        for _ in 0..600 {
            let job = graphql(&server.address, &token, job_query, serde_json::json!({ "id": job })).await;
            state = job["data"]["rotationJob"]["state"].clone();
            if state != "RUNNING" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(state, "SUCCEEDED", "the job resumed after the crash and finished");
        let keys =
            graphql(&server.address, &token, "{ encryptionKeys { version state ciphertexts } }", serde_json::json!({}))
                .await;
        assert_eq!(keys["data"]["encryptionKeys"][0]["ciphertexts"], 0, "{keys}");
        let issue =
            "mutation($l: String!) { issueApiCredential(sellerLogin: $l, purpose: \"after the crash\") { password } }";
        for login in &sellers {
            let issued = graphql(&server.address, &token, issue, serde_json::json!({ "l": login })).await;
            assert_eq!(issued["data"]["issueApiCredential"]["password"], format!("Pw-{login}!").as_str(), "{issued}");
        }
    });
}

#[test]
fn a_rewrap_killed_mid_job_resumes_after_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_rewrap_survives_sigkill(dir.path(), &[]);
}

#[test]
fn a_rewrap_killed_mid_job_resumes_after_restart_on_postgres() {
    let Ok(admin) = std::env::var("CDVAULT_TEST_DATABASE_URL") else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must run the PostgreSQL variant");
        return;
    };
    if admin.is_empty() {
        return;
    }
    let name = format!("cdvault_crash_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let run_sql = |sql: String| {
        rt.block_on(async {
            use sea_orm::ConnectionTrait;
            let conn = sea_orm::Database::connect(admin.as_str()).await.unwrap();
            conn.execute_unprepared(&sql).await.unwrap();
            conn.close().await.unwrap();
        });
    };
    run_sql(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    run_sql(format!("CREATE DATABASE \"{name}\""));
    let (base, query) = admin.split_once('?').map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').filter(|&i| i > "postgres://".len()).unwrap_or(base.len());
    let url = format!("{}/{name}{}", &base[..cut], query.map(|q| format!("?{q}")).unwrap_or_default());
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CDVAULT_DATABASE_URL", url),
        // A fixed test key (32 bytes of base64) and secret: this database is dropped below.
        ("CDVAULT_ROOT_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned()),
        ("CDVAULT_JWT_HS256_SECRET", "crash-test-secret-of-at-least-32-bytes".to_owned()),
        ("CDVAULT_JWT_ISSUER", "cdvault-crash-test".to_owned()),
        ("CDVAULT_JWT_AUDIENCE", "cdvault".to_owned()),
    ];
    a_rewrap_survives_sigkill(dir.path(), &env);
    run_sql(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
}

#[test]
fn a_root_key_rotation_moves_the_vault_to_the_new_key_and_the_old_one_no_longer_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(cdvault(dir.path()));
    let minted = run(cdvault(dir.path()).args([
        "token",
        "--sub",
        "ops",
        "--scope",
        "credentials:read credentials:write",
        "--sellers",
        "*",
    ]));
    let token = text(&minted.stdout).trim().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        graphql(&server.address, &token, "mutation { registerSellerAccount(input: {login: \"rootshop\", displayName: \"R\"}) { id } }", serde_json::json!({})).await;
        graphql(&server.address, &token, "mutation { storeApiCredential(input: {sellerLogin: \"rootshop\", password: \"Root-Passw0rd!\"}) { warnings } }", serde_json::json!({})).await;
    });
    drop(server);

    let new_key = dir.path().join("new-root.key");
    std::fs::write(&new_key, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n").unwrap();
    let rotated = run(cdvault(dir.path()).args(["keys", "rotate-root", "--new-root-key-file"]).arg(&new_key));
    assert!(rotated.status.success(), "{}{}", text(&rotated.stdout), text(&rotated.stderr));
    assert!(text(&rotated.stdout).contains("1 keyring versions re-wrapped"), "{}", text(&rotated.stdout));

    // The old key (still in the data directory) no longer opens the vault: start-up stops with a clear error.
    let refused = run(cdvault(dir.path()).arg("serve").env("CDVAULT_LISTEN", "127.0.0.1:0"));
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("cannot open the keyring"), "{}", text(&refused.stderr));

    std::fs::copy(&new_key, dir.path().join("cdvault-data").join("root.key")).unwrap();
    let server = Server::start(cdvault(dir.path()));
    let issued = rt.block_on(graphql(
        &server.address,
        &token,
        "mutation { issueApiCredential(sellerLogin: \"rootshop\", purpose: \"after the root rotation\") { password } }",
        serde_json::json!({}),
    ));
    assert_eq!(issued["data"]["issueApiCredential"]["password"], "Root-Passw0rd!", "{issued}");
}
