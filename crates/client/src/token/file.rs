//! A token read from a file and read again when the file changes: Kubernetes projected service-account tokens,
//! which the kubelet rewrites (through a symlink swap) before they expire.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use futures::future::BoxFuture;
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::{TokenError, TokenSource};

/// The token in a file, re-read when its modification time or size changes.
pub struct FileToken {
    path: PathBuf,
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    modified: Option<SystemTime>,
    len: u64,
    token: SecretString,
}

impl FileToken {
    /// Reads the token from `path` (e.g. `/var/run/secrets/tokens/cdvault`), trimmed of surrounding whitespace.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), cached: Mutex::new(None) }
    }

    fn error(&self, source: std::io::Error) -> TokenError {
        TokenError::File { path: self.path.display().to_string(), source }
    }

    async fn read(&self) -> Result<SecretString, TokenError> {
        // `metadata` follows the symlink, so a swapped `..data` directory shows as a new file.
        let metadata = tokio::fs::metadata(&self.path).await.map_err(|e| self.error(e))?;
        let (modified, len) = (metadata.modified().ok(), metadata.len());
        if let Some(cached) = self.lock().as_ref()
            && cached.modified == modified
            && cached.len == len
            && modified.is_some()
        {
            return Ok(cached.token.clone());
        }
        let text = Zeroizing::new(tokio::fs::read_to_string(&self.path).await.map_err(|e| self.error(e))?);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(TokenError::Empty(self.path.display().to_string()));
        }
        let token = SecretString::from(trimmed.to_owned());
        *self.lock() = Some(Cached { modified, len, token: token.clone() });
        Ok(token)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        // The cache holds no invariant a panic could break: use it as it is.
        self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for FileToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileToken").field("path", &self.path).finish_non_exhaustive()
    }
}

impl TokenSource for FileToken {
    fn token(&self) -> BoxFuture<'_, Result<SecretString, TokenError>> {
        Box::pin(self.read())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use secrecy::ExposeSecret;

    use super::*;

    #[tokio::test]
    async fn a_rewritten_token_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first.token.sig\n").unwrap();
        let source = FileToken::new(&path);
        assert_eq!(source.token().await.unwrap().expose_secret(), "first.token.sig");

        // As the kubelet does: a new file swapped in, not the old one edited.
        let next = dir.path().join("token.next");
        std::fs::write(&next, "second.token.signature\n").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(source.token().await.unwrap().expose_secret(), "second.token.signature");
        assert!(!format!("{source:?}").contains("second"));
    }

    #[tokio::test]
    async fn a_missing_or_empty_file_is_a_transient_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let source = FileToken::new(&path);
        assert!(source.token().await.unwrap_err().is_transient());
        std::fs::write(&path, "  \n").unwrap();
        assert!(matches!(source.token().await.unwrap_err(), TokenError::Empty(_)));
    }
}
