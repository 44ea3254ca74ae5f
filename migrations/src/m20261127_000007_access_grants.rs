use sea_orm_migration::prelude::*;

/// Access grants kept in the vault (who may do what on which sellers, for tokens of grants-mode issuers), and the
/// counter every grant change moves, which each replica polls to know when to reload them.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccessGrants {
    Table,
    Id,
    Issuer,
    MatchKind,
    MatchValue,
    Scopes,
    Sellers,
    CreatedByIssuer,
    CreatedBy,
    CreatedAt,
    Mac,
}

#[derive(DeriveIden)]
enum AccessGrantsVersion {
    Table,
    Id,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccessGrants::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AccessGrants::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(AccessGrants::Issuer).string_len(512).not_null())
                    .col(ColumnDef::new(AccessGrants::MatchKind).string_len(16).not_null())
                    .col(ColumnDef::new(AccessGrants::MatchValue).string_len(512).not_null())
                    .col(ColumnDef::new(AccessGrants::Scopes).string_len(1024).not_null())
                    .col(ColumnDef::new(AccessGrants::Sellers).text().not_null())
                    .col(ColumnDef::new(AccessGrants::CreatedByIssuer).string_len(512).null())
                    .col(ColumnDef::new(AccessGrants::CreatedBy).string_len(256).not_null())
                    .col(ColumnDef::new(AccessGrants::CreatedAt).timestamp_with_time_zone().not_null())
                    // Under the audit MAC key: a grant inserted or edited by SQL is not authentic and never applies.
                    .col(ColumnDef::new(AccessGrants::Mac).binary().not_null())
                    .check(Expr::col(AccessGrants::MatchKind).is_in([
                        "SUBJECT",
                        "CLIENT_ID",
                        "GROUP",
                        "SERVICE_ACCOUNT",
                    ]))
                    .to_owned(),
            )
            .await?;
        // One row (id 1): a counter, not a timestamp, so that two changes in one clock tick, or a delete, still move it.
        manager
            .create_table(
                Table::create()
                    .table(AccessGrantsVersion::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AccessGrantsVersion::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(AccessGrantsVersion::Version).big_integer().not_null())
                    .check(Expr::col(AccessGrantsVersion::Id).eq(1))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AccessGrantsVersion::Table)
                    .columns([AccessGrantsVersion::Id, AccessGrantsVersion::Version])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [AccessGrantsVersion::Table.into_iden(), AccessGrants::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
