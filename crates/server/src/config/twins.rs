//! A secret given inline (`NAME`) or through its `_FILE` twin, which names a file (a mounted Docker or Kubernetes
//! secret): one helper for every such pair, so each pair follows the same rules.

use zeroize::Zeroizing;

use super::raw::Text;
use super::{ConfigError, err};

/// A setting and its `_FILE` twin, as given.
#[derive(Debug, Clone, Copy)]
pub struct Twin<'a> {
    /// The environment name of the inline setting, e.g. `CDVAULT_ROOT_KEY`.
    pub name: &'static str,
    pub inline: Option<&'a Text>,
    pub file: Option<&'a Text>,
}

/// The secret's text, trimmed; `None` when neither is set. Both set is an error.
pub fn read(twin: Twin<'_>) -> Result<Option<Zeroizing<String>>, ConfigError> {
    let name = twin.name;
    match (Text::present(twin.inline), Text::present(twin.file)) {
        (Some(_), Some(_)) => Err(err(format!("{name} and {name}_FILE are both set: set one of them"))),
        (Some(value), None) => Ok(Some(Zeroizing::new(value.trim().to_owned()))),
        (None, Some(path)) => {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| err(format!("{name}_FILE: cannot read the file: {}", e.kind())))?,
            );
            Ok(Some(Zeroizing::new(text.trim().to_owned())))
        }
        (None, None) => Ok(None),
    }
}
