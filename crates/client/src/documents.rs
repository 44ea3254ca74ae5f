//! The operations this crate sends, word for word. `persisted-documents.json` (beside `Cargo.toml`) maps the
//! sha256 of each text to the text, for the server's trusted-documents allow-list; a unit test fails when the two
//! drift, so edit a document here and regenerate the manifest (`CDVAULT_WRITE_MANIFEST=1 cargo test -p
//! cdvault-client documents`).

use sha2::{Digest, Sha256};

/// One GraphQL operation, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Document {
    /// The operation's name (`operationName`).
    pub name: &'static str,
    /// The exact text hashed into the manifest.
    pub text: &'static str,
}

impl Document {
    /// The hex sha256 of the text: the key of the manifest and the Apollo `persistedQuery` hash.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.text.as_bytes()))
    }
}

/// Issues the newest Marketplace API password of a seller (`credentials:read`).
pub const ISSUE_API_CREDENTIAL: Document = Document {
    name: "IssueApiCredential",
    text: "mutation IssueApiCredential($sellerLogin: String!, $purpose: String!) { issueApiCredential(sellerLogin: $sellerLogin, purpose: $purpose) { sellerLogin apiLogin password version issuedAt } }",
};

/// Issues the newest Octopia client credentials of a seller (`credentials:read`).
pub const ISSUE_OCTOPIA_CREDENTIAL: Document = Document {
    name: "IssueOctopiaCredential",
    text: "mutation IssueOctopiaCredential($sellerLogin: String!, $purpose: String!) { issueOctopiaCredential(sellerLogin: $sellerLogin, purpose: $purpose) { sellerLogin clientId clientSecret sellerId version issuedAt } }",
};

/// A brokered marketplace access token (`credentials:token`).
pub const ISSUE_ACCESS_TOKEN: Document = Document {
    name: "IssueAccessToken",
    text: "mutation IssueAccessToken($sellerLogin: String!, $purpose: String!, $kind: CredentialKind) { issueAccessToken(sellerLogin: $sellerLogin, purpose: $purpose, kind: $kind) { sellerLogin kind token expiresAt sellerId credentialVersion } }",
};

/// The credential change feed, resumable from a cursor (any valid token).
pub const CREDENTIAL_CHANGED: Document = Document {
    name: "CredentialChanged",
    text: "subscription CredentialChanged($sellerLogin: String, $after: String) { credentialChanged(sellerLogin: $sellerLogin, after: $after) { cursor sellerLogin kind version change changedBy occurredAt } }",
};

/// Every document of the crate, in the manifest's order.
pub const ALL: [Document; 4] = [ISSUE_API_CREDENTIAL, ISSUE_OCTOPIA_CREDENTIAL, ISSUE_ACCESS_TOKEN, CREDENTIAL_CHANGED];

/// The manifest shipped with the crate (`persisted-documents.json`): sha256 hex of each document's text, mapped to
/// the text.
pub const MANIFEST: &str = include_str!("../persisted-documents.json");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The manifest as it should be: one entry per document, in order, pretty-printed like the TypeScript one.
    fn expected_manifest() -> String {
        let mut map = serde_json::Map::new();
        for document in ALL {
            map.insert(document.sha256(), serde_json::Value::String(document.text.to_owned()));
        }
        let mut text = serde_json::to_string_pretty(&serde_json::Value::Object(map)).unwrap();
        text.push('\n');
        text
    }

    #[test]
    fn the_shipped_manifest_holds_exactly_the_documents_the_crate_sends() {
        let expected = expected_manifest();
        if std::env::var_os("CDVAULT_WRITE_MANIFEST").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/persisted-documents.json");
            std::fs::write(path, &expected).unwrap();
            return;
        }
        let shipped: serde_json::Map<String, serde_json::Value> = serde_json::from_str(MANIFEST).unwrap();
        let wanted: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&expected).unwrap();
        assert_eq!(
            shipped, wanted,
            "persisted-documents.json drifted from src/documents.rs: run CDVAULT_WRITE_MANIFEST=1 cargo test -p cdvault-client documents"
        );
        for (hash, text) in &shipped {
            let text = text.as_str().unwrap();
            assert_eq!(hash, &hex::encode(Sha256::digest(text.as_bytes())), "the key is the sha256 of the text");
        }
    }

    #[test]
    fn every_document_names_its_operation() {
        for document in ALL {
            assert!(document.text.split_whitespace().nth(1).unwrap().starts_with(document.name), "{document:?}");
        }
    }
}
