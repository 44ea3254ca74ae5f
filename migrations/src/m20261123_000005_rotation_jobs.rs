use sea_orm_migration::prelude::*;

/// Rewrap jobs: the durable state of a key rotation (progress, lease, outcome) and the rows it could not rewrap.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RotationJobs {
    Table,
    Id,
    ToVersion,
    State,
    Total,
    Done,
    Failed,
    StartedBy,
    StartedAt,
    FinishedAt,
    LeaseOwner,
    LeaseUntil,
}

#[derive(DeriveIden)]
enum RotationJobFailures {
    Table,
    JobId,
    TableName,
    RowId,
    Reason,
    OccurredAt,
}

#[derive(DeriveIden)]
enum RotationJobBatches {
    Table,
    JobId,
    Seq,
    Worker,
    Rewrapped,
    Failed,
    OccurredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RotationJobs::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(RotationJobs::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(RotationJobs::ToVersion).integer().not_null())
                    .col(ColumnDef::new(RotationJobs::State).string_len(16).not_null())
                    .col(ColumnDef::new(RotationJobs::Total).big_integer().not_null())
                    .col(ColumnDef::new(RotationJobs::Done).big_integer().not_null())
                    .col(ColumnDef::new(RotationJobs::Failed).big_integer().not_null())
                    .col(ColumnDef::new(RotationJobs::StartedBy).string_len(256).not_null())
                    .col(ColumnDef::new(RotationJobs::StartedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(RotationJobs::FinishedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(RotationJobs::LeaseOwner).uuid().null())
                    .col(ColumnDef::new(RotationJobs::LeaseUntil).timestamp_with_time_zone().null())
                    .check(Expr::col(RotationJobs::State).is_in(["RUNNING", "SUCCEEDED", "FAILED"]))
                    .to_owned(),
            )
            .await?;
        // One running job at a time, decided by the database.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS rotation_jobs_one_running_key ON rotation_jobs (state) \
                 WHERE state = 'RUNNING'",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RotationJobFailures::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(RotationJobFailures::JobId).uuid().not_null())
                    .col(ColumnDef::new(RotationJobFailures::TableName).string_len(64).not_null())
                    .col(ColumnDef::new(RotationJobFailures::RowId).uuid().not_null())
                    .col(ColumnDef::new(RotationJobFailures::Reason).string_len(64).not_null())
                    .col(ColumnDef::new(RotationJobFailures::OccurredAt).timestamp_with_time_zone().not_null())
                    .primary_key(
                        Index::create()
                            .col(RotationJobFailures::JobId)
                            .col(RotationJobFailures::TableName)
                            .col(RotationJobFailures::RowId),
                    )
                    .to_owned(),
            )
            .await?;
        // Who did which batch: replicas share a job on PostgreSQL, each batch on rows the others skip.
        manager
            .create_table(
                Table::create()
                    .table(RotationJobBatches::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(RotationJobBatches::JobId).uuid().not_null())
                    .col(ColumnDef::new(RotationJobBatches::Seq).uuid().not_null())
                    .col(ColumnDef::new(RotationJobBatches::Worker).uuid().not_null())
                    .col(ColumnDef::new(RotationJobBatches::Rewrapped).big_integer().not_null())
                    .col(ColumnDef::new(RotationJobBatches::Failed).big_integer().not_null())
                    .col(ColumnDef::new(RotationJobBatches::OccurredAt).timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(RotationJobBatches::JobId).col(RotationJobBatches::Seq))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RotationJobBatches::Table.into_iden(),
            RotationJobFailures::Table.into_iden(),
            RotationJobs::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
