//! Unit tests of the settings: layering, validation messages, development files.

use secrecy::ExposeSecret;

use super::*;

#[test]
fn a_value_and_its_file_twin_together_are_an_error() {
    let s = Settings::from_pairs([("CDVAULT_ROOT_KEY", "x"), ("CDVAULT_ROOT_KEY_FILE", "/tmp/x")]);
    let e = s.root_key(false).err().unwrap();
    assert!(e.0.contains("CDVAULT_ROOT_KEY and CDVAULT_ROOT_KEY_FILE"), "{e}");
}

#[test]
fn production_without_a_root_key_names_the_setting() {
    let s = Settings::from_pairs([("CDVAULT_DATABASE_URL", "postgres://localhost/x")]);
    assert!(s.root_key(true).err().unwrap().0.contains("CDVAULT_ROOT_KEY"));
    assert!(s.jwt(true).err().unwrap().0.contains("CDVAULT_JWT_HS256_SECRET"));
}

#[test]
fn production_needs_an_issuer_and_an_audience() {
    let s = Settings::from_pairs([
        ("CDVAULT_DATABASE_URL", "postgres://localhost/x"),
        ("CDVAULT_JWT_HS256_SECRET", "0123456789abcdef0123456789abcdef"),
    ]);
    assert!(s.jwt(false).err().unwrap().0.contains("CDVAULT_JWT_ISSUER"));
}

#[test]
fn a_toml_file_is_read_and_the_environment_names_win_over_it() {
    let dir = std::env::temp_dir().join(format!("cdvault-toml-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cdvault.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9999\"\njwt_issuer = \"from-file\"\n").unwrap();
    let s = Settings::from_toml_file(&file).unwrap();
    assert_eq!(s.listen().unwrap().port(), 9999);
    assert_eq!(s.jwt_issuer().unwrap(), "from-file");
    std::fs::write(&file, "no_such_setting = 1\n").unwrap();
    assert!(Settings::from_toml_file(&file).err().unwrap().0.contains("no_such_setting"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_marketplace_is_the_fake_one_in_development_and_cdiscount_in_production() {
    let dev = Settings::from_pairs([]);
    assert_eq!(dev.marketplace(true).unwrap(), cdvault_cdiscount::Endpoints::same(DEV_MARKETPLACE_URL));
    let production = dev.marketplace(false).unwrap();
    assert_eq!(production, cdvault_cdiscount::Endpoints::production());
    let s = Settings::from_pairs([
        ("CDVAULT_CDISCOUNT_STS_URL", "http://127.0.0.1:9/"),
        ("CDVAULT_OCTOPIA_AUTH_URL", "ftp://x"),
    ]);
    assert!(s.marketplace(false).err().unwrap().0.contains("CDVAULT_OCTOPIA_AUTH_URL"));
    let s = Settings::from_pairs([("CDVAULT_CDISCOUNT_STS_URL", "http://127.0.0.1:9/")]);
    assert_eq!(s.marketplace(false).unwrap().sts, "http://127.0.0.1:9");
}

#[test]
fn rewrap_pacing_has_defaults_and_bounds_that_name_the_setting() {
    let defaults = Settings::from_pairs([]).rewrap().unwrap();
    assert_eq!(defaults, cdvault_api::service::RewrapSettings::default());
    let s = Settings::from_pairs([("CDVAULT_REWRAP_BATCH_SIZE", "0")]);
    assert!(s.rewrap().unwrap_err().0.contains("CDVAULT_REWRAP_BATCH_SIZE"));
    let s = Settings::from_pairs([("CDVAULT_JOB_LEASE_TTL", "soon")]);
    assert!(s.rewrap().unwrap_err().0.contains("CDVAULT_JOB_LEASE_TTL"));
}

#[test]
fn a_bad_listen_address_or_algorithm_names_the_setting() {
    let s = Settings::from_pairs([("CDVAULT_LISTEN", "nowhere"), ("CDVAULT_JWT_ALGORITHM", "none")]);
    assert!(s.listen().err().unwrap().0.contains("CDVAULT_LISTEN"));
    assert!(s.jwt_algorithm().err().unwrap().0.contains("CDVAULT_JWT_ALGORITHM"));
}

#[test]
fn the_development_set_up_creates_private_secret_files_once() {
    let dir = std::env::temp_dir().join(format!("cdvault-config-{}", uuid_like()));
    let dir_text = dir.display().to_string();
    let s = Settings::from_pairs([("CDVAULT_DATA_DIR", dir_text.as_str())]);
    assert!(s.hs256_secret(false).is_err(), "token minting never creates a secret");
    let first = s.hs256_secret(true).unwrap();
    let second = s.hs256_secret(false).unwrap();
    assert_eq!(first.expose_secret(), second.expose_secret());
    s.root_key(true).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(ROOT_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}
