//! The real `cdvault` binary, as a user runs it: the embedded development set-up, `token`, `schema`,
//! `audit verify`, and start-up refusals that name the setting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

mod support;

use support::{BIN, Server, cdvault, run, text};

fn viewer(address: &str, token: &str) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{address}/graphql"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "query": "{ viewer { subject scopes allSellers } }" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_embedded_default_serves_tokens_minted_by_cdvault_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(cdvault(dir.path()));
    assert!(server.log.iter().any(|l| l.contains("DEVELOPMENT SET-UP")), "{:?}", server.log);
    let data = dir.path().join("cdvault-data");
    #[cfg(unix)]
    for file in ["root.key", "jwt-hs256.secret"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }

    let minted = run(cdvault(dir.path()).args([
        "token",
        "--sub",
        "cli-test",
        "--scope",
        "credentials:read",
        "--sellers",
        "*",
        "--ttl",
        "15m",
    ]));
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let token = text(&minted.stdout).trim().to_owned();
    assert_eq!(token.matches('.').count(), 2, "only the token is printed");

    let answer = viewer(&server.address, &token);
    // A refused token leaves an audit event to verify below.
    assert_eq!(viewer(&server.address, "not-a-token")["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(
        answer["data"]["viewer"],
        serde_json::json!({"subject": "cli-test", "scopes": ["credentials:read"], "allSellers": true})
    );
    drop(server);

    let verified = run(cdvault(dir.path()).args(["audit", "verify"]));
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(text(&verified.stdout).contains("audit chain OK: 1 events"), "{}", text(&verified.stdout));

    // The keyring made at first start, with nothing sealed under it yet.
    let status = run(cdvault(dir.path()).args(["keys", "status"]));
    assert!(status.status.success(), "{}", text(&status.stderr));
    let listing = text(&status.stdout);
    let first = listing.lines().nth(1).unwrap_or_default();
    assert!(first.split_whitespace().take(3).eq(["1", "ACTIVE", "0"]), "{listing}");

    // Rotate and retire from the command line (no server running: the job waits for one, and version 1 is empty).
    let rotated = run(cdvault(dir.path()).args(["keys", "rotate"]));
    assert!(text(&rotated.stdout).contains("version 2 is active, 0 ciphertexts"), "{}", text(&rotated.stdout));
    let again = run(cdvault(dir.path()).args(["keys", "rotate"]));
    assert_eq!(again.status.code(), Some(1), "one job at a time: {}", text(&again.stdout));
    let active = run(cdvault(dir.path()).args(["keys", "retire", "2"]));
    assert_eq!(active.status.code(), Some(1));
    let retired = run(cdvault(dir.path()).args(["keys", "retire", "1"]));
    assert_eq!(retired.status.code(), Some(1), "refused while the job runs: {}", text(&retired.stdout));

    // Edit one event behind the vault's back: verify names it and exits 1.
    let url = format!("sqlite://{}?mode=rw", data.join("cdvault.db").display());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sea_orm::ConnectionTrait;
        let conn = sea_orm::Database::connect(url.as_str()).await.unwrap();
        conn.execute_unprepared("UPDATE audit_events SET subject = 'someone-else' WHERE seq = 1").await.unwrap();
        conn.close().await.unwrap();
    });
    let broken = run(cdvault(dir.path()).args(["audit", "verify"]));
    assert_eq!(broken.status.code(), Some(1));
    let report = text(&broken.stdout);
    assert!(report.contains("BROKEN") && report.contains("seq 1"), "{report}");
}

#[test]
fn audit_verify_without_a_database_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let refused = run(cdvault(dir.path()).args(["audit", "verify"]));
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("no database"), "{}", text(&refused.stderr));
    assert!(!dir.path().join("cdvault-data").exists());
}

#[test]
fn a_toml_error_never_quotes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cdvault.toml");
    std::fs::write(&file, "database_url = \"postgres://cdvault:S3cretPW@db/cdvault\n").unwrap();
    let refused = run(cdvault(dir.path()).arg("--config").arg(&file).arg("serve"));
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("not valid TOML (line 1)"), "{stderr}");
    assert!(!stderr.contains("S3cretPW"), "{stderr}");
}

#[test]
fn a_short_hs256_secret_is_named_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let refused = run(cdvault(dir.path()).arg("serve").env("CDVAULT_JWT_HS256_SECRET", "too-short"));
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("CDVAULT_JWT_HS256_SECRET"), "{}", text(&refused.stderr));
    assert!(!dir.path().join("cdvault-data").join("root.key").exists());
}

