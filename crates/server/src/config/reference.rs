//! The configuration reference (`docs/configuration.md`), generated from the list of settings by
//! `cdvault config-reference` and checked for drift in CI, like `schema.graphql`. The prose around the table is
//! `reference.md` beside this file.

use super::raw::{CONFIG_FILE, SETTINGS, Setting};

const TEMPLATE: &str = include_str!("reference.md");

/// The Markdown reference of every setting.
pub fn markdown() -> String {
    let mut table = String::from("| Setting | Meaning | Default | Secret |\n|---|---|---|---|\n");
    for setting in SETTINGS.iter().chain([&CONFIG_FILE]) {
        table.push_str(&row(setting));
    }
    TEMPLATE.replacen("{{settings}}\n", &table, 1)
}

fn row(setting: &Setting) -> String {
    let secret = if setting.secret { "yes" } else { "" };
    format!("| `{}` | {} | {} | {secret} |\n", setting.env, setting.meaning, setting.default)
}
