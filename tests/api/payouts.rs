use cdvault_tests::{ALL_SCOPES, Engine, Gql, TestApp, on_both_engines, spawn_app, token_for};
use serde_json::{Value, json};

const IBAN_FR: &str = "FR76 3000 6000 0112 3456 7890 189";
const IBAN_FR_NORMAL: &str = "FR7630006000011234567890189";
const BIC_FR: &str = "AGRIFRPP";
const IBAN_DE: &str = "DE89370400440532013000";
const BIC_DE: &str = "COBADEFFXXX";
const HOLDER: &str = "Best Shop SAS";

const REQUEST_FIELDS: &str = "id sellerLogin status version submittedBy requestedDocuments decidedAt \
    details { ibanMasked last4 currency } timeline { version from to actor note documents }";

/// The support agent who files changes for sellers.
fn submitter() -> String {
    token_for("support-agent", "kyc:submit", Some(&["*"]))
}

fn reviewer(name: &str) -> String {
    token_for(name, "kyc:review", Some(&["*"]))
}

async fn seller(app: &TestApp, login: &str) {
    app.register(&app.token(ALL_SCOPES, &["*"]), login).await.data();
}

async fn submit(app: &TestApp, token: &str, login: &str, iban: &str, bic: &str) -> Gql {
    app.graphql(
        Some(token),
        &format!("mutation($i: SubmitPayoutChangeInput!) {{ submitPayoutChange(input: $i) {{ {REQUEST_FIELDS} }} }}"),
        json!({ "i": { "sellerLogin": login, "iban": iban, "bic": bic, "accountHolder": HOLDER } }),
    )
    .await
}

/// A move by name (`startPayoutReview`, ...) with its extra arguments, e.g. `, note: "ok"`.
async fn act(app: &TestApp, token: &str, mutation: &str, id: &str, version: i64, extra: &str) -> Gql {
    app.graphql(
        Some(token),
        &format!(
            "mutation($id: ID!, $v: Int!) {{ {mutation}(id: $id, expectedVersion: $v{extra}) {{ {REQUEST_FIELDS} }} }}"
        ),
        json!({ "id": id, "v": version }),
    )
    .await
}

/// Submits a change and returns the new request's id.
async fn submit_id(app: &TestApp, token: &str, login: &str, iban: &str, bic: &str) -> String {
    let answer = submit(app, token, login, iban, bic).await;
    request_of(&answer, "submitPayoutChange")["id"].as_str().unwrap().to_owned()
}

fn request_of(answer: &Gql, mutation: &str) -> Value {
    answer.data()[mutation].clone()
}

async fn payout_account(app: &TestApp, login: &str) -> Value {
    let token = reviewer("reviewer-console");
    let answer = app
        .graphql(
            Some(&token),
            "query($l: String!) { sellerAccount(login: $l) { payoutAccount { requestId details { ibanMasked last4 } deactivatedAt } payoutAccountHistory { requestId details { last4 } deactivatedAt } } }",
            json!({ "l": login }),
        )
        .await;
    answer.data()["sellerAccount"].clone()
}

