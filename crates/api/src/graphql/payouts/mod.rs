//! Payout bank-detail changes under KYC review: the types in [`objects`] (and the feed's entries in [`feed`]), the
//! reads, review moves, reveals and live updates in [`resolvers`].

mod feed;
mod objects;
mod resolvers;

pub use objects::PayoutAccountGql;
pub use resolvers::{PayoutsMutation, PayoutsQuery, PayoutsSubscription};
