use sea_orm_migration::prelude::*;

/// The archival records of the audit chain: one row per `cdvault audit archive`, holding the seal (a MAC under the
/// audit MAC key) of the range moved to a file. The newest is the anchor the first retained event links to.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditArchives {
    Table,
    ThroughSeq,
    FromSeq,
    PrevHash,
    Head,
    ArchivedAt,
    Mac,
    ArchivedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditArchives::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AuditArchives::ThroughSeq).big_integer().not_null().primary_key())
                    .col(ColumnDef::new(AuditArchives::FromSeq).big_integer().not_null())
                    .col(ColumnDef::new(AuditArchives::PrevHash).binary().not_null())
                    .col(ColumnDef::new(AuditArchives::Head).binary().not_null())
                    .col(ColumnDef::new(AuditArchives::ArchivedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(AuditArchives::Mac).binary().not_null())
                    .col(ColumnDef::new(AuditArchives::ArchivedBy).string_len(512).not_null())
                    .check(Expr::col(AuditArchives::FromSeq).gte(1))
                    .check(Expr::col(AuditArchives::ThroughSeq).gte(Expr::col(AuditArchives::FromSeq)))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AuditArchives::Table).to_owned()).await
    }
}
