//! Introspection switched off by configuration (`CDVAULT_INTROSPECTION=false`), through the real server.

use cdvault_tests::{ALL_SCOPES, Engine, TestApp, on_both_engines, spawn_app};
use serde_json::json;

/// What graphql-js tools send first, in short, and a lookup of one type.
const SCHEMA_QUERY: &str = "{ __schema { types { name } } }";
const TYPE_QUERY: &str = "{ __type(name: \"Query\") { name } }";

async fn with_introspection_off_schema_queries_are_refused_with_their_code_and_the_api_still_answers(engine: Engine) {
    let app = TestApp::builder(engine).http(|o| o.introspection = false).spawn().await;
    let token = app.token(ALL_SCOPES, &["*"]);
    for caller in [None, Some(token.as_str())] {
        for query in [SCHEMA_QUERY, TYPE_QUERY] {
            let answer = app.graphql(caller, query, json!({})).await;
            assert_eq!((answer.status, answer.code()), (200, "INTROSPECTION_DISABLED"), "{query}");
            assert_eq!(answer.body["data"], json!(null), "nothing of {query} ran");
        }
    }
    let answer = app.graphql(Some(&token), "{ __typename viewer { subject } }", json!({})).await;
    assert_eq!(answer.data(), &json!({ "__typename": "Query", "viewer": { "subject": "tool" } }));
}
on_both_engines!(with_introspection_off_schema_queries_are_refused_with_their_code_and_the_api_still_answers);

async fn by_default_introspection_is_answered(engine: Engine) {
    let app = spawn_app(engine).await;
    let answer = app.graphql(None, SCHEMA_QUERY, json!({})).await;
    let types = answer.data()["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|ty| ty["name"] == "Query"));
    let answer = app.graphql(None, TYPE_QUERY, json!({})).await;
    assert_eq!(answer.data()["__type"]["name"], "Query");
}
on_both_engines!(by_default_introspection_is_answered);
