//! The OTLP span exporter: HTTP/protobuf to the collector, in batches sent from the batch processor's own thread
//! (through a blocking client, so no request task ever waits on the collector), as service [`SERVICE_NAME`].

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};

use super::{OtlpSettings, SERVICE_NAME};

/// The tracer provider exporting to `settings`' collector. Nothing is sent until a span ends.
pub(super) fn provider(settings: &OtlpSettings) -> anyhow::Result<SdkTracerProvider> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_url.as_str())
        .build()
        .context("cannot set up the OTLP span exporter (CDVAULT_OTLP_ENDPOINT)")?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(SERVICE_NAME).build())
        .build())
}

/// The tracer the tracing layer turns spans into OpenTelemetry spans with.
pub(super) fn tracer(provider: &SdkTracerProvider) -> Tracer {
    provider.tracer(SERVICE_NAME)
}

/// W3C trace context (`traceparent`, `tracestate`): the request span of a request that names a trace joins it.
pub(super) fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}
