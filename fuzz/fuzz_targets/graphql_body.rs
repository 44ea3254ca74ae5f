//! A `POST /graphql` body as the endpoint reads it: bytes, then JSON (`async_graphql::BatchRequest`, of which the
//! endpoint's single `Request` is one case), then the query parsed and run against the real schema
//! (`cdvault_api::graphql::build_schema`, with its `Limits` and `ParseCache` extensions). No vault and no caller
//! are attached, so resolvers stop at their first lookup of either, as they do for a request that lost its token:
//! this covers parsing, validation, the limits, introspection and error shaping, not the database. Never panics.
#![no_main]

use std::sync::OnceLock;

use async_graphql::BatchRequest;
use cdvault_api::graphql::{VaultSchema, build_schema};
use libfuzzer_sys::fuzz_target;

const MAX_BATCH: usize = 4;

fn schema() -> &'static VaultSchema {
    static SCHEMA: OnceLock<VaultSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| build_schema(None, true))
}

fuzz_target!(|body: &[u8]| {
    let Ok(batch) = serde_json::from_slice::<BatchRequest>(body) else { return };
    let requests = match batch {
        BatchRequest::Single(request) => vec![request],
        BatchRequest::Batch(requests) => requests,
    };
    // A long batch repeats the work of its first few requests.
    for request in requests.into_iter().take(MAX_BATCH) {
        let _ = async_graphql::parser::parse_query(&request.query);
        let response = futures::executor::block_on(schema().execute(request));
        // The endpoint writes the response as JSON; that must not fail either.
        if let Err(e) = serde_json::to_vec(&response) {
            panic!("a response could not be written as JSON: {e}");
        }
    }
});
