use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credential_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub seller_id: Uuid,
    pub kind: String,
    pub version: i32,
    pub key_version: i32,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub client_id: Option<String>,
    pub octopia_seller_id: Option<String>,
    pub restored_from: Option<i32>,
    pub created_at: TimeDateTimeWithTimeZone,
    pub created_by: String,
    pub verification: Option<String>,
    pub verification_reason: Option<String>,
    pub verified_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
