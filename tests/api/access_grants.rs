//! Access grants: managed through GraphQL with `access:admin`, audited, refused when they would match their creator,
//! applied to grants-mode identities through `principal_for`, seen by another replica, and without effect on a
//! claims-mode token.

use cdvault_domain::identity::{Identity, IssuerMode};
use cdvault_domain::policy::{Principal, Scope, SellerReach};
use cdvault_tests::{ALL_SCOPES, Engine, ISSUER, TestApp, on_both_engines, spawn_app, token_for};
use serde_json::{Value, json};

const IDP: &str = "https://idp.example";

const CREATE: &str = "mutation($i: CreateAccessGrantInput!) { createAccessGrant(input: $i) { id issuer match subject clientId group serviceAccount { namespace name } scopes sellers createdBy createdByIssuer createdAt } }";
const LIST: &str = "{ accessGrants { id match subject scopes sellers } }";
const DELETE: &str = "mutation($id: ID!) { deleteAccessGrant(id: $id) { id subject scopes } }";

/// A token of the test issuer for `admin`, holding `access:admin`.
fn admin() -> String {
    token_for("admin", "access:admin", Some(&[]))
}

fn subject_grant(subject: &str, scopes: &[&str], sellers: &[&str]) -> Value {
    json!({ "issuer": IDP, "subject": subject, "scopes": scopes, "sellers": sellers })
}

async fn create(app: &TestApp, token: &str, input: Value) -> cdvault_tests::Gql {
    app.graphql(Some(token), CREATE, json!({ "i": input })).await
}

fn grants_identity(subject: &str) -> Identity {
    Identity::new(IDP, subject, IssuerMode::Grants)
}

async fn an_admin_creates_lists_and_deletes_grants_each_audited_and_applied_at_once(engine: Engine) {
    let app = spawn_app(engine).await;
    let made = create(&app, &admin(), subject_grant("erp", &["credentials:read"], &["bestshop"])).await;
    let grant = made.data()["createAccessGrant"].clone();
    assert_eq!((grant["issuer"].as_str(), grant["match"].as_str()), (Some(IDP), Some("SUBJECT")));
    assert_eq!((grant["createdBy"].as_str(), grant["createdByIssuer"].as_str()), (Some("admin"), Some(ISSUER)));
    assert_eq!((grant["clientId"].clone(), grant["serviceAccount"].clone()), (Value::Null, Value::Null));
    let id = grant["id"].as_str().unwrap().to_owned();

    let listed = app.graphql(Some(&admin()), LIST, json!({})).await;
    assert_eq!(
        listed.data()["accessGrants"],
        json!([{ "id": id, "match": "SUBJECT", "subject": "erp", "scopes": ["credentials:read"], "sellers": ["bestshop"] }])
    );
    // This replica refreshed on its own change: no poll needed.
    let resolved = app.vault().resolve_access(&grants_identity("erp"));
    assert_eq!(resolved.matched.iter().map(ToString::to_string).collect::<Vec<_>>(), std::slice::from_ref(&id));
    assert!(resolved.principal.authorize(Some(Scope::CredentialsRead), "bestshop").is_ok());
    assert!(resolved.principal.authorize(Some(Scope::CredentialsRead), "othershop").is_err());

    let deleted = app.graphql(Some(&admin()), DELETE, json!({ "id": id })).await;
    assert_eq!(deleted.data()["deleteAccessGrant"]["subject"], "erp");
    assert_eq!(app.graphql(Some(&admin()), LIST, json!({})).await.data()["accessGrants"], json!([]));
    let after = app.vault().principal_for(&grants_identity("erp"));
    assert!(after.scopes.is_empty() && after.sellers == SellerReach::Only(Default::default()));

    let granted = app.audit(json!({ "action": "access.grant" })).await;
    assert_eq!(granted.len(), 1);
    assert_eq!((granted[0]["outcome"].as_str(), granted[0]["subject"].as_str()), (Some("SUCCESS"), Some("admin")));
    assert_eq!(granted[0]["issuer"], ISSUER);
    assert_eq!(
        granted[0]["details"],
        json!({ "grant": id, "issuer": IDP, "match": "SUBJECT", "value": "erp", "scopes": ["credentials:read"], "sellers": ["bestshop"] })
    );
    let revoked = app.audit(json!({ "action": "access.revoke_grant" })).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        (revoked[0]["outcome"].as_str(), revoked[0]["details"]["grant"].as_str()),
        (Some("SUCCESS"), Some(&*id))
    );
}
on_both_engines!(an_admin_creates_lists_and_deletes_grants_each_audited_and_applied_at_once);

