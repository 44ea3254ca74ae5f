//! The main listener's certificate when it speaks TLS: loaded from two PEM files at start-up (a bad pair stops
//! start-up), then read again every poll interval. A changed pair that rustls accepts replaces the served one in
//! place, so new connections get it without a restart (a cert-manager renewal, a Kubernetes secret update); a pair it
//! refuses is logged and counted, and the old one keeps serving. Polling the content rather than watching the files
//! is deliberate: a mounted secret changes through a swapped symlink, which file watchers miss.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use super::options::TlsOptions;

/// HTTP/2 first, so the front-end multiplexes; HTTP/1.1 for everything else (a WebSocket upgrade included).
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a certificate and key pair cannot be served. Never quotes the files: one holds the private key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read (missing, not allowed).
    #[error("cannot read {setting}: {kind}")]
    Unreadable { setting: &'static str, kind: std::io::ErrorKind },
    /// The certificate file holds no PEM certificate.
    #[error("CDVAULT_TLS_CERT_FILE holds no PEM certificate")]
    NoCertificate,
    /// The key file holds no PEM private key.
    #[error("CDVAULT_TLS_KEY_FILE holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey,
    /// The key is not the certificate's.
    #[error("the private key (CDVAULT_TLS_KEY_FILE) does not match the certificate (CDVAULT_TLS_CERT_FILE)")]
    Mismatch,
    /// rustls refuses the pair for another reason (its message names the problem, never key material).
    #[error("the certificate and key cannot be used: {0}")]
    Refused(rustls::Error),
}

/// The served certificate, shared by the listener (which reads it at each handshake) and the reload task.
#[derive(Clone)]
pub struct Certificates {
    config: RustlsConfig,
    options: TlsOptions,
    state: Arc<Mutex<ReloadState>>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").field("options", &self.options).finish_non_exhaustive()
    }
}

/// What the reload task last saw, for `/readyz` and to log a refused pair once rather than at every poll.
struct ReloadState {
    /// The files' content as last read (served or refused): a poll that reads the same does nothing.
    seen: Files,
    loaded_at: OffsetDateTime,
    reloads: u64,
    refused: u64,
    last_error: Option<String>,
}

/// The two files' bytes; the key's wiped when dropped.
#[derive(PartialEq, Eq)]
struct Files {
    cert: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
}

impl Certificates {
    /// Reads and checks the pair: an error names the setting, never the content.
    pub fn load(options: &TlsOptions) -> Result<Self, TlsError> {
        let files = read(options)?;
        let config = server_config(&files)?;
        let state =
            ReloadState { seen: files, loaded_at: OffsetDateTime::now_utc(), reloads: 0, refused: 0, last_error: None };
        Ok(Self {
            config: RustlsConfig::from_config(Arc::new(config)),
            options: options.clone(),
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// What the TLS listener serves: the same value the reload task swaps.
    pub fn rustls_config(&self) -> RustlsConfig {
        self.config.clone()
    }

    /// Polls the files every interval until the returned task is aborted.
    pub fn spawn_reload(&self) -> tokio::task::JoinHandle<()> {
        let certificates = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(certificates.options.reload_poll);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let polled = certificates.clone();
                // File reads and key parsing are blocking work.
                if tokio::task::spawn_blocking(move || polled.poll()).await.is_err() {
                    tracing::error!("the TLS certificate reload panicked");
                }
            }
        })
    }

    /// Reads both files once; a new pair is served if rustls accepts it.
    fn poll(&self) {
        let files = match read(&self.options) {
            Ok(files) => files,
            Err(error) => {
                // A missing file mid-swap is common; the next poll will tell. Logged, the old pair kept.
                let mut state = self.state();
                if state.last_error.as_deref() != Some(&error.to_string()) {
                    tracing::warn!(%error, "the TLS certificate files cannot be read: the served certificate is kept");
                    state.last_error = Some(error.to_string());
                }
                return;
            }
        };
        if self.state().seen == files {
            return;
        }
        let outcome = server_config(&files);
        let mut state = self.state();
        state.seen = files;
        match outcome {
            Ok(config) => {
                self.config.reload_from_config(Arc::new(config));
                state.loaded_at = OffsetDateTime::now_utc();
                state.reloads += 1;
                state.last_error = None;
                tracing::info!(reloads = state.reloads, "TLS certificate reloaded: new connections get the new one");
            }
            Err(error) => {
                state.refused += 1;
                state.last_error = Some(error.to_string());
                tracing::error!(%error, "a new TLS certificate was refused: the served certificate is kept");
            }
        }
    }

    /// The `tls` component of `/readyz`: always ok (a refused reload keeps the served pair), with its history.
    pub fn report(&self) -> Value {
        let state = self.state();
        json!({
            "enabled": true,
            "ok": true,
            "loaded_at": state.loaded_at.format(&Rfc3339).ok(),
            "reloads": state.reloads,
            "refused": state.refused,
            "last_error": state.last_error,
            "reload_poll_ms": u64::try_from(self.options.reload_poll.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// `Strict-Transport-Security` as sent on every answer.
    pub fn hsts(&self) -> String {
        hsts_value(self.options.hsts_max_age)
    }

    fn state(&self) -> MutexGuard<'_, ReloadState> {
        // Nothing in the critical sections can leave the state half-written: a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `max-age` only: whether subdomains are covered is the ingress' or the domain owner's call, not a replica's.
pub(super) fn hsts_value(max_age: Duration) -> String {
    format!("max-age={}", max_age.as_secs())
}

fn read(options: &TlsOptions) -> Result<Files, TlsError> {
    let cert = std::fs::read(&options.cert_file)
        .map_err(|e| TlsError::Unreadable { setting: "CDVAULT_TLS_CERT_FILE", kind: e.kind() })?;
    let key = std::fs::read(&options.key_file)
        .map_err(|e| TlsError::Unreadable { setting: "CDVAULT_TLS_KEY_FILE", kind: e.kind() })?;
    Ok(Files { cert, key: Zeroizing::new(key) })
}

/// A rustls server configuration on aws-lc-rs (the one crypto library of the build) for the pair.
fn server_config(files: &Files) -> Result<ServerConfig, TlsError> {
    let chain = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::NoCertificate)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|_| TlsError::NoKey)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Refused)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| match error {
            rustls::Error::InconsistentKeys(_) => TlsError::Mismatch,
            other => TlsError::Refused(other),
        })?;
    config.alpn_protocols = ALPN.iter().map(|protocol| protocol.to_vec()).collect();
    Ok(config)
}
