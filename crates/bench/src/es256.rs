//! A second token issuer for the `*-es256` scenarios: an ES256 key pair made at run time, its public half in a JWKS
//! file that the server reads through a `[[jwt.issuers]]` table (mode `claims`, so the token's own scopes and
//! sellers apply, as with the HS256 tokens: only the signature and the key lookup differ). The private key stays in
//! this process's memory; only the public JWK and the TOML file are written.

use std::path::{Path, PathBuf};

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use cdvault_api::auth::TokenRequest;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// The `iss` of the ES256 tokens (the HS256 ones keep `server::ISSUER`).
pub const ISSUER: &str = "cdvault-bench-es256";
const KID: &str = "bench-es256-1";

/// The ES256 issuer: its signing key, and the server configuration file that trusts it.
pub struct Es256Issuer {
    key: EncodingKey,
    /// The TOML file to pass with `--config`.
    pub config: PathBuf,
}

impl std::fmt::Debug for Es256Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es256Issuer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Es256Issuer {
    /// Makes a P-256 key pair and writes `jwks.json` and `cdvault.toml` into `dir`.
    pub fn create(dir: &Path, audience: &str) -> anyhow::Result<Self> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("cannot generate a P-256 key pair"))?;
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        // The public point only (x, y): a JWK made from the encoding key never carries `d`.
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
        jwk.common.key_id = Some(KID.into());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, serde_json::to_vec(&JwkSet { keys: vec![jwk] })?)
            .with_context(|| format!("cannot write {}", jwks.display()))?;

        let config = dir.join("cdvault.toml");
        std::fs::write(&config, config_toml(&jwks, audience)?)
            .with_context(|| format!("cannot write {}", config.display()))?;
        Ok(Self { key, config })
    }

    /// An ES256 token with the same claims as `mint_hs256` would write for `request`.
    pub fn mint(&self, audience: &str, request: &TokenRequest) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KID.into());
        Ok(cdvault_api::auth::mint(&header, &self.key, ISSUER, audience, request)?)
    }
}

/// The `[[jwt.issuers]]` table; JSON string escapes are valid TOML basic-string escapes.
fn config_toml(jwks: &Path, audience: &str) -> anyhow::Result<String> {
    let path = jwks.to_str().context("the temporary directory's path is not UTF-8")?;
    Ok(format!(
        "[[jwt.issuers]]\nissuer = {}\naudience = {}\nalgorithms = [\"ES256\"]\njwks_file = {}\nmode = \"claims\"\n",
        serde_json::to_string(ISSUER)?,
        serde_json::to_string(audience)?,
        serde_json::to_string(path)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use std::time::Duration;

    fn request() -> TokenRequest {
        TokenRequest {
            subject: "cdvault-bench".into(),
            scopes: vec!["credentials:read".into()],
            sellers: Some(vec!["*".into()]),
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_minted_token_verifies_with_the_published_jwk() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Es256Issuer::create(dir.path(), "cdvault").unwrap();
        let token = issuer.mint("cdvault", &request()).unwrap();

        let set: JwkSet = serde_json::from_slice(&std::fs::read(dir.path().join("jwks.json")).unwrap()).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        let jwk = set.find(header.kid.as_deref().unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&["cdvault"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap();
        assert_eq!(data.claims["scope"], "credentials:read");
        assert_eq!(data.claims["sellers"], serde_json::json!(["*"]));
    }

    #[test]
    fn the_jwks_file_holds_no_private_key() {
        let dir = tempfile::tempdir().unwrap();
        Es256Issuer::create(dir.path(), "cdvault").unwrap();
        let jwks: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("jwks.json")).unwrap()).unwrap();
        let key = &jwks["keys"][0];
        assert!(key.get("d").is_none());
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert_eq!(key["kid"], KID);
    }

    #[test]
    fn the_config_names_a_claims_mode_jwks_file_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Es256Issuer::create(dir.path(), "cdvault").unwrap();
        let toml = std::fs::read_to_string(&issuer.config).unwrap();
        assert!(toml.starts_with("[[jwt.issuers]]\n"));
        assert!(toml.contains("issuer = \"cdvault-bench-es256\"\n"));
        assert!(toml.contains("mode = \"claims\"\n"));
        assert!(toml.contains(&format!("jwks_file = \"{}\"", dir.path().join("jwks.json").display())));
    }
}
