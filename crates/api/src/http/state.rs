//! What every handler and extractor of the router shares. Its own module so that the handlers can use it without
//! importing the router that names them.

use std::sync::Arc;

use super::cors::Origins;
use super::open_sockets::Sockets;
use super::rate_limit::Limiter;
use crate::auth::JwtVerifier;
use crate::graphql::{SessionSchema, VaultSchema};
use crate::service::Vault;

#[derive(Clone)]
pub(super) struct AppState {
    pub(super) schema: VaultSchema,
    pub(super) sessions: SessionSchema,
    pub(super) vault: Arc<Vault>,
    pub(super) verifier: Arc<JwtVerifier>,
    pub(super) limiter: Arc<Limiter>,
    /// The WebSocket limits, and the sockets open per identity on this replica.
    pub(super) websocket: Arc<Sockets>,
    /// The origins a WebSocket upgrade may come from (`CDVAULT_CORS_ORIGINS`; empty: any).
    pub(super) origins: Origins,
    /// The served certificate when the listener speaks TLS (its reload history is in `/readyz`).
    pub(super) tls: Option<super::tls::Certificates>,
    /// The only documents run, when configured (`CDVAULT_TRUSTED_DOCUMENTS`).
    pub(super) trusted_documents: Option<super::trusted_documents::TrustedDocuments>,
}
