//! The shape of a parsed document, measured before validation: how deep it nests (introspection apart), how many
//! root fields and secret-bearing root fields an operation asks for, and how many aliases it uses.
//!
//! The document is not validated yet, so the walk trusts nothing: an unknown fragment counts for nothing, a fragment
//! cycle is not followed (validation refuses it next), and each fragment is walked once, however often it is spread.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// The root fields that return a secret (the operations the vault freeze refuses). Each occurrence counts: an alias
/// issues again.
pub const SECRET_FIELDS: [&str; 5] =
    ["issueApiCredential", "issueOctopiaCredential", "issueAccessToken", "revealPayoutDetails", "revealPayoutAccount"];

/// The root fields that open introspection; everything under them is bounded by the introspection depth.
const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];

/// What [`Shape::of`] measures. Per-operation figures are those of the largest operation in the document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Deepest selection outside introspection (a root field is depth 1, as async-graphql counts).
    pub depth: usize,
    /// Deepest selection under `__schema` or `__type`.
    pub introspection_depth: usize,
    /// Root fields of an operation, a fragment spread at the root counted each time it is spread.
    pub root_fields: usize,
    /// Secret-bearing root fields of an operation, counted the same way.
    pub secret_fields: usize,
    /// Aliased fields written in the document.
    pub aliases: usize,
}

impl Shape {
    /// Measures `document`, in time linear in its size.
    pub fn of(document: &ExecutableDocument) -> Shape {
        let mut walk = Walk { document, nesting: HashMap::new(), roots: HashMap::new(), active: Vec::new() };
        let mut shape = Shape { aliases: aliases_in_document(document), ..Shape::default() };
        for (_, operation) in document.operations.iter() {
            let root = walk.root(&operation.node.selection_set.node);
            shape.depth = shape.depth.max(root.depth);
            shape.introspection_depth = shape.introspection_depth.max(root.introspection_depth);
            shape.root_fields = shape.root_fields.max(root.fields);
            shape.secret_fields = shape.secret_fields.max(root.secrets);
        }
        shape
    }
}

/// The measure of a root selection set (or of a fragment spread in one).
#[derive(Debug, Clone, Copy, Default)]
struct Root {
    fields: usize,
    secrets: usize,
    depth: usize,
    introspection_depth: usize,
}

impl Root {
    fn and(self, other: Root) -> Root {
        Root {
            // Saturating: fragments spread twice at each of many levels multiply.
            fields: self.fields.saturating_add(other.fields),
            secrets: self.secrets.saturating_add(other.secrets),
            depth: self.depth.max(other.depth),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
        }
    }
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    /// Nesting of each fragment's selection set, once known.
    nesting: HashMap<&'a str, usize>,
    /// Measure of each fragment spread at the root, once known.
    roots: HashMap<&'a str, Root>,
    /// Fragments being walked, so that a cycle is not followed.
    active: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    fn root(&mut self, set: &'a SelectionSet) -> Root {
        let mut root = Root::default();
        for item in &set.items {
            let part = match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let depth = 1 + self.nesting(&field.node.selection_set.node);
                    let introspection = INTROSPECTION_FIELDS.contains(&name);
                    Root {
                        fields: 1,
                        secrets: usize::from(SECRET_FIELDS.contains(&name)),
                        depth: if introspection { 0 } else { depth },
                        introspection_depth: if introspection { depth } else { 0 },
                    }
                }
                Selection::InlineFragment(inline) => self.root(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.root_fragment(spread.node.fragment_name.node.as_str()),
            };
            root = root.and(part);
        }
        root
    }

    fn root_fragment(&mut self, name: &'a str) -> Root {
        if let Some(known) = self.roots.get(name) {
            return *known;
        }
        let Some((name, fragment)) = self.document.fragments.get_key_value(name) else { return Root::default() };
        if self.active.contains(&name.as_str()) {
            return Root::default();
        }
        self.active.push(name.as_str());
        let root = self.root(&fragment.node.selection_set.node);
        self.active.pop();
        self.roots.insert(name.as_str(), root);
        root
    }

    /// How many fields deep `set` nests, fragments seen through.
    fn nesting(&mut self, set: &'a SelectionSet) -> usize {
        let mut deepest = 0;
        for item in &set.items {
            let depth = match &item.node {
                Selection::Field(field) => 1 + self.nesting(&field.node.selection_set.node),
                Selection::InlineFragment(inline) => self.nesting(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.fragment_nesting(spread.node.fragment_name.node.as_str()),
            };
            deepest = deepest.max(depth);
        }
        deepest
    }

    fn fragment_nesting(&mut self, name: &'a str) -> usize {
        if let Some(known) = self.nesting.get(name) {
            return *known;
        }
        let Some((name, fragment)) = self.document.fragments.get_key_value(name) else { return 0 };
        if self.active.contains(&name.as_str()) {
            return 0;
        }
        self.active.push(name.as_str());
        let depth = self.nesting(&fragment.node.selection_set.node);
        self.active.pop();
        self.nesting.insert(name.as_str(), depth);
        depth
    }
}

/// Aliased fields as written: in every operation and fragment, each fragment once.
fn aliases_in_document(document: &ExecutableDocument) -> usize {
    let operations = document.operations.iter().map(|(_, operation)| &operation.node.selection_set.node);
    let fragments = document.fragments.values().map(|fragment| &fragment.node.selection_set.node);
    operations.chain(fragments).map(aliases_in).sum()
}

fn aliases_in(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => {
                usize::from(field.node.alias.is_some()) + aliases_in(&field.node.selection_set.node)
            }
            Selection::InlineFragment(inline) => aliases_in(&inline.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::Shape;

    fn shape(query: &str) -> Shape {
        Shape::of(&parse_query(query).unwrap())
    }

    #[test]
    fn depth_counts_fields_through_fragments_and_sets_introspection_apart() {
        let measured = shape(
            "{ viewer { subject } ...F __type(name: \"X\") { ofType { ofType { name } } } }
             fragment F on QueryRoot { sellerAccounts { edges { node { login } } } }",
        );
        assert_eq!((measured.depth, measured.introspection_depth), (4, 4));
    }

    #[test]
    fn aliased_and_spread_secret_fields_each_count_and_aliases_are_counted_once_as_written() {
        let measured = shape(
            "mutation { a: issueApiCredential(sellerLogin: \"a\", purpose: \"p\") { password }
                        ...F ...F ... on MutationRoot { revealPayoutAccount(sellerLogin: \"a\") { iban } } }
             fragment F on MutationRoot { b: issueAccessToken(sellerLogin: \"b\") { token } }",
        );
        assert_eq!((measured.secret_fields, measured.root_fields, measured.aliases), (4, 4, 2));
    }

    #[test]
    fn fragment_cycles_and_unknown_fragments_end_the_walk() {
        let measured = shape(
            "{ ...A ...Nowhere } fragment A on QueryRoot { viewer { subject } ...B } fragment B on QueryRoot { ...A }",
        );
        assert_eq!((measured.root_fields, measured.depth), (1, 2));
    }

    #[test]
    fn fragments_spread_at_every_level_are_walked_once_and_counts_saturate() {
        let mut query = String::from("{ ...F0 }");
        for level in 0..70 {
            query.push_str(&format!(" fragment F{level} on QueryRoot {{ ...F{next} ...F{next} }}", next = level + 1));
        }
        query.push_str(" fragment F70 on QueryRoot { viewer { subject } }");
        let measured = shape(&query);
        assert_eq!(measured.depth, 2);
        assert!(measured.root_fields > 1 << 60, "{}", measured.root_fields);
    }
}
