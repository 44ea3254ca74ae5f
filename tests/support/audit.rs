//! Audit trails for the tests that verify or tamper with them.

use crate::{ALL_SCOPES, Engine, TestApp};

/// Two sellers with a password each and three issues for `shop-a`: seven audit events, numbered 1 to 7.
pub async fn app_with_seven_audit_events(engine: Engine) -> TestApp {
    let app = TestApp::builder(engine)
        .seller_with_password("shop-a", "Passw0rd-A!")
        .seller_with_password("shop-b", "Passw0rd-B!")
        .spawn()
        .await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    for _ in 0..3 {
        app.issue_password(&admin, "shop-a").await.data();
    }
    app
}
