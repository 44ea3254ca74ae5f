use sea_orm_migration::prelude::*;

/// Seller accounts, versioned encrypted credentials, the keyring and the hash-chained audit trail.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sellers {
    Table,
    Id,
    Login,
    DisplayName,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CredentialVersions {
    Table,
    Id,
    SellerId,
    Kind,
    Version,
    KeyVersion,
    Nonce,
    Ciphertext,
    ClientId,
    OctopiaSellerId,
    RestoredFrom,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum KeyringKeys {
    Table,
    Version,
    State,
    Nonce,
    WrappedKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Seq,
    Id,
    OccurredAt,
    Subject,
    Action,
    SellerLogin,
    Purpose,
    Outcome,
    Reason,
    Detail,
    RequestId,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    Id,
    Seq,
    Hash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sellers::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Sellers::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Sellers::Login).string_len(64).not_null())
                    .col(ColumnDef::new(Sellers::DisplayName).string_len(200).not_null())
                    .col(ColumnDef::new(Sellers::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Sellers::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Sellers::UpdatedAt).timestamp_with_time_zone().not_null())
                    .check(Expr::col(Sellers::Status).is_in(["ACTIVE", "INACTIVE"]))
                    .to_owned(),
            )
            .await?;
        // The database decides uniqueness: a second registration fails on this index.
        manager
            .create_index(
                Index::create()
                    .name("sellers_login_key")
                    .table(Sellers::Table)
                    .col(Sellers::Login)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // `BestShop` and `bestshop` would be one seller to a human: refuse the second.
        manager
            .get_connection()
            .execute_unprepared("CREATE UNIQUE INDEX IF NOT EXISTS sellers_login_lower_key ON sellers (lower(login))")
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CredentialVersions::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(CredentialVersions::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(CredentialVersions::SellerId).uuid().not_null())
                    .col(ColumnDef::new(CredentialVersions::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(CredentialVersions::Version).integer().not_null())
                    .col(ColumnDef::new(CredentialVersions::KeyVersion).integer().not_null())
                    .col(ColumnDef::new(CredentialVersions::Nonce).binary().not_null())
                    .col(ColumnDef::new(CredentialVersions::Ciphertext).binary().not_null())
                    .col(ColumnDef::new(CredentialVersions::ClientId).string_len(256).null())
                    .col(ColumnDef::new(CredentialVersions::OctopiaSellerId).string_len(256).null())
                    .col(ColumnDef::new(CredentialVersions::RestoredFrom).integer().null())
                    .col(ColumnDef::new(CredentialVersions::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(CredentialVersions::CreatedBy).string_len(256).not_null())
                    .check(Expr::col(CredentialVersions::Kind).is_in(["MARKETPLACE_API", "OCTOPIA"]))
                    .check(Expr::col(CredentialVersions::Version).gt(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("credential_versions_seller_fk")
                            .from(CredentialVersions::Table, CredentialVersions::SellerId)
                            .to(Sellers::Table, Sellers::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("credential_versions_seller_kind_version_key")
                    .table(CredentialVersions::Table)
                    .col(CredentialVersions::SellerId)
                    .col(CredentialVersions::Kind)
                    .col(CredentialVersions::Version)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("credential_versions_key_version_idx")
                    .table(CredentialVersions::Table)
                    .col(CredentialVersions::KeyVersion)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(KeyringKeys::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(KeyringKeys::Version).integer().not_null().primary_key())
                    .col(ColumnDef::new(KeyringKeys::State).string_len(16).not_null())
                    .col(ColumnDef::new(KeyringKeys::Nonce).binary().not_null())
                    .col(ColumnDef::new(KeyringKeys::WrappedKey).binary().not_null())
                    .col(ColumnDef::new(KeyringKeys::CreatedAt).timestamp_with_time_zone().not_null())
                    .check(Expr::col(KeyringKeys::State).is_in(["ACTIVE", "DECRYPT_ONLY", "RETIRED"]))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AuditEvents::Seq).big_integer().not_null().primary_key())
                    .col(ColumnDef::new(AuditEvents::Id).uuid().not_null().unique_key())
                    .col(ColumnDef::new(AuditEvents::OccurredAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(AuditEvents::Subject).string_len(256).not_null())
                    .col(ColumnDef::new(AuditEvents::Action).string_len(64).not_null())
                    .col(ColumnDef::new(AuditEvents::SellerLogin).string_len(64).null())
                    .col(ColumnDef::new(AuditEvents::Purpose).string_len(256).null())
                    .col(ColumnDef::new(AuditEvents::Outcome).string_len(16).not_null())
                    .col(ColumnDef::new(AuditEvents::Reason).string_len(64).null())
                    .col(ColumnDef::new(AuditEvents::Detail).string_len(512).null())
                    .col(ColumnDef::new(AuditEvents::RequestId).string_len(64).not_null())
                    .col(ColumnDef::new(AuditEvents::PrevHash).binary().not_null())
                    .col(ColumnDef::new(AuditEvents::Hash).binary().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("audit_events_seller_idx", AuditEvents::SellerLogin),
            ("audit_events_subject_idx", AuditEvents::Subject),
            ("audit_events_action_idx", AuditEvents::Action),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditEvents::Table)
                        .col(col)
                        .col(AuditEvents::Seq)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }

        // One row: the last event of the chain. Appenders lock it, so the chain stays linear across replicas.
        manager
            .create_table(
                Table::create()
                    .table(AuditHead::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AuditHead::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(AuditHead::Seq).big_integer().not_null())
                    .col(ColumnDef::new(AuditHead::Hash).binary().not_null())
                    .check(Expr::col(AuditHead::Id).eq(1))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AuditHead::Table)
                    .columns([AuditHead::Id, AuditHead::Seq, AuditHead::Hash])
                    .values_panic([1.into(), 0i64.into(), vec![0u8; 32].into()])
                    .on_conflict(OnConflict::column(AuditHead::Id).do_nothing().to_owned())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditHead::Table.into_iden(),
            AuditEvents::Table.into_iden(),
            KeyringKeys::Table.into_iden(),
            CredentialVersions::Table.into_iden(),
            Sellers::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
