//! The OpenID provider the identity tests rely on behaves like one in production.

use cdvault_tests::oidc::{AUDIENCE, OidcClient, OidcProvider};
use cdvault_tests::tools::node_modules;

const ERP: OidcClient = OidcClient { id: "erp", secret: "erp-secret-of-some-length", scope: "credentials:read" };

#[tokio::test]
async fn the_test_provider_issues_rfc9068_es256_access_tokens_by_client_credentials() {
    let Some(modules) = node_modules("the_test_provider_issues_rfc9068_es256_access_tokens_by_client_credentials")
    else {
        return;
    };
    let provider = OidcProvider::start(&modules, &[ERP]).await;
    let token = provider.client_credentials_token(&ERP, "credentials:read").await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!((header.alg, header.typ.as_deref()), (jsonwebtoken::Algorithm::ES256, Some("at+jwt")));
    let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
    assert_eq!(claims["iss"], provider.issuer.as_str());
    assert_eq!((claims["sub"].as_str(), claims["client_id"].as_str()), (Some("erp"), Some("erp")));
    assert_eq!((claims["aud"].as_str(), claims["scope"].as_str()), (Some(AUDIENCE), Some("credentials:read")));
    assert!(claims["jti"].is_string() && claims["iat"].is_u64() && claims["exp"].is_u64(), "{claims}");
}
