//! Trusted documents: when configured, only the operations of the clients' manifests run. A manifest is the flat JSON
//! object GraphQL Code Generator writes for persisted documents (sha256 hex of the exact document text -> the text);
//! several are merged. A request names its document by its text (`query`), by its hash (Apollo's
//! `extensions.persistedQuery.sha256Hash`), or both; it is checked here, before the parser ever sees the text, so
//! an unknown document costs one hash and a lookup whatever its size or depth. async-graphql's
//! `apollo_persisted_queries` extension is not used: it registers unknown queries, the opposite of an allow-list.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::ErrorCode;

/// The union of the configured manifests: the only documents the server runs.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedDocuments {
    /// Lowercase sha256 hex -> document text.
    documents: Arc<HashMap<String, String>>,
}

/// Never the documents: a count is what a log reader needs.
impl std::fmt::Debug for TrustedDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedDocuments").field("documents", &self.documents.len()).finish()
    }
}

/// Why a manifest cannot be used. The messages quote keys (hashes), never documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("not a JSON object of sha256 hex -> document text ({0})")]
    NotJson(String),
    #[error("the key '{0}' is not 64 hexadecimal digits (a sha256)")]
    BadKey(String),
    #[error("the entry '{0}' is not the sha256 of its document")]
    HashMismatch(String),
}

/// Why a request is refused; [`Refusal::code`] is its `extensions.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A hash alone, in no manifest.
    UnknownHash,
    /// A text in no manifest (with or without its hash), or no document at all.
    NotTrusted,
    /// A hash and a text that do not agree.
    HashMismatch,
}

impl Refusal {
    pub fn code(self) -> ErrorCode {
        match self {
            Self::UnknownHash => ErrorCode::PersistedQueryNotFound,
            Self::NotTrusted | Self::HashMismatch => ErrorCode::DocumentNotTrusted,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownHash => {
                "The persistedQuery hash is not in this server's trusted documents: deploy the client's manifest."
            }
            Self::NotTrusted => "The document is not one of this server's trusted documents.",
            Self::HashMismatch => "The persistedQuery hash is not the sha256 of the query text sent with it.",
        }
    }
}

impl TrustedDocuments {
    /// The documents of `manifests` (JSON texts), merged. An entry whose key is not the sha256 of its text refuses
    /// the whole manifest: a manifest edited by hand must not widen what runs.
    pub fn from_manifests<'a>(manifests: impl IntoIterator<Item = &'a str>) -> Result<Self, (usize, ManifestError)> {
        let mut documents = HashMap::new();
        for (index, manifest) in manifests.into_iter().enumerate() {
            Self::add(&mut documents, manifest).map_err(|e| (index, e))?;
        }
        Ok(Self { documents: Arc::new(documents) })
    }

    fn add(documents: &mut HashMap<String, String>, manifest: &str) -> Result<(), ManifestError> {
        let entries: HashMap<String, String> =
            serde_json::from_str(manifest).map_err(|e| ManifestError::NotJson(e.to_string()))?;
        for (key, text) in entries {
            let hash = key.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ManifestError::BadKey(key.chars().take(70).collect()));
            }
            if sha256_hex(&text) != hash {
                return Err(ManifestError::HashMismatch(key));
            }
            documents.insert(hash, text);
        }
        Ok(())
    }

    /// How many distinct documents are trusted.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether no document is trusted (every request would be refused).
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// Checks what a request names: its `query` text (empty: none) and its persisted-query `hash`. Accepted, the
    /// answer is `None` when the query runs as sent, or the manifest's text when only the hash was sent.
    pub fn admit(&self, query: Option<&str>, hash: Option<&str>) -> Result<Option<&str>, Refusal> {
        let query = query.filter(|query| !query.is_empty());
        let hash = hash.map(str::to_ascii_lowercase);
        let known = hash.as_deref().and_then(|hash| self.documents.get(hash));
        match (query, known) {
            (None, Some(text)) => Ok(Some(text)),
            (None, None) if hash.is_some() => Err(Refusal::UnknownHash),
            (None, None) => Err(Refusal::NotTrusted),
            // The usual case of a client sending both: no hashing needed.
            (Some(query), Some(text)) if query == text => Ok(None),
            (Some(query), _) => {
                let computed = sha256_hex(query);
                if hash.as_deref().is_some_and(|hash| hash != computed) {
                    return Err(Refusal::HashMismatch);
                }
                match self.documents.get(&computed) {
                    Some(text) if text == query => Ok(None),
                    _ => Err(Refusal::NotTrusted),
                }
            }
        }
    }
}

