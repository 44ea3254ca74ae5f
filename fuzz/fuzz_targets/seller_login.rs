//! `SellerLogin::parse` on any string: never panics, keeps what it accepts exactly as given, accepts it again, and
//! never accepts the API login derived from it (that one ends in `-api`, or is too long).
#![no_main]

use cdvault_domain::seller::SellerLogin;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let Ok(login) = SellerLogin::parse("login", raw) else { return };
    assert_eq!(login.as_str(), raw, "an accepted login is stored as typed");
    assert_eq!(login.to_string(), raw, "Display shows the login as stored");
    let again = SellerLogin::parse("login", login.as_str());
    assert_eq!(again.as_ref(), Ok(&login), "an accepted login parses again to itself");
    let api_login = login.api_login();
    assert_eq!(api_login.strip_suffix("-api"), Some(raw), "the API login is the login plus '-api'");
    assert!(SellerLogin::parse("login", &api_login).is_err(), "an API login is never taken for a seller login");
});
