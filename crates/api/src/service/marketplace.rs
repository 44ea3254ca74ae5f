//! The marketplace as the use cases see it: the client and clock, how to ask for a token with a stored credential,
//! and what an answer means (shared by verification, the token broker and access tokens).

use std::sync::Arc;

use cdvault_cdiscount::{AccessToken, MarketplaceError};
use cdvault_domain::Reason;
use cdvault_domain::clock::Clock;
use cdvault_domain::credential::{CredentialKind, StoredCredential, Verification, VerificationOutcome};
use cdvault_domain::seller::SellerLogin;
use secrecy::SecretString;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The marketplace client and the clock the token broker goes by.
#[derive(Debug, Clone)]
pub struct Marketplace {
    pub client: cdvault_cdiscount::Client,
    pub clock: Arc<dyn Clock>,
}

/// Asks the marketplace for a token with a credential's secret.
pub(super) async fn ask(
    marketplace: &Marketplace,
    login: &SellerLogin,
    stored: &StoredCredential,
    secret: &Zeroizing<String>,
) -> Result<AccessToken, MarketplaceError> {
    let secret = SecretString::from(secret.as_str().to_owned());
    let (endpoint, answer) = match stored.meta.kind {
        CredentialKind::MarketplaceApi => ("sts", marketplace.client.sts_token(&login.api_login(), &secret).await),
        CredentialKind::Octopia => {
            let client_id = stored.meta.client_id.as_deref().unwrap_or_default();
            ("octopia", marketplace.client.octopia_token(client_id, &secret).await)
        }
    };
    let outcome = match &answer {
        Ok(_) => "ok",
        Err(MarketplaceError::Rejected { .. }) => "rejected",
        Err(MarketplaceError::Unavailable { .. }) => "unavailable",
    };
    crate::metrics::marketplace_call(endpoint, outcome);
    answer
}

/// What an answer of the marketplace says of the credential it was asked with.
pub(super) fn verification_of(
    result: &Result<AccessToken, MarketplaceError>,
    checked_at: OffsetDateTime,
) -> Verification {
    let (outcome, reason) = match result {
        Ok(_) => (VerificationOutcome::Verified, None),
        Err(MarketplaceError::Rejected { reason }) => (VerificationOutcome::Rejected, Some((*reason).to_owned())),
        Err(MarketplaceError::Unavailable { reason, .. }) => {
            (VerificationOutcome::Unreachable, Some((*reason).to_owned()))
        }
    };
    Verification { outcome, reason, checked_at }
}

/// The reason a stored version was rejected by the marketplace, if it was.
pub(super) fn rejection(stored: &StoredCredential) -> Option<&'static str> {
    let verification = stored.meta.verification.as_ref()?;
    (verification.outcome == VerificationOutcome::Rejected).then_some(Reason::RejectedEarlier.as_str())
}
