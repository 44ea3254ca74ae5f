//! Query limits, and `extensions.code` on the errors raised before a query runs (parse, validation, limits).
//!
//! Depth and complexity are enforced here rather than by async-graphql's `limit_depth`/`limit_complexity`: its
//! errors carry no extensions, and telling them apart would mean matching its English messages. async-graphql still
//! measures both while it validates (`ValidationResult`); [`Limits`] reads the numbers and refuses with our codes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};

use crate::error::ErrorCode;

/// Deepest selection accepted. Our own types nest no deeper than 7; 15 is what graphql-js's standard introspection
/// query needs (`getIntrospectionQuery()` 16.x: nine `ofType` levels under a field argument's type), and every
/// GraphQL tool sends it (`tests/api/schema.rs` runs the real one).
pub const MAX_DEPTH: usize = 15;
/// Highest complexity accepted (one per field; lists weighted by their size: `first` for connections, 10 for credential versions).
pub const MAX_COMPLEXITY: usize = 2500;

fn with_code(mut err: ServerError, code: ErrorCode) -> ServerError {
    err.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
    err
}

/// Refuses queries deeper than [`MAX_DEPTH`] or more complex than [`MAX_COMPLEXITY`], and puts a code on parse
/// and validation errors.
#[derive(Debug)]
pub struct Limits;

impl Limits {
    /// The refusal of a valid query that is too big to run, complexity first (as async-graphql's own limits did).
    fn refusal(measured: &ValidationResult) -> Option<ServerError> {
        let (code, message) = if measured.complexity > MAX_COMPLEXITY {
            (ErrorCode::QueryTooComplex, "Query is too complex.")
        } else if measured.depth > MAX_DEPTH {
            (ErrorCode::QueryTooDeep, "Query is nested too deep.")
        } else {
            return None;
        };
        Some(with_code(ServerError::new(message, None), code))
    }
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension)
    }
}

struct LimitsExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|e| with_code(e, ErrorCode::GraphqlParseFailed))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let measured = next.run(ctx).await.map_err(|errors| {
            errors.into_iter().map(|e| with_code(e, ErrorCode::GraphqlValidationFailed)).collect::<Vec<_>>()
        })?;
        match Limits::refusal(&measured) {
            Some(refused) => Err(vec![refused]),
            None => Ok(measured),
        }
    }
}

/// Parsed documents by query text. Tools send the same few queries, so most requests skip the parser. Only short
/// queries without string literals are kept: values belong in variables, and an inline literal may be a secret
/// (a password typed into the query) that must not outlive its request.
#[derive(Debug, Clone, Default)]
pub struct ParseCache {
    documents: Arc<RwLock<HashMap<String, ExecutableDocument>>>,
}

impl ParseCache {
    /// Distinct queries kept; past it, the cache starts over (a client sending ever-new queries gains nothing).
    const CAPACITY: usize = 128;
    /// Longer queries are parsed every time rather than kept (this bounds the memory a cached document takes).
    const MAX_QUERY_LEN: usize = 2 * 1024;

    fn keeps(query: &str) -> bool {
        query.len() <= Self::MAX_QUERY_LEN && !query.contains('"')
    }
}

impl ExtensionFactory for ParseCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ParseCache {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.documents.read().ok().and_then(|d| d.get(query).cloned()) {
            return Ok(document);
        }
        let document = next.run(ctx, query, variables).await?;
        if Self::keeps(query)
            && let Ok(mut documents) = self.documents.write()
        {
            if documents.len() >= Self::CAPACITY {
                documents.clear();
            }
            documents.insert(query.to_owned(), document.clone());
        }
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::ValidationResult;

    use super::{Limits, MAX_COMPLEXITY, MAX_DEPTH, ParseCache};
    use crate::graphql::build_schema;

    /// The query graphql-js tools send (`getIntrospectionQuery()`), its type references seven wrappers deep.
    const INTROSPECTION: &str = r#"
        query IntrospectionQuery {
          __schema {
            queryType { name } mutationType { name } subscriptionType { name }
            types { ...FullType }
            directives { name description locations args { ...InputValue } }
          }
        }
        fragment FullType on __Type {
          kind name description
          fields(includeDeprecated: true) {
            name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
          }
          inputFields { ...InputValue }
          interfaces { ...TypeRef }
          enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
          possibleTypes { ...TypeRef }
        }
        fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
        fragment TypeRef on __Type {
          kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType {
            kind name ofType { kind name ofType { kind name } } } } } } }
        }
    "#;

    fn measured(depth: usize, complexity: usize) -> ValidationResult {
        ValidationResult { cache_control: Default::default(), complexity, depth }
    }

    fn code_of(refused: Option<async_graphql::ServerError>) -> Option<async_graphql::Value> {
        refused.and_then(|e| e.extensions).and_then(|x| x.get("code").cloned())
    }

    #[test]
    fn queries_at_the_limits_pass_and_queries_beyond_them_are_refused_with_our_codes() {
        assert!(Limits::refusal(&measured(MAX_DEPTH, MAX_COMPLEXITY)).is_none());
        let deep = code_of(Limits::refusal(&measured(MAX_DEPTH + 1, 1)));
        assert_eq!(deep, Some(async_graphql::Value::from("QUERY_TOO_DEEP")));
        let complex = code_of(Limits::refusal(&measured(MAX_DEPTH + 1, MAX_COMPLEXITY + 1)));
        assert_eq!(complex, Some(async_graphql::Value::from("QUERY_TOO_COMPLEX")), "complexity is checked first");
    }

    /// An older graphql-js introspection query (eight `ofType` levels, depth 13) passes every limit.
    #[test]
    fn the_standard_introspection_query_passes_the_limits() {
        let response = futures::executor::block_on(build_schema(None).execute(INTROSPECTION));
        let codes: Vec<_> =
            response.errors.iter().filter_map(|e| e.extensions.as_ref()?.get("code").cloned()).collect();
        assert_eq!(codes, Vec::<async_graphql::Value>::new(), "{:?}", response.errors);
    }

    #[test]
    fn queries_with_inline_literals_or_of_great_length_are_not_kept() {
        assert!(ParseCache::keeps(
            "mutation($l: String!) { issueApiCredential(sellerLogin: $l, purpose: $p) { password } }"
        ));
        assert!(!ParseCache::keeps(
            "mutation { storeApiCredential(input: {sellerLogin: \"x\", password: \"S3cr3t\"}) { warnings } }"
        ));
        assert!(!ParseCache::keeps(&format!("{{ {} }}", "viewer { subject } ".repeat(200))));
    }
}
