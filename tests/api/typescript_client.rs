//! The TypeScript client (`clients/typescript`) against the real server: its end-to-end test, run by Node's test
//! runner on the compiled package, with this server's URLs and a token in its environment. The server runs only the
//! client's trusted documents (its own manifest), as production should: every operation the client sends passes.

use std::process::Stdio;
use std::time::Duration;

use cdvault_tests::tools::{run_typescript_operation, typescript_client, typescript_trusted_documents};
use cdvault_tests::{Engine, TestApp, token_for};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_client_queries_mutates_and_hears_changes_on_a_server_that_trusts_only_its_documents() {
    let test = "the_typescript_client_queries_mutates_and_hears_changes_on_a_server_that_trusts_only_its_documents";
    let Some(package) = typescript_client(test).await else { return };
    let app = TestApp::builder(Engine::Sqlite)
        .http(|o| o.trusted_documents = Some(typescript_trusted_documents()))
        .spawn()
        .await;
    let seller = json!({ "login": "bestshop", "displayName": "Best shop" });
    run_typescript_operation(&app, "RegisterSeller", json!({ "input": seller })).await.data();
    let password = json!({ "sellerLogin": "bestshop", "password": "First-passw0rd" });
    run_typescript_operation(&app, "StoreApiCredential", json!({ "input": password })).await.data();
    let console = token_for("console", "credentials:read credentials:write vault:freeze", Some(&["*"]));

    let run = tokio::process::Command::new("node")
        .args(["--test", "dist/test/e2e/"])
        .current_dir(&package)
        .env("CDVAULT_URL", app.url("/graphql"))
        .env("CDVAULT_WS_URL", format!("ws://{}/graphql/ws", app.address))
        .env("CDVAULT_ADMIN_TOKEN", console)
        .env("CDVAULT_SELLER", "bestshop")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run).await.expect("node --test ends").unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the client's end-to-end test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("# pass 3"), "three tests ran and passed:\n{stdout}");
}
