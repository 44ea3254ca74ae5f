//! Query limits, and `extensions.code` on the errors async-graphql raises itself (parse, validation, limits).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};

/// Deepest selection accepted.
pub const MAX_DEPTH: usize = 10;
/// Highest complexity accepted (one per field; lists weighted by their size: `first` for connections, 10 for credential versions).
pub const MAX_COMPLEXITY: usize = 2500;

fn with_code(mut err: ServerError, code: &str) -> ServerError {
    err.extensions.get_or_insert_with(Default::default).set("code", code);
    err
}

/// Puts a code on parse and validation errors.
#[derive(Debug)]
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    let code = match e.message.as_str() {
                        "Query is nested too deep." => "QUERY_TOO_DEEP",
                        "Query is too complex." => "QUERY_TOO_COMPLEX",
                        _ => "GRAPHQL_VALIDATION_FAILED",
                    };
                    with_code(e, code)
                })
                .collect()
        })
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
    use super::ParseCache;

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
