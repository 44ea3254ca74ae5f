use cdvault_tests::operations::VIEWER;
use cdvault_tests::{ALL_SCOPES, Engine, spawn_app};
use serde_json::json;

#[tokio::test]
async fn too_deep_too_complex_oversized_and_malformed_requests_get_a_code() {
    let app = spawn_app(Engine::Sqlite).await;
    let token = app.token(ALL_SCOPES, &["*"]);

    let deep = "{ sellerAccounts { edges { node { credentialVersions { kind } } } pageInfo { endCursor } } }";
    assert!(app.graphql(Some(&token), deep, json!({})).await.body.get("errors").is_none(), "depth 5 is fine");
    // Depth 17: two past graphql-js's standard introspection query (depth 15), which must pass.
    let nested = 12;
    let too_deep = format!(
        "{{ __schema {{ types {{ fields {{ type {}{{ name }}{} }} }} }} }}",
        "{ ofType ".repeat(nested),
        " }".repeat(nested)
    );
    assert_eq!(app.graphql(Some(&token), &too_deep, json!({})).await.code(), "QUERY_TOO_DEEP");

    let fields = (0..1300).map(|i| format!("a{i}: viewer {{ subject }}")).collect::<Vec<_>>().join(" ");
    let complex = format!("{{ {fields} }}");
    assert_eq!(app.graphql(Some(&token), &complex, json!({})).await.code(), "QUERY_TOO_COMPLEX");

    // Pages are weighted by their size.
    let page = |first: i32| {
        format!(
            "{{ sellerAccounts(first: {first}) {{ edges {{ cursor node {{ id login apiLogin displayName status createdAt updatedAt credentialVersions {{ id kind version keyVersion createdAt createdBy }} }} }} }} }}"
        )
    };
    assert!(app.graphql(Some(&token), &page(10), json!({})).await.body.get("errors").is_none());
    assert_eq!(app.graphql(Some(&token), &page(100), json!({})).await.code(), "QUERY_TOO_COMPLEX");

    let huge = json!({ "query": VIEWER, "variables": { "pad": "x".repeat(70_000) } });
    let answer = app.post_json(Some(&token), &huge).await;
    assert_eq!((answer.status, answer.code()), (413, "REQUEST_TOO_LARGE"));

    assert_eq!(app.graphql(Some(&token), "{ viewer { subject ", json!({})).await.code(), "GRAPHQL_PARSE_FAILED");
    assert_eq!(app.graphql(Some(&token), "{ nope }", json!({})).await.code(), "GRAPHQL_VALIDATION_FAILED");

    let not_json = app.client.post(app.url("/graphql")).bearer_auth(&token).body("{not json").send().await.unwrap();
    assert_eq!(not_json.status().as_u16(), 400);
    let body: serde_json::Value = not_json.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");

    let wrong_type = app
        .graphql(
            Some(&token),
            "query($v: Int!) { sellerAccounts(first: $v) { edges { cursor } } }",
            json!({ "v": "ten" }),
        )
        .await;
    assert_eq!(wrong_type.code(), "GRAPHQL_VALIDATION_FAILED");
}