/// The hash a WebSocket `subscribe` payload names in Apollo's persisted-query extension
/// (`"extensions": {"persistedQuery": {"sha256Hash": ...}}`).
pub(super) fn persisted_hash(payload: &serde_json::Value) -> Option<&str> {
    payload.get("extensions")?.get("persistedQuery")?.get("sha256Hash")?.as_str()
}

/// The same hash in an HTTP request, whose extensions async-graphql has read.
pub(super) fn request_hash(request: &async_graphql::Request) -> Option<&str> {
    use async_graphql::Value;
    let Some(Value::Object(persisted)) = request.extensions.get("persistedQuery") else { return None };
    match persisted.get("sha256Hash") {
        Some(Value::String(hash)) => Some(hash),
        _ => None,
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const VIEWER: &str = "query Viewer { viewer { subject } }";

    fn trusted() -> TrustedDocuments {
        let first = json!({ sha256_hex(VIEWER): VIEWER }).to_string();
        let second = json!({ sha256_hex("query A { a }"): "query A { a }" }).to_string();
        TrustedDocuments::from_manifests([first.as_str(), second.as_str()]).unwrap()
    }

    #[test]
    fn a_manifest_document_is_admitted_by_hash_by_text_or_both() {
        let trusted = trusted();
        let hash = sha256_hex(VIEWER);
        assert_eq!(trusted.admit(None, Some(&hash)), Ok(Some(VIEWER)));
        assert_eq!(trusted.admit(Some(""), Some(&hash.to_ascii_uppercase())), Ok(Some(VIEWER)));
        assert_eq!(trusted.admit(Some(VIEWER), None), Ok(None));
        assert_eq!(trusted.admit(Some(VIEWER), Some(&hash)), Ok(None));
        assert_eq!(trusted.admit(Some("query A { a }"), None), Ok(None), "from the second manifest");
        assert_eq!(trusted.len(), 2);
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let trusted = trusted();
        let other = "query Viewer { viewer { subject scopes } }";
        assert_eq!(trusted.admit(Some(other), None), Err(Refusal::NotTrusted));
        assert_eq!(trusted.admit(Some(other), Some(&sha256_hex(other))), Err(Refusal::NotTrusted));
        assert_eq!(trusted.admit(None, Some(&sha256_hex(other))), Err(Refusal::UnknownHash));
        assert_eq!(trusted.admit(Some(other), Some(&sha256_hex(VIEWER))), Err(Refusal::HashMismatch));
        assert_eq!(trusted.admit(Some(VIEWER), Some(&sha256_hex(other))), Err(Refusal::HashMismatch));
        assert_eq!(trusted.admit(None, None), Err(Refusal::NotTrusted));
        assert_eq!(Refusal::UnknownHash.code(), ErrorCode::PersistedQueryNotFound);
        assert_eq!(Refusal::HashMismatch.code(), ErrorCode::DocumentNotTrusted);
    }

    #[test]
    fn a_manifest_with_a_wrong_hash_a_bad_key_or_bad_json_is_refused_by_position() {
        let good = json!({ sha256_hex(VIEWER): VIEWER }).to_string();
        let wrong = json!({ sha256_hex(VIEWER): "query Viewer { viewer { scopes } }" }).to_string();
        let refused = TrustedDocuments::from_manifests([good.as_str(), wrong.as_str()]).unwrap_err();
        assert_eq!(refused, (1, ManifestError::HashMismatch(sha256_hex(VIEWER))));
        let bad_key = json!({ "viewer": VIEWER }).to_string();
        assert!(matches!(TrustedDocuments::from_manifests([bad_key.as_str()]), Err((0, ManifestError::BadKey(_)))));
        for bad in ["", "[]", "{\"a\": 1}", "{"] {
            assert!(matches!(TrustedDocuments::from_manifests([bad]), Err((0, ManifestError::NotJson(_)))), "{bad}");
        }
    }

    #[test]
    fn the_hash_is_read_from_apollos_persisted_query_extension() {
        let payload = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "abc" } } });
        assert_eq!(persisted_hash(&payload), Some("abc"));
        assert_eq!(persisted_hash(&json!({ "extensions": { "persistedQuery": {} } })), None);
        assert_eq!(persisted_hash(&json!({ "query": "{ a }" })), None);
        let request: async_graphql::Request = serde_json::from_value(payload).unwrap();
        assert_eq!(request_hash(&request), Some("abc"));
        assert_eq!(request_hash(&async_graphql::Request::new("{ a }")), None);
    }
}
