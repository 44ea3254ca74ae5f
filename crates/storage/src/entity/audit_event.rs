use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub id: Uuid,
    pub occurred_at: TimeDateTimeWithTimeZone,
    pub issuer: Option<String>,
    pub subject: String,
    pub action: String,
    pub seller_login: Option<String>,
    pub purpose: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub request_id: String,
    pub caller_request_id: Option<String>,
    pub record_version: i16,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
