//! Token revocation: one token by its `jti`, or every earlier token of an identity; shared by every replica and
//! audited. The HTTP extractor's call of `Vault::check_not_revoked` is wired by the verifier's rewrite: until then
//! the checks here go through the replica's vault, as the extractor will.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdvault_api::error::ApiError;
use cdvault_domain::identity::{Identity, IssuerMode};
use cdvault_tests::tokens::token_with_ids;
use cdvault_tests::{ALL_SCOPES, Engine, Gql, ISSUER, TestApp, eventually, on_both_engines, token_for};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const REVOKE_TOKEN: &str = "mutation($i: String!, $j: String!, $e: DateTime) { revokeToken(issuer: $i, jti: $j, expiresAt: $e) { kind issuer jti expiresAt } }";
const REVOKE_SUBJECT: &str = "mutation($i: String!, $s: String!, $b: DateTime) { revokeSubject(issuer: $i, subject: $s, before: $b) { kind issuer subject before } }";

fn access_admin() -> String {
    token_for("security-admin", "access:admin", None)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The identity a verified token of the test issuer gives.
fn identity(subject: &str, jti: Option<&str>, iat: Option<u64>) -> Identity {
    let mut identity = Identity::new(ISSUER, subject, IssuerMode::Claims);
    identity.jti = jti.map(str::to_owned);
    identity.issued_at = iat;
    identity
}

async fn revoke_token(app: &TestApp, jti: &str) -> Gql {
    app.graphql(Some(&access_admin()), REVOKE_TOKEN, json!({ "i": ISSUER, "j": jti })).await
}

async fn revoke_subject(app: &TestApp, subject: &str, before: OffsetDateTime) -> Gql {
    let before = before.format(&Rfc3339).unwrap();
    app.graphql(Some(&access_admin()), REVOKE_SUBJECT, json!({ "i": ISSUER, "s": subject, "b": before })).await
}

/// The `extensions.code` and `reason` a replica answers for `identity`, or `None` when it is let in.
async fn refusal(app: &TestApp, identity: &Identity) -> Option<(&'static str, &'static str)> {
    let err = app.vault().check_not_revoked(identity, "test-request").await.err()?;
    let reason = match &err {
        ApiError::TokenRevoked(refusal) => refusal.reason().as_str(),
        _ => "NOT_A_REVOCATION",
    };
    Some((err.code().as_str(), reason))
}

const REVOKED: Option<(&str, &str)> = Some(("UNAUTHENTICATED", "TOKEN_REVOKED"));

async fn revoking_needs_access_admin_and_valid_input(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let admin = token_for("admin", ALL_SCOPES, Some(&["*"]));
    let refused = app.graphql(Some(&admin), REVOKE_TOKEN, json!({ "i": ISSUER, "j": "a" })).await;
    assert_eq!((refused.code(), refused.error()["reason"].as_str()), ("FORBIDDEN", Some("MISSING_SCOPE")));
    let blank = revoke_token(&app, "").await;
    assert_eq!((blank.code(), blank.error()["field"].as_str()), ("BAD_USER_INPUT", Some("jti")));
    let future = revoke_subject(&app, "tool", OffsetDateTime::now_utc() + time::Duration::hours(1)).await;
    assert_eq!((future.code(), future.error()["field"].as_str()), ("BAD_USER_INPUT", Some("before")));
    let past = app
        .graphql(Some(&access_admin()), REVOKE_TOKEN, json!({ "i": ISSUER, "j": "a", "e": "2020-01-01T00:00:00Z" }))
        .await;
    assert_eq!(past.error()["field"], "expiresAt");
}
on_both_engines!(revoking_needs_access_admin_and_valid_input);

async fn a_revoked_jti_is_refused_and_audited_and_other_tokens_of_the_subject_still_work(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let iat = Some(now_secs());
    assert_eq!(refusal(&app, &identity("tool", Some("leaked"), iat)).await, None);

    let revoked = revoke_token(&app, "leaked").await;
    let answer = &revoked.data()["revokeToken"];
    assert_eq!((answer["kind"].as_str(), answer["jti"].as_str()), (Some("TOKEN"), Some("leaked")));
    assert!(answer["expiresAt"].is_string());

    assert_eq!(refusal(&app, &identity("tool", Some("leaked"), iat)).await, REVOKED);
    assert_eq!(refusal(&app, &identity("tool", Some("other"), iat)).await, None);
    assert_eq!(refusal(&app, &identity("tool", None, None)).await, None);

    let made = app.audit(json!({ "action": "access.revoke_token" })).await;
    assert_eq!(
        (made[0]["subject"].as_str(), made[0]["details"]["jti"].as_str()),
        (Some("security-admin"), Some("leaked"))
    );
    let denied = app.audit(json!({ "action": "authenticate", "subject": "tool" })).await;
    assert_eq!((denied[0]["outcome"].as_str(), denied[0]["reason"].as_str()), (Some("DENIED"), Some("TOKEN_REVOKED")));
    assert_eq!((denied[0]["issuer"].as_str(), denied[0]["details"]["jti"].as_str()), (Some(ISSUER), Some("leaked")));
}
on_both_engines!(a_revoked_jti_is_refused_and_audited_and_other_tokens_of_the_subject_still_work);

async fn a_subject_revocation_refuses_earlier_tokens_and_tokens_without_iat_and_accepts_later_ones(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let now = now_secs();
    let before = OffsetDateTime::from_unix_timestamp(i64::try_from(now).unwrap() - 60).unwrap();
    revoke_subject(&app, "tool", before).await.data();

    assert_eq!(refusal(&app, &identity("tool", Some("old"), Some(now - 120))).await, REVOKED);
    assert_eq!(refusal(&app, &identity("tool", Some("no-iat"), None)).await, REVOKED);
    assert_eq!(refusal(&app, &identity("tool", Some("new"), Some(now))).await, None);
    // Other identities are untouched, with or without `iat`.
    assert_eq!(refusal(&app, &identity("other-tool", None, None)).await, None);

    let made = app.audit(json!({ "action": "access.revoke_subject" })).await;
    assert_eq!(made[0]["details"]["revokedSubject"], "tool");
}
on_both_engines!(a_subject_revocation_refuses_earlier_tokens_and_tokens_without_iat_and_accepts_later_ones);

async fn a_revocation_made_on_one_replica_takes_effect_on_the_other_and_ends_its_sessions(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let other = app.replica().spawn().await;
    let leaked = identity("tool", Some("leaked"), Some(now_secs()));
    assert!(!other.vault().is_revoked_now(&leaked));
    // A session of the leaked token open on the other replica.
    let session_end = other.vault().revocation_end(leaked.clone());

    revoke_token(&app, "leaked").await.data();
    let other_ref = &other;
    let leaked_ref = &leaked;
    eventually("the other replica refuses the token", Duration::from_secs(5), move || async move {
        other_ref.vault().is_revoked_now(leaked_ref)
    })
    .await;
    tokio::time::timeout(Duration::from_secs(5), session_end).await.expect("the session did not end");
    let later = identity("tool", None, None);
    revoke_subject(&other, "tool", OffsetDateTime::now_utc()).await.data();
    let app_ref = &app;
    let later_ref = &later;
    eventually("the first replica refuses the subject", Duration::from_secs(5), move || async move {
        app_ref.vault().is_revoked_now(later_ref)
    })
    .await;
}
on_both_engines!(a_revocation_made_on_one_replica_takes_effect_on_the_other_and_ends_its_sessions);

async fn a_revoked_token_is_refused_over_http_while_another_of_its_subject_works(engine: Engine) {
    let app = TestApp::builder(engine).spawn().await;
    let leaked = token_with_ids("tool", "audit:read", &["*"], Some("leaked"), Some(now_secs()));
    let fresh = token_with_ids("tool", "audit:read", &["*"], Some("fresh"), Some(now_secs()));
    revoke_token(&app, "leaked").await.data();
    let refused = app.graphql(Some(&leaked), "{ viewer { subject } }", json!({})).await;
    assert_eq!((refused.status, refused.code()), (401, "UNAUTHENTICATED"));
    assert_eq!(refused.error()["reason"], "TOKEN_REVOKED");
    let works = app.graphql(Some(&fresh), "{ viewer { subject } }", json!({})).await;
    assert_eq!(works.data()["viewer"]["subject"], "tool");
}

on_both_engines!(a_revoked_token_is_refused_over_http_while_another_of_its_subject_works);
