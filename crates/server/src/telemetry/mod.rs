//! Logging and tracing set-up, in one place. Secrets never reach the log: the code logs no request bodies, headers or
//! variables, and secret types print as `[REDACTED]`. The request span carries the request id, the caller's issuer
//! and subject (never the token) and the operation's root fields (names from the schema, never the client's
//! operation name); every line written inside it carries them.
//!
//! Lines are text or JSON ([`LogFormat`]); with an OTLP collector configured ([`OtlpSettings`]), spans are exported
//! in batches and each line carries the trace and span ids of the span it was written in.

mod format;
mod otlp;

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// What is logged unless `CDVAULT_LOG` says otherwise. PostgreSQL notices (e.g. "already exists, skipping" during
/// migrations) stay out.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// The service name spans are exported under.
pub const SERVICE_NAME: &str = "cdvault";

/// How log lines are written (`CDVAULT_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event, with the fields of its spans.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message, the event's fields and its spans' fields.
    Json,
}

/// Where spans are exported (`CDVAULT_OTLP_ENDPOINT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The OTLP/HTTP traces URL (`<collector>/v1/traces`), spans sent there as protobuf.
    pub traces_url: String,
}

/// The log format and the collector, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// How lines are written.
    pub format: LogFormat,
    /// Where spans go; `None`: nowhere.
    pub otlp: Option<OtlpSettings>,
}

/// Checks a `CDVAULT_LOG` value.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(filter).map_err(|e| e.to_string())
}

/// A subscriber writing human-readable lines with span fields (the request id) to `writer`.
pub fn subscriber<W>(filter: &str, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    layered(filter, LogFormat::Text, None, writer)
}

/// The subscriber of the process: `filter` applied to everything, lines in `format` to `writer`, and spans to
/// `tracer` when there is one.
fn layered<W>(
    filter: &str,
    format: LogFormat,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
    writer: W,
) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = parse_filter(filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let spans = tracer.map(|tracer| tracing_opentelemetry::layer().with_tracer(tracer));
    tracing_subscriber::registry().with(filter).with(spans).with(lines(format, writer))
}

/// The layer writing the lines, in `format`.
fn lines<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => {
            let text = tracing_subscriber::fmt::format().with_target(false).with_ansi(false);
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .event_format(format::TextWithTraceIds(text))
                .boxed()
        }
        // Span fields kept as JSON objects, so that each line can flatten them.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .fmt_fields(JsonFields::new())
            .event_format(format::JsonLines)
            .boxed(),
    }
}

/// The telemetry of the process, once installed: [`Telemetry::shutdown`] (or dropping it) sends the spans still
/// in the exporter's batch.
#[derive(Debug)]
#[must_use = "dropping it shuts the span exporter down"]
pub struct Telemetry {
    exporter: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the span exporter, if any. Waits for the last batch to be sent (or to time out).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.exporter.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "the span exporter did not shut down cleanly");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Installs the process-wide subscriber (stderr) and, when a collector is configured, the span exporter and the
/// W3C trace-context propagator (so that a request's `traceparent` is honoured). A second call installs nothing.
pub fn init(filter: &str, settings: &TelemetrySettings) -> anyhow::Result<Telemetry> {
    let exporter = settings.otlp.as_ref().map(otlp::provider).transpose()?;
    let tracer = exporter.as_ref().map(otlp::tracer);
    let installed =
        tracing::subscriber::set_global_default(layered(filter, settings.format, tracer, std::io::stderr)).is_ok();
    if let (true, Some(otlp)) = (installed, &settings.otlp) {
        otlp::install_propagator();
        tracing::info!(url = %otlp.traces_url, "exporting spans over OTLP/HTTP");
    }
    Ok(Telemetry { exporter })
}
