//! Unit tests of the settings: layering, validation messages, development files. No test touches the process
//! environment: the layers are built from explicit pairs and TOML text.

use secrecy::ExposeSecret;

use super::dev_setup::{JWT_SECRET_FILE, ROOT_KEY_FILE};
use super::*;

const PRODUCTION_URL: &str = "postgres://localhost/x";
const A_SECRET: &str = "0123456789abcdef0123456789abcdef";

fn refused<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    Settings::from_pairs(pairs).err().unwrap().0
}

#[test]
fn a_value_and_its_file_twin_together_are_an_error() {
    let e = refused([("CDVAULT_ROOT_KEY", "x"), ("CDVAULT_ROOT_KEY_FILE", "/tmp/x")]);
    assert!(e.contains("CDVAULT_ROOT_KEY and CDVAULT_ROOT_KEY_FILE"), "{e}");
}

#[test]
fn production_without_a_root_key_names_the_setting() {
    let s = Settings::from_pairs([("CDVAULT_DATABASE_URL", PRODUCTION_URL)]).unwrap();
    assert!(s.root_key().err().unwrap().0.contains("CDVAULT_ROOT_KEY"));
    assert!(s.jwt().err().unwrap().0.contains("CDVAULT_JWT_HS256_SECRET"));
}

#[test]
fn production_needs_an_issuer_and_an_audience() {
    let s = Settings::from_pairs([("CDVAULT_DATABASE_URL", PRODUCTION_URL), ("CDVAULT_JWT_HS256_SECRET", A_SECRET)])
        .unwrap();
    assert!(s.jwt().err().unwrap().0.contains("CDVAULT_JWT_ISSUER"));
    assert!(ServeConfig::from_settings(&s).err().unwrap().0.contains("CDVAULT_JWT_ISSUER"));
}

#[test]
fn a_toml_file_is_read_and_the_environment_wins_over_it() {
    let toml = "listen = \"127.0.0.1:9999\"\njwt_issuer = \"from-file\"\njwt_audience = \"file-audience\"\n";
    let s = Settings::try_from(merge(Some(toml), [("CDVAULT_JWT_ISSUER", "from-env")]).unwrap()).unwrap();
    assert_eq!(s.listen.port(), 9999);
    assert_eq!(s.jwt_issuer().unwrap(), "from-env");
    assert_eq!(s.jwt_audience().unwrap(), "file-audience");
}

#[test]
fn an_empty_environment_value_unsets_the_files_value() {
    let s = Settings::try_from(merge(Some("listen = \"127.0.0.1:9999\"\n"), [("CDVAULT_LISTEN", "")]).unwrap());
    assert_eq!(s.unwrap().listen.to_string(), DEFAULT_LISTEN);
    let s = Settings::from_pairs([("CDVAULT_DATABASE_URL", "  ")]).unwrap();
    assert!(s.is_dev(), "a blank database URL is unset: the development set-up");
}

#[test]
fn an_unknown_key_in_the_toml_file_is_refused_and_named() {
    let e = merge(Some("no_such_setting = 1\n"), []).err().unwrap().0;
    assert!(e.contains("no_such_setting"), "{e}");
    let e = merge(Some("[jwt]\nissuer = \"x\"\n"), []).err().unwrap().0;
    assert!(e.contains("'issuer'"), "{e}");
}

