//! Query limits, and `extensions.code` on the errors raised before a query runs (parse, validation, limits).
//!
//! Depth and complexity are enforced here rather than by async-graphql's `limit_depth`/`limit_complexity`: its
//! errors carry no extensions, and telling them apart would mean matching its English messages. async-graphql still
//! measures complexity while it validates (`ValidationResult`); depth, root fields, secret fields and aliases are
//! measured here on the parsed document ([`shape`]), since introspection gets a depth bound of its own.

mod shape;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};

use self::shape::Shape;
use crate::error::ErrorCode;

/// Deepest selection accepted outside introspection. Our own types nest no deeper than 7.
pub const MAX_DEPTH: usize = 10;
/// Deepest selection accepted under `__schema` or `__type`: what graphql-js's standard introspection query needs
/// (`getIntrospectionQuery()` 16.x: nine `ofType` levels under a field argument's type), which every GraphQL tool
/// sends (`tests/api/schema.rs` runs the real one).
pub const MAX_INTROSPECTION_DEPTH: usize = 15;
/// Highest complexity accepted (one per field; lists weighted by their size: `first` for connections, 10 for credential versions).
pub const MAX_COMPLEXITY: usize = 2500;
/// Most secret-bearing root fields (the issues and reveals) in one operation: one request cannot take every password.
pub const MAX_SECRET_FIELDS: usize = 10;
/// Most root fields in one operation (each can write its own audit event, even a refused `viewer`).
pub const MAX_ROOT_FIELDS: usize = 50;
/// Most aliased fields in one document.
pub const MAX_ALIASES: usize = 100;

fn with_code(mut err: ServerError, code: ErrorCode) -> ServerError {
    err.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
    err
}

fn refused(code: ErrorCode, message: &str) -> ServerError {
    with_code(ServerError::new(message, None), code)
}

/// Refuses, before any resolver runs, operations with too many secret fields, root fields or aliases, queries nested
/// deeper than [`MAX_DEPTH`] (introspection: [`MAX_INTROSPECTION_DEPTH`]) or more complex than [`MAX_COMPLEXITY`],
/// and introspection when it is switched off; puts a code on parse and validation errors.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Whether `__schema` and `__type` may be asked for. Off, they are refused with a code of their own, before
    /// validation would call them unknown fields.
    pub introspection: bool,
}

impl Limits {
    /// The refusal of introspection when it is off: any `__schema` or `__type` at the root of an operation.
    fn introspection_refusal(&self, shape: &Shape) -> Option<ServerError> {
        let asked = shape.introspection_depth > 0;
        (asked && !self.introspection).then(|| {
            refused(ErrorCode::IntrospectionDisabled, "Introspection is disabled: the schema is published instead.")
        })
    }

    /// The refusal of a parsed document too wide to run, the secret cap first (its code tells the most).
    fn cap_refusal(shape: &Shape) -> Option<ServerError> {
        if shape.secret_fields > MAX_SECRET_FIELDS {
            Some(refused(ErrorCode::TooManySecretFields, "Too many secret-bearing fields in one operation."))
        } else if shape.root_fields > MAX_ROOT_FIELDS {
            Some(refused(ErrorCode::TooManyRootFields, "Too many root fields in one operation."))
        } else if shape.aliases > MAX_ALIASES {
            Some(refused(ErrorCode::TooManyAliases, "Too many aliases in one document."))
        } else {
            None
        }
    }

    /// The refusal of a valid query that is too big to run, complexity first (as async-graphql's own limits did).
    /// Without a measured shape (a request that skipped parsing), async-graphql's depth counts as the general one.
    fn refusal(measured: &ValidationResult, shape: Option<&Shape>) -> Option<ServerError> {
        let (depth, introspection_depth) = shape.map_or((measured.depth, 0), |s| (s.depth, s.introspection_depth));
        if measured.complexity > MAX_COMPLEXITY {
            Some(refused(ErrorCode::QueryTooComplex, "Query is too complex."))
        } else if depth > MAX_DEPTH || introspection_depth > MAX_INTROSPECTION_DEPTH {
            Some(refused(ErrorCode::QueryTooDeep, "Query is nested too deep."))
        } else {
            None
        }
    }
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension { limits: *self, shape: Mutex::new(None) })
    }
}

