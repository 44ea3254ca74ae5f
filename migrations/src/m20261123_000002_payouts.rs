use sea_orm_migration::prelude::*;

/// Payout bank-detail changes under KYC review: the requests, their timelines and the payout accounts they
/// activate.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sellers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum PayoutRequests {
    Table,
    Id,
    SellerId,
    SellerLogin,
    Status,
    Version,
    SubmittedBy,
    KeyVersion,
    Nonce,
    Ciphertext,
    IbanMasked,
    IbanLast4,
    Documents,
    CreatedAt,
    UpdatedAt,
    DecidedAt,
}

#[derive(DeriveIden)]
enum PayoutRequestEvents {
    Table,
    Id,
    RequestId,
    Seq,
    FromStatus,
    ToStatus,
    Actor,
    Note,
    Documents,
    OccurredAt,
}

#[derive(DeriveIden)]
enum PayoutAccounts {
    Table,
    Id,
    SellerId,
    RequestId,
    KeyVersion,
    Nonce,
    Ciphertext,
    IbanMasked,
    IbanLast4,
    ActivatedAt,
    DeactivatedAt,
}

const STATUSES: [&str; 6] = ["SUBMITTED", "IN_REVIEW", "DOCUMENTS_REQUESTED", "APPROVED", "REJECTED", "CANCELLED"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PayoutRequests::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PayoutRequests::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(PayoutRequests::SellerId).uuid().not_null())
                    .col(ColumnDef::new(PayoutRequests::SellerLogin).string_len(64).not_null())
                    .col(ColumnDef::new(PayoutRequests::Status).string_len(24).not_null())
                    .col(ColumnDef::new(PayoutRequests::Version).integer().not_null())
                    .col(ColumnDef::new(PayoutRequests::SubmittedBy).string_len(256).not_null())
                    .col(ColumnDef::new(PayoutRequests::KeyVersion).integer().not_null())
                    .col(ColumnDef::new(PayoutRequests::Nonce).binary().not_null())
                    .col(ColumnDef::new(PayoutRequests::Ciphertext).binary().not_null())
                    .col(ColumnDef::new(PayoutRequests::IbanMasked).string_len(16).not_null())
                    .col(ColumnDef::new(PayoutRequests::IbanLast4).string_len(4).not_null())
                    .col(ColumnDef::new(PayoutRequests::Documents).string_len(256).not_null())
                    .col(ColumnDef::new(PayoutRequests::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(PayoutRequests::UpdatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(PayoutRequests::DecidedAt).timestamp_with_time_zone().null())
                    .check(Expr::col(PayoutRequests::Status).is_in(STATUSES))
                    .check(Expr::col(PayoutRequests::Version).gt(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("payout_requests_seller_fk")
                            .from(PayoutRequests::Table, PayoutRequests::SellerId)
                            .to(Sellers::Table, Sellers::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // At most one open request per seller, decided by the database: a second submit fails on this index.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS payout_requests_open_key ON payout_requests (seller_id) \
                 WHERE status IN ('SUBMITTED', 'IN_REVIEW', 'DOCUMENTS_REQUESTED')",
            )
            .await?;
        // Newest first (ids are UUIDv7, so time-ordered), filtered by status or seller.
        for (name, col) in [
            ("payout_requests_status_idx", PayoutRequests::Status),
            ("payout_requests_seller_idx", PayoutRequests::SellerLogin),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(PayoutRequests::Table)
                        .col(col)
                        .col(PayoutRequests::Id)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(PayoutRequestEvents::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PayoutRequestEvents::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(PayoutRequestEvents::RequestId).uuid().not_null())
                    .col(ColumnDef::new(PayoutRequestEvents::Seq).integer().not_null())
                    .col(ColumnDef::new(PayoutRequestEvents::FromStatus).string_len(24).null())
                    .col(ColumnDef::new(PayoutRequestEvents::ToStatus).string_len(24).not_null())
                    .col(ColumnDef::new(PayoutRequestEvents::Actor).string_len(256).not_null())
                    .col(ColumnDef::new(PayoutRequestEvents::Note).string_len(1000).null())
                    .col(ColumnDef::new(PayoutRequestEvents::Documents).string_len(256).not_null())
                    .col(ColumnDef::new(PayoutRequestEvents::OccurredAt).timestamp_with_time_zone().not_null())
                    .check(Expr::col(PayoutRequestEvents::ToStatus).is_in(STATUSES))
                    .foreign_key(
                        ForeignKey::create()
                            .name("payout_request_events_request_fk")
                            .from(PayoutRequestEvents::Table, PayoutRequestEvents::RequestId)
                            .to(PayoutRequests::Table, PayoutRequests::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // One entry per version of the request: two moves from the same version cannot both land.
        manager
            .create_index(
                Index::create()
                    .name("payout_request_events_request_seq_key")
                    .table(PayoutRequestEvents::Table)
                    .col(PayoutRequestEvents::RequestId)
                    .col(PayoutRequestEvents::Seq)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PayoutAccounts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PayoutAccounts::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(PayoutAccounts::SellerId).uuid().not_null())
                    .col(ColumnDef::new(PayoutAccounts::RequestId).uuid().not_null().unique_key())
                    .col(ColumnDef::new(PayoutAccounts::KeyVersion).integer().not_null())
                    .col(ColumnDef::new(PayoutAccounts::Nonce).binary().not_null())
                    .col(ColumnDef::new(PayoutAccounts::Ciphertext).binary().not_null())
                    .col(ColumnDef::new(PayoutAccounts::IbanMasked).string_len(16).not_null())
                    .col(ColumnDef::new(PayoutAccounts::IbanLast4).string_len(4).not_null())
                    .col(ColumnDef::new(PayoutAccounts::ActivatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(PayoutAccounts::DeactivatedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("payout_accounts_seller_fk")
                            .from(PayoutAccounts::Table, PayoutAccounts::SellerId)
                            .to(Sellers::Table, Sellers::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("payout_accounts_request_fk")
                            .from(PayoutAccounts::Table, PayoutAccounts::RequestId)
                            .to(PayoutRequests::Table, PayoutRequests::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // One active account per seller; the previous ones stay as history.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS payout_accounts_active_key ON payout_accounts (seller_id) \
                 WHERE deactivated_at IS NULL",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("payout_accounts_seller_idx")
                    .table(PayoutAccounts::Table)
                    .col(PayoutAccounts::SellerId)
                    .col(PayoutAccounts::ActivatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PayoutAccounts::Table.into_iden(),
            PayoutRequestEvents::Table.into_iden(),
            PayoutRequests::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
