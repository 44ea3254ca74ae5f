//! Tests of the credential values: the password policy, Octopia credentials, secret-hiding `Debug`, stable names.

use proptest::prelude::*;

use super::*;

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[test]
fn a_password_that_meets_the_policy_has_no_warnings() {
    let (_, warnings) = ApiPassword::parse("password", secret("Sup3r-Secret!")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn a_weak_password_is_accepted_with_warnings() {
    let (_, warnings) = ApiPassword::parse("password", secret("short")).unwrap();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    let (_, warnings) = ApiPassword::parse("password", secret("Abcdefg1!<x>")).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("'<'"));
    let (_, warnings) = ApiPassword::parse("password", secret("Abcdefgh1€")).unwrap();
    assert!(warnings.is_empty(), "the euro sign is one of the allowed specials: {warnings:?}");
}

#[test]
fn empty_overlong_and_control_character_passwords_are_errors() {
    assert_eq!(ApiPassword::parse("password", secret("")).unwrap_err().reason.as_str(), "EMPTY");
    assert_eq!(ApiPassword::parse("password", secret(&"a".repeat(129))).unwrap_err().reason.as_str(), "TOO_LONG");
    assert_eq!(ApiPassword::parse("password", secret("abc\u{7}def")).unwrap_err().reason.as_str(), "CONTROL_CHARACTER");
    assert!(ApiPassword::parse("password", secret(&"a".repeat(128))).is_ok());
}

#[test]
fn the_debug_form_of_secrets_hides_them() {
    let (password, _) = ApiPassword::parse("password", secret("Sup3r-Secret!")).unwrap();
    assert!(!format!("{password:?}").contains("Sup3r"));
    let octopia = OctopiaCredential::parse("client", secret("s3cr3t-value"), "42").unwrap();
    assert!(!format!("{octopia:?}").contains("s3cr3t"));
}

#[test]
fn octopia_credentials_need_every_field() {
    assert_eq!(OctopiaCredential::parse("", secret("x"), "1").unwrap_err().field, "clientId");
    assert_eq!(OctopiaCredential::parse("c", secret(""), "1").unwrap_err().field, "clientSecret");
    assert_eq!(OctopiaCredential::parse("c", secret("x"), " ").unwrap_err().field, "sellerId");
}

#[test]
fn credential_kinds_outcomes_and_changes_round_trip_through_their_names() {
    for kind in [CredentialKind::MarketplaceApi, CredentialKind::Octopia] {
        assert_eq!(CredentialKind::parse(kind.as_str()), Some(kind));
    }
    for outcome in [VerificationOutcome::Verified, VerificationOutcome::Rejected, VerificationOutcome::Unreachable] {
        assert_eq!(VerificationOutcome::parse(outcome.as_str()), Some(outcome));
    }
    for change in [CredentialChangeKind::Stored, CredentialChangeKind::Restored, CredentialChangeKind::Rejected] {
        assert_eq!(CredentialChangeKind::parse(change.as_str()), Some(change));
    }
}

proptest! {
    #[test]
    fn password_parsing_never_panics(raw in "\\PC{0,140}") {
        let _ = ApiPassword::parse("password", secret(&raw));
    }
}
