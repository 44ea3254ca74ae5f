use cdvault_storage::StorageError;
use cdvault_storage::audit::verify;
use cdvault_tests::operations::CREDENTIAL_VERSIONS;
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, on_both_engines, spawn_app};
use sea_orm::ConnectionTrait;
use serde_json::json;

use cdvault_tests::audit::app_with_seven_audit_events;

async fn verify_app(app: &TestApp) -> Result<u64, StorageError> {
    verify(&app.keyed_db().await, &[]).await.map(|verified| verified.checked)
}

async fn audit_verify_passes_on_a_healthy_chain_and_names_an_edited_row(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    assert_eq!(verify_app(&app).await.unwrap(), 7);

    let conn = app.db.raw().await;
    conn.execute_raw(
        app.db.statement("UPDATE audit_events SET purpose = ? WHERE seq = ?", vec!["innocent".into(), 5i64.into()]),
    )
    .await
    .unwrap();
    let broken = verify_app(&app).await.unwrap_err().to_string();
    assert!(broken.contains("seq 5") && broken.contains("edited"), "{broken}");
}
on_both_engines!(audit_verify_passes_on_a_healthy_chain_and_names_an_edited_row);

async fn audit_verify_names_a_deleted_row(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let conn = app.db.raw().await;
    conn.execute_raw(app.db.statement("DELETE FROM audit_events WHERE seq = ?", vec![3i64.into()])).await.unwrap();
    let broken = verify_app(&app).await.unwrap_err().to_string();
    assert!(broken.contains("3 to 3") && broken.contains("missing"), "{broken}");
}
on_both_engines!(audit_verify_names_a_deleted_row);

async fn audit_verify_names_a_row_edited_to_an_action_or_reason_the_vault_never_writes(engine: Engine) {
    for (column, value, seq) in [("action", "credential.erase", 4i64), ("reason", "NOT_A_REASON", 6)] {
        let app = app_with_seven_audit_events(engine).await;
        let edit = format!("UPDATE audit_events SET {column} = ? WHERE seq = ?");
        app.db.raw().await.execute_raw(app.db.statement(&edit, vec![value.into(), seq.into()])).await.unwrap();
        let broken = verify_app(&app).await.unwrap_err().to_string();
        assert!(broken.contains(&format!("seq {seq}")) && broken.contains("edited"), "{column}: {broken}");
    }
}
on_both_engines!(audit_verify_names_a_row_edited_to_an_action_or_reason_the_vault_never_writes);

async fn audit_verify_notices_the_newest_rows_deleted(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let conn = app.db.raw().await;
    conn.execute_raw(app.db.statement("DELETE FROM audit_events WHERE seq > ?", vec![5i64.into()])).await.unwrap();
    let broken = verify_app(&app).await.unwrap_err().to_string();
    assert!(broken.contains("seq 7") && broken.contains("seq 5"), "{broken}");
}
on_both_engines!(audit_verify_notices_the_newest_rows_deleted);

async fn break_the_audit_trail(app: &TestApp) {
    let conn = app.db.raw().await;
    match app.db.engine {
        Engine::Sqlite => {
            conn.execute_unprepared(
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit down'); END",
            )
            .await
            .unwrap();
        }
        Engine::Postgres => {
            conn.execute_unprepared(
                "CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$ LANGUAGE plpgsql",
            )
            .await
            .unwrap();
            conn.execute_unprepared(
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_down()",
            )
            .await
            .unwrap();
        }
    }
}

async fn no_credential_leaves_when_its_audit_event_cannot_be_stored(engine: Engine) {
    let app = spawn_app(engine).await;
    app.seller_with_password("bestshop", "Unaudited-Passw0rd!").await;
    break_the_audit_trail(&app).await;
    let admin = app.token(ALL_SCOPES, &["*"]);

    let issued = app.issue_password(&admin, "bestshop").await;
    assert_eq!(issued.code(), "INTERNAL_SERVER_ERROR");
    assert!(!issued.body.to_string().contains("Unaudited-Passw0rd!"));
    assert_eq!(issued.body["data"], json!(null));

    // A write whose audit event fails is rolled back with it.
    let stored = app.store_password(&admin, "bestshop", "Another-Passw0rd!").await;
    assert_eq!(stored.code(), "INTERNAL_SERVER_ERROR");
    let versions = app.graphql(Some(&admin), CREDENTIAL_VERSIONS, json!({ "login": "bestshop" })).await;
    assert_eq!(versions.data()["sellerAccount"]["credentialVersions"], json!([{"version": 1}]));
}
on_both_engines!(no_credential_leaves_when_its_audit_event_cannot_be_stored);

