//! The requests of the scenarios against cdvault and the peer, and how their answers are judged.

use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;

use crate::load::{self, Call, Calls, Servers, Workload};
use crate::server;

pub fn graphql(token: &str, query: &str, variables: serde_json::Value) -> Call {
    Call {
        method: Method::POST,
        path: "/graphql".into(),
        headers: vec![("authorization", format!("Bearer {token}"))],
        body: Bytes::from(serde_json::json!({ "query": query, "variables": variables }).to_string()),
    }
}

pub fn contains(body: &[u8], needle: &[u8]) -> bool {
    body.windows(needle.len()).any(|w| w == needle)
}

/// `GET /healthz`: HTTP alone.
pub fn healthz(servers: Servers) -> Workload {
    let call = Call { method: Method::GET, path: "/healthz".into(), headers: vec![], body: Bytes::new() };
    Workload { name: "healthz".into(), servers, calls: Arc::new(vec![call].into()), check: |b| b == b"ok" }
}

/// The `viewer` query: HTTP + GraphQL + token check.
pub fn viewer(name: &str, servers: Servers, token: &str) -> Workload {
    let call = graphql(token, "{ viewer { subject } }", serde_json::json!({}));
    Workload {
        name: name.into(),
        servers,
        calls: Arc::new(vec![call].into()),
        check: |b| contains(b, b"\"subject\":\"cdvault-bench\""),
    }
}

/// `issueApiCredential` over every seeded seller in turn, each request built when it is sent.
pub fn issue(name: &str, servers: Servers, token: &str, sellers: usize) -> Workload {
    let query = "mutation($l: String!) { issueApiCredential(sellerLogin: $l, purpose: \"benchmark\") { password } }";
    let token = token.to_owned();
    let make = move |i: usize| graphql(&token, query, serde_json::json!({ "l": server::seller_login(i + 1) }));
    Workload {
        name: name.into(),
        servers,
        calls: Arc::new(Calls::Lazy { count: sellers, make: Box::new(make) }),
        check: |b| contains(b, b"\"password\":\"Bench-Passw0rd!\""),
    }
}

/// The peer's KV v2 read of every seeded secret in turn.
pub fn openbao(servers: Servers, prefix: &str, token: &str, secrets: usize) -> Workload {
    let (prefix, token) = (prefix.to_owned(), token.to_owned());
    let make = move |i: usize| Call {
        method: Method::GET,
        path: format!("{prefix}{}", i + 1),
        headers: vec![("x-vault-token", token.clone())],
        body: Bytes::new(),
    };
    Workload {
        name: "openbao".into(),
        servers,
        calls: Arc::new(Calls::Lazy { count: secrets, make: Box::new(make) }),
        check: |b| contains(b, b"\"password\":\"Bench-Passw0rd!\""),
    }
}

/// Requests per page in the kyc-list scenario (the largest page the API allows).
pub const KYC_PAGE: usize = 100;
const KYC_QUERY: &str = "query($after: String) { payoutChangeRequests(first: 100, after: $after) { edges { cursor node { id sellerLogin status version submittedBy details { ibanMasked last4 } } } pageInfo { endCursor hasNextPage } } }";

/// Walks the whole list of payout change requests once, and returns one call per page (each with its `after`).
pub async fn kyc_pages(address: std::net::SocketAddr, token: &str) -> anyhow::Result<Vec<Call>> {
    let mut calls = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let call = graphql(token, KYC_QUERY, serde_json::json!({ "after": after }));
        let (status, body) = load::fetch(address, &call).await?;
        anyhow::ensure!(status == 200, "listing payout requests failed: {status}");
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        let info = &page["data"]["payoutChangeRequests"]["pageInfo"];
        calls.push(call);
        if info["hasNextPage"] != serde_json::Value::Bool(true) {
            return Ok(calls);
        }
        after = info["endCursor"].clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lazy_issue_calls_go_over_every_seller_from_the_first() {
        let workload = issue("issue", Servers::default(), "t", 3);
        assert_eq!(workload.calls.len(), 3);
        let first = workload.calls.get(0);
        assert!(contains(&first.body, server::seller_login(1).as_bytes()));
        assert!(contains(&workload.calls.get(2).body, server::seller_login(3).as_bytes()));
        assert_eq!(first.headers, vec![("authorization", "Bearer t".to_owned())]);
    }
}