async fn the_full_review_with_a_documents_round_trip_activates_the_new_account(engine: Engine) {
    let app = spawn_app(engine).await;
    seller(&app, "bestshop").await;
    let (agent, alice) = (submitter(), reviewer("reviewer-alice"));

    let submitted = request_of(&submit(&app, &agent, "bestshop", IBAN_FR, BIC_FR).await, "submitPayoutChange");
    assert_eq!(submitted["status"], "SUBMITTED");
    assert_eq!(submitted["version"], 1);
    assert_eq!(submitted["submittedBy"], "support-agent");
    assert_eq!(submitted["details"], json!({"ibanMasked": "FR76…0189", "last4": "0189", "currency": "EUR"}));
    let id = submitted["id"].as_str().unwrap().to_owned();
    assert!(payout_account(&app, "bestshop").await["payoutAccount"].is_null(), "nothing active before approval");

    let started = act(&app, &alice, "startPayoutReview", &id, 1, "").await;
    assert_eq!(request_of(&started, "startPayoutReview")["status"], "IN_REVIEW");
    let asked = act(
        &app,
        &alice,
        "requestPayoutDocuments",
        &id,
        2,
        ", documents: [IBAN_CERTIFICATE, COMPANY_REGISTRATION, IBAN_CERTIFICATE], note: \"the RIB must show the company name\"",
    )
    .await;
    let asked = request_of(&asked, "requestPayoutDocuments");
    assert_eq!(asked["status"], "DOCUMENTS_REQUESTED");
    assert_eq!(asked["requestedDocuments"], json!(["IBAN_CERTIFICATE", "COMPANY_REGISTRATION"]));
    assert!(payout_account(&app, "bestshop").await["payoutAccount"].is_null(), "still nothing while under review");

    let resumed = act(&app, &alice, "resumePayoutReview", &id, 3, ", note: \"documents received\"").await;
    assert_eq!(request_of(&resumed, "resumePayoutReview")["status"], "IN_REVIEW");
    let approved = act(&app, &alice, "approvePayoutChange", &id, 4, ", note: \"checked by phone\"").await;
    let approved = request_of(&approved, "approvePayoutChange");
    assert_eq!(approved["status"], "APPROVED");
    assert_eq!(approved["version"], 5);
    assert!(approved["decidedAt"].is_string());

    let steps: Vec<(Value, Value, Value, i64)> = approved["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].clone(), e["to"].clone(), e["actor"].clone(), e["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            (Value::Null, json!("SUBMITTED"), json!("support-agent"), 1),
            (json!("SUBMITTED"), json!("IN_REVIEW"), json!("reviewer-alice"), 2),
            (json!("IN_REVIEW"), json!("DOCUMENTS_REQUESTED"), json!("reviewer-alice"), 3),
            (json!("DOCUMENTS_REQUESTED"), json!("IN_REVIEW"), json!("reviewer-alice"), 4),
            (json!("IN_REVIEW"), json!("APPROVED"), json!("reviewer-alice"), 5),
        ]
    );
    assert_eq!(approved["timeline"][2]["note"], "the RIB must show the company name");
    assert_eq!(approved["timeline"][2]["documents"], json!(["IBAN_CERTIFICATE", "COMPANY_REGISTRATION"]));

    let account = payout_account(&app, "bestshop").await;
    assert_eq!(account["payoutAccount"]["requestId"], id.as_str());
    assert_eq!(account["payoutAccount"]["details"]["ibanMasked"], "FR76…0189");

    // A second approved change replaces it and keeps the first as history.
    let bob = reviewer("reviewer-bob");
    let second = request_of(&submit(&app, &agent, "bestshop", IBAN_DE, BIC_DE).await, "submitPayoutChange");
    let second_id = second["id"].as_str().unwrap().to_owned();
    act(&app, &bob, "startPayoutReview", &second_id, 1, "").await.data();
    act(&app, &bob, "approvePayoutChange", &second_id, 2, "").await.data();
    let account = payout_account(&app, "bestshop").await;
    assert_eq!(account["payoutAccount"]["details"]["last4"], "3000");
    let history = account["payoutAccountHistory"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["requestId"], second_id.as_str());
    assert!(history[0]["deactivatedAt"].is_null());
    assert_eq!(history[1]["requestId"], id.as_str());
    assert!(history[1]["deactivatedAt"].is_string());

    let audit = app.audit(json!({ "seller": "bestshop" })).await;
    let actions: Vec<&str> = audit.iter().rev().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "seller.register",
            "payout.submit",
            "payout.start_review",
            "payout.request_documents",
            "payout.resume_review",
            "payout.approve",
            "payout.submit",
            "payout.start_review",
            "payout.approve",
        ]
    );
    assert!(audit.iter().all(|e| e["outcome"] == "SUCCESS"));
}
on_both_engines!(the_full_review_with_a_documents_round_trip_activates_the_new_account);

