//! Opening a stored credential's secret, shared by the issue path, restores, verification and the token broker.
//! A leaf: it uses no other module of the service.

use cdvault_domain::credential::{SecretSlot, StoredCredential};
use cdvault_domain::crypto::Keyring;
use zeroize::Zeroizing;

use crate::error::ApiError;

/// The secret of `stored`, opened with a keyring that holds its key version.
pub(super) fn open_secret(keyring: &Keyring, stored: &StoredCredential) -> Result<Zeroizing<String>, ApiError> {
    let bytes = SecretSlot::of(&stored.meta)
        .open(keyring, &stored.secret)
        .map_err(|e| ApiError::internal("opening a credential", e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| ApiError::internal("opening a credential", e))?;
    Ok(Zeroizing::new(text.to_owned()))
}
