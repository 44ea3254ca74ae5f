//! The layers, lowest first: the optional TOML file, then the `CDVAULT_*` environment (which wins), merged by
//! figment into [`RawSettings`]. The process environment is read here, once, and only for the settings the struct
//! has: Kubernetes' service links (`CDVAULT_PORT`, `CDVAULT_SERVICE_HOST`...), `CDVAULT_CONFIG` and
//! `CDVAULT_TEST_DATABASE_URL` are never seen. Values stay text (an all-digit secret stays a string).

use std::path::Path;

use figment::error::Kind;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::raw::{self, RawSettings};
use super::{ConfigError, err};

const FILE_LAYER: &str = "the configuration file";
const ENVIRONMENT_LAYER: &str = "the environment";

/// One layer's values, named so that an error says where a bad value came from.
struct Layer {
    name: &'static str,
    values: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// Reads the TOML file named by `--config` / `CDVAULT_CONFIG` (if any), then the process environment.
pub fn load(file: Option<&Path>) -> Result<RawSettings, ConfigError> {
    let text = match file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            err(format!("cannot read the configuration file (CDVAULT_CONFIG or --config): {}", e.kind()))
        })?),
        None => None,
    };
    let environment: Vec<(&str, String)> =
        raw::SETTINGS.iter().filter_map(|setting| Some((setting.env, std::env::var(setting.env).ok()?))).collect();
    merge(text.as_deref(), environment.iter().map(|(name, value)| (*name, value.as_str())))
}

/// The host name the environment gives (`HOSTNAME`, set by Kubernetes and Docker): the default replica name of
/// the audit checkpoints. Read here, with the settings, once.
pub fn host_name() -> Option<String> {
    std::env::var("HOSTNAME").ok()
}

/// Merges a TOML text and environment pairs (tests pass both explicitly: no process environment involved).
pub fn merge<'a>(
    toml: Option<&str>,
    environment: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<RawSettings, ConfigError> {
    let file = match toml {
        Some(text) => toml_values(text)?,
        None => Dict::new(),
    };
    Figment::new()
        .merge(Layer { name: FILE_LAYER, values: file })
        .merge(Layer { name: ENVIRONMENT_LAYER, values: environment_values(environment) })
        .extract()
        .map_err(describe)
}

/// The file's keys and values. A syntax error gives the line and the parser's message only: its usual report
/// quotes the line, which may hold a secret.
fn toml_values(text: &str) -> Result<Dict, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e.span().map_or(0, |span| text[..span.start.min(text.len())].lines().count().max(1));
        err(format!("the configuration file is not valid TOML (line {line}): {}", e.message()))
    })?;
    let mut values = Dict::new();
    for (key, value) in table {
        let value = Value::serialize(&value)
            .map_err(|_| err(format!("the configuration file: '{key}' holds a value that cannot be read")))?;
        values.insert(key, value);
    }
    Ok(values)
}

/// Exactly the settings the struct has; any other `CDVAULT_*` name is ignored. An empty value is kept (it unsets
/// the file's value, as an empty value means unset).
fn environment_values<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Dict {
    pairs
        .into_iter()
        .filter_map(|(name, value)| Some((raw::by_env(name)?.key.to_owned(), Value::from(value.to_owned()))))
        .collect()
}

/// Names the setting and the layer, never the value: figment's own messages quote it.
fn describe(error: figment::Error) -> ConfigError {
    let layer = error.metadata.as_ref().map_or("the settings", |metadata| metadata.name.as_ref());
    let setting = error.path.iter().rev().find_map(|key| raw::by_key(key)).map_or("a setting", |s| s.env);
    match &error.kind {
        Kind::UnknownField(key, _) => err(format!("unknown setting '{key}' in {FILE_LAYER}")),
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
            err(format!("{setting} (from {layer}) must be {expected}"))
        }
        _ => err(format!("{setting} (from {layer}) cannot be read")),
    }
}
