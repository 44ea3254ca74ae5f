//! Tools from other ecosystems that some tests drive (npm packages such as graphql-js), installed by `.ci/run`
//! through `.ci/tools/install` into a cache outside the clone. Without them a test prints one line and skips, so a
//! developer without Node.js still runs the rest; under `CI=true` their absence fails the test instead.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The `node_modules` folder of the installed npm tools, or `None` (after one printed line) when `test` must skip.
pub fn node_modules(test: &str) -> Option<PathBuf> {
    let installed = std::env::var_os("CDVAULT_NODE_MODULES").map(PathBuf::from).filter(|dir| dir.is_dir());
    match installed {
        Some(dir) => Some(dir),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "CI=true but CDVAULT_NODE_MODULES names no folder: the npm tools must be installed (.ci/run does it)"
            )
        }
        None => {
            println!("skipped {test}: npm tools not installed (eval \"$(bash .ci/tools/install)\" installs them)");
            None
        }
    }
}

/// Runs a Node.js `script` with the npm tools on its module path and `args` as `process.argv.slice(1)`; returns
/// what it printed, or panics with what it said on stderr.
pub async fn run_node(modules: &Path, script: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new("node")
        .arg("-e")
        .arg(script)
        .args(args)
        .env("NODE_PATH", modules)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("node runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the node script failed: {stderr}");
    String::from_utf8(output.stdout).expect("node prints UTF-8")
}

/// The TypeScript client package (`clients/typescript`), freshly built by `.ci/client-ts build` with its installed
/// npm dependencies, or `None` (after one printed line) when `test` must skip; under `CI=true` their absence fails.
pub async fn typescript_client(test: &str) -> Option<PathBuf> {
    let installed = std::env::var_os("CDVAULT_CLIENT_NODE_MODULES").map(PathBuf::from).filter(|dir| dir.is_dir());
    if installed.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but CDVAULT_CLIENT_NODE_MODULES names no folder: the client's npm dependencies must be installed"
        );
        println!("skipped {test}: the TypeScript client's npm dependencies are not installed (.ci/tools/install)");
        return None;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_owned();
    let output = tokio::process::Command::new("bash")
        .arg(root.join(".ci/client-ts"))
        .arg("build")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("bash runs");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the TypeScript client does not build: {printed}");
    Some(root.join("clients/typescript"))
}

/// The TypeScript client's manifest of persisted documents, as generated and committed (sha256 hex -> text).
pub const TYPESCRIPT_MANIFEST: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/typescript/src/generated/persisted-documents.json");

/// The TypeScript client's operations as the server's trusted documents.
pub fn typescript_trusted_documents() -> cdvault_api::http::TrustedDocuments {
    let manifest = std::fs::read_to_string(TYPESCRIPT_MANIFEST).expect("the TypeScript manifest is readable");
    cdvault_api::http::TrustedDocuments::from_manifests([manifest.as_str()]).expect("the TypeScript manifest is valid")
}

/// The Rust client's manifest of persisted documents (`crates/client`, kept equal to its documents by a unit test).
pub const RUST_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/client/persisted-documents.json");

/// Both clients' operations as the server's trusted documents, as production would configure them.
pub fn clients_trusted_documents() -> cdvault_api::http::TrustedDocuments {
    let manifests = [TYPESCRIPT_MANIFEST, RUST_MANIFEST].map(|path| std::fs::read_to_string(path).expect("readable"));
    cdvault_api::http::TrustedDocuments::from_manifests(manifests.iter().map(String::as_str))
        .expect("the clients' manifests are valid")
}

/// Runs the TypeScript manifest's operation `name` by its hash, with an all-seeing token: on a server that trusts
/// only the clients' documents, the tests' own helpers are refused, and this is how they seed it.
pub async fn run_typescript_operation(app: &crate::TestApp, name: &str, variables: serde_json::Value) -> crate::Gql {
    let manifest: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(TYPESCRIPT_MANIFEST).expect("readable")).expect("JSON");
    let named = |text: &str| text.split([' ', '(']).nth(1) == Some(name);
    let (hash, _) =
        manifest.iter().find(|(_, text)| named(text)).unwrap_or_else(|| panic!("no {name} in the manifest"));
    let extensions = serde_json::json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let admin = app.token(crate::ALL_SCOPES, &["*"]);
    app.post_json(Some(&admin), &serde_json::json!({ "extensions": extensions, "variables": variables })).await
}
