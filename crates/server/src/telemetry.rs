//! Logging set-up, in one place. Secrets never reach the log: the code logs no request bodies, headers or
//! variables, and secret types print as `[REDACTED]`.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// What is logged unless `CDVAULT_LOG` says otherwise. PostgreSQL notices (e.g. "already exists, skipping" during
/// migrations) stay out.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Checks a `CDVAULT_LOG` value.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(filter).map_err(|e| e.to_string())
}

/// A subscriber writing human-readable lines with span fields (the request id) to `writer`.
pub fn subscriber<W>(filter: &str, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = parse_filter(filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(writer).with_target(false).with_ansi(false))
}

/// Installs the process-wide subscriber (stderr). Later calls are ignored.
pub fn init(filter: &str) {
    let _ = tracing::subscriber::set_global_default(subscriber(filter, std::io::stderr));
}
