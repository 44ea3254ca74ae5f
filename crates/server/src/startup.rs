//! Building and running the service. `Application::build` binds the listener before serving, so a caller using
//! port 0 (the tests) can read the real port.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsAcceptor;
use cdvault_api::auth::JwtVerifier;
use cdvault_api::http::tls::Certificates;
use cdvault_storage::audit::{AuditSink, AuditWriter};
use cdvault_storage::{Database, keyring};
use tokio::net::TcpListener;

use crate::config::ServeConfig;

/// A service ready to serve: database migrated, keyring opened, listener bound.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    /// The metrics listener (`CDVAULT_METRICS_LISTEN`), when configured.
    metrics_listener: Option<TcpListener>,
    router: axum::Router,
    audit_writer: AuditWriter,
    database: Database,
    vault: Arc<cdvault_api::service::Vault>,
    /// The audit stream's tailer, if configured: drained to the head at shutdown.
    audit_stream: Option<cdvault_api::service::AuditStream>,
    /// The certificate the main listener serves, when it speaks TLS.
    tls: Option<Certificates>,
}

impl Application {
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        if config.dev {
            warn_development_set_up();
        }
        // Before the audit writer and the router record anything. Without a scrape to serve, no recorder: the
        // facade's calls then cost next to nothing (the baseline of the overhead measurement).
        if config.http.metrics.listen.is_some() || config.http.metrics.on_main {
            cdvault_api::metrics::install();
        }
        // Before the database: a bad certificate is named before anything is migrated.
        let tls = match &config.http.tls {
            Some(options) => Some(Certificates::load(options).context("cannot serve TLS")?),
            None => None,
        };
        let verifier = JwtVerifier::new(&config.jwt).context("the JWT settings cannot be used")?;
        // Providers' keys are fetched in the background: one down at start-up does not stop the server.
        verifier.start();
        let database = Database::connect(&config.database_url).await.context("cannot open the database")?;
        database.migrate().await.context("cannot migrate the database")?;
        // The keyring first: a wrong root key is named as such before anything is made with it.
        let keyring = keyring::load_or_init(&database, &config.root_key)
            .await
            .context("cannot open the keyring (is CDVAULT_ROOT_KEY the key this database was created with?)")?;
        let audit_key = cdvault_storage::audit::open_key(&database, &config.root_key)
            .await
            .context("cannot open the audit MAC key (is CDVAULT_ROOT_KEY the key this database was created with?)")?;
        let database = database.with_audit_key(audit_key.clone());
        let keys = keyring::KeyringHandle::fixed(database.clone(), config.root_key, keyring);
        let keyring = keys.current();
        tracing::info!(
            active_key_version = keyring.active_version(),
            versions = ?keyring.versions().collect::<Vec<_>>(),
            "keyring opened"
        );
        let (audit, audit_writer) =
            AuditSink::start(&config.database_url, audit_key).await.context("cannot start the audit writer")?;
        let client = cdvault_cdiscount::Client::new(cdvault_cdiscount::ClientConfig::new(config.marketplace.clone()))
            .context("cannot build the marketplace client")?;
        tracing::info!(sts = %config.marketplace.sts, octopia = %config.marketplace.octopia_auth, "marketplace endpoints");
        let marketplace = cdvault_api::service::Marketplace { client, clock: config.clock.clone() };
        let vault = cdvault_api::service::Vault::new(database.clone(), Arc::new(keys), audit, marketplace)
            .with_checkpoints(config.checkpoints.clone())
            .with_access_poll(config.access_poll)
            .with_change_feed_retention(config.change_feed_retention)
            .with_issue_cache_sellers(config.issue_cache_sellers)
            .with_webhooks(config.webhooks.clone());
        let vault = Arc::new(vault);
        if database.is_postgres() {
            // Every replica hears of credential and payout changes made on any replica, for its feed readers.
            let feeds = vec![
                (cdvault_storage::credential_changes::CHANNEL, vault.credential_change_pokes().clone()),
                (cdvault_storage::payouts::CHANGES_CHANNEL, vault.payout_change_pokes().clone()),
            ];
            cdvault_storage::change_feed::listen(&config.database_url, feeds)
                .await
                .context("cannot listen for credential and payout changes")?;
            // Every replica hears of payout changes made on any replica, for its subscribers.
            let feed = vault.payout_change_feed().clone();
            cdvault_storage::payouts::forward_changes(&config.database_url, database.clone(), feed)
                .await
                .context("cannot listen for payout changes")?;
        }
        // The issue path then reads the database only for what changed since (or past the cache's capacity).
        drop(vault.start_issue_cache_warmup());
        // Every replica works on the running rotation job, if any, whoever started it.
        drop(vault.start_rewrap_worker(config.rewrap));
        // A checkpoint now and every interval, and the chain verified in the background (auditChainStatus).
        vault.start_audit_evidence();
        // Grants made on any replica reach this one by polling.
        vault.refresh_access_grants().await.context("cannot read the access grants")?;
        drop(vault.start_access_grants());
        // The change feeds forget what is older than their retention (every replica prunes; it is idempotent).
        drop(vault.start_change_feed_pruning());
        // Revocations and the freeze loaded before serving, then polled (a replica started while frozen hands out
        // no secret).
        vault.start_access_polling().await.context("cannot read the revocations and the freeze")?;
        // Every replica works off the webhook outbox (each endpoint leased by one replica at a time); started once
        // grants and revocations are loaded, since every delivery checks its owner's access by them.
        drop(vault.start_webhook_dispatcher());
        let router = cdvault_api::http::router(vault.clone(), Arc::new(verifier), &config.http, tls.clone());
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (CDVAULT_LISTEN)", config.listen))?;
        let address = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%address, "cdvault listening on {scheme}://{address}/graphql");
        let metrics_listener = match config.http.metrics.listen {
            Some(metrics) => {
                let bound = TcpListener::bind(metrics)
                    .await
                    .with_context(|| format!("cannot listen on {metrics} (CDVAULT_METRICS_LISTEN)"))?;
                let address = bound.local_addr()?;
                tracing::info!(%address, "metrics on http://{address}/metrics");
                Some(bound)
            }
            None => None,
        };
        // Every committed audit event as a JSON line, for the SIEM (docs/audit-stream.md); started last, so a
        // failed start-up leaves no tailer behind.
        let audit_stream = match config.audit_stream.clone() {
            Some(settings) => Some(vault.start_audit_stream(settings).await.context("cannot start the audit stream")?),
            None => None,
        };
        Ok(Self { listener, metrics_listener, router, audit_writer, database, vault, audit_stream, tls })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics listener's address, when there is one (tests on port 0 read the real port here).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// The use cases this server runs, for an embedding program (the tests wait on its listening subscriptions).
    pub fn vault(&self) -> Arc<cdvault_api::service::Vault> {
        self.vault.clone()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and the audit queue. If the audit writer
    /// dies first (it failed more times in a row than it is restarted), no issue can succeed any more: the server
    /// shuts down the same way and returns an error, so the process exits non-zero and its supervisor starts a
    /// fresh one.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { listener, metrics_listener, router, audit_writer, database, vault, audit_stream, tls } = self;
        // The metrics listener serves until the main one has stopped (a scrape during the drain still answers).
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        if let Some(metrics_listener) = metrics_listener {
            let metrics = cdvault_api::metrics::router(database.clone());
            tokio::spawn(async move {
                let stopped = async {
                    let _ = metrics_stopped.await;
                };
                if let Err(error) = axum::serve(metrics_listener, metrics).with_graceful_shutdown(stopped).await {
                    tracing::error!(%error, "the metrics listener failed");
                }
            });
        }
        let (died_tx, died) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(async move {
            let stopped = audit_writer.stopped().await;
            if stopped.is_err() {
                let _ = died_tx.send(());
            }
            stopped
        });
        let closing = vault.clone();
        let shutdown = async move {
            tokio::select! {
                () = shutdown => {}
                // Only a dead writer sends; a writer that stops normally drops the sender after serving ended.
                Ok(()) = died => tracing::error!("the audit writer is dead: shutting down"),
            }
            // WebSockets are not in-flight requests: end them, or they would hold the server open.
            closing.close_sessions();
        };
        // The emitter holds no audit sink: it outlives the vault, for the checkpoint at shutdown.
        let checkpoints = vault.checkpoint_emitter();
        drop(vault);
        // The peer's address is what token-less requests are rate-limited by.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        match tls {
            None => axum::serve(listener, service).with_graceful_shutdown(shutdown).await?,
            Some(certificates) => serve_tls(listener, service, certificates, shutdown).await?,
        }
        drop(stop_metrics);
        // The router (and with it every audit sink) is gone: the writer drains its queue and stops.
        let stopped = writer.await.context("the audit writer watch failed")?;
        // The writer drained its queue: the stream catches up with the head, then stops.
        if let Some(stream) = audit_stream {
            stream.finish().await;
        }
        // The writer drained its queue: this checkpoint covers the last event (a sink failure is logged in emit).
        if let Err(e) = checkpoints.emit().await {
            tracing::error!(error = %cdvault_api::error::error_chain(&e), "no audit checkpoint could be made at shutdown");
        }
        database.close().await?;
        stopped.context("cdvault stopped because its audit trail cannot be written")?;
        tracing::info!("cdvault stopped");
        Ok(())
    }
}