async fn the_submitter_can_neither_review_nor_approve_and_only_the_submitter_cancels(engine: Engine) {
    let app = spawn_app(engine).await;
    seller(&app, "bestshop").await;
    // One person holding both scopes is still one person.
    let both = token_for("support-agent", "kyc:submit kyc:review", Some(&["*"]));
    let alice = reviewer("reviewer-alice");
    let id = submit_id(&app, &both, "bestshop", IBAN_FR, BIC_FR).await;

    let own_review = act(&app, &both, "startPayoutReview", &id, 1, "").await;
    assert_eq!(own_review.code(), "FORBIDDEN");
    assert_eq!(own_review.error()["reason"], "FOUR_EYES");
    act(&app, &alice, "startPayoutReview", &id, 1, "").await.data();
    let own_approval = act(&app, &both, "approvePayoutChange", &id, 2, "").await;
    assert_eq!(own_approval.error()["reason"], "FOUR_EYES");
    let own_rejection = act(&app, &both, "rejectPayoutChange", &id, 2, ", reason: \"x\"").await;
    assert_eq!(own_rejection.error()["reason"], "FOUR_EYES");

    let someone_else = token_for("other-agent", "kyc:submit", Some(&["*"]));
    let foreign_cancel = act(&app, &someone_else, "cancelPayoutChange", &id, 2, "").await;
    assert_eq!(foreign_cancel.code(), "FORBIDDEN");
    assert_eq!(foreign_cancel.error()["reason"], "NOT_SUBMITTER");
    let no_scope = act(&app, &alice, "cancelPayoutChange", &id, 2, "").await;
    assert_eq!(no_scope.error()["reason"], "MISSING_SCOPE");

    let cancelled = act(&app, &both, "cancelPayoutChange", &id, 2, "").await;
    assert_eq!(request_of(&cancelled, "cancelPayoutChange")["status"], "CANCELLED");
    let denied = app.audit(json!({ "seller": null, "action": "payout.approve" })).await;
    assert_eq!(denied[0]["outcome"], "DENIED");
    assert_eq!(denied[0]["reason"], "FOUR_EYES");
    assert_eq!(denied[0]["subject"], "support-agent");
}
on_both_engines!(the_submitter_can_neither_review_nor_approve_and_only_the_submitter_cancels);

async fn a_second_open_request_is_a_conflict_naming_the_first(engine: Engine) {
    let app = spawn_app(engine).await;
    seller(&app, "bestshop").await;
    let agent = submitter();
    let first = request_of(&submit(&app, &agent, "bestshop", IBAN_FR, BIC_FR).await, "submitPayoutChange");
    let first_id = first["id"].as_str().unwrap();

    let second = submit(&app, &agent, "bestshop", IBAN_DE, BIC_DE).await;
    assert_eq!(second.code(), "CONFLICT");
    let message = second.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(first_id), "the open request is named: {message}");

    // Concurrent submissions: the database lets exactly one through.
    seller(&app, "raceshop").await;
    let answers = futures::future::join_all((0..6).map(|_| submit(&app, &agent, "raceshop", IBAN_DE, BIC_DE))).await;
    let ok = answers.iter().filter(|a| a.body.get("errors").is_none()).count();
    let conflicts = answers.iter().filter(|a| a.body.get("errors").is_some() && a.code() == "CONFLICT").count();
    assert_eq!((ok, conflicts), (1, 5));

    // Once decided, a new request may be submitted.
    act(&app, &agent, "cancelPayoutChange", first_id, 1, "").await.data();
    submit(&app, &agent, "bestshop", IBAN_DE, BIC_DE).await.data();
}
on_both_engines!(a_second_open_request_is_a_conflict_naming_the_first);

async fn a_stale_version_is_a_conflict_and_a_forbidden_move_names_the_current_state(engine: Engine) {
    let app = spawn_app(engine).await;
    seller(&app, "bestshop").await;
    let alice = reviewer("reviewer-alice");
    let id = submit_id(&app, &submitter(), "bestshop", IBAN_FR, BIC_FR).await;

    let too_early = act(&app, &alice, "approvePayoutChange", &id, 1, "").await;
    assert_eq!(too_early.code(), "BAD_USER_INPUT");
    assert_eq!(too_early.error()["reason"], "INVALID_TRANSITION");
    let message = too_early.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("SUBMITTED"), "{message}");

    act(&app, &alice, "startPayoutReview", &id, 1, "").await.data();
    let stale = act(&app, &alice, "requestPayoutDocuments", &id, 1, ", documents: [IDENTITY_DOCUMENT]").await;
    assert_eq!(stale.code(), "CONFLICT");
    let no_documents = act(&app, &alice, "requestPayoutDocuments", &id, 2, ", documents: []").await;
    assert_eq!((no_documents.code(), no_documents.error()["field"].as_str()), ("BAD_USER_INPUT", Some("documents")));
    let no_reason = act(&app, &alice, "rejectPayoutChange", &id, 2, ", reason: \"  \"").await;
    assert_eq!((no_reason.code(), no_reason.error()["field"].as_str()), ("BAD_USER_INPUT", Some("reason")));
    let rejected = act(&app, &alice, "rejectPayoutChange", &id, 2, ", reason: \"holder name differs\"").await;
    assert_eq!(request_of(&rejected, "rejectPayoutChange")["status"], "REJECTED");

    let after_decision = act(&app, &alice, "approvePayoutChange", &id, 3, "").await;
    assert_eq!(after_decision.code(), "BAD_USER_INPUT");
    assert!(after_decision.body["errors"][0]["message"].as_str().unwrap().contains("REJECTED"));
    let unknown = act(&app, &alice, "approvePayoutChange", "0193a8f0-0000-7000-8000-000000000000", 1, "").await;
    assert_eq!(unknown.code(), "NOT_FOUND");
    let garbage = act(&app, &alice, "approvePayoutChange", "not-an-id", 1, "").await;
    assert_eq!((garbage.code(), garbage.error()["field"].as_str()), ("BAD_USER_INPUT", Some("id")));
    assert!(payout_account(&app, "bestshop").await["payoutAccount"].is_null(), "a rejection activates nothing");
}
on_both_engines!(a_stale_version_is_a_conflict_and_a_forbidden_move_names_the_current_state);