#[test]
fn environment_names_the_struct_does_not_have_never_stop_start_up() {
    // Kubernetes' service links for a Service named `cdvault`, the file's own name, the tests' database.
    let s = Settings::from_pairs([
        ("CDVAULT_PORT", "tcp://10.0.0.1:8080"),
        ("CDVAULT_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
        ("CDVAULT_PORT_8080_TCP_ADDR", "10.0.0.1"),
        ("CDVAULT_SERVICE_HOST", "10.0.0.1"),
        ("CDVAULT_SERVICE_PORT", "8080"),
        ("CDVAULT_CONFIG", "/nowhere.toml"),
        ("CDVAULT_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        ("CDVAULT_SOMETHING_ELSE", "[1, 2"),
    ])
    .unwrap();
    assert!(s.is_dev());
    assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
}

#[test]
fn an_all_digit_secret_stays_a_string() {
    let digits = "12345678901234567890123456789012345678";
    let s = Settings::from_pairs([("CDVAULT_JWT_HS256_SECRET", digits)]).unwrap();
    assert_eq!(s.hs256_secret().unwrap().expose_secret().as_slice(), digits.as_bytes());
    let toml = "jwt_hs256_secret = \"00000000000000000000000000000000\"\nrewrap_batch_size = 7\n";
    let s = Settings::try_from(merge(Some(toml), []).unwrap()).unwrap();
    assert_eq!(s.hs256_secret().unwrap().expose_secret().as_slice(), b"00000000000000000000000000000000");
    assert_eq!(s.rewrap.batch_size, 7, "a TOML number is read as its text, as before");
}

#[test]
fn the_marketplace_is_the_fake_one_in_development_and_cdiscount_in_production() {
    let dev = Settings::from_pairs([]).unwrap();
    assert_eq!(dev.marketplace, cdvault_cdiscount::Endpoints::same(DEV_MARKETPLACE_URL));
    let production = Settings::from_pairs([("CDVAULT_DATABASE_URL", PRODUCTION_URL)]).unwrap();
    assert_eq!(production.marketplace, cdvault_cdiscount::Endpoints::production());
    let e = refused([("CDVAULT_CDISCOUNT_STS_URL", "http://127.0.0.1:9/"), ("CDVAULT_OCTOPIA_AUTH_URL", "ftp://x")]);
    assert!(e.contains("CDVAULT_OCTOPIA_AUTH_URL"), "{e}");
    let s = Settings::from_pairs([
        ("CDVAULT_DATABASE_URL", PRODUCTION_URL),
        ("CDVAULT_CDISCOUNT_STS_URL", "http://127.0.0.1:9/"),
    ]);
    assert_eq!(s.unwrap().marketplace.sts, "http://127.0.0.1:9");
}

#[test]
fn rewrap_pacing_has_defaults_and_bounds_that_name_the_setting() {
    let defaults = Settings::from_pairs([]).unwrap().rewrap;
    assert_eq!(defaults, cdvault_api::service::RewrapSettings::default());
    assert!(refused([("CDVAULT_REWRAP_BATCH_SIZE", "0")]).contains("CDVAULT_REWRAP_BATCH_SIZE"));
    assert!(refused([("CDVAULT_JOB_LEASE_TTL", "soon")]).contains("CDVAULT_JOB_LEASE_TTL"));
}

#[test]
fn a_bad_listen_address_or_algorithm_names_the_setting() {
    assert!(refused([("CDVAULT_LISTEN", "nowhere")]).contains("CDVAULT_LISTEN"));
    assert!(refused([("CDVAULT_JWT_ALGORITHM", "none")]).contains("CDVAULT_JWT_ALGORITHM"));
}

/// A value that looks like a secret, fed to every setting in turn, from the environment and from the file: no
/// message may contain it, or any part of it.
#[test]
fn no_configuration_error_ever_contains_a_value() {
    let secret = "S3cr3t-PW-4f9a";
    let values = [
        secret.to_owned(),
        format!("postgres://cdvault:{secret}@db/cdvault"),
        format!("sqlite::memory:{secret}"),
        format!("http://{secret} x"),
        format!("/nonexistent/{secret}"),
        format!("info,[[[{secret}"),
        format!("{secret}{secret}{secret}"),
        "12345678".to_owned(),
    ];
    let mut refusals = 0;
    for setting in SETTINGS {
        for value in &values {
            let from_env = Settings::from_pairs([(setting.env, value.as_str())]).err();
            let toml = format!("{} = {}\n", setting.key, toml::Value::String(value.clone()));
            let from_file = merge(Some(&toml), []).and_then(Settings::try_from).err();
            for e in from_env.into_iter().chain(from_file) {
                refusals += 1;
                assert!(!e.0.contains(secret) && !e.0.contains("12345678"), "{} leaks its value: {e}", setting.env);
            }
        }
    }
    let broken_toml = format!("database_url = \"postgres://cdvault:{secret}@db/cdvault\n");
    let e = merge(Some(&broken_toml), []).err().unwrap().0;
    assert!(e.contains("not valid TOML (line 1)") && !e.contains(secret), "{e}");
    let e = merge(Some(&format!("listen = [\"{secret}\"]\n")), []).err().unwrap().0;
    assert!(e.contains("CDVAULT_LISTEN") && !e.contains(secret), "{e}");
    assert!(refusals > SETTINGS.len(), "the values were refused: {refusals}");
}

#[test]
fn every_setting_is_documented_once_with_its_environment_name() {
    let reference = reference_markdown();
    for setting in SETTINGS {
        assert_eq!(setting.env, format!("CDVAULT_{}", setting.key.to_ascii_uppercase()));
        assert_eq!(reference.matches(&format!("| `{}` |", setting.env)).count(), 1, "{}", setting.env);
    }
    assert!(reference.contains("| `CDVAULT_CONFIG` |"));
}

#[test]
fn the_development_set_up_creates_private_secret_files_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_text = data.display().to_string();
    let s = Settings::from_pairs([("CDVAULT_DATA_DIR", data_text.as_str())]).unwrap();
    assert!(s.hs256_secret().is_err(), "reading never creates a secret");
    assert!(!data.exists(), "validating creates nothing");
    let first = ServeConfig::from_settings(&s).unwrap();
    let second = s.hs256_secret().unwrap();
    let cdvault_api::auth::KeySource::Hs256(first) = &first.jwt.issuers[0].source else { panic!("an HS256 key") };
    assert_eq!(first.expose_secret(), second.expose_secret());
    ServeConfig::from_settings(&s).unwrap();
    s.root_key().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [ROOT_KEY_FILE, JWT_SECRET_FILE] {
            let mode = std::fs::metadata(data.join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    }
}

#[test]
fn a_configured_secret_is_never_written_to_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data_text = dir.path().display().to_string();
    let s = Settings::from_pairs([("CDVAULT_DATA_DIR", data_text.as_str()), ("CDVAULT_JWT_HS256_SECRET", A_SECRET)]);
    ServeConfig::from_settings(&s.unwrap()).unwrap();
    assert!(dir.path().join(ROOT_KEY_FILE).exists());
    assert!(!dir.path().join(JWT_SECRET_FILE).exists());
}

#[test]
fn checkpoints_go_to_the_log_every_minute_in_production_and_to_a_file_in_the_data_directory_in_development() {
    use cdvault_api::service::CheckpointSink;
    let s = Settings::from_pairs([("CDVAULT_DATABASE_URL", PRODUCTION_URL)]).unwrap();
    assert_eq!(s.checkpoints.sink, CheckpointSink::Log);
    assert_eq!(s.checkpoints.interval, std::time::Duration::from_secs(60));
    let s = Settings::from_pairs([("CDVAULT_DATA_DIR", "/srv/data")]).unwrap();
    let expected = std::path::Path::new("/srv/data").join(CHECKPOINT_FILE);
    assert_eq!(s.checkpoints.sink, CheckpointSink::File(expected));
}

#[test]
fn a_checkpoint_sink_and_interval_are_read_and_bad_ones_are_named() {
    use cdvault_api::service::CheckpointSink;
    let s = Settings::from_pairs([
        ("CDVAULT_AUDIT_CHECKPOINTS", "file:/var/lib/cdvault/checkpoints.jsonl"),
        ("CDVAULT_AUDIT_CHECKPOINT_INTERVAL", "15"),
    ])
    .unwrap();
    assert_eq!(s.checkpoints.sink, CheckpointSink::File("/var/lib/cdvault/checkpoints.jsonl".into()));
    assert_eq!(s.checkpoints.interval, std::time::Duration::from_secs(15));
    let s = Settings::from_pairs([("CDVAULT_AUDIT_CHECKPOINTS", "log"), ("CDVAULT_DATA_DIR", "/srv/data")]).unwrap();
    assert_eq!(s.checkpoints.sink, CheckpointSink::Log, "`log` wins over the development default");
    for bad in ["syslog", "file:", "file:  "] {
        let e = refused([("CDVAULT_AUDIT_CHECKPOINTS", bad)]);
        assert!(e.contains("CDVAULT_AUDIT_CHECKPOINTS"), "{e}");
    }
    for bad in ["0", "86401", "1m"] {
        let e = refused([("CDVAULT_AUDIT_CHECKPOINT_INTERVAL", bad)]);
        assert!(e.contains("CDVAULT_AUDIT_CHECKPOINT_INTERVAL"), "{e}");
    }
}

#[test]
fn the_replica_is_named_by_its_setting_else_the_host_name_else_a_random_id() {
    let raw = || merge(None, [("CDVAULT_DATABASE_URL", PRODUCTION_URL)]).unwrap();
    assert_eq!(Settings::validate(raw(), Some("cdvault-7f9c")).unwrap().checkpoints.replica, "cdvault-7f9c");
    let named = merge(None, [("CDVAULT_REPLICA", "eu-west-1a")]).unwrap();
    assert_eq!(Settings::validate(named, Some("cdvault-7f9c")).unwrap().checkpoints.replica, "eu-west-1a");
    let unnamed = Settings::validate(raw(), None).unwrap().checkpoints.replica;
    assert!(unnamed.starts_with("replica-"), "{unnamed}");
    assert_ne!(unnamed, Settings::validate(raw(), Some(" ")).unwrap().checkpoints.replica);
    let e = refused([("CDVAULT_REPLICA", "two words")]);
    assert!(e.contains("CDVAULT_REPLICA"), "{e}");
}

#[test]
fn toml_issuers_join_the_environment_issuer_with_their_sources_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hs.secret");
    std::fs::write(&secret, A_SECRET).unwrap();
    let toml = format!(
        "[[jwt.issuers]]\nissuer = \"https://idp.example\"\naudience = \"cdvault\"\ndiscovery = true\n\n\
         [[jwt.issuers]]\nissuer = \"tools\"\naudience = \"cdvault\"\nhs256_secret_file = \"{}\"\n\n\
         [[jwt.issuers]]\nissuer = \"k8s\"\naudience = \"cdvault\"\njwks_file = \"/var/run/jwks.json\"\n\
         algorithms = [\"RS256\"]\nmode = \"claims\"\n",
        secret.display()
    );
    let pairs = [("CDVAULT_DATABASE_URL", PRODUCTION_URL), ("CDVAULT_JWT_MAX_LIFETIME", "3600")];
    let s = Settings::try_from(merge(Some(&toml), pairs).unwrap()).unwrap();
    assert!(!s.has_env_issuer(), "production with file issuers only needs no CDVAULT_JWT_*");
    let jwt = s.jwt().unwrap();
    assert_eq!(jwt.max_lifetime, Some(std::time::Duration::from_secs(3600)));
    let summary: Vec<_> = jwt.issuers.iter().map(|i| (i.issuer.as_str(), i.mode, i.algorithms.len())).collect();
    use cdvault_api::auth::IssuerMode::{Claims, Grants};
    assert_eq!(summary, [("https://idp.example", Grants, 4), ("tools", Claims, 1), ("k8s", Claims, 1)]);
    assert!(!format!("{:?}", jwt).contains(A_SECRET), "the secret stays out of Debug");
    cdvault_api::auth::JwtVerifier::new(&jwt).unwrap();
}

#[test]
fn a_toml_issuer_needs_exactly_one_key_source_and_known_values() {
    let base = "[[jwt.issuers]]\nissuer = \"i\"\naudience = \"a\"\n";
    let refused = |extra: &str| {
        let toml = format!("{base}{extra}");
        Settings::try_from(merge(Some(&toml), [("CDVAULT_DATABASE_URL", PRODUCTION_URL)]).unwrap()).err().unwrap().0
    };
    assert!(refused("").contains("exactly one"));
    assert!(refused("discovery = true\njwks_url = \"https://x\"\n").contains("exactly one"));
    assert!(refused("discovery = true\nmode = \"both\"\n").contains("mode"));
    assert!(refused("discovery = true\nalgorithms = [\"none\"]\n").contains("algorithms"));
    assert!(refused("jwks_file = \"/x\"\nca_file = \"/ca\"\n").contains("ca_file"));
    let e = merge(Some(&format!("{base}discovery = true\nsecret = \"x\"\n")), []).err().unwrap().0;
    assert!(e.contains("'secret'") && !e.contains("\"x\""), "{e}");
    assert!(refused_pairs(&[("CDVAULT_JWT_MAX_LIFETIME", "10")]).contains("CDVAULT_JWT_MAX_LIFETIME"));
}

fn refused_pairs(pairs: &[(&str, &str)]) -> String {
    Settings::from_pairs(pairs.iter().copied()).err().unwrap().0
}

#[test]
fn the_audit_stream_is_off_unless_set_and_a_bad_target_is_named() {
    use cdvault_api::service::StreamTarget;
    assert_eq!(Settings::from_pairs([]).unwrap().audit_stream, None);
    let s = Settings::from_pairs([("CDVAULT_AUDIT_STREAM", "stdout")]).unwrap();
    assert_eq!(s.audit_stream.map(|a| a.target), Some(StreamTarget::Stdout));
    let s = Settings::from_pairs([("CDVAULT_AUDIT_STREAM", "file:/var/log/cdvault/audit.jsonl")]).unwrap();
    assert_eq!(s.audit_stream.map(|a| a.target), Some(StreamTarget::File("/var/log/cdvault/audit.jsonl".into())));
    for bad in ["stderr", "file:", "file:  "] {
        let e = refused([("CDVAULT_AUDIT_STREAM", bad)]);
        assert!(e.contains("CDVAULT_AUDIT_STREAM"), "{e}");
    }
}

#[test]
fn the_change_feed_retention_is_a_duration_with_a_unit_between_an_hour_and_ten_years() {
    let retention =
        |value| Settings::from_pairs([("CDVAULT_CHANGE_FEED_RETENTION", value)]).map(|s| s.change_feed_retention);
    assert_eq!(Settings::from_pairs([]).unwrap().change_feed_retention, std::time::Duration::from_secs(7 * 86_400));
    assert_eq!(retention("36h").unwrap(), std::time::Duration::from_secs(36 * 3600));
    assert_eq!(retention("2w").unwrap(), std::time::Duration::from_secs(14 * 86_400));
    for (bad, says) in [("7", "not a duration"), ("soon", "not a duration"), ("30m", "outside"), ("3651d", "outside")] {
        let e = refused([("CDVAULT_CHANGE_FEED_RETENTION", bad)]);
        assert!(e.contains("CDVAULT_CHANGE_FEED_RETENTION") && e.contains(says), "{bad}: {e}");
    }
}
