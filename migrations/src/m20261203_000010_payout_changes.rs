use sea_orm_migration::prelude::*;

/// The stored feed of payout change request transitions (`payoutChangeFeed`): one row per submission or move,
/// numbered in commit order like `credential_changes`, so a subscriber resumes from a cursor without a gap.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PayoutChanges {
    Table,
    Seq,
    RequestId,
    SellerId,
    SellerLogin,
    Version,
    Status,
    ChangedBy,
    OccurredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PayoutChanges::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PayoutChanges::Seq).big_integer().not_null().primary_key())
                    .col(ColumnDef::new(PayoutChanges::RequestId).uuid().not_null())
                    .col(ColumnDef::new(PayoutChanges::SellerId).uuid().not_null())
                    .col(ColumnDef::new(PayoutChanges::SellerLogin).string_len(64).not_null())
                    .col(ColumnDef::new(PayoutChanges::Version).integer().not_null())
                    .col(ColumnDef::new(PayoutChanges::Status).string_len(32).not_null())
                    .col(ColumnDef::new(PayoutChanges::ChangedBy).string_len(512).not_null())
                    .col(ColumnDef::new(PayoutChanges::OccurredAt).timestamp_with_time_zone().not_null())
                    .check(Expr::col(PayoutChanges::Seq).gt(0))
                    .check(Expr::col(PayoutChanges::Version).gt(0))
                    .to_owned(),
            )
            .await?;
        // A subscriber limited to a few sellers reads its own changes from its cursor.
        manager
            .create_index(
                Index::create()
                    .name("payout_changes_seller_seq_idx")
                    .table(PayoutChanges::Table)
                    .col(PayoutChanges::SellerLogin)
                    .col(PayoutChanges::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PayoutChanges::Table).if_exists().to_owned()).await
    }
}