/// One per request: the shape measured at parse time, read again when validation has measured complexity.
struct LimitsExtension {
    limits: Limits,
    shape: Mutex<Option<Shape>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document =
            next.run(ctx, query, variables).await.map_err(|e| with_code(e, ErrorCode::GraphqlParseFailed))?;
        let shape = Shape::of(&document);
        if let Some(refusal) = self.limits.introspection_refusal(&shape).or_else(|| Limits::cap_refusal(&shape)) {
            return Err(refusal);
        }
        if let Ok(mut kept) = self.shape.lock() {
            *kept = Some(shape);
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let measured = next.run(ctx).await.map_err(|errors| {
            errors.into_iter().map(|e| with_code(e, ErrorCode::GraphqlValidationFailed)).collect::<Vec<_>>()
        })?;
        let shape = self.shape.lock().ok().and_then(|kept| *kept);
        match Limits::refusal(&measured, shape.as_ref()) {
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

    use super::{
        Limits, MAX_ALIASES, MAX_COMPLEXITY, MAX_DEPTH, MAX_INTROSPECTION_DEPTH, MAX_ROOT_FIELDS, MAX_SECRET_FIELDS,
        ParseCache, Shape,
    };
    use crate::error::ErrorCode;
    use crate::graphql::build_schema;

    /// The query graphql-js 16 tools send (`getIntrospectionQuery()`), its type references nine `ofType` deep.
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
            kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
        }
    "#;

    fn measured(depth: usize, complexity: usize) -> ValidationResult {
        ValidationResult { cache_control: Default::default(), complexity, depth }
    }

    fn code_of(refused: Option<async_graphql::ServerError>) -> Option<async_graphql::Value> {
        refused.and_then(|e| e.extensions).and_then(|x| x.get("code").cloned())
    }

    fn shape(depth: usize, introspection_depth: usize) -> Shape {
        Shape { depth, introspection_depth, ..Shape::default() }
    }

    #[test]
    fn queries_at_the_limits_pass_and_queries_beyond_them_are_refused_with_our_codes() {
        let at_limits = shape(MAX_DEPTH, MAX_INTROSPECTION_DEPTH);
        assert!(Limits::refusal(&measured(0, MAX_COMPLEXITY), Some(&at_limits)).is_none());
        let deep = code_of(Limits::refusal(&measured(0, 1), Some(&shape(MAX_DEPTH + 1, 0))));
        assert_eq!(deep, Some(async_graphql::Value::from("QUERY_TOO_DEEP")));
        let deep_introspection =
            code_of(Limits::refusal(&measured(0, 1), Some(&shape(1, MAX_INTROSPECTION_DEPTH + 1))));
        assert_eq!(deep_introspection, Some(async_graphql::Value::from("QUERY_TOO_DEEP")));
        let complex = code_of(Limits::refusal(&measured(0, MAX_COMPLEXITY + 1), Some(&shape(MAX_DEPTH + 1, 0))));
        assert_eq!(complex, Some(async_graphql::Value::from("QUERY_TOO_COMPLEX")), "complexity is checked first");
    }

    #[test]
    fn without_a_measured_shape_async_graphqls_depth_meets_the_general_limit() {
        assert!(Limits::refusal(&measured(MAX_DEPTH, 1), None).is_none());
        let deep = code_of(Limits::refusal(&measured(MAX_DEPTH + 1, 1), None));
        assert_eq!(deep, Some(async_graphql::Value::from("QUERY_TOO_DEEP")));
    }

    #[test]
    fn operations_at_the_caps_pass_and_one_more_of_each_is_refused_with_its_code() {
        let at_caps = Shape {
            secret_fields: MAX_SECRET_FIELDS,
            root_fields: MAX_ROOT_FIELDS,
            aliases: MAX_ALIASES,
            ..Shape::default()
        };
        assert!(Limits::cap_refusal(&at_caps).is_none());
        let over = |shape: Shape| code_of(Limits::cap_refusal(&shape));
        let secrets = over(Shape { secret_fields: MAX_SECRET_FIELDS + 1, ..at_caps });
        assert_eq!(secrets, Some(async_graphql::Value::from("TOO_MANY_SECRET_FIELDS")));
        let roots = over(Shape { root_fields: MAX_ROOT_FIELDS + 1, ..at_caps });
        assert_eq!(roots, Some(async_graphql::Value::from("TOO_MANY_ROOT_FIELDS")));
        let aliases = over(Shape { aliases: MAX_ALIASES + 1, ..at_caps });
        assert_eq!(aliases, Some(async_graphql::Value::from("TOO_MANY_ALIASES")));
    }

    /// The error reference cannot fill in these limits (it knows `{max_depth}` and `{max_complexity}` only), so the
    /// registry writes them out and this test keeps them true.
    #[test]
    fn the_error_registry_states_todays_caps() {
        let meaning = |code: ErrorCode| code.description().split_whitespace().collect::<Vec<_>>().join(" ");
        let states = |code: ErrorCode, limit: usize| meaning(code).contains(&format!("more than {limit} "));
        assert!(states(ErrorCode::TooManySecretFields, MAX_SECRET_FIELDS));
        assert!(states(ErrorCode::TooManyRootFields, MAX_ROOT_FIELDS));
        assert!(states(ErrorCode::TooManyAliases, MAX_ALIASES));
        assert!(meaning(ErrorCode::QueryTooDeep).contains(&format!("the bound is {MAX_INTROSPECTION_DEPTH} ")));
    }

    /// graphql-js 16's introspection query (nine `ofType` levels, depth 15) passes every limit.
    #[test]
    fn the_standard_introspection_query_passes_the_limits() {
        let response = futures::executor::block_on(build_schema(None, true).execute(INTROSPECTION));
        assert_eq!(codes_of(&response), Vec::<async_graphql::Value>::new(), "{:?}", response.errors);
    }

    fn codes_of(response: &async_graphql::Response) -> Vec<async_graphql::Value> {
        response.errors.iter().filter_map(|e| e.extensions.as_ref()?.get("code").cloned()).collect()
    }

    #[test]
    fn with_introspection_off_every_introspection_query_is_refused_with_its_code_and_typename_still_answers() {
        let schema = build_schema(None, false);
        let disabled = vec![async_graphql::Value::from("INTROSPECTION_DISABLED")];
        for query in [
            INTROSPECTION,
            "{ __schema { types { name } } }",
            "{ __type(name: \"Query\") { name } }",
            "query { ...Root } fragment Root on Query { __schema { queryType { name } } }",
        ] {
            let response = futures::executor::block_on(schema.execute(query));
            assert_eq!(codes_of(&response), disabled, "{query}");
            assert_eq!(response.data, async_graphql::Value::Null, "nothing runs: {query}");
        }
        let typename = futures::executor::block_on(schema.execute("{ __typename }"));
        assert!(typename.errors.is_empty(), "{:?}", typename.errors);
        let on = futures::executor::block_on(build_schema(None, true).execute("{ __schema { types { name } } }"));
        assert!(on.errors.is_empty(), "{:?}", on.errors);
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
