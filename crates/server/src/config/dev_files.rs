//! The development set-up's secret files: created on first use, readable by their owner only.

use std::path::Path;

use zeroize::Zeroizing;

use super::{ConfigError, err};

/// Reads a development secret file, or creates it (mode 0600) when allowed.
pub(super) fn read_or_create(
    path: &Path,
    generate: bool,
    make: impl FnOnce() -> Zeroizing<String>,
) -> Result<Zeroizing<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Zeroizing::new(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && generate => {
            let value = make();
            write_private(path, value.as_bytes())
                .map_err(|e| err(format!("cannot create the development secret {}: {e}", path.display())))?;
            tracing::warn!(path = %path.display(), "created a development secret file (mode 0600)");
            Ok(value)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(err(format!(
            "{} does not exist: configure the secret, or run `cdvault serve` once with this data directory to create it",
            path.display()
        ))),
        Err(e) => Err(err(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Creates the data directory readable by its owner only (it holds the development keys and database).
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}
