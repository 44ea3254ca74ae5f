use cdvault_tests::operations::VIEWER;
use cdvault_tests::{ALL_SCOPES, Engine, on_both_engines, spawn_app};
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

/// `count` aliased issues of a password for `login`, in one request.
fn aliased_issues(count: usize, login: &str) -> String {
    let issue =
        |i| format!("i{i}: issueApiCredential(sellerLogin: \"{login}\", purpose: \"bulk sync\") {{ password }}");
    format!("mutation {{ {} }}", (0..count).map(issue).collect::<Vec<_>>().join(" "))
}

async fn one_request_issues_at_most_ten_secrets_and_one_more_refuses_it_whole(engine: Engine) {
    let app = spawn_app(engine).await;
    app.seller_with_password("bestshop", "S3cret-Password-1").await;
    let admin = app.token(ALL_SCOPES, &["*"]);

    let refused = app.graphql(Some(&admin), &aliased_issues(11, "bestshop"), json!({})).await;
    assert_eq!(refused.code(), "TOO_MANY_SECRET_FIELDS");
    assert!(refused.body["data"].is_null(), "nothing ran: {}", refused.body);
    assert_eq!(app.audit(json!({ "action": "credential.issue" })).await.len(), 0, "nothing was issued");

    let answered = app.graphql(Some(&admin), &aliased_issues(10, "bestshop"), json!({})).await;
    let passwords = answered.data().as_object().unwrap().values().filter(|v| v["password"].is_string()).count();
    assert_eq!(passwords, 10);
    assert_eq!(app.audit(json!({ "action": "credential.issue" })).await.len(), 10);
}
on_both_engines!(one_request_issues_at_most_ten_secrets_and_one_more_refuses_it_whole);

/// A selection of `levels` nested `ofType` under a field's type: depth `levels + 5`.
fn of_type_chain(levels: usize) -> String {
    format!(
        "{{ __schema {{ types {{ fields {{ type {}{{ name }}{} }} }} }} }}",
        "{ ofType ".repeat(levels),
        " }".repeat(levels)
    )
}

async fn introspection_has_a_depth_bound_of_its_own_above_the_standard_querys_nine_levels(engine: Engine) {
    let app = spawn_app(engine).await;
    let token = app.token(ALL_SCOPES, &["*"]);

    let fifteen = app.graphql(Some(&token), &of_type_chain(10), json!({})).await;
    assert!(fifteen.body.get("errors").is_none(), "{}", fifteen.body);
    assert_eq!(app.graphql(Some(&token), &of_type_chain(11), json!({})).await.code(), "QUERY_TOO_DEEP");
    assert_eq!(app.graphql(Some(&token), &of_type_chain(20), json!({})).await.code(), "QUERY_TOO_DEEP");
    // graphql-js's standard introspection query (nine `ofType` levels) is answered: `schema.rs` sends it and
    // compares what it reads with `schema.graphql`.
}
on_both_engines!(introspection_has_a_depth_bound_of_its_own_above_the_standard_querys_nine_levels);

async fn too_many_root_fields_or_aliases_are_refused_before_anything_runs(engine: Engine) {
    let app = spawn_app(engine).await;
    let token = app.token(ALL_SCOPES, &["*"]);
    let viewers =
        |count: usize| (0..count).map(|i| format!("v{i}: viewer {{ subject }}")).collect::<Vec<_>>().join(" ");
    let subjects = |count: usize| (0..count).map(|i| format!("s{i}: subject")).collect::<Vec<_>>().join(" ");

    let fifty = app.graphql(Some(&token), &format!("{{ {} }}", viewers(50)), json!({})).await;
    assert!(fifty.body.get("errors").is_none(), "{}", fifty.body);
    let roots = app.graphql(Some(&token), &format!("{{ {} }}", viewers(51)), json!({})).await;
    assert_eq!(roots.code(), "TOO_MANY_ROOT_FIELDS");
    // Spreading a fragment at the root does not get around the cap.
    let spread = format!("{{ ...V ...V }} fragment V on Query {{ {} }}", viewers(26));
    assert_eq!(app.graphql(Some(&token), &spread, json!({})).await.code(), "TOO_MANY_ROOT_FIELDS");

    let hundred = app.graphql(Some(&token), &format!("{{ viewer {{ {} }} }}", subjects(100)), json!({})).await;
    assert!(hundred.body.get("errors").is_none(), "{}", hundred.body);
    let aliases = app.graphql(Some(&token), &format!("{{ viewer {{ {} }} }}", subjects(101)), json!({})).await;
    assert_eq!(aliases.code(), "TOO_MANY_ALIASES");
    assert!(aliases.body["data"].is_null(), "nothing ran: {}", aliases.body);

    // A token-less flood of aliased fields is refused before any field writes its audit event.
    let before = app.audit(json!({})).await.len();
    assert_eq!(app.graphql(None, &format!("{{ {} }}", viewers(200)), json!({})).await.code(), "TOO_MANY_ROOT_FIELDS");
    assert_eq!(app.audit(json!({})).await.len(), before);
}
on_both_engines!(too_many_root_fields_or_aliases_are_refused_before_anything_runs);
