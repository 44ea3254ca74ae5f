//! The development set-up's files (no `CDVAULT_DATABASE_URL`): the data directory, the root key and the HS256
//! secret, created on first start, readable by their owner only. [`prepare`] is the one place that creates them,
//! called once by `serve` after every setting has been validated; everything else only reads them.

use std::path::Path;

use base64::Engine;
use cdvault_domain::crypto::RootKey;
use rand::RngCore;
use zeroize::Zeroizing;

use super::{ConfigError, err};

/// The development root key, in the data directory.
pub const ROOT_KEY_FILE: &str = "root.key";
/// The development HS256 secret, in the data directory.
pub const JWT_SECRET_FILE: &str = "jwt-hs256.secret";
/// The development SQLite database, in the data directory.
pub const DATABASE_FILE: &str = "cdvault.db";

/// Which development files `serve` needs made: those whose setting is not configured.
#[derive(Debug, Clone, Copy)]
pub struct Needed<'a> {
    pub data_dir: &'a Path,
    pub root_key: bool,
    pub hs256_secret: bool,
}

/// Creates the data directory and the missing development secrets. Existing files are kept as they are.
pub fn prepare(needed: Needed<'_>) -> Result<(), ConfigError> {
    create_data_dir(needed.data_dir)?;
    if needed.root_key {
        create_if_absent(needed.data_dir, ROOT_KEY_FILE, RootKey::generate_base64)?;
    }
    if needed.hs256_secret {
        create_if_absent(needed.data_dir, JWT_SECRET_FILE, || {
            let mut bytes = Zeroizing::new([0u8; 48]);
            rand::rng().fill_bytes(bytes.as_mut_slice());
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()))
        })?;
    }
    Ok(())
}

/// Creates the data directory readable by its owner only (it holds the development keys and database).
pub fn create_data_dir(dir: &Path) -> Result<(), ConfigError> {
    create_private_dir(dir).map_err(|e| err(format!("CDVAULT_DATA_DIR: cannot create the directory: {}", e.kind())))
}

/// Reads a development secret; never creates it.
pub fn read(data_dir: &Path, file: &str) -> Result<Zeroizing<String>, ConfigError> {
    match std::fs::read_to_string(data_dir.join(file)) {
        Ok(text) => Ok(Zeroizing::new(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(err(format!(
            "the development secret {file} does not exist in CDVAULT_DATA_DIR: configure the secret, or run \
             `cdvault serve` once with this data directory to create it"
        ))),
        Err(e) => Err(err(format!("cannot read the development secret {file} in CDVAULT_DATA_DIR: {}", e.kind()))),
    }
}

fn create_if_absent(dir: &Path, file: &str, make: impl FnOnce() -> Zeroizing<String>) -> Result<(), ConfigError> {
    let path = dir.join(file);
    if path.exists() {
        return Ok(());
    }
    match write_private(&path, make().as_bytes()) {
        Ok(()) => {
            tracing::warn!(path = %path.display(), "created a development secret file (mode 0600)");
            Ok(())
        }
        // Another process made it first: theirs is the one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err(format!("cannot create the development secret {file} in CDVAULT_DATA_DIR: {}", e.kind()))),
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
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