async fn every_kind_of_match_is_kept_and_shown(engine: Engine) {
    let app = spawn_app(engine).await;
    let sa = json!({ "issuer": IDP, "serviceAccount": { "namespace": "payments", "name": "sync-job" }, "scopes": ["credentials:token"], "sellers": ["*"] });
    let made = create(&app, &admin(), sa).await;
    assert_eq!(
        made.data()["createAccessGrant"]["serviceAccount"],
        json!({ "namespace": "payments", "name": "sync-job" })
    );
    let client = json!({ "issuer": IDP, "clientId": "erp", "scopes": ["audit:read"], "sellers": [] });
    assert_eq!(create(&app, &admin(), client).await.data()["createAccessGrant"]["clientId"], "erp");
    let group = json!({ "issuer": IDP, "group": "ops", "scopes": ["kyc:submit"], "sellers": [] });
    assert_eq!(create(&app, &admin(), group).await.data()["createAccessGrant"]["group"], "ops");

    let matches = app.graphql(Some(&admin()), LIST, json!({})).await;
    let kinds: Vec<&str> =
        matches.data()["accessGrants"].as_array().unwrap().iter().map(|g| g["match"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SERVICE_ACCOUNT", "CLIENT_ID", "GROUP"], "oldest first");

    let mut pod = grants_identity("system:serviceaccount:payments:sync-job");
    pod.scope = Some("credentials:token openid".into());
    let p = app.vault().principal_for(&pod);
    assert!(p.has_scope(Scope::CredentialsToken) && p.sellers == SellerReach::All);
    let mut member = grants_identity("someone");
    member.groups = vec!["ops".into()];
    member.azp = Some("erp".into());
    let p = app.vault().principal_for(&member);
    assert_eq!(p.scopes, [Scope::AuditRead, Scope::KycSubmit].into_iter().collect());
}
on_both_engines!(every_kind_of_match_is_kept_and_shown);

async fn managing_grants_needs_access_admin_and_each_refusal_is_audited(engine: Engine) {
    let app = spawn_app(engine).await;
    let others = app.token(ALL_SCOPES, &["*"]);
    let made = create(&app, &others, subject_grant("erp", &["credentials:read"], &["*"])).await;
    assert_eq!((made.code(), made.error()["reason"].as_str()), ("FORBIDDEN", Some("MISSING_SCOPE")));
    assert_eq!(app.graphql(Some(&others), LIST, json!({})).await.code(), "FORBIDDEN");
    let id = "0190f5b8-0000-7000-8000-000000000000";
    assert_eq!(app.graphql(Some(&others), DELETE, json!({ "id": id })).await.code(), "FORBIDDEN");
    assert_eq!(app.graphql(None, LIST, json!({})).await.code(), "UNAUTHENTICATED");
    for action in ["access.grant", "access.read", "access.revoke_grant"] {
        let events = app.audit(json!({ "action": action, "subject": "tool" })).await;
        assert_eq!(events.len(), 1, "{action}");
        assert_eq!(
            (events[0]["outcome"].as_str(), events[0]["reason"].as_str()),
            (Some("DENIED"), Some("MISSING_SCOPE"))
        );
        assert_eq!(events[0]["details"]["missingScope"], "access:admin");
    }
}
on_both_engines!(managing_grants_needs_access_admin_and_each_refusal_is_audited);

async fn a_grant_that_would_match_its_creator_is_refused(engine: Engine) {
    let app = spawn_app(engine).await;
    let mine = json!({ "issuer": ISSUER, "subject": "admin", "scopes": ["keys:admin"], "sellers": ["*"] });
    let refused = create(&app, &admin(), mine).await;
    assert_eq!(refused.code(), "FORBIDDEN");
    assert_eq!(refused.error()["reason"], "SELF_GRANT");
    let events = app.audit(json!({ "action": "access.grant" })).await;
    assert_eq!((events[0]["outcome"].as_str(), events[0]["reason"].as_str()), (Some("DENIED"), Some("SELF_GRANT")));
    assert_eq!(app.graphql(Some(&admin()), LIST, json!({})).await.data()["accessGrants"], json!([]));
    // The same subject name at another issuer is someone else.
    let elsewhere = json!({ "issuer": IDP, "subject": "admin", "scopes": ["keys:admin"], "sellers": [] });
    create(&app, &admin(), elsewhere).await.data();
}
on_both_engines!(a_grant_that_would_match_its_creator_is_refused);

async fn invalid_grant_inputs_are_bad_user_input_naming_the_field(engine: Engine) {
    let app = spawn_app(engine).await;
    let cases = [
        (json!({ "issuer": IDP, "scopes": ["audit:read"], "sellers": [] }), "match"),
        (json!({ "issuer": IDP, "subject": "a", "group": "b", "scopes": ["audit:read"], "sellers": [] }), "match"),
        (json!({ "issuer": "", "subject": "a", "scopes": ["audit:read"], "sellers": [] }), "issuer"),
        (json!({ "issuer": IDP, "subject": "a\nb", "scopes": ["audit:read"], "sellers": [] }), "subject"),
        (json!({ "issuer": IDP, "subject": "a", "scopes": ["root"], "sellers": [] }), "scopes"),
        (json!({ "issuer": IDP, "subject": "a", "scopes": [], "sellers": [] }), "scopes"),
        (json!({ "issuer": IDP, "subject": "a", "scopes": ["audit:read"], "sellers": ["*", "x-shop"] }), "sellers"),
        (json!({ "issuer": IDP, "subject": "a", "scopes": ["audit:read"], "sellers": ["bad shop"] }), "sellers"),
        (
            json!({ "issuer": IDP, "serviceAccount": { "namespace": "Pay", "name": "x" }, "scopes": ["audit:read"], "sellers": [] }),
            "serviceAccount.namespace",
        ),
    ];
    for (input, field) in cases {
        let answer = create(&app, &admin(), input.clone()).await;
        assert_eq!((answer.code(), answer.error()["field"].as_str()), ("BAD_USER_INPUT", Some(field)), "{input}");
    }
    let bad_id = app.graphql(Some(&admin()), DELETE, json!({ "id": "not-a-uuid" })).await;
    assert_eq!((bad_id.code(), bad_id.error()["field"].as_str()), ("BAD_USER_INPUT", Some("id")));
    let unknown = app.graphql(Some(&admin()), DELETE, json!({ "id": "0190f5b8-0000-7000-8000-000000000000" })).await;
    assert_eq!(unknown.code(), "NOT_FOUND");
}
on_both_engines!(invalid_grant_inputs_are_bad_user_input_naming_the_field);

async fn another_replica_sees_grant_changes_when_it_reads_the_counter_again(engine: Engine) {
    let first = spawn_app(engine).await;
    let second = first.replica().spawn().await;
    // Each replica loads the grants at start-up; a read with nothing changed since loads nothing.
    assert!(!second.vault().refresh_access_grants().await.unwrap(), "nothing changed since start-up");

    let changes = second.vault().access_changes();
    let made = create(&first, &admin(), subject_grant("erp", &["audit:read"], &[])).await;
    let id = made.data()["createAccessGrant"]["id"].as_str().unwrap().to_owned();
    // Read now rather than waiting for the poll (which may have read it already: either way it is there after).
    second.vault().refresh_access_grants().await.unwrap();
    assert!(changes.has_changed().unwrap(), "open sessions are told");
    assert!(second.vault().principal_for(&grants_identity("erp")).has_scope(Scope::AuditRead));

    first.graphql(Some(&admin()), DELETE, json!({ "id": id })).await.data();
    second.vault().refresh_access_grants().await.unwrap();
    assert!(second.vault().principal_for(&grants_identity("erp")).scopes.is_empty(), "a delete moves the counter too");
}
on_both_engines!(another_replica_sees_grant_changes_when_it_reads_the_counter_again);

async fn a_claims_mode_token_keeps_its_own_scopes_and_sellers_whatever_the_grants(engine: Engine) {
    let app = spawn_app(engine).await;
    let for_tool = json!({ "issuer": ISSUER, "subject": "tool", "scopes": ["keys:admin"], "sellers": ["*"] });
    create(&app, &admin(), for_tool).await.data();

    let mut identity = Identity::new(ISSUER, "tool", IssuerMode::Claims);
    identity.scope = Some("audit:read".into());
    identity.sellers = Some(vec!["a-shop".into()]);
    let expected =
        Principal::from_claims(ISSUER.into(), "tool".into(), Some("audit:read"), Some(vec!["a-shop".into()]));
    let resolved = app.vault().resolve_access(&identity);
    assert_eq!((resolved.principal, resolved.matched), (expected, vec![]));

    let token = app.token("audit:read", &["a-shop"]);
    let viewer = app.graphql(Some(&token), "{ viewer { issuer subject grants scopes sellers } }", json!({})).await;
    assert_eq!(
        viewer.data()["viewer"],
        json!({ "issuer": ISSUER, "subject": "tool", "grants": [], "scopes": ["audit:read"], "sellers": ["a-shop"] })
    );
}
on_both_engines!(a_claims_mode_token_keeps_its_own_scopes_and_sellers_whatever_the_grants);

async fn a_grant_written_or_widened_by_sql_never_gives_access(engine: Engine) {
    let app = spawn_app(engine).await;
    create(&app, &admin(), subject_grant("erp", &["audit:read"], &["a-shop"])).await.data();
    assert!(app.vault().principal_for(&grants_identity("erp")).has_scope(Scope::AuditRead));

    // A database writer widens the grant and copies it for another subject, without the audit MAC key.
    let conn = app.db.raw().await;
    use sea_orm::ConnectionTrait;
    conn.execute_unprepared("UPDATE access_grants SET scopes = 'audit:read keys:admin', sellers = '*'").await.unwrap();
    conn.execute_unprepared("UPDATE access_grants_version SET version = version + 1").await.unwrap();
    app.vault().refresh_access_grants().await.unwrap();
    let widened = app.vault().principal_for(&grants_identity("erp"));
    assert!(widened.scopes.is_empty() && widened.sellers == SellerReach::Only(Default::default()), "{widened:?}");
    assert_eq!(app.graphql(Some(&admin()), LIST, json!({})).await.data()["accessGrants"], json!([]));
}
on_both_engines!(a_grant_written_or_widened_by_sql_never_gives_access);
