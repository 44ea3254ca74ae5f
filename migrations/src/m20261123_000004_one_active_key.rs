use sea_orm_migration::prelude::*;

/// At most one `ACTIVE` keyring version, decided by the database: a rotation that raced another could otherwise
/// leave two versions sealing new writes.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS keyring_keys_one_active_key ON keyring_keys (state) \
                 WHERE state = 'ACTIVE'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX IF EXISTS keyring_keys_one_active_key").await?;
        Ok(())
    }
}
