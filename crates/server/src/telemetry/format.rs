//! The two line formats. JSON lines flatten the fields of every span an event is in (root first, so an inner span's
//! field wins, and the event's own fields win over both): a line written deep inside a request still carries its
//! `request_id`. Both add the OpenTelemetry trace and span ids of the current span when spans are exported.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The trace and span ids (hex) of the OpenTelemetry span current on this thread: the tracing span the event is
/// written in, which the OpenTelemetry layer makes current on entry. `None` when no span is exported.
fn current_ids() -> Option<(String, String)> {
    let context = opentelemetry::Context::current();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

/// tracing-subscriber's text lines, with ` trace_id=… span_id=…` at the end when spans are exported.
pub(super) struct TextWithTraceIds<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for TextWithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let Some((trace_id, span_id)) = current_ids() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writeln!(writer, "{} trace_id={trace_id} span_id={span_id}", line.trim_end_matches('\n'))
    }
}

/// One JSON object per line: `timestamp` (RFC 3339, UTC), `level`, `target`, `span` (the innermost span's name),
/// the spans' fields, the event's fields (`message` among them), and `trace_id` / `span_id` when spans are exported.
/// Needs the layer's fields formatted by `JsonFields`, which keeps each span's fields as a JSON object.
pub(super) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = Map::new();
        let now = time::OffsetDateTime::now_utc();
        let timestamp = now.format(&time::format_description::well_known::Rfc3339).map_err(|_| fmt::Error)?;
        line.insert("timestamp".to_owned(), Value::String(timestamp));
        line.insert("level".to_owned(), Value::String(event.metadata().level().as_str().to_owned()));
        line.insert("target".to_owned(), Value::String(event.metadata().target().to_owned()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                line.insert("span".to_owned(), Value::String(span.name().to_owned()));
                let extensions = span.extensions();
                let fields = extensions.get::<FormattedFields<N>>().map(|fields| fields.fields.as_str());
                if let Some(Ok(Value::Object(fields))) = fields.map(serde_json::from_str::<Value>) {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        if let Some((trace_id, span_id)) = current_ids() {
            line.insert("trace_id".to_owned(), Value::String(trace_id));
            line.insert("span_id".to_owned(), Value::String(span_id));
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writer.write_str(&text)?;
        writer.write_char('\n')
    }
}

/// An event's fields, into the line's object: numbers and booleans as such, anything else as its text.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_owned(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::{LogFormat, layered};

    /// Lines written by a subscriber, kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn json_lines(log: impl FnOnce()) -> Vec<serde_json::Value> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = layered("info", LogFormat::Json, None, move || writer.clone());
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    #[test]
    fn a_json_line_carries_the_fields_of_every_span_it_is_in_and_its_own() {
        let lines = json_lines(|| {
            let request = tracing::info_span!("request", request_id = "r-1", subject = tracing::field::Empty);
            let _request = request.enter();
            request.record("subject", "alice");
            let inner = tracing::info_span!("issue", seller = 7);
            let _inner = inner.enter();
            tracing::info!(status = 200, elapsed_ms = 1.5, ok = true, "served");
        });
        let line = &lines[0];
        assert_eq!(line["message"], "served");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["span"], "issue");
        assert_eq!(
            (&line["request_id"], &line["subject"], &line["seller"]),
            (&"r-1".into(), &"alice".into(), &7.into())
        );
        assert_eq!((&line["status"], &line["elapsed_ms"], &line["ok"]), (&200.into(), &1.5.into(), &true.into()));
        assert!(line.get("trace_id").is_none(), "no span is exported: {line}");
    }

    #[test]
    fn a_json_line_outside_any_span_has_no_span_fields() {
        let lines = json_lines(|| tracing::warn!(cause = "audit writer stuck", "readiness check failed"));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["cause"], "audit writer stuck");
        assert!(lines[0].get("span").is_none() && lines[0].get("request_id").is_none(), "{}", lines[0]);
    }
}
