//! The TypeScript client (`clients/typescript`) against the real server: its end-to-end test, run by Node's test
//! runner on the compiled package, with this server's URLs and a token in its environment.

use std::process::Stdio;
use std::time::Duration;

use cdvault_tests::tools::typescript_client;
use cdvault_tests::{Engine, TestApp, token_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_client_queries_mutates_and_hears_changes_on_a_running_server() {
    let test = "the_typescript_client_queries_mutates_and_hears_changes_on_a_running_server";
    let Some(package) = typescript_client(test).await else { return };
    let app = TestApp::builder(Engine::Sqlite).seller_with_password("bestshop", "First-passw0rd").spawn().await;
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
