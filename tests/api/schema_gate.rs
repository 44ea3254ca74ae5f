//! The breaking-change gate (`.ci/schema-gate`) on scratch copies of the schema and the changelog: a removed field
//! fails it until the changelog announces the removal under Breaking.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cdvault_tests::tools::node_modules;

/// The checked-in schema, as the released one of these scratch runs.
fn released() -> String {
    std::fs::read_to_string(root().join("schema.graphql")).unwrap()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Runs the gate on `current` against the released schema, with `changelog`.
fn gate(modules: &Path, current: &str, changelog: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (old, new, log) =
        (write("released.graphql", &released()), write("schema.graphql", current), write("CHANGELOG.md", changelog));
    Command::new("bash")
        .arg(root().join(".ci/schema-gate"))
        .args([&old, &new, &log])
        .env("CDVAULT_NODE_MODULES", modules)
        .output()
        .unwrap()
}

/// The schema without `Query.viewer` (and its description).
fn without_viewer() -> String {
    let field = concat!(
        "\t\"\"\"\n",
        "\tThe caller, as its token and the access grants it matched describe it. Needs a valid token.\n",
        "\t\"\"\"\n",
        "\tviewer: Viewer!\n",
    );
    let schema = released();
    assert!(schema.contains(field), "schema.graphql no longer has this Query.viewer: update the test");
    schema.replacen(field, "", 1)
}

/// A changelog whose `[Unreleased]` Breaking section says `breaking`; `Query.viewer` appears elsewhere, where it
/// does not count.
fn changelog(breaking: &str) -> String {
    [
        "# Changelog",
        "## [Unreleased]",
        "### Breaking",
        breaking,
        "### Added",
        "- `Query.viewer` mentioned here does not count.",
        "## [0.1.0]",
        "### Breaking",
        "- `Query.viewer` in a released section does not count either.",
    ]
    .join("\n\n")
}

#[test]
fn an_unchanged_schema_passes_the_gate() {
    let Some(modules) = node_modules("an_unchanged_schema_passes_the_gate") else { return };
    let output = gate(&modules, &released(), &changelog("- nothing"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_removed_field_fails_the_gate_until_the_changelog_lists_it_under_breaking() {
    let test = "a_removed_field_fails_the_gate_until_the_changelog_lists_it_under_breaking";
    let Some(modules) = node_modules(test) else { return };

    let refused = gate(&modules, &without_viewer(), &changelog("- nothing"));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "the gate let an unannounced removal through");
    assert!(stderr.contains("`Query.viewer`"), "the refusal names the change: {stderr}");

    let announced = gate(&modules, &without_viewer(), &changelog("- `Query.viewer` is removed: read `Query.me`."));
    assert!(announced.status.success(), "{}", String::from_utf8_lossy(&announced.stderr));
}
