use cdvault_tests::{Engine, on_both_engines, spawn_app};

async fn health_readiness_and_graphiql_answer(engine: Engine) {
    let app = spawn_app(engine).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let graphiql = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(graphiql.status().as_u16(), 200);
    assert!(graphiql.text().await.unwrap().to_lowercase().contains("graphiql"));
}
on_both_engines!(health_readiness_and_graphiql_answer);

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_sane_one_is_kept() {
    let app = spawn_app(Engine::Sqlite).await;
    let fresh = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = fresh.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let kept = app.client.get(app.url("/healthz")).header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-42");
    for unsafe_id in ["bad id", &"x".repeat(65)] {
        let replaced = app.client.get(app.url("/healthz")).header("x-request-id", unsafe_id).send().await.unwrap();
        let id = replaced.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{unsafe_id:?} was replaced by a fresh id, got {id}");
    }
}
