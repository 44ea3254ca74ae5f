//! The `[jwt]` table of the TOML file as written (`[[jwt.issuers]]`): read by the raw settings, validated by
//! [`issuers`](super::issuers). Its own module so that neither of those imports the other.

use std::path::PathBuf;

use serde::Deserialize;

/// The `[jwt]` table of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtTable {
    pub issuers: Vec<TomlIssuer>,
}

/// One `[[jwt.issuers]]` table, as written. Names files, never holds a secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TomlIssuer {
    pub(super) issuer: String,
    pub(super) audience: String,
    #[serde(default)]
    pub(super) algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub(super) hs256_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) public_key_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) jwks_url: Option<String>,
    #[serde(default)]
    pub(super) discovery: Option<bool>,
    #[serde(default)]
    pub(super) jwks_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) ca_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) mode: Option<String>,
}