async fn two_reviewers_approving_at_once_make_one_approval_and_one_conflict(engine: Engine) {
    let app = spawn_app(engine).await;
    seller(&app, "bestshop").await;
    let (alice, bob) = (reviewer("reviewer-alice"), reviewer("reviewer-bob"));
    for round in 0..3 {
        let login = format!("raceshop{round}");
        seller(&app, &login).await;
        let id = submit_id(&app, &submitter(), &login, IBAN_FR, BIC_FR).await;
        act(&app, &alice, "startPayoutReview", &id, 1, "").await.data();
        let (a, b) = tokio::join!(
            act(&app, &alice, "approvePayoutChange", &id, 2, ""),
            act(&app, &bob, "approvePayoutChange", &id, 2, "")
        );
        let outcomes = [&a, &b].map(|g| if g.body.get("errors").is_none() { "OK" } else { g.code() });
        let mut sorted = outcomes;
        sorted.sort_unstable();
        assert_eq!(sorted, ["CONFLICT", "OK"], "round {round}: {} / {}", a.body, b.body);
        let history = payout_account(&app, &login).await["payoutAccountHistory"].as_array().unwrap().len();
        assert_eq!(history, 1, "one approval, one account");
    }
}
on_both_engines!(two_reviewers_approving_at_once_make_one_approval_and_one_conflict);

