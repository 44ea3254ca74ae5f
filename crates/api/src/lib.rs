//! The API of cdvault: JWT authentication, the use cases, the GraphQL schema and the HTTP router.
//!
//! Dependencies point inward: this crate uses `cdvault-storage` and `cdvault-domain`; nothing here knows how the
//! server is configured.

pub mod auth;
pub mod cache;
pub mod error;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod service;

pub use graphql::sdl;
