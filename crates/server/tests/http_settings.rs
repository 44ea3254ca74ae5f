//! The HTTP surface's settings through the real `cdvault` binary: a bad one stops start-up naming it, good ones
//! reach the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Server, cdvault, run, text};

/// A token-less `query` to the server at `address`: the status and the first error's code.
fn token_less(address: &str, query: &str) -> (u16, Option<String>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("http://{address}/graphql"))
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        (status, body["errors"][0]["extensions"]["code"].as_str().map(str::to_owned))
    })
}

#[test]
fn a_bad_http_setting_stops_start_up_naming_it_and_leaves_nothing_behind() {
    for (name, value) in [
        ("CDVAULT_RATE_ADDRESS_BURST", "0"),
        ("CDVAULT_RATE_IDENTITY_PER_SECOND", "fast"),
        ("CDVAULT_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
        ("CDVAULT_TRUSTED_PROXIES", "0.0.0.0/0"),
        ("CDVAULT_INTROSPECTION", "maybe"),
        ("CDVAULT_WS_INIT_TIMEOUT_MS", "5"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let refused = run(cdvault(dir.path()).arg("serve").env(name, value));
        let stderr = text(&refused.stderr);
        assert!(!refused.status.success(), "{name}={value} was accepted");
        assert!(stderr.contains(name) && !stderr.contains("proxy.internal"), "{name}={value}: {stderr}");
        assert!(!dir.path().join("cdvault-data").exists(), "{name}={value} left the data directory behind");
    }
}

#[test]
fn the_address_limit_and_introspection_switch_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = cdvault(dir.path());
    command
        .env("CDVAULT_RATE_ADDRESS_BURST", "3")
        .env("CDVAULT_RATE_ADDRESS_PER_SECOND", "1")
        .env("CDVAULT_INTROSPECTION", "false");
    let server = Server::start(command);
    let refused = token_less(&server.address, "{ __schema { types { name } } }");
    assert_eq!(refused, (200, Some("INTROSPECTION_DISABLED".to_owned())));
    let statuses: Vec<u16> = (0..10).map(|_| token_less(&server.address, "{ __typename }").0).collect();
    assert!(statuses.contains(&429), "a burst of 3, then 1 a second, per address: {statuses:?}");
    server.terminate();
}
