//! The logs' and traces' settings: the log format (`CDVAULT_LOG_FORMAT`) and the OTLP collector spans are exported
//! to (`CDVAULT_OTLP_ENDPOINT`). The filter (`CDVAULT_LOG`) is checked with the other settings in `settings.rs`.

use crate::telemetry::{LogFormat, OtlpSettings, TelemetrySettings};

use super::raw::{RawSettings, Text};
use super::{ConfigError, err};

/// `CDVAULT_LOG_FORMAT` and `CDVAULT_OTLP_ENDPOINT`, validated.
pub fn telemetry(raw: &RawSettings) -> Result<TelemetrySettings, ConfigError> {
    let format = match Text::present(raw.log_format.as_ref()).map(str::trim) {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(_) => return Err(err("CDVAULT_LOG_FORMAT must be text or json")),
    };
    let otlp = match Text::present(raw.otlp_endpoint.as_ref()) {
        None => None,
        Some(given) => {
            let base = given.trim().trim_end_matches('/');
            let host = base.strip_prefix("http://").or_else(|| base.strip_prefix("https://")).unwrap_or("");
            // The message never quotes the value: a URL may carry a credential.
            if host.is_empty() || host.contains(char::is_whitespace) {
                return Err(err("CDVAULT_OTLP_ENDPOINT is not an http(s) base URL like http://otel-collector:4318"));
            }
            Some(OtlpSettings { traces_url: format!("{base}/v1/traces") })
        }
    };
    Ok(TelemetrySettings { format, otlp })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telemetry_of(pairs: &[(&str, &str)]) -> Result<TelemetrySettings, ConfigError> {
        telemetry(&super::super::layers::merge(None, pairs.iter().copied())?)
    }

    #[test]
    fn logs_are_text_and_no_span_is_exported_unless_configured() {
        let settings = telemetry_of(&[]).unwrap();
        assert_eq!(settings.format, LogFormat::Text);
        assert_eq!(settings.otlp, None);
    }

    #[test]
    fn the_json_format_and_a_collector_are_read_from_their_settings() {
        let settings =
            telemetry_of(&[("CDVAULT_LOG_FORMAT", "json"), ("CDVAULT_OTLP_ENDPOINT", "http://collector:4318/")])
                .unwrap();
        assert_eq!(settings.format, LogFormat::Json);
        assert_eq!(settings.otlp, Some(OtlpSettings { traces_url: "http://collector:4318/v1/traces".to_owned() }));
    }

    #[test]
    fn an_unknown_format_or_a_collector_that_is_no_url_is_refused_without_quoting_it() {
        let format = telemetry_of(&[("CDVAULT_LOG_FORMAT", "yaml")]).err().unwrap().to_string();
        assert!(format.contains("CDVAULT_LOG_FORMAT") && !format.contains("yaml"), "{format}");
        let endpoint = telemetry_of(&[("CDVAULT_OTLP_ENDPOINT", "sink.internal:4318")]).err().unwrap().to_string();
        assert!(endpoint.contains("CDVAULT_OTLP_ENDPOINT") && !endpoint.contains("sink.internal"), "{endpoint}");
    }
}
