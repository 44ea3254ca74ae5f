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

/// graphql-js itself (the npm `graphql` package every GraphQL tool builds on) reads the served schema through its
/// standard introspection query, which nests `ofType` nine levels deep, and compares it with `schema.graphql`.
const GRAPHQL_JS_INTROSPECTION: &str = r#"
const { getIntrospectionQuery, buildClientSchema, buildSchema, lexicographicSortSchema, printSchema } =
  require('graphql');
const [url, token, sdlPath] = process.argv.slice(1);
(async () => {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: getIntrospectionQuery() }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  const served = buildClientSchema(body.data);
  const checkedIn = buildSchema(require('fs').readFileSync(sdlPath, 'utf8'));
  // Printed the same way (sorted, without graphql-js's own scalars and directives), descriptions included.
  const print = (schema) => printSchema(lexicographicSortSchema(schema));
  console.log(JSON.stringify({ types: Object.keys(served.getTypeMap()).length, served: print(served), checkedIn: print(checkedIn) }));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"#;

#[tokio::test]
async fn graphql_js_reads_the_served_schema_with_its_standard_introspection_query_and_finds_the_checked_in_one() {
    let Some(modules) = cdvault_tests::tools::node_modules("graphql-js introspection") else { return };
    let app = spawn_app(Engine::Sqlite).await;
    let token = app.token(ALL_SCOPES, &["*"]);
    let sdl = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let out =
        cdvault_tests::tools::run_node(&modules, GRAPHQL_JS_INTROSPECTION, &[&app.url("/graphql"), &token, sdl]).await;
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(report["types"].as_u64().unwrap() > 40, "{report}");
    assert_eq!(report["served"], report["checkedIn"], "the served schema and schema.graphql differ");
}