#[test]
fn a_restart_with_another_root_key_stops_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    drop(Server::start(cdvault(dir.path())));
    let other_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let refused =
        run(cdvault(dir.path()).arg("serve").env("CDVAULT_ROOT_KEY", other_key).env("CDVAULT_LISTEN", "127.0.0.1:0"));
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("root key") && stderr.contains("CDVAULT_ROOT_KEY"), "{stderr}");
}

#[test]
fn token_minting_never_creates_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let refused = run(cdvault(dir.path()).args(["token", "--sub", "x"]));
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("jwt-hs256.secret"), "{}", text(&refused.stderr));
    assert!(!dir.path().join("cdvault-data").join("jwt-hs256.secret").exists());
}

#[test]
fn a_production_set_up_without_a_root_key_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let production = || {
        let mut command = cdvault(dir.path());
        command.arg("serve").env("CDVAULT_DATABASE_URL", "postgres://127.0.0.1:1/none");
        command
    };
    let refused = run(&mut production());
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("CDVAULT_JWT_ISSUER"), "{}", text(&refused.stderr));
    let refused = run(production()
        .env("CDVAULT_JWT_ISSUER", "idp")
        .env("CDVAULT_JWT_AUDIENCE", "cdvault")
        .env("CDVAULT_JWT_HS256_SECRET", "0123456789abcdef0123456789abcdef"));
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("CDVAULT_ROOT_KEY"), "{}", text(&refused.stderr));
    assert!(!dir.path().join("cdvault-data").exists(), "nothing is generated in production");
}

#[test]
fn a_value_and_its_file_twin_together_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let refused = run(cdvault(dir.path())
        .arg("serve")
        .env("CDVAULT_JWT_HS256_SECRET", "0123456789abcdef0123456789abcdef")
        .env("CDVAULT_JWT_HS256_SECRET_FILE", "/dev/null"));
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("CDVAULT_JWT_HS256_SECRET and CDVAULT_JWT_HS256_SECRET_FILE"), "{stderr}");
}

#[test]
fn an_invalid_log_filter_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let refused = run(cdvault(dir.path()).arg("serve").env("CDVAULT_LOG", "info,[[["));
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("CDVAULT_LOG"), "{}", text(&refused.stderr));
}

#[test]
fn a_bad_setting_leaves_no_generated_secret_behind() {
    let dir = tempfile::tempdir().unwrap();
    let refused = run(cdvault(dir.path()).arg("serve").env("CDVAULT_JWT_ALGORITHM", "RS256"));
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("CDVAULT_JWT_PUBLIC_KEY_FILE"), "{}", text(&refused.stderr));
    assert!(!dir.path().join("cdvault-data").join("root.key").exists());
    assert!(!dir.path().join("cdvault-data").join("jwt-hs256.secret").exists());
}

#[test]
fn the_schema_command_prints_the_checked_in_schema() {
    let dir = tempfile::tempdir().unwrap();
    let printed = run(cdvault(dir.path()).arg("schema"));
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql")).unwrap();
    assert!(text(&printed.stdout) == checked_in, "schema.graphql differs from `cdvault schema`");
}

#[test]
fn the_config_reference_command_prints_the_checked_in_reference() {
    let dir = tempfile::tempdir().unwrap();
    let printed = run(cdvault(dir.path()).arg("config-reference"));
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md")).unwrap();
    assert!(text(&printed.stdout) == checked_in, "docs/configuration.md differs from `cdvault config-reference`");
}

#[test]
fn kubernetes_service_links_and_other_cdvault_names_never_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = cdvault(dir.path());
    command
        .env("CDVAULT_PORT", "tcp://10.96.0.12:8080")
        .env("CDVAULT_PORT_8080_TCP", "tcp://10.96.0.12:8080")
        .env("CDVAULT_PORT_8080_TCP_PROTO", "tcp")
        .env("CDVAULT_SERVICE_HOST", "10.96.0.12")
        .env("CDVAULT_SERVICE_PORT", "8080")
        .env("CDVAULT_SERVICE_PORT_HTTP", "8080")
        .env("CDVAULT_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres");
    let server = Server::start(command);
    assert!(server.log.iter().any(|l| l.contains("DEVELOPMENT SET-UP")), "{:?}", server.log);
}

#[test]
fn help_lists_every_command() {
    let help = text(&run(Command::new(BIN).arg("--help")).stdout);
    for command in ["serve", "migrate", "schema", "config-reference", "token", "audit"] {
        assert!(help.contains(command), "{command} missing from --help: {help}");
    }
}
