//! The root fields a GraphQL request's operation asks for, for its log lines and spans: names from the schema only (a
//! closed set, whatever the client wrote), never an alias or the client-chosen operation name.
//!
//! The query is parsed here once more (the schema parses it again to run it): the request span must carry the names
//! even when the operation is refused before it runs. An unparsable query, or one whose operation cannot be told,
//! has none.

use std::collections::{BTreeSet, HashSet};
use std::sync::OnceLock;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet, TypeKind, TypeSystemDefinition,
};

use crate::graphql::VaultSchema;

/// The root fields of each operation type the schema has, and the introspection fields any query may ask for.
struct RootFields {
    query: HashSet<String>,
    mutation: HashSet<String>,
    subscription: HashSet<String>,
}

impl RootFields {
    /// Read from the schema's SDL. The schema is the same code for every router of the process, so once is enough.
    fn of(schema: &VaultSchema) -> &'static RootFields {
        static KNOWN: OnceLock<RootFields> = OnceLock::new();
        KNOWN.get_or_init(|| {
            let mut known =
                RootFields { query: HashSet::new(), mutation: HashSet::new(), subscription: HashSet::new() };
            let Ok(document) = async_graphql::parser::parse_schema(schema.sdl()) else { return known };
            for definition in &document.definitions {
                let TypeSystemDefinition::Type(definition) = definition else { continue };
                let TypeKind::Object(object) = &definition.node.kind else { continue };
                // async-graphql names the root types after the operation types (`schema.graphql` shows it).
                let set = match definition.node.name.node.as_str() {
                    "Query" => &mut known.query,
                    "Mutation" => &mut known.mutation,
                    "Subscription" => &mut known.subscription,
                    _ => continue,
                };
                set.extend(object.fields.iter().map(|field| field.node.name.node.to_string()));
            }
            known.query.extend(["__schema", "__type", "__typename"].map(str::to_owned));
            known
        })
    }
}

/// The operation's root fields, sorted and comma-separated (`issueApiCredential,viewer`), or `None`.
pub(super) fn of(schema: &VaultSchema, request: &async_graphql::Request) -> Option<String> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let operation = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.iter().find(|(candidate, _)| candidate.as_str() == name)?.1
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations.values().next()?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    let known = RootFields::of(schema);
    let known = match operation.node.ty {
        OperationType::Query => &known.query,
        OperationType::Mutation => &known.mutation,
        OperationType::Subscription => &known.subscription,
    };
    let mut walk = Walk { document: &document, known, names: BTreeSet::new(), walked: HashSet::new() };
    walk.selections(&operation.node.selection_set.node);
    (!walk.names.is_empty()).then(|| walk.names.into_iter().collect::<Vec<_>>().join(","))
}

/// The walk of a root selection set through its fragments, each fragment walked once (a cycle or a fragment spread
/// many times costs nothing more).
struct Walk<'a> {
    document: &'a ExecutableDocument,
    known: &'a HashSet<String>,
    names: BTreeSet<&'a str>,
    walked: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn selections(&mut self, set: &'a SelectionSet) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if self.known.contains(name) {
                        self.names.insert(name);
                    }
                }
                Selection::InlineFragment(fragment) => self.selections(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some((_, fragment)) = self.document.fragments.iter().find(|(known, _)| known.as_str() == name)
                    else {
                        continue;
                    };
                    if self.walked.insert(name) {
                        self.selections(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_fields(query: &str, operation: Option<&str>) -> Option<String> {
        let schema = crate::graphql::build_schema(None, true);
        let mut request = async_graphql::Request::new(query);
        request.operation_name = operation.map(str::to_owned);
        of(&schema, &request)
    }

    #[test]
    fn root_fields_are_the_schema_names_behind_aliases_and_fragments() {
        let query = "query Mine { me: viewer { __typename } ...More ... on Query { __typename } }
                     fragment More on Query { viewer { __typename } ...More }";
        assert_eq!(root_fields(query, None).as_deref(), Some("__typename,viewer"));
    }

    #[test]
    fn a_name_the_schema_does_not_have_is_not_a_root_field() {
        assert_eq!(root_fields("{ password123 { x } }", None), None);
        assert_eq!(root_fields("mutation { viewer }", None), None, "viewer is a query field");
    }

    #[test]
    fn the_operation_named_by_the_request_is_the_one_described() {
        let query = "query A { viewer { __typename } } query B { __typename }";
        assert_eq!(root_fields(query, Some("B")).as_deref(), Some("__typename"));
        assert_eq!(root_fields(query, None), None);
        assert_eq!(root_fields("{ viewer", None), None);
    }
}
