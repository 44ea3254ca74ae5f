//! The GraphQL families: requests by root field and code, and their latency by root field, from an async-graphql
//! extension (so HTTP and WebSocket reads are counted alike, and the document is not parsed a second time). The same
//! root fields go on the request's span for the log lines.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::Registry;
use async_graphql::{Request, Response, ServerError, ServerResult, Value, Variables};

use super::names;
use crate::error::ErrorCode;

/// The label of a root field async-graphql does not know: a misspelt or invented name, or an unparsable request.
const OTHER: &str = "other";
/// Root fields labelled at most per request (the limits refuse more than 50 anyway).
const MAX_FIELDS: usize = 64;

/// Counts every GraphQL request by root field and code, and times it by root field. One extension per schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct GraphqlMetrics;

impl ExtensionFactory for GraphqlMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Recording::default())
    }
}

/// What one request learnt before it ran: the operation asked for, then its root fields.
#[derive(Debug, Default)]
struct Recording {
    operation: Mutex<Option<String>>,
    /// (response key, field label) of each root field of the operation run.
    fields: Mutex<Vec<(String, String)>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Recording {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let elapsed = started.elapsed();
        let fields = std::mem::take(&mut *lock(&self.fields));
        if fields.is_empty() {
            // Refused before its fields were known (unparsable, or over a limit before parsing).
            let code = response.errors.first().map_or("OK", code_of);
            record(OTHER.to_owned(), code, elapsed);
        }
        for (key, field) in fields {
            record(field, field_code(&response.errors, &key), elapsed);
        }
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Kept to pick the operation of a document that has several; never a label (the client names it).
        (*lock(&self.operation)).clone_from(&request.operation_name);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let operation = lock(&self.operation).clone();
        if let Some(selected) = select(&document, operation.as_deref()) {
            let mut fields = Vec::new();
            root_fields(&document, &selected.selection_set.node, &ctx.schema_env.registry, selected, &mut fields);
            record_on_span(&fields);
            *lock(&self.fields) = fields;
        }
        Ok(document)
    }
}

/// The schema's names of the root fields, sorted and comma-separated, on the request's span (`root_fields`, declared
/// by the access log) for its log lines: never an alias, an unknown name or the client-chosen operation name.
fn record_on_span(fields: &[(String, String)]) {
    let names: std::collections::BTreeSet<&str> =
        fields.iter().map(|(_, label)| label.as_str()).filter(|label| *label != OTHER).collect();
    if !names.is_empty() {
        let names = names.into_iter().collect::<Vec<_>>().join(",");
        tracing::Span::current().record("root_fields", names.as_str());
    }
}

fn lock<T>(slot: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn record(field: String, code: &'static str, elapsed: std::time::Duration) {
    // Labels from closed sets only: `field` is a root field of the schema or "other", `code` is "OK" or a code
    // of the error registry. Never the operation name, a variable, a seller or a token.
    metrics::histogram!(names::GRAPHQL_DURATION, "field" => field.clone()).record(elapsed);
    metrics::counter!(names::GRAPHQL_REQUESTS, "field" => field, "code" => code).increment(1);
}

/// The operation a request runs: the only one, or the one it names.
fn select<'a>(document: &'a ExecutableDocument, name: Option<&str>) -> Option<&'a OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(&operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.iter().find(|(key, _)| key.as_str() == name).map(|(_, operation)| &operation.node)
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().map(|operation| &operation.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The root fields of `set` (through fragments), each as (response key, label): the field's name when the root
/// type has it (or it is introspection's), else [`OTHER`].
fn root_fields(
    document: &ExecutableDocument,
    set: &SelectionSet,
    registry: &Registry,
    operation: &OperationDefinition,
    fields: &mut Vec<(String, String)>,
) {
    for selection in &set.items {
        if fields.len() >= MAX_FIELDS {
            return;
        }
        match &selection.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                let label = if known(registry, operation.ty, name) { name } else { OTHER };
                fields.push((field.node.response_key().node.to_string(), label.to_owned()));
            }
            Selection::InlineFragment(fragment) => {
                root_fields(document, &fragment.node.selection_set.node, registry, operation, fields);
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    // A fragment spreading itself is refused by validation; the cap above bounds the walk meanwhile.
                    root_fields(document, &fragment.node.selection_set.node, registry, operation, fields);
                }
            }
        }
    }
}

/// Whether `name` is a field of the root type of `ty` (the closed set the `field` label is drawn from).
fn known(registry: &Registry, ty: OperationType, name: &str) -> bool {
    if matches!(name, "__schema" | "__type" | "__typename") {
        return true;
    }
    let root = match ty {
        OperationType::Query => Some(registry.query_type.as_str()),
        OperationType::Mutation => registry.mutation_type.as_deref(),
        OperationType::Subscription => registry.subscription_type.as_deref(),
    };
    root.and_then(|root| registry.types.get(root)).is_some_and(|root| root.field_by_name(name).is_some())
}

/// The code of the root field answered under `key`: its first error's, else a request-wide error's (no path, e.g.
/// a validation error), else `OK`.
fn field_code(errors: &[ServerError], key: &str) -> &'static str {
    let on_field = errors
        .iter()
        .find(|error| matches!(error.path.first(), Some(async_graphql::PathSegment::Field(first)) if first == key));
    let request_wide = || errors.iter().find(|error| error.path.is_empty());
    on_field.or_else(request_wide).map_or("OK", code_of)
}

/// An error's code: its `extensions.code` when it is one of the registry's (the closed set of the `code` label),
/// else `BAD_REQUEST`, which is what the transport puts on an error without one.
fn code_of(error: &ServerError) -> &'static str {
    let code = error.extensions.as_ref().and_then(|extensions| match extensions.get("code") {
        Some(Value::String(code)) => ErrorCode::ALL.iter().copied().find(|known| known.as_str() == code.as_str()),
        _ => None,
    });
    code.unwrap_or(ErrorCode::BadRequest).as_str()
}
