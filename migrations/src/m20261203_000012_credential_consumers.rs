use sea_orm_migration::prelude::*;

/// Who consumes each seller's credentials: `credential_consumers`, a projection of the successful issue events kept
/// by the audit writer in the transaction that commits them (one row per seller, kind and token identity), and
/// `live_subscriptions`, the `credentialChanged` subscriptions running on each replica, kept alive by a heartbeat.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sellers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CredentialConsumers {
    Table,
    SellerId,
    Kind,
    Issuer,
    Subject,
    LastIssuedAt,
    LastVersion,
    LastVia,
    IssueCount,
}

#[derive(DeriveIden)]
enum LiveSubscriptions {
    Table,
    Id,
    Replica,
    Issuer,
    Subject,
    SellerLogin,
    Kind,
    StartedAt,
    HeartbeatAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CredentialConsumers::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(CredentialConsumers::SellerId).uuid().not_null())
                    .col(ColumnDef::new(CredentialConsumers::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(CredentialConsumers::Issuer).string_len(512).not_null())
                    .col(ColumnDef::new(CredentialConsumers::Subject).string_len(256).not_null())
                    .col(ColumnDef::new(CredentialConsumers::LastIssuedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(CredentialConsumers::LastVersion).integer().not_null())
                    .col(ColumnDef::new(CredentialConsumers::LastVia).string_len(16).not_null())
                    .col(ColumnDef::new(CredentialConsumers::IssueCount).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(CredentialConsumers::SellerId)
                            .col(CredentialConsumers::Kind)
                            .col(CredentialConsumers::Issuer)
                            .col(CredentialConsumers::Subject),
                    )
                    .check(Expr::col(CredentialConsumers::Kind).is_in(["MARKETPLACE_API", "OCTOPIA"]))
                    .check(Expr::col(CredentialConsumers::LastVia).is_in(["credential", "token"]))
                    .check(Expr::col(CredentialConsumers::IssueCount).gt(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("credential_consumers_seller_fk")
                            .from(CredentialConsumers::Table, CredentialConsumers::SellerId)
                            .to(Sellers::Table, Sellers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LiveSubscriptions::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(LiveSubscriptions::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(LiveSubscriptions::Replica).string_len(128).not_null())
                    .col(ColumnDef::new(LiveSubscriptions::Issuer).string_len(512).not_null())
                    .col(ColumnDef::new(LiveSubscriptions::Subject).string_len(256).not_null())
                    // Null: every seller the subscriber's token reaches.
                    .col(ColumnDef::new(LiveSubscriptions::SellerLogin).string_len(64).null())
                    // Null: every kind.
                    .col(ColumnDef::new(LiveSubscriptions::Kind).string_len(32).null())
                    .col(ColumnDef::new(LiveSubscriptions::StartedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(LiveSubscriptions::HeartbeatAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        // Reads keep only live rows, and the expired ones are pruned, by the heartbeat.
        manager
            .create_index(
                Index::create()
                    .name("live_subscriptions_heartbeat_idx")
                    .table(LiveSubscriptions::Table)
                    .col(LiveSubscriptions::HeartbeatAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [LiveSubscriptions::Table.into_iden(), CredentialConsumers::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
