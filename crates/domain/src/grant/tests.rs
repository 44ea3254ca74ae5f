use proptest::prelude::*;

use super::*;

const IDP: &str = "https://idp.example";

fn grants_identity(subject: &str) -> Identity {
    Identity::new(IDP, subject, IssuerMode::Grants)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn input(issuer: &str, matcher: GrantMatch, scopes: &[&str], sellers: &[&str]) -> GrantInput {
    GrantInput::parse(issuer, matcher, &strings(scopes), &strings(sellers)).unwrap()
}

fn grant(issuer: &str, matcher: GrantMatch, scopes: &[&str], sellers: &[&str]) -> Grant {
    let creator = Creator { issuer: None, subject: "cli:ops".into() };
    input(issuer, matcher, scopes, sellers).into_grant(Uuid::now_v7(), creator, OffsetDateTime::UNIX_EPOCH)
}

fn subject(s: &str) -> GrantMatch {
    GrantMatch::Subject(ClaimValue::parse("subject", s).unwrap())
}

fn client(s: &str) -> GrantMatch {
    GrantMatch::ClientId(ClaimValue::parse("clientId", s).unwrap())
}

fn group(s: &str) -> GrantMatch {
    GrantMatch::Group(ClaimValue::parse("group", s).unwrap())
}

fn only(logins: &[&str]) -> SellerReach {
    SellerReach::Only(logins.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn a_claims_mode_identity_keeps_its_own_claims_and_ignores_grants() {
    let mut identity = Identity::new(IDP, "tool", IssuerMode::Claims);
    identity.scope = Some("audit:read".into());
    identity.sellers = Some(strings(&["a-shop"]));
    let grants = [grant(IDP, subject("tool"), &["credentials:write"], &["*"])];
    let resolved = resolve(&identity, &grants);
    let expected = Principal::from_claims(IDP.into(), "tool".into(), Some("audit:read"), Some(strings(&["a-shop"])));
    assert_eq!(resolved, Resolved { principal: expected, matched: Vec::new() });
}

#[test]
fn a_grants_mode_identity_without_a_grant_reaches_nothing() {
    let mut identity = grants_identity("tool");
    identity.scope = Some("credentials:read".into());
    identity.sellers = Some(strings(&["*"]));
    let resolved = resolve(&identity, &[]);
    assert!(resolved.principal.scopes.is_empty());
    assert_eq!(resolved.principal.sellers, only(&[]));
    assert!(resolved.matched.is_empty());
}

#[test]
fn every_matching_grant_of_the_issuer_adds_its_scopes_and_sellers() {
    let mut identity = grants_identity("tool");
    identity.client_id = Some("erp".into());
    identity.groups = strings(&["ops"]);
    let grants = [
        grant(IDP, subject("tool"), &["credentials:read"], &["a-shop"]),
        grant(IDP, client("erp"), &["audit:read"], &["b-shop"]),
        grant(IDP, group("ops"), &["kyc:submit"], &[]),
        grant(IDP, subject("someone-else"), &["keys:admin"], &["*"]),
    ];
    let resolved = resolve(&identity, &grants);
    let p = &resolved.principal;
    assert_eq!(p.scopes, [Scope::CredentialsRead, Scope::AuditRead, Scope::KycSubmit].into_iter().collect());
    assert_eq!(p.sellers, only(&["a-shop", "b-shop"]));
    assert_eq!(resolved.matched, vec![grants[0].id, grants[1].id, grants[2].id]);
    assert_eq!((p.issuer.as_str(), p.subject.as_str()), (IDP, "tool"));
}

#[test]
fn a_grant_of_all_sellers_wins_over_lists() {
    let grants = [
        grant(IDP, subject("tool"), &["credentials:read"], &["a-shop"]),
        grant(IDP, subject("tool"), &["credentials:read"], &["*"]),
    ];
    assert_eq!(resolve(&grants_identity("tool"), &grants).principal.sellers, SellerReach::All);
}

#[test]
fn grants_of_another_issuer_never_match() {
    let grants = [grant("https://other.example", subject("tool"), &["credentials:read"], &["*"])];
    let resolved = resolve(&grants_identity("tool"), &grants);
    assert!(resolved.matched.is_empty() && resolved.principal.scopes.is_empty());
}

#[test]
fn a_scope_claim_narrows_the_grants_and_never_widens_them() {
    let grants = [grant(IDP, subject("tool"), &["credentials:read", "audit:read"], &["*"])];
    let mut identity = grants_identity("tool");
    identity.scope = Some("audit:read keys:admin openid".into());
    let p = resolve(&identity, &grants).principal;
    assert_eq!(p.scopes, [Scope::AuditRead].into_iter().collect(), "keys:admin is not granted");
    assert_eq!(p.other_scopes, strings(&["openid"]));
    assert_eq!(p.sellers, SellerReach::All, "the scope claim does not narrow the sellers");
}

#[test]
fn an_empty_scope_claim_leaves_nothing() {
    let grants = [grant(IDP, subject("tool"), &["credentials:read"], &["*"])];
    let mut identity = grants_identity("tool");
    identity.scope = Some(String::new());
    assert!(resolve(&identity, &grants).principal.scopes.is_empty());
}

#[test]
fn a_token_only_claim_narrows_a_read_grant_to_tokens() {
    let grants = [grant(IDP, subject("tool"), &["credentials:read"], &["*"])];
    let mut identity = grants_identity("tool");
    identity.scope = Some("credentials:token".into());
    let p = resolve(&identity, &grants).principal;
    assert!(p.has_scope(Scope::CredentialsToken) && !p.has_scope(Scope::CredentialsRead));
}

#[test]
fn a_read_claim_does_not_widen_a_token_only_grant() {
    let grants = [grant(IDP, subject("tool"), &["credentials:token"], &["*"])];
    let mut identity = grants_identity("tool");
    identity.scope = Some("credentials:read".into());
    let p = resolve(&identity, &grants).principal;
    assert!(p.has_scope(Scope::CredentialsToken) && !p.has_scope(Scope::CredentialsRead));
}

#[test]
fn a_client_id_grant_matches_client_id_or_azp() {
    let grants = [grant(IDP, client("erp"), &["audit:read"], &[])];
    let mut by_client_id = grants_identity("x");
    by_client_id.client_id = Some("erp".into());
    let mut by_azp = grants_identity("y");
    by_azp.azp = Some("erp".into());
    let mut neither = grants_identity("erp");
    neither.client_id = Some("other".into());
    assert_eq!(resolve(&by_client_id, &grants).matched.len(), 1);
    assert_eq!(resolve(&by_azp, &grants).matched.len(), 1);
    assert!(resolve(&neither, &grants).matched.is_empty(), "a client id grant does not match the subject");
}

#[test]
fn a_service_account_grant_matches_only_its_namespace_and_name() {
    let sa = GrantMatch::service_account("payments", "sync-job").unwrap();
    let yes = grants_identity("system:serviceaccount:payments:sync-job");
    assert!(sa.matches(&yes));
    for other in [
        "system:serviceaccount:payments:sync-job2",
        "system:serviceaccount:payment:sync-job",
        "system:serviceaccount:payments",
        "payments:sync-job",
        "system:serviceaccount:payments:sync-job:extra",
    ] {
        assert!(!sa.matches(&grants_identity(other)), "{other}");
    }
}

#[test]
fn a_grant_matching_its_creator_is_a_self_grant() {
    let mut creator = grants_identity("alice");
    creator.groups = strings(&["admins"]);
    creator.azp = Some("console".into());
    assert!(would_grant_itself(&creator, &input(IDP, subject("alice"), &["keys:admin"], &[])));
    assert!(would_grant_itself(&creator, &input(IDP, group("admins"), &["keys:admin"], &[])));
    assert!(would_grant_itself(&creator, &input(IDP, client("console"), &["keys:admin"], &[])));
    assert!(!would_grant_itself(&creator, &input(IDP, subject("bob"), &["keys:admin"], &[])));
    assert!(
        !would_grant_itself(&creator, &input("https://other.example", subject("alice"), &["keys:admin"], &[])),
        "the same subject at another issuer is someone else"
    );
    let claims_creator = Identity::new(IDP, "alice", IssuerMode::Claims);
    assert!(would_grant_itself(&claims_creator, &input(IDP, subject("alice"), &["keys:admin"], &[])));
}

#[test]
fn grant_inputs_are_validated_field_by_field() {
    let reason = |r: Result<GrantInput, ValidationError>| r.map_err(|e| (e.field, e.reason.as_str()));
    let parse = |issuer: &str, scopes: &[&str], sellers: &[&str]| {
        reason(GrantInput::parse(issuer, subject("t"), &strings(scopes), &strings(sellers)))
    };
    assert_eq!(parse("", &["audit:read"], &[]), Err(("issuer", "EMPTY")));
    assert_eq!(parse(" https://idp", &["audit:read"], &[]), Err(("issuer", "INVALID_CHARACTERS")));
    assert_eq!(parse("https://i\ndp", &["audit:read"], &[]), Err(("issuer", "CONTROL_CHARACTER")));
    assert_eq!(parse(&"i".repeat(513), &["audit:read"], &[]), Err(("issuer", "TOO_LONG")));
    assert_eq!(parse(IDP, &[], &[]), Err(("scopes", "EMPTY")));
    assert_eq!(parse(IDP, &["root"], &[]), Err(("scopes", "INVALID_FORMAT")));
    assert_eq!(parse(IDP, &["audit:read"], &["*", "a-shop"]), Err(("sellers", "INVALID_FORMAT")));
    assert_eq!(parse(IDP, &["audit:read"], &["a shop"]), Err(("sellers", "INVALID_CHARACTERS")));
    let ok = GrantInput::parse(IDP, subject("t"), &strings(&["audit:read", "audit:read"]), &strings(&["*"]));
    assert_eq!(ok.map(|i| (i.scopes.len(), i.sellers)), Ok((1, SellerReach::All)));
}

#[test]
fn matchers_are_validated() {
    assert_eq!(ClaimValue::parse("subject", "").unwrap_err().reason.as_str(), "EMPTY");
    assert_eq!(ClaimValue::parse("group", "a\u{7}").unwrap_err().reason.as_str(), "CONTROL_CHARACTER");
    assert_eq!(ClaimValue::parse("group", &"g".repeat(257)).unwrap_err().reason.as_str(), "TOO_LONG");
    let sa = |ns: &str, name: &str| GrantMatch::service_account(ns, name).map_err(|e| (e.field, e.reason.as_str()));
    assert_eq!(sa("", "x"), Err(("serviceAccount.namespace", "EMPTY")));
    assert_eq!(sa("Pay", "x"), Err(("serviceAccount.namespace", "INVALID_CHARACTERS")));
    assert_eq!(sa("a.b", "x"), Err(("serviceAccount.namespace", "INVALID_CHARACTERS")));
    assert_eq!(sa("pay", "-x"), Err(("serviceAccount.name", "INVALID_CHARACTERS")));
    assert_eq!(sa("pay", "x:y"), Err(("serviceAccount.name", "INVALID_CHARACTERS")));
    assert_eq!(sa(&"n".repeat(64), "x"), Err(("serviceAccount.namespace", "TOO_LONG")));
    assert!(sa("pay", "sync.job-1").is_ok());
}

#[test]
fn a_grant_is_for_exactly_one_kind_of_match() {
    assert_eq!(GrantMatch::one_of(Some("s"), None, None, None), Ok(subject("s")));
    assert_eq!(GrantMatch::one_of(None, Some("c"), None, None), Ok(client("c")));
    assert_eq!(GrantMatch::one_of(None, None, Some("g"), None), Ok(group("g")));
    assert!(matches!(GrantMatch::one_of(None, None, None, Some(("ns", "n"))), Ok(GrantMatch::ServiceAccount { .. })));
    assert_eq!(GrantMatch::one_of(None, None, None, None).unwrap_err().field, "match");
    assert_eq!(GrantMatch::one_of(Some("s"), Some("c"), None, None).unwrap_err().field, "match");
    assert_eq!(GrantMatch::one_of(Some(""), None, None, None).unwrap_err().field, "subject");
}

#[test]
fn a_matcher_reads_back_from_its_stored_parts() {
    for m in [subject("s"), client("c"), group("g"), GrantMatch::service_account("ns", "name").unwrap()] {
        assert_eq!(GrantMatch::from_parts(m.kind(), &m.value()), Ok(m));
    }
    assert!(GrantMatch::from_parts("ROLE", "x").is_err());
    assert!(GrantMatch::from_parts("SERVICE_ACCOUNT", "no-slash").is_err());
}

#[test]
fn a_session_keeps_going_only_while_nothing_was_lost() {
    let p = |scope: &str, sellers: &[&str]| {
        Principal::from_claims(IDP.into(), "t".into(), Some(scope), Some(strings(sellers)))
    };
    let before = p("credentials:read", &["a-shop"]);
    assert!(keeps_everything(&before, &p("credentials:read audit:read", &["a-shop", "b-shop"])));
    assert!(keeps_everything(&before, &p("credentials:read", &["*"])));
    assert!(!keeps_everything(&before, &p("audit:read", &["a-shop"])));
    assert!(!keeps_everything(&before, &p("credentials:read", &["b-shop"])));
    assert!(!keeps_everything(&p("audit:read", &["*"]), &p("audit:read", &["a-shop"])));
    assert!(keeps_everything(&p("credentials:token", &[]), &p("credentials:read", &[])), "read implies token");
}

proptest! {
    #[test]
    fn a_scope_claim_never_widens_what_the_grants_give(
        granted in proptest::sample::subsequence(Scope::ALL.to_vec(), 0..=Scope::ALL.len()),
        claimed in proptest::sample::subsequence(Scope::ALL.to_vec(), 0..=Scope::ALL.len()),
    ) {
        let names: Vec<&str> = granted.iter().map(|s| s.as_str()).collect();
        let grants: Vec<Grant> =
            if names.is_empty() { Vec::new() } else { vec![grant(IDP, subject("t"), &names, &["*"])] };
        let mut identity = grants_identity("t");
        identity.scope = Some(claimed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "));
        let narrowed = resolve(&identity, &grants).principal;
        identity.scope = None;
        let full = resolve(&identity, &grants).principal;
        for scope in Scope::ALL {
            prop_assert!(!narrowed.has_scope(scope) || full.has_scope(scope), "{scope:?} widened");
        }
    }

    #[test]
    fn parsing_claim_values_never_panics(raw in "\\PC{0,300}") {
        let _ = ClaimValue::parse("subject", &raw);
        let _ = GrantMatch::service_account(&raw, &raw);
        let _ = GrantIssuer::parse("issuer", &raw);
    }
}