/// The main listener over TLS (axum-server: hyper on rustls, one task per connection, its handshake included),
/// with the same graceful shutdown as plain HTTP: no new connection once `shutdown` completes, in-flight requests
/// drained. The certificate is polled for changes meanwhile.
async fn serve_tls(
    listener: TcpListener,
    service: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
    certificates: Certificates,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let reload = certificates.spawn_reload();
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    let stop = tokio::spawn(async move {
        shutdown.await;
        stopping.graceful_shutdown(None);
    });
    // TCP_NODELAY: HTTP/2 (which ALPN gives browsers and curl) writes a response in several small frames, and Nagle
    // held the last one back ~40 ms on every request until the client's delayed ACK.
    let acceptor = RustlsAcceptor::new(certificates.rustls_config()).acceptor(NoDelayAcceptor::new());
    let served = axum_server::from_tcp(listener.into_std()?)?.acceptor(acceptor).handle(handle).serve(service).await;
    reload.abort();
    stop.abort();
    Ok(served?)
}

fn warn_development_set_up() {
    tracing::warn!("==================================================================");
    tracing::warn!("DEVELOPMENT SET-UP: CDVAULT_DATABASE_URL is not set.");
    tracing::warn!("Using SQLite and a root key and JWT secret kept in the data directory.");
    tracing::warn!("Do not keep real credentials here. See docs/deploy.md for production.");
    tracing::warn!("==================================================================");
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