async fn audit_events_page_newest_first_and_filter(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let reader = app.token("audit:read", &["*"]);
    let query = "query($after: String) { auditEvents(first: 3, after: $after) { edges { node { seq } } pageInfo { hasNextPage endCursor } } }";
    let mut seqs = Vec::new();
    let mut after = json!(null);
    loop {
        let page = app.graphql(Some(&reader), query, json!({ "after": after })).await;
        let page = page.data()["auditEvents"].clone();
        seqs.extend(page["edges"].as_array().unwrap().iter().map(|e| e["node"]["seq"].as_i64().unwrap()));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seqs, [7, 6, 5, 4, 3, 2, 1]);

    assert_eq!(app.audit(json!({ "action": "credential.issue" })).await.len(), 3);
    assert_eq!(app.audit(json!({ "subject": "nobody" })).await.len(), 0);

    let limited = app.token("audit:read", &["shop-b"]);
    let only_b = app.graphql(Some(&limited), "{ auditEvents { edges { node { sellerLogin } } } }", json!({})).await;
    let sellers: Vec<_> = only_b.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["sellerLogin"].clone())
        .collect();
    assert_eq!(sellers, [json!("shop-b"), json!("shop-b")]);
    let foreign =
        app.graphql(Some(&limited), "{ auditEvents(sellerLogin: \"shop-a\") { edges { cursor } } }", json!({})).await;
    assert_eq!(foreign.code(), "FORBIDDEN");
}
on_both_engines!(audit_events_page_newest_first_and_filter);

async fn when_audit_writes_start_failing_mid_run_no_issue_succeeds_without_its_event(engine: Engine) {
    let app = spawn_app(engine).await;
    app.seller_with_password("busyshop", "Busy-Passw0rd!").await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    let issue = |n: usize| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let body = json!({
                "query": "mutation { issueApiCredential(sellerLogin: \"busyshop\", purpose: \"run\") { password } }"
            });
            let response = app
                .client
                .post(app.url("/graphql"))
                .bearer_auth(&admin)
                .header("x-request-id", format!("run-{n}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = response.json().await.unwrap();
            (format!("run-{n}"), body)
        }
    };
    let mut answers = Vec::new();
    for n in 100..105 {
        answers.push(issue(n).await);
    }
    // Issues keep coming while the trigger that breaks audit inserts is installed.
    let first = futures::future::join_all((0..20).map(issue));
    // Wherever the trigger lands among them, what is asserted below holds: the pause only aims it mid-run.
    let breaking = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        break_the_audit_trail(&app).await;
    };
    let (during, ()) = tokio::join!(first, breaking);
    answers.extend(during);
    let after = futures::future::join_all((20..40).map(issue)).await;
    assert!(after.iter().all(|(_, b)| b.get("errors").is_some()), "after the trigger nothing is issued");
    answers.extend(after);

    let succeeded: Vec<&String> = answers
        .iter()
        .filter(|(_, b)| b["data"]["issueApiCredential"]["password"] == "Busy-Passw0rd!")
        .map(|(id, _)| id)
        .collect();
    for (_, body) in answers.iter().filter(|(_, b)| b.get("errors").is_some()) {
        assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR");
        assert_eq!(body["data"], json!(null));
    }
    assert!(succeeded.len() >= 5, "the issues before the trigger succeeded");

    let conn = app.db.raw().await;
    let rows = conn
        .query_all_raw(app.db.statement(
            "SELECT caller_request_id FROM audit_events WHERE action = 'credential.issue' AND outcome = 'SUCCESS'",
            vec![],
        ))
        .await
        .unwrap();
    let audited: std::collections::HashSet<String> =
        rows.iter().map(|r| r.try_get("", "caller_request_id").unwrap()).collect();
    for id in &succeeded {
        assert!(audited.contains(*id), "{id} got a credential without its audit event");
    }
    assert_eq!(audited.len(), succeeded.len(), "no audit event without its issue either");
}
on_both_engines!(when_audit_writes_start_failing_mid_run_no_issue_succeeds_without_its_event);
