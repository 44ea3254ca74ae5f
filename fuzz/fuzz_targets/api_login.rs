//! The credential parsers of `cdvault_domain::credential`: the Marketplace API password and the Octopia client
//! credentials, plus the small code parsers stored beside them. Never panics; accepted values parse again to the
//! same value; `Debug` never depends on the secret.
#![no_main]

use arbitrary::Arbitrary;
use cdvault_domain::credential::{
    ApiPassword, CredentialChangeKind, CredentialKind, OctopiaCredential, VerificationOutcome,
};
use libfuzzer_sys::fuzz_target;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    password: &'a str,
    client_id: &'a str,
    client_secret: &'a str,
    seller_id: &'a str,
    code: &'a str,
}

fn secret(raw: &str) -> SecretString {
    SecretString::from(raw.to_owned())
}

fn password(raw: &str) {
    let Ok((parsed, warnings)) = ApiPassword::parse("password", secret(raw)) else { return };
    assert_eq!(parsed.expose(), raw, "a password is kept exactly as given");
    assert_eq!(format!("{parsed:?}"), "ApiPassword([REDACTED])");
    let again = ApiPassword::parse("password", secret(parsed.expose()));
    let Ok((again, again_warnings)) = again else { panic!("an accepted password is refused when given again") };
    assert_eq!((again.expose(), again_warnings), (raw, warnings), "an accepted password parses again alike");
}

fn octopia(input: &Input<'_>) {
    let Ok(parsed) = OctopiaCredential::parse(input.client_id, secret(input.client_secret), input.seller_id) else {
        return;
    };
    assert_eq!(parsed.client_id, input.client_id.trim(), "the client id is kept trimmed");
    assert_eq!(parsed.seller_id, input.seller_id.trim(), "the seller id is kept trimmed");
    assert_eq!(parsed.client_secret.expose_secret(), input.client_secret, "the secret is kept as given");
    let again = OctopiaCredential::parse(&parsed.client_id, secret(input.client_secret), &parsed.seller_id);
    let Ok(again) = again else { panic!("accepted Octopia credentials are refused when given again") };
    assert_eq!((&again.client_id, &again.seller_id), (&parsed.client_id, &parsed.seller_id));
    // Debug is the same whatever the secret: it cannot show any of it.
    let blank = OctopiaCredential {
        client_id: parsed.client_id.clone(),
        client_secret: secret("x"),
        seller_id: parsed.seller_id.clone(),
    };
    assert_eq!(format!("{parsed:?}"), format!("{blank:?}"), "Debug shows nothing of the client secret");
}

fn codes(raw: &str) {
    if let Some(kind) = CredentialKind::parse(raw) {
        assert_eq!(kind.as_str(), raw);
    }
    if let Some(outcome) = VerificationOutcome::parse(raw) {
        assert_eq!(outcome.as_str(), raw);
    }
    if let Some(change) = CredentialChangeKind::parse(raw) {
        assert_eq!(change.as_str(), raw);
    }
}

fuzz_target!(|input: Input<'_>| {
    password(input.password);
    octopia(&input);
    codes(input.code);
});
