use async_graphql::{Context, ID, Object};
use cdvault_domain::seller::SellerStatus;
use secrecy::SecretString;

use super::marketplace_types::{CredentialVerification, IssuedAccessToken};
use super::payout_types::{KycDocument, PayoutChangeRequest, PayoutDetails, SubmitPayoutChangeInput};
use super::types::{
    CredentialKind, CredentialVersion, EncryptionKey, IssuedApiCredential, IssuedOctopiaCredential,
    RegisterSellerAccountInput, RotationJob, SellerAccount, StoreApiCredentialInput, StoreApiCredentialPayload,
    StoreOctopiaCredentialInput, StoreOctopiaCredentialPayload,
};
use super::{IntoGraphql, request};
use crate::service::{MoveInput, NewOctopiaCredential, NewPayoutChange};
use cdvault_domain::payout::PayoutMove;

/// Writes, and every act with a side effect (issuing a credential writes the audit trail).
#[derive(Debug, Default)]
pub struct MutationRoot;

/// Writes, and every act with a side effect (issuing a credential writes the audit trail).
#[Object(name = "Mutation")]
impl MutationRoot {
    /// Registers a seller account. Needs `credentials:write`. A login already registered is `CONFLICT`.
    async fn register_seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The login and display name of the new account.")] input: RegisterSellerAccountInput,
    ) -> async_graphql::Result<SellerAccount> {
        let (vault, caller) = request(ctx)?;
        vault.register_seller(caller, &input.login, &input.display_name).await.map(SellerAccount).gql(caller)
    }

    /// Stops all issuing for a seller (issues are then `FORBIDDEN` with reason `SELLER_INACTIVE`). Deletes nothing.
    /// Needs `credentials:write`.
    async fn deactivate_seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] login: String,
    ) -> async_graphql::Result<SellerAccount> {
        let (vault, caller) = request(ctx)?;
        vault.set_seller_status(caller, &login, SellerStatus::Inactive).await.map(SellerAccount).gql(caller)
    }

    /// Lets a deactivated seller's credentials be issued again. Needs `credentials:write`.
    async fn reactivate_seller_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] login: String,
    ) -> async_graphql::Result<SellerAccount> {
        let (vault, caller) = request(ctx)?;
        vault.set_seller_status(caller, &login, SellerStatus::Active).await.map(SellerAccount).gql(caller)
    }

    /// Stores a new Marketplace API password (a new version). Needs `credentials:write`. Breaches of Cdiscount's
    /// password policy come back as `warnings`, not errors.
    async fn store_api_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller and the new password.")] input: StoreApiCredentialInput,
    ) -> async_graphql::Result<StoreApiCredentialPayload> {
        let (vault, caller) = request(ctx)?;
        let password = SecretString::from(input.password);
        let stored =
            vault.store_api_credential(caller, &input.seller_login, password, input.verify).await.gql(caller)?;
        Ok(StoreApiCredentialPayload { credential: CredentialVersion(stored.credential), warnings: stored.warnings })
    }

    /// Stores new Octopia client credentials (a new version). Needs `credentials:write`.
    async fn store_octopia_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller and the new Octopia client credentials.")] input: StoreOctopiaCredentialInput,
    ) -> async_graphql::Result<StoreOctopiaCredentialPayload> {
        let (vault, caller) = request(ctx)?;
        let secret = SecretString::from(input.client_secret);
        let new = NewOctopiaCredential {
            seller_login: &input.seller_login,
            client_id: &input.client_id,
            client_secret: secret,
            seller_id: &input.seller_id,
            verify: input.verify,
        };
        let meta = vault.store_octopia_credential(caller, new).await.gql(caller)?;
        Ok(StoreOctopiaCredentialPayload { credential: CredentialVersion(meta), warnings: Vec::new() })
    }

    /// Makes a new version equal to a kept older one (the rollback after a mistyped reset). Needs
    /// `credentials:write`.
    async fn restore_credential_version(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Which credential to roll back.")] kind: CredentialKind,
        #[graphql(desc = "The kept version to copy (see `SellerAccount.credentialVersions`).")] version: i32,
    ) -> async_graphql::Result<CredentialVersion> {
        let (vault, caller) = request(ctx)?;
        vault
            .restore_credential_version(caller, &seller_login, kind.into(), version)
            .await
            .map(CredentialVersion)
            .gql(caller)
    }

    /// Issues the newest Marketplace API credential of a seller. Needs `credentials:read` and a token that reaches
    /// the seller; the seller must be active. Recorded in the audit trail before it is returned.
    async fn issue_api_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Why the credential is needed (recorded in the audit trail).")] purpose: String,
    ) -> async_graphql::Result<IssuedApiCredential> {
        let (vault, caller) = request(ctx)?;
        vault.issue_api_credential(caller, &seller_login, &purpose).await.map(IssuedApiCredential).gql(caller)
    }

    /// Issues the newest Octopia client credentials of a seller. Same rules as `issueApiCredential`.
    async fn issue_octopia_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Why the credential is needed (recorded in the audit trail).")] purpose: String,
    ) -> async_graphql::Result<IssuedOctopiaCredential> {
        let (vault, caller) = request(ctx)?;
        vault.issue_octopia_credential(caller, &seller_login, &purpose).await.map(IssuedOctopiaCredential).gql(caller)
    }

    /// Asks the marketplace whether the newest credential of a seller works, and records the answer on that version
    /// (see `CredentialVersion.lastVerification`). Needs `credentials:write`. Without `kind`, a seller that has
    /// both is checked on Octopia. `REJECTED` also stops token brokering for that version and tells subscribers.
    async fn verify_credential(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Which credential to check; default Octopia when the seller has it.")] kind: Option<
            CredentialKind,
        >,
    ) -> async_graphql::Result<CredentialVerification> {
        let (vault, caller) = request(ctx)?;
        vault
            .verify_credential(caller, &seller_login, kind.map(Into::into))
            .await
            .map(CredentialVerification)
            .gql(caller)
    }

    /// A short-lived marketplace access token for a seller, so the tool never holds the password. Needs
    /// `credentials:read` and a token that reaches the seller; the seller must be active. The vault fetches each
    /// token once for every tool and replica, reuses it until a margin before expiry and refreshes it ahead of time.
    /// A credential the marketplace rejected is `CONFLICT` (reason `MARKETPLACE_REJECTED`); a marketplace that
    /// cannot be reached is `UPSTREAM_UNAVAILABLE`. Recorded in the audit trail before it is returned.
    async fn issue_access_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Why the token is needed (recorded in the audit trail).")] purpose: String,
        #[graphql(desc = "Which API; default Octopia when the seller has it (the legacy API is being retired).")]
        kind: Option<CredentialKind>,
    ) -> async_graphql::Result<IssuedAccessToken> {
        let (vault, caller) = request(ctx)?;
        vault
            .issue_access_token(caller, &seller_login, &purpose, kind.map(Into::into))
            .await
            .map(IssuedAccessToken)
            .gql(caller)
    }

    /// Rotates the encryption key: makes a new keyring version `ACTIVE` (the old one becomes `DECRYPT_ONLY`) and
    /// starts the job that rewraps every ciphertext to it, online, in batches. Needs `keys:admin`. `CONFLICT` while
    /// a job runs. Follow it with `rotationJob` and `encryptionKeys`.
    async fn rotate_encryption_key(&self, ctx: &Context<'_>) -> async_graphql::Result<RotationJob> {
        let (vault, caller) = request(ctx)?;
        vault.rotate_encryption_key(caller).await.map(|job| RotationJob(job, Vec::new())).gql(caller)
    }

    /// Retires a `DECRYPT_ONLY` keyring version: its key material is destroyed and nothing sealed under it can be
    /// opened again. Needs `keys:admin`. `CONFLICT` while any ciphertext uses it (the message gives the count) or a
    /// rotation job runs, and for the active version.
    async fn retire_encryption_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The keyring version to retire (see `encryptionKeys`).")] version: i32,
    ) -> async_graphql::Result<EncryptionKey> {
        let (vault, caller) = request(ctx)?;
        vault.retire_encryption_key(caller, version).await.map(EncryptionKey).gql(caller)
    }

    /// Submits new payout bank details for review (`SUBMITTED`). Needs `kyc:submit`. The IBAN, BIC and holder are
    /// validated (each error names its field and reason) and stored encrypted. A seller with an open request gets
    /// `CONFLICT` naming it. The active payout account does not change until a reviewer approves.
    async fn submit_payout_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller and the new bank details.")] input: SubmitPayoutChangeInput,
    ) -> async_graphql::Result<PayoutChangeRequest> {
        let (vault, caller) = request(ctx)?;
        vault
            .submit_payout_change(
                caller,
                NewPayoutChange {
                    seller_login: &input.seller_login,
                    iban: &input.iban,
                    bic: &input.bic,
                    account_holder: &input.account_holder,
                },
            )
            .await
            .map(PayoutChangeRequest)
            .gql(caller)
    }

    /// Takes a submitted request into review (`IN_REVIEW`). Needs `kyc:review`; not by its submitter.
    async fn start_payout_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
    ) -> async_graphql::Result<PayoutChangeRequest> {
        move_request(ctx, PayoutMove::StartReview, &id, expected_version, None, Vec::new()).await
    }

    /// Asks the seller for documents (`DOCUMENTS_REQUESTED`). Needs `kyc:review`; not by its submitter.
    async fn request_payout_documents(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
        #[graphql(desc = "The documents asked for (at least one).")] documents: Vec<KycDocument>,
        #[graphql(desc = "A note for the seller, e.g. what is wrong with the last document.")] note: Option<String>,
    ) -> async_graphql::Result<PayoutChangeRequest> {
        let documents = documents.into_iter().map(Into::into).collect();
        move_request(ctx, PayoutMove::RequestDocuments, &id, expected_version, note.as_deref(), documents).await
    }

    /// Resumes the review once the documents arrived (`IN_REVIEW`). Needs `kyc:review`; not by its submitter.
    async fn resume_payout_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
        #[graphql(desc = "A note, e.g. which documents were received.")] note: Option<String>,
    ) -> async_graphql::Result<PayoutChangeRequest> {
        move_request(ctx, PayoutMove::ResumeReview, &id, expected_version, note.as_deref(), Vec::new()).await
    }

    /// Approves the change (`APPROVED`): in the same transaction the new details become the seller's active payout
    /// account and the previous one is kept as history. Needs `kyc:review`; never by the submitter (four-eyes).
    async fn approve_payout_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
        #[graphql(desc = "A note for the timeline.")] note: Option<String>,
    ) -> async_graphql::Result<PayoutChangeRequest> {
        move_request(ctx, PayoutMove::Approve, &id, expected_version, note.as_deref(), Vec::new()).await
    }

    /// Rejects the change (`REJECTED`); the active payout account stays. Needs `kyc:review`; not by its submitter.
    async fn reject_payout_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
        #[graphql(desc = "Why (required; recorded on the timeline).")] reason: String,
    ) -> async_graphql::Result<PayoutChangeRequest> {
        move_request(ctx, PayoutMove::Reject, &id, expected_version, Some(&reason), Vec::new()).await
    }

    /// Withdraws the request before a decision (`CANCELLED`). Needs `kyc:submit`; only by its submitter.
    async fn cancel_payout_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] id: ID,
        #[graphql(desc = "The version last read; a stale one is `CONFLICT`.")] expected_version: i32,
    ) -> async_graphql::Result<PayoutChangeRequest> {
        move_request(ctx, PayoutMove::Cancel, &id, expected_version, None, Vec::new()).await
    }

    /// Shows a request's bank details in full. Needs `kyc:review`; recorded in the audit trail (with `purpose`)
    /// before they are returned.
    async fn reveal_payout_details(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request id.")] request_id: ID,
        #[graphql(desc = "Why they are needed (recorded in the audit trail).")] purpose: String,
    ) -> async_graphql::Result<PayoutDetails> {
        let (vault, caller) = request(ctx)?;
        vault.reveal_payout_details(caller, &request_id, &purpose).await.map(PayoutDetails).gql(caller)
    }

    /// Shows a seller's active payout account in full. Needs `kyc:review`; recorded in the audit trail (with
    /// `purpose`) before it is returned.
    async fn reveal_payout_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The seller login.")] seller_login: String,
        #[graphql(desc = "Why it is needed (recorded in the audit trail).")] purpose: String,
    ) -> async_graphql::Result<PayoutDetails> {
        let (vault, caller) = request(ctx)?;
        vault.reveal_payout_account(caller, &seller_login, &purpose).await.map(PayoutDetails).gql(caller)
    }
}

async fn move_request(
    ctx: &Context<'_>,
    mv: PayoutMove,
    id: &str,
    expected_version: i32,
    note: Option<&str>,
    documents: Vec<cdvault_domain::payout::KycDocument>,
) -> async_graphql::Result<PayoutChangeRequest> {
    let (vault, caller) = request(ctx)?;
    let input = MoveInput { id, expected_version, note, documents };
    vault.move_payout_change(caller, mv, input).await.map(PayoutChangeRequest).gql(caller)
}
