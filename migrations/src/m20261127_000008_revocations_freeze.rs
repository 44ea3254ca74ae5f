use sea_orm_migration::prelude::*;

/// Token revocations (one `jti`, or every token of an identity issued before a time) and the vault's state: the
/// emergency freeze and a counter of revocation changes, one row that every replica polls.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Revocations {
    Table,
    Id,
    Kind,
    Issuer,
    Jti,
    Subject,
    Before,
    ExpiresAt,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum VaultState {
    Table,
    Id,
    Frozen,
    FrozenBy,
    FrozenAt,
    FrozenReason,
    RevocationsVersion,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Revocations::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Revocations::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Revocations::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Revocations::Issuer).string_len(512).not_null())
                    .col(ColumnDef::new(Revocations::Jti).string_len(512).null())
                    .col(ColumnDef::new(Revocations::Subject).string_len(512).null())
                    .col(ColumnDef::new(Revocations::Before).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Revocations::ExpiresAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Revocations::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Revocations::CreatedBy).string_len(512).not_null())
                    // A token revocation names a jti and lasts until an expiry; a subject one names a time.
                    .check(
                        Expr::col(Revocations::Kind)
                            .eq("TOKEN")
                            .and(Expr::col(Revocations::Jti).is_not_null())
                            .and(Expr::col(Revocations::ExpiresAt).is_not_null())
                            .or(Expr::col(Revocations::Kind)
                                .eq("SUBJECT")
                                .and(Expr::col(Revocations::Subject).is_not_null())
                                .and(Expr::col(Revocations::Before).is_not_null())),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(VaultState::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(VaultState::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(VaultState::Frozen).boolean().not_null().default(false))
                    .col(ColumnDef::new(VaultState::FrozenBy).string_len(512).null())
                    .col(ColumnDef::new(VaultState::FrozenAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(VaultState::FrozenReason).string_len(2048).null())
                    .col(ColumnDef::new(VaultState::RevocationsVersion).big_integer().not_null().default(0))
                    .check(Expr::col(VaultState::Id).eq(1))
                    .to_owned(),
            )
            .await?;
        // The one row exists from the start: freezing and revoking only ever update it.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(VaultState::Table)
                    .columns([VaultState::Id, VaultState::Frozen, VaultState::RevocationsVersion])
                    .values_panic([1.into(), false.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(VaultState::Table).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(Revocations::Table).if_exists().to_owned()).await?;
        Ok(())
    }
}
