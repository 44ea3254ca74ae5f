use sea_orm_migration::prelude::*;

/// Webhooks (issue 21): the endpoints tools register, their signing secrets (sealed like every secret, so census,
/// rewrap and retirement cover them), and the outbox of deliveries, written in the transaction of the change it
/// tells about and worked off by any replica.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    Url,
    Description,
    EventTypes,
    SellerLogins,
    OwnerIssuer,
    OwnerSubject,
    OwnerClaims,
    CreatedAt,
    DisabledAt,
    LeaseOwner,
    LeaseUntil,
}

#[derive(DeriveIden)]
enum WebhookSecrets {
    Table,
    Id,
    EndpointId,
    KeyVersion,
    Nonce,
    Ciphertext,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Seq,
    Id,
    EndpointId,
    EventType,
    SellerLogin,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LastError,
    LastStatus,
    CreatedAt,
    DeliveredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(WebhookEndpoints::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(WebhookEndpoints::Url).string_len(2048).not_null())
                    .col(ColumnDef::new(WebhookEndpoints::Description).string_len(200).null())
                    // Space-separated payload types, e.g. `credential.changed payout_change.updated`.
                    .col(ColumnDef::new(WebhookEndpoints::EventTypes).string_len(200).not_null())
                    // Space-separated logins; NULL: every seller the owner reaches at delivery.
                    .col(ColumnDef::new(WebhookEndpoints::SellerLogins).text().null())
                    .col(ColumnDef::new(WebhookEndpoints::OwnerIssuer).string_len(512).not_null())
                    .col(ColumnDef::new(WebhookEndpoints::OwnerSubject).string_len(512).not_null())
                    // The registering token's claims (JSON, no secret): the owner's access is resolved from them
                    // again at every delivery, through the grants and revocations then in force.
                    .col(ColumnDef::new(WebhookEndpoints::OwnerClaims).text().not_null())
                    .col(ColumnDef::new(WebhookEndpoints::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(WebhookEndpoints::DisabledAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(WebhookEndpoints::LeaseOwner).uuid().null())
                    .col(ColumnDef::new(WebhookEndpoints::LeaseUntil).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_endpoints_owner_idx")
                    .table(WebhookEndpoints::Table)
                    .col(WebhookEndpoints::OwnerIssuer)
                    .col(WebhookEndpoints::OwnerSubject)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookSecrets::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(WebhookSecrets::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(WebhookSecrets::EndpointId).uuid().not_null())
                    .col(ColumnDef::new(WebhookSecrets::KeyVersion).integer().not_null())
                    .col(ColumnDef::new(WebhookSecrets::Nonce).binary().not_null())
                    .col(ColumnDef::new(WebhookSecrets::Ciphertext).binary().not_null())
                    .col(ColumnDef::new(WebhookSecrets::CreatedAt).timestamp_with_time_zone().not_null())
                    // NULL: the current secret; set: an old one, still signing until then (rotation overlap).
                    .col(ColumnDef::new(WebhookSecrets::ExpiresAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookSecrets::Table, WebhookSecrets::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("webhook_secrets_endpoint_idx", WebhookSecrets::EndpointId),
            // A rewrap and a census find the secrets under an old key version without a scan.
            ("webhook_secrets_key_version_idx", WebhookSecrets::KeyVersion),
        ] {
            manager
                .create_index(
                    Index::create().name(name).table(WebhookSecrets::Table).col(column).if_not_exists().to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .if_not_exists()
                    // Commit order (taken under the audit chain head lock, like the change feeds' `seq`): an
                    // endpoint gets its events in this order.
                    .col(ColumnDef::new(WebhookDeliveries::Seq).big_integer().not_null().primary_key())
                    // The `webhook-id`: the same on every attempt, so a receiver can drop a repeat.
                    .col(ColumnDef::new(WebhookDeliveries::Id).uuid().not_null().unique_key())
                    .col(ColumnDef::new(WebhookDeliveries::EndpointId).uuid().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::EventType).string_len(64).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::SellerLogin).string_len(64).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Payload).text().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Status).string_len(16).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(WebhookDeliveries::NextAttemptAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::LastError).string_len(500).null())
                    .col(ColumnDef::new(WebhookDeliveries::LastStatus).integer().null())
                    .col(ColumnDef::new(WebhookDeliveries::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::DeliveredAt).timestamp_with_time_zone().null())
                    .check(Expr::col(WebhookDeliveries::Status).is_in(["PENDING", "DELIVERED", "DEAD", "DROPPED"]))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // An endpoint's next deliveries, and the dead letters of an endpoint, in order.
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_endpoint_idx")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::EndpointId)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // The endpoints with work due, for the dispatchers of every replica.
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_due_idx")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [WebhookDeliveries::Table.into_iden(), WebhookSecrets::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(WebhookEndpoints::Table).if_exists().to_owned()).await
    }
}