async fn details_are_masked_to_everyone_and_revealed_in_full_to_reviewers_with_an_audit(engine: Engine) {
    let app = spawn_app(engine).await;
    seller(&app, "bestshop").await;
    let alice = reviewer("reviewer-alice");
    let id = submit_id(&app, &submitter(), "bestshop", IBAN_FR, BIC_FR).await;
    let reveal = "mutation($id: ID!) { revealPayoutDetails(requestId: $id, purpose: \"call the bank\") { iban bic accountHolder currency } }";

    let denied = app.graphql(Some(&submitter()), reveal, json!({ "id": id })).await;
    assert_eq!((denied.code(), denied.error()["reason"].as_str()), ("FORBIDDEN", Some("MISSING_SCOPE")));
    let full = app.graphql(Some(&alice), reveal, json!({ "id": id })).await;
    assert_eq!(
        full.data()["revealPayoutDetails"],
        json!({"iban": IBAN_FR_NORMAL, "bic": BIC_FR, "accountHolder": HOLDER, "currency": "EUR"})
    );
    let read = app
        .graphql(
            Some(&submitter()),
            &format!("query($id: ID!) {{ payoutChangeRequest(id: $id) {{ {REQUEST_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    assert!(!read.body.to_string().contains(IBAN_FR_NORMAL), "the read view is masked");
    assert_eq!(read.data()["payoutChangeRequest"]["details"]["last4"], "0189");

    let account = "mutation { revealPayoutAccount(sellerLogin: \"bestshop\", purpose: \"payout failed\") { iban } }";
    assert_eq!(app.graphql(Some(&alice), account, json!({})).await.code(), "NOT_FOUND", "none active yet");
    act(&app, &alice, "startPayoutReview", &id, 1, "").await.data();
    act(&app, &alice, "approvePayoutChange", &id, 2, "").await.data();
    let active = app.graphql(Some(&alice), account, json!({})).await;
    assert_eq!(active.data()["revealPayoutAccount"]["iban"], IBAN_FR_NORMAL);

    let reveals = app.audit(json!({ "seller": "bestshop", "action": "payout.reveal" })).await;
    assert_eq!(reveals.len(), 2);
    assert_eq!(reveals[0]["purpose"], "payout failed");
    assert_eq!(reveals[1]["purpose"], "call the bank");
    assert!(reveals.iter().all(|e| e["subject"] == "reviewer-alice" && e["outcome"] == "SUCCESS"));
}
on_both_engines!(details_are_masked_to_everyone_and_revealed_in_full_to_reviewers_with_an_audit);

async fn invalid_bank_details_are_bad_user_input_naming_field_and_reason(engine: Engine) {
    let app = spawn_app(engine).await;
    seller(&app, "bestshop").await;
    let agent = submitter();
    for (iban, bic, field, reason) in [
        ("FR7630006000011234567890188", BIC_FR, "iban", "BAD_CHECKSUM"),
        ("FR763000600001123456789018", BIC_FR, "iban", "WRONG_LENGTH"),
        ("XX97123456789012345678", BIC_FR, "iban", "UNKNOWN_COUNTRY"),
        ("FR76-3000", BIC_FR, "iban", "INVALID_CHARACTERS"),
        ("", BIC_FR, "iban", "EMPTY"),
        (IBAN_FR, "AGRIFRP", "bic", "WRONG_LENGTH"),
        (IBAN_FR, "COBADEFF", "bic", "COUNTRY_MISMATCH"),
    ] {
        let answer = submit(&app, &agent, "bestshop", iban, bic).await;
        assert_eq!(answer.code(), "BAD_USER_INPUT", "{iban} {bic}: {}", answer.body);
        assert_eq!(answer.error()["field"], field, "{iban} {bic}");
        assert_eq!(answer.error()["reason"], reason, "{iban} {bic}");
    }
    let wrong_length = submit(&app, &agent, "bestshop", "FR763000600001123456789018", BIC_FR).await;
    assert!(wrong_length.body["errors"][0]["message"].as_str().unwrap().contains("27"), "{}", wrong_length.body);
    // A territory using French IBANs (La Réunion) is not a mismatch; nothing invalid was stored.
    submit(&app, &agent, "bestshop", IBAN_FR, "BNPARERXXXX").await.data();
    let unknown = submit(&app, &agent, "nosuchshop", IBAN_FR, BIC_FR).await;
    assert_eq!(unknown.code(), "NOT_FOUND");
}
on_both_engines!(invalid_bank_details_are_bad_user_input_naming_field_and_reason);

async fn a_token_limited_to_some_sellers_sees_and_acts_on_those_only(engine: Engine) {
    let app = spawn_app(engine).await;
    seller(&app, "bestshop").await;
    seller(&app, "othershop").await;
    let agent = submitter();
    let mine = request_of(&submit(&app, &agent, "bestshop", IBAN_FR, BIC_FR).await, "submitPayoutChange");
    let theirs = request_of(&submit(&app, &agent, "othershop", IBAN_DE, BIC_DE).await, "submitPayoutChange");
    let limited = token_for("reviewer-carol", "kyc:review", Some(&["bestshop"]));

    let list =
        app.graphql(Some(&limited), "{ payoutChangeRequests { edges { node { sellerLogin } } } }", json!({})).await;
    assert_eq!(list.data()["payoutChangeRequests"]["edges"], json!([{"node": {"sellerLogin": "bestshop"}}]));
    // Beyond its reach, a request is answered like an unknown one (and the attempt is audited).
    let theirs_id = theirs["id"].as_str().unwrap();
    let foreign = act(&app, &limited, "startPayoutReview", theirs_id, 1, "").await;
    assert_eq!(foreign.code(), "NOT_FOUND");
    let read = app
        .graphql(Some(&limited), "query($id: ID!) { payoutChangeRequest(id: $id) { id } }", json!({ "id": theirs_id }))
        .await;
    assert!(read.data()["payoutChangeRequest"].is_null());
    let reveal = "mutation($id: ID!) { revealPayoutDetails(requestId: $id, purpose: \"look\") { iban } }";
    assert_eq!(app.graphql(Some(&limited), reveal, json!({ "id": theirs_id })).await.code(), "NOT_FOUND");
    let denials = app.audit(json!({ "subject": "reviewer-carol" })).await;
    assert_eq!(denials.len(), 3, "{denials:?}");
    assert!(denials.iter().all(|e| e["outcome"] == "DENIED" && e["reason"] == "SELLER_NOT_ALLOWED"));
    let masked_account = app
        .graphql(
            Some(&app.token("credentials:read", &["*"])),
            "{ sellerAccount(login: \"bestshop\") { payoutAccount { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(masked_account.code(), "FORBIDDEN", "payout accounts need a KYC scope");
    let submit_foreign =
        submit(&app, &token_for("x", "kyc:submit", Some(&["bestshop"])), "othershop", IBAN_DE, BIC_DE).await;
    assert_eq!(submit_foreign.code(), "FORBIDDEN");
    act(&app, &limited, "startPayoutReview", mine["id"].as_str().unwrap(), 1, "").await.data();

    let no_kyc = app
        .graphql(
            Some(&app.token("credentials:read", &["*"])),
            "{ payoutChangeRequests { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(no_kyc.code(), "FORBIDDEN");
}
on_both_engines!(a_token_limited_to_some_sellers_sees_and_acts_on_those_only);

async fn requests_page_newest_first_and_filter_by_status_and_seller(engine: Engine) {
    let app = spawn_app(engine).await;
    let agent = submitter();
    let mut ids = Vec::new();
    for n in 0..5 {
        let login = format!("pageshop{n}");
        seller(&app, &login).await;
        ids.push(request_of(&submit(&app, &agent, &login, IBAN_FR, BIC_FR).await, "submitPayoutChange")["id"].clone());
    }
    act(&app, &reviewer("reviewer-alice"), "startPayoutReview", ids[1].as_str().unwrap(), 1, "").await.data();

    let page = "query($after: String, $status: PayoutChangeStatus, $seller: String) { payoutChangeRequests(first: 2, after: $after, status: $status, sellerLogin: $seller) { edges { node { id } } pageInfo { hasNextPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let answer = app.graphql(Some(&agent), page, json!({ "after": after })).await;
        let connection = &answer.data()["payoutChangeRequests"];
        seen.extend(connection["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].clone()));
        if !connection["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");

    let in_review = app.graphql(Some(&agent), page, json!({ "status": "IN_REVIEW" })).await;
    assert_eq!(in_review.data()["payoutChangeRequests"]["edges"].as_array().unwrap().len(), 1);
    let of_seller = app.graphql(Some(&agent), page, json!({ "seller": "pageshop3" })).await;
    assert_eq!(of_seller.data()["payoutChangeRequests"]["edges"][0]["node"]["id"], ids[1]);
    let bad_cursor = app.graphql(Some(&agent), page, json!({ "after": "bm9wZQ" })).await;
    assert_eq!(bad_cursor.error()["reason"], "INVALID_CURSOR");
}
on_both_engines!(requests_page_newest_first_and_filter_by_status_and_seller);

async fn a_failed_approval_changes_nothing(engine: Engine) {
    let app = spawn_app(engine).await;
    seller(&app, "bestshop").await;
    let alice = reviewer("reviewer-alice");
    let id = submit_id(&app, &submitter(), "bestshop", IBAN_FR, BIC_FR).await;
    act(&app, &alice, "startPayoutReview", &id, 1, "").await.data();
    // Damage the sealed details: the approval fails half-way (after the request row was updated in its
    // transaction), and must leave no trace.
    let conn = app.db.raw().await;
    let id_value = sea_orm::Value::from(uuid::Uuid::parse_str(&id).unwrap());
    let sql = "UPDATE payout_requests SET nonce = ? WHERE id = ?";
    let changed =
        sea_orm::ConnectionTrait::execute_raw(&conn, app.db.statement(sql, vec![vec![0u8; 12].into(), id_value]))
            .await
            .unwrap();
    assert_eq!(changed.rows_affected(), 1);

    let failed = act(&app, &alice, "approvePayoutChange", &id, 2, "").await;
    assert_eq!(failed.code(), "INTERNAL_SERVER_ERROR", "{}", failed.body);
    let request = app
        .graphql(
            Some(&alice),
            &format!("query($id: ID!) {{ payoutChangeRequest(id: $id) {{ {REQUEST_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    let request = &request.data()["payoutChangeRequest"];
    assert_eq!((request["status"].as_str(), request["version"].as_i64()), (Some("IN_REVIEW"), Some(2)));
    assert_eq!(request["timeline"].as_array().unwrap().len(), 2);
    let account = payout_account(&app, "bestshop").await;
    assert!(account["payoutAccount"].is_null() && account["payoutAccountHistory"] == json!([]), "{account}");
    assert!(app.audit(json!({ "action": "payout.approve" })).await.is_empty());
}
on_both_engines!(a_failed_approval_changes_nothing);
