//! GraphQL operations that several test files send, named once. An operation only one file sends stays in that
//! file, next to the assertions that read its answer.

/// Registers `$login` (display name "Shop"); selects `id login apiLogin status`.
pub const REGISTER_SELLER: &str = "mutation($login: String!) { registerSellerAccount(input: {login: $login, displayName: \"Shop\"}) { id login apiLogin status } }";

/// Stores `$i` (a `StoreApiCredentialInput`, whose `verify` says whether to ask the marketplace first).
pub const STORE_API_CREDENTIAL: &str = "mutation($i: StoreApiCredentialInput!) { storeApiCredential(input: $i) { credential { id version keyVersion kind restoredFrom lastVerification { outcome reason } } warnings } }";

/// Stores `$i` (a `StoreOctopiaCredentialInput`, whose `verify` says whether to ask the marketplace first).
pub const STORE_OCTOPIA_CREDENTIAL: &str = "mutation($i: StoreOctopiaCredentialInput!) { storeOctopiaCredential(input: $i) { credential { id version clientId octopiaSellerId lastVerification { outcome } } warnings } }";

/// Issues the Marketplace API password of `$login` for "nightly order sync".
pub const ISSUE_API_CREDENTIAL: &str = "mutation($login: String!) { issueApiCredential(sellerLogin: $login, purpose: \"nightly order sync\") { sellerLogin apiLogin password version issuedAt } }";

/// Issues the Octopia client of `$login` for "catalogue sync".
pub const ISSUE_OCTOPIA_CREDENTIAL: &str = "mutation($login: String!) { issueOctopiaCredential(sellerLogin: $login, purpose: \"catalogue sync\") { clientId clientSecret sellerId version } }";

/// The newest 100 audit events, filtered by `$seller`, `$action` and `$subject`.
pub const AUDIT_EVENTS: &str = "query($seller: String, $action: String, $subject: String) { auditEvents(first: 100, sellerLogin: $seller, action: $action, subject: $subject) { edges { node { seq subject action sellerLogin purpose outcome reason detail details issuer requestId callerRequestId recordVersion } } } }";

/// Who the token is.
pub const VIEWER: &str = "{ viewer { subject } }";

/// The versions kept of `$login`'s credentials, newest first.
pub const CREDENTIAL_VERSIONS: &str =
    "query($login: String!) { sellerAccount(login: $login) { credentialVersions { version } } }";

/// Deactivates `$login`; selects its status.
pub const DEACTIVATE_SELLER: &str = "mutation($login: String!) { deactivateSellerAccount(login: $login) { status } }";

/// Submits `$i` (a `SubmitPayoutChangeInput`); selects the new request's id.
pub const SUBMIT_PAYOUT_CHANGE: &str =
    "mutation($i: SubmitPayoutChangeInput!) { submitPayoutChange(input: $i) { id } }";

/// A review move on request `$id` (`startPayoutReview`, `approvePayoutChange`, ...) at `expected_version`;
/// selects the id.
pub fn payout_move(mutation: &str, expected_version: i64) -> String {
    format!("mutation($id: ID!) {{ {mutation}(id: $id, expectedVersion: {expected_version}) {{ id }} }}")
}
