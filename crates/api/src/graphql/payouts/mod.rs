//! Payout bank-detail changes under KYC review: the types in [`objects`], the reads, review moves, reveals and
//! live updates in [`resolvers`].

mod objects;
mod resolvers;

pub use objects::PayoutAccountGql;
pub use resolvers::{PayoutsMutation, PayoutsQuery, PayoutsSubscription};
