use sea_orm_migration::prelude::*;

/// Talking to the marketplace: the outcome of credential checks, cached access tokens (sealed, with a fetch lease
/// shared by every replica) and the stored feed of credential changes that tools subscribe to.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sellers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CredentialVersions {
    Table,
    Verification,
    VerificationReason,
    VerifiedAt,
}

#[derive(DeriveIden)]
enum AccessTokens {
    Table,
    Id,
    SellerId,
    Kind,
    CredentialVersion,
    KeyVersion,
    Nonce,
    Ciphertext,
    FetchedAt,
    ExpiresAt,
    LeaseOwner,
    LeaseUntil,
}

#[derive(DeriveIden)]
enum CredentialChanges {
    Table,
    Seq,
    SellerId,
    SellerLogin,
    Kind,
    Version,
    Change,
    ChangedBy,
    OccurredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            ColumnDef::new(CredentialVersions::Verification).string_len(16).null().to_owned(),
            ColumnDef::new(CredentialVersions::VerificationReason).string_len(64).null().to_owned(),
            ColumnDef::new(CredentialVersions::VerifiedAt).timestamp_with_time_zone().null().to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table(CredentialVersions::Table).add_column(&mut column).to_owned())
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(AccessTokens::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AccessTokens::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(AccessTokens::SellerId).uuid().not_null())
                    .col(ColumnDef::new(AccessTokens::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(AccessTokens::CredentialVersion).integer().null())
                    .col(ColumnDef::new(AccessTokens::KeyVersion).integer().null())
                    .col(ColumnDef::new(AccessTokens::Nonce).binary().null())
                    .col(ColumnDef::new(AccessTokens::Ciphertext).binary().null())
                    .col(ColumnDef::new(AccessTokens::FetchedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(AccessTokens::ExpiresAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(AccessTokens::LeaseOwner).uuid().null())
                    .col(ColumnDef::new(AccessTokens::LeaseUntil).timestamp_with_time_zone().null())
                    .check(Expr::col(AccessTokens::Kind).is_in(["MARKETPLACE_API", "OCTOPIA"]))
                    // A token row holds all of its sealed parts or none of them.
                    .check(
                        Expr::col(AccessTokens::Ciphertext)
                            .is_null()
                            .and(Expr::col(AccessTokens::KeyVersion).is_null())
                            .and(Expr::col(AccessTokens::ExpiresAt).is_null())
                            .or(Expr::col(AccessTokens::Ciphertext)
                                .is_not_null()
                                .and(Expr::col(AccessTokens::KeyVersion).is_not_null())
                                .and(Expr::col(AccessTokens::Nonce).is_not_null())
                                .and(Expr::col(AccessTokens::ExpiresAt).is_not_null())
                                .and(Expr::col(AccessTokens::FetchedAt).is_not_null())
                                .and(Expr::col(AccessTokens::CredentialVersion).is_not_null())),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("access_tokens_seller_fk")
                            .from(AccessTokens::Table, AccessTokens::SellerId)
                            .to(Sellers::Table, Sellers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("access_tokens_seller_kind_key")
                    .table(AccessTokens::Table)
                    .col(AccessTokens::SellerId)
                    .col(AccessTokens::Kind)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("access_tokens_key_version_idx")
                    .table(AccessTokens::Table)
                    .col(AccessTokens::KeyVersion)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CredentialChanges::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(CredentialChanges::Seq).big_integer().not_null().primary_key())
                    .col(ColumnDef::new(CredentialChanges::SellerId).uuid().not_null())
                    .col(ColumnDef::new(CredentialChanges::SellerLogin).string_len(64).not_null())
                    .col(ColumnDef::new(CredentialChanges::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(CredentialChanges::Version).integer().not_null())
                    .col(ColumnDef::new(CredentialChanges::Change).string_len(16).not_null())
                    .col(ColumnDef::new(CredentialChanges::ChangedBy).string_len(256).not_null())
                    .col(ColumnDef::new(CredentialChanges::OccurredAt).timestamp_with_time_zone().not_null())
                    .check(Expr::col(CredentialChanges::Seq).gt(0))
                    .check(Expr::col(CredentialChanges::Change).is_in(["STORED", "RESTORED", "REJECTED"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("credential_changes_seller_seq_idx")
                    .table(CredentialChanges::Table)
                    .col(CredentialChanges::SellerLogin)
                    .col(CredentialChanges::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [CredentialChanges::Table.into_iden(), AccessTokens::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        for column in [
            CredentialVersions::VerifiedAt.into_iden(),
            CredentialVersions::VerificationReason.into_iden(),
            CredentialVersions::Verification.into_iden(),
        ] {
            manager.alter_table(Table::alter().table(CredentialVersions::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
