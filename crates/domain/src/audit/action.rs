//! What an audit event records was done. The strings are stored, filtered on and covered by the chain's hashes:
//! they never change.

use crate::codes::stable_codes;
use crate::payout::PayoutMove;

stable_codes! {
    /// An audited act.
    pub enum AuditAction {
        /// Presenting a bearer token (only refusals are recorded).
        Authenticate = "authenticate",
        /// Asking who the token is (the `viewer` query; only refusals are recorded).
        Viewer = "viewer",
        SellerRegister = "seller.register",
        SellerDeactivate = "seller.deactivate",
        SellerReactivate = "seller.reactivate",
        SellerRead = "seller.read",
        CredentialStore = "credential.store",
        CredentialRestore = "credential.restore",
        CredentialIssue = "credential.issue",
        CredentialVerify = "credential.verify",
        /// The marketplace rejected a stored credential while a token was being fetched for it.
        CredentialRejected = "credential.rejected",
        TokenIssue = "token.issue",
        /// Subscribing to credential changes (only refusals are recorded).
        CredentialChanges = "credential.changes",
        AuditRead = "audit.read",
        /// Moving the oldest events to an archive file (`cdvault audit archive`); recorded in the live table.
        AuditArchive = "audit.archive",
        /// Reading the keyring and its census.
        KeysRead = "keys.read",
        /// A rotation: a new keyring version and the rewrap job that moves every ciphertext to it.
        KeysRotate = "keys.rotate",
        /// The end of a rewrap job (outcome `SUCCESS`, or `FAILED` with the rows it could not rewrap).
        KeysRewrap = "keys.rewrap",
        /// Retiring a keyring version (its material destroyed).
        KeysRetire = "keys.retire",
        /// Re-wrapping the keyring under a new root key (from the command line, servers stopped).
        KeysRotateRoot = "keys.rotate_root",
        PayoutSubmit = "payout.submit",
        PayoutRead = "payout.read",
        PayoutReveal = "payout.reveal",
        // The moves of a payout change request: `payout.<move>` (see `AuditAction::payout`).
        PayoutStartReview = "payout.start_review",
        PayoutRequestDocuments = "payout.request_documents",
        PayoutResumeReview = "payout.resume_review",
        PayoutApprove = "payout.approve",
        PayoutReject = "payout.reject",
        PayoutCancel = "payout.cancel",
        /// Creating an access grant.
        AccessGrant = "access.grant",
        /// Deleting an access grant.
        AccessRevokeGrant = "access.revoke_grant",
        /// Reading the access grants (only refusals are recorded).
        AccessRead = "access.read",
        /// Revoking one token (issuer and `jti`).
        AccessRevokeToken = "access.revoke_token",
        /// Revoking every token of an identity issued before a time.
        AccessRevokeSubject = "access.revoke_subject",
        /// Freezing the vault (and refusals of secret-bearing acts while it is frozen are recorded under their own
        /// action with reason `FROZEN`).
        VaultFreeze = "vault.freeze",
        VaultUnfreeze = "vault.unfreeze",
        /// Registering a webhook endpoint.
        WebhookCreate = "webhook.create",
        /// Giving a webhook endpoint a new signing secret (the old one kept for an overlap).
        WebhookRotateSecret = "webhook.rotate_secret",
        /// Removing a webhook endpoint.
        WebhookDelete = "webhook.delete",
        /// Queueing dead-lettered deliveries again.
        WebhookReplay = "webhook.replay",
        /// Reading webhook endpoints and their dead letters (only refusals are recorded).
        WebhookRead = "webhook.read",
    }
}

impl AuditAction {
    /// The action of a move of a payout change request, `payout.<move>`, e.g. `payout.approve`.
    pub fn payout(mv: PayoutMove) -> Self {
        match mv {
            PayoutMove::StartReview => Self::PayoutStartReview,
            PayoutMove::RequestDocuments => Self::PayoutRequestDocuments,
            PayoutMove::ResumeReview => Self::PayoutResumeReview,
            PayoutMove::Approve => Self::PayoutApprove,
            PayoutMove::Reject => Self::PayoutReject,
            PayoutMove::Cancel => Self::PayoutCancel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_action_has_its_own_string() {
        let strings: HashSet<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(strings.len(), AuditAction::ALL.len());
    }

    #[test]
    fn every_action_reads_back_from_its_string() {
        for &action in AuditAction::ALL {
            assert_eq!(action.as_str().parse::<AuditAction>(), Ok(action));
            assert_eq!(action.to_string(), action.as_str());
        }
        assert!("credential.unknown".parse::<AuditAction>().is_err());
    }

    #[test]
    fn a_payout_move_is_audited_as_payout_dot_its_name() {
        for mv in PayoutMove::ALL {
            assert_eq!(AuditAction::payout(mv).as_str(), format!("payout.{}", mv.as_str()));
        }
    }

    /// The chain's hashes cover these strings: changing one would break every chain that holds it.
    #[test]
    fn the_stored_action_strings_are_the_ones_recorded_so_far() {
        let strings: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            strings,
            [
                "authenticate",
                "viewer",
                "seller.register",
                "seller.deactivate",
                "seller.reactivate",
                "seller.read",
                "credential.store",
                "credential.restore",
                "credential.issue",
                "credential.verify",
                "credential.rejected",
                "token.issue",
                "credential.changes",
                "audit.read",
                "audit.archive",
                "keys.read",
                "keys.rotate",
                "keys.rewrap",
                "keys.retire",
                "keys.rotate_root",
                "payout.submit",
                "payout.read",
                "payout.reveal",
                "payout.start_review",
                "payout.request_documents",
                "payout.resume_review",
                "payout.approve",
                "payout.reject",
                "payout.cancel",
                "access.grant",
                "access.revoke_grant",
                "access.read",
                "access.revoke_token",
                "access.revoke_subject",
                "vault.freeze",
                "vault.unfreeze",
                "webhook.create",
                "webhook.rotate_secret",
                "webhook.delete",
                "webhook.replay",
                "webhook.read",
            ]
        );
    }
}
