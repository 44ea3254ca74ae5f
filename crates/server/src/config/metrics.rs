//! Where the metrics are served (`CDVAULT_METRICS_LISTEN`, `CDVAULT_METRICS_ON_MAIN`), validated once.

use std::net::SocketAddr;

use cdvault_api::http::MetricsOptions;

use super::raw::{RawSettings, Text};
use super::{ConfigError, err};

/// The metrics listener's address, if any, and whether the main listener serves `/metrics` too.
pub(super) fn metrics_options(raw: &RawSettings) -> Result<MetricsOptions, ConfigError> {
    let listen = Text::present(raw.metrics_listen.as_ref())
        .map(|given| given.trim().parse::<SocketAddr>())
        .transpose()
        .map_err(|_| err("CDVAULT_METRICS_LISTEN is not an address like 127.0.0.1:9464"))?;
    let on_main = Text::flag(raw.metrics_on_main.as_ref(), "CDVAULT_METRICS_ON_MAIN")?.unwrap_or(false);
    Ok(MetricsOptions { listen, on_main })
}

#[cfg(test)]
mod tests {
    use super::super::settings::Settings;

    #[test]
    fn metrics_are_off_the_main_listener_and_unlistened_unless_configured() {
        let settings = Settings::from_pairs([]).unwrap();
        assert_eq!(settings.http.metrics, cdvault_api::http::MetricsOptions::default());
        let settings =
            Settings::from_pairs([("CDVAULT_METRICS_LISTEN", "0.0.0.0:9464"), ("CDVAULT_METRICS_ON_MAIN", "true")])
                .unwrap();
        assert_eq!(settings.http.metrics.listen.map(|a| a.port()), Some(9464));
        assert!(settings.http.metrics.on_main);
    }

    #[test]
    fn a_bad_metrics_address_names_the_setting() {
        let refused = Settings::from_pairs([("CDVAULT_METRICS_LISTEN", "nowhere")]).err().unwrap();
        assert!(refused.0.contains("CDVAULT_METRICS_LISTEN"), "{}", refused.0);
    }
}
