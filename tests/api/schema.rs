use cdvault_tests::{ALL_SCOPES, Engine, spawn_app};
use serde_json::json;

#[test]
fn the_checked_in_schema_equals_what_the_code_builds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap();
    assert!(
        checked_in == cdvault_api::sdl(),
        "schema.graphql is stale: run `cargo run -q -p cdvault-server -- schema > schema.graphql`"
    );
}

#[tokio::test]
async fn every_type_field_and_argument_has_a_description() {
    let app = spawn_app(Engine::Sqlite).await;
    let token = app.token(ALL_SCOPES, &["*"]);
    let query = "{ __schema { types { name description fields { name description args { name description } } inputFields { name description } enumValues { name description } } } }";
    let answer = app.graphql(Some(&token), query, json!({})).await;
    let mut missing = Vec::new();
    let described = |v: &serde_json::Value| v["description"].as_str().is_some_and(|d| !d.trim().is_empty());
    for ty in answer.data()["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        if name.starts_with("__") || ["String", "Int", "Boolean", "ID", "Float"].contains(&name) {
            continue;
        }
        if !described(ty) {
            missing.push(name.to_owned());
        }
        for list in ["fields", "inputFields", "enumValues"] {
            for field in ty[list].as_array().into_iter().flatten() {
                if !described(field) {
                    missing.push(format!("{name}.{}", field["name"].as_str().unwrap()));
                }
                for arg in field["args"].as_array().into_iter().flatten() {
                    if !described(arg) {
                        missing.push(format!(
                            "{name}.{}({})",
                            field["name"].as_str().unwrap(),
                            arg["name"].as_str().unwrap()
                        ));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "undescribed: {missing:?}");
}
