//! `CDVAULT_TRUSTED_DOCUMENTS`: the clients' manifests of persisted documents, read and checked once at start-up. A
//! manifest that cannot be read, is not a JSON object of hash -> document, or has an entry whose key is not the
//! sha256 of its document refuses the start: a server that silently trusted less (or more) would fail its clients
//! (or its operators) later.

use cdvault_api::http::TrustedDocuments;

use super::raw::{RawSettings, Text};
use super::{ConfigError, err};

const NAME: &str = "CDVAULT_TRUSTED_DOCUMENTS";

/// The union of the manifests named (comma-separated paths), or `None` when unset: every document runs.
pub(super) fn trusted_documents(raw: &RawSettings) -> Result<Option<TrustedDocuments>, ConfigError> {
    let Some(text) = Text::present(raw.trusted_documents.as_ref()) else { return Ok(None) };
    let mut manifests = Vec::new();
    for (position, path) in text.split(',').map(str::trim).enumerate() {
        let number = position + 1;
        if path.is_empty() {
            return Err(err(format!("{NAME}: manifest {number} is an empty path")));
        }
        let manifest = std::fs::read_to_string(path)
            .map_err(|e| err(format!("{NAME}: manifest {number} cannot be read: {}", e.kind())))?;
        manifests.push(manifest);
    }
    let trusted = TrustedDocuments::from_manifests(manifests.iter().map(String::as_str))
        .map_err(|(index, e)| err(format!("{NAME}: manifest {}: {e}", index + 1)))?;
    if trusted.is_empty() {
        return Err(err(format!("{NAME}: the manifests hold no document, so every operation would be refused")));
    }
    Ok(Some(trusted))
}

#[cfg(test)]
mod tests {
    use super::super::settings::Settings;

    const MANIFEST: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/typescript/src/generated/persisted-documents.json");

    const OTHER: &str = "query Other { viewer { subject } }";
    const OTHER_HASH: &str = "4b5e76a9485f55a030627d067a29e34be26d29e643bf1249b91dc530c0f0f2d6";

    fn refused(value: &str) -> String {
        Settings::from_pairs([("CDVAULT_TRUSTED_DOCUMENTS", value)]).err().unwrap().0
    }

    #[test]
    fn unset_every_document_runs_and_set_the_manifests_are_merged() {
        assert_eq!(Settings::from_pairs([]).unwrap().http.trusted_documents, None);
        let typescript = Settings::from_pairs([("CDVAULT_TRUSTED_DOCUMENTS", MANIFEST)]).unwrap();
        let alone = typescript.http.trusted_documents.unwrap().len();
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.json");
        std::fs::write(&other, format!("{{\"{OTHER_HASH}\": \"{OTHER}\"}}")).unwrap();
        let both = Settings::from_pairs([("CDVAULT_TRUSTED_DOCUMENTS", &*format!("{MANIFEST} , {}", other.display()))]);
        let both = both.unwrap().http.trusted_documents.unwrap();
        assert_eq!(both.len(), alone + 1);
        assert_eq!(both.admit(None, Some(OTHER_HASH)), Ok(Some(OTHER)));
    }

    #[test]
    fn an_entry_whose_key_is_not_the_sha256_of_its_document_refuses_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let edited = dir.path().join("edited.json");
        std::fs::write(&edited, format!("{{\"{OTHER_HASH}\": \"query Other {{ viewer {{ scopes }} }}\"}}")).unwrap();
        let e = refused(&format!("{MANIFEST},{}", edited.display()));
        assert!(e.contains("CDVAULT_TRUSTED_DOCUMENTS: manifest 2") && e.contains("not the sha256"), "{e}");
    }

    #[test]
    fn a_missing_or_malformed_manifest_refuses_the_start_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let e = refused(&missing.display().to_string());
        assert!(e.contains("CDVAULT_TRUSTED_DOCUMENTS: manifest 1 cannot be read"), "{e}");
        let list = dir.path().join("list.json");
        std::fs::write(&list, "[\"query { a }\"]").unwrap();
        let e = refused(&format!("{MANIFEST},{}", list.display()));
        assert!(e.contains("CDVAULT_TRUSTED_DOCUMENTS: manifest 2") && e.contains("not a JSON object"), "{e}");
        let empty = dir.path().join("empty.json");
        std::fs::write(&empty, "{}").unwrap();
        assert!(refused(&empty.display().to_string()).contains("no document"));
        assert!(refused(&format!("{MANIFEST},")).contains("manifest 2 is an empty path"));
    }
}
