use sea_orm_migration::prelude::*;

/// Audit record v2: the encoding version of each event, the caller's issuer and `x-request-id` in fields of their
/// own, and the audit MAC key (stored only wrapped by the root key; at most one row).
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    RecordVersion,
    Issuer,
    CallerRequestId,
}

#[derive(DeriveIden)]
enum AuditKeys {
    Table,
    Id,
    V2From,
    Nonce,
    WrappedKey,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Every event before this migration was linked with the v1 encoding.
        let columns = [
            ColumnDef::new(AuditEvents::RecordVersion).small_integer().not_null().default(1).to_owned(),
            ColumnDef::new(AuditEvents::Issuer).string_len(512).null().to_owned(),
            ColumnDef::new(AuditEvents::CallerRequestId).string_len(256).null().to_owned(),
        ];
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in columns {
            manager.alter_table(Table::alter().table(AuditEvents::Table).add_column(column).to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuditKeys::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AuditKeys::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(AuditKeys::V2From).big_integer().not_null())
                    .col(ColumnDef::new(AuditKeys::Nonce).binary().not_null())
                    .col(ColumnDef::new(AuditKeys::WrappedKey).binary().not_null())
                    .col(ColumnDef::new(AuditKeys::CreatedAt).timestamp_with_time_zone().not_null())
                    .check(Expr::col(AuditKeys::Id).eq(1))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AuditKeys::Table).if_exists().to_owned()).await?;
        for column in [AuditEvents::CallerRequestId, AuditEvents::Issuer, AuditEvents::RecordVersion] {
            manager.alter_table(Table::alter().table(AuditEvents::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
