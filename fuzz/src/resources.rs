//! `projectcalico.org/v3` manifests (`brindlectl apply -f`, `create`, `replace`): YAML or JSON,
//! several documents, lists; parsed, defaulted and validated as Calico does
//! (`control/resources`).
//!
//! Holds for every input: nothing panics and an error says something; what parses is stored
//! and read back from the datastore's JSON unchanged, and printed as YAML (calicoctl's output)
//! and parsed again unchanged; what validates still validates after that round trip.

use resources::{load_documents, parse_documents, to_json, to_yaml, Resource};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_documents(text) {
        Ok(parsed) => {
            for r in &parsed {
                through_the_datastore(r);
            }
            let yaml = to_yaml(&parsed);
            let again = parse_documents(&yaml)
                .unwrap_or_else(|e| panic!("printed as\n{yaml}\nwhich does not parse: {e}"));
            assert_eq!(again, parsed, "printed as\n{yaml}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match load_documents(text) {
        Ok(loaded) => {
            let json = to_json(&loaded);
            let again = load_documents(&json)
                .unwrap_or_else(|e| panic!("valid, printed as\n{json}\nand refused: {e}"));
            assert_eq!(again, loaded, "printed as\n{json}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// `r` is stored as JSON and read back as it was (its version becomes the store's).
fn through_the_datastore(r: &Resource) {
    let stored = r.to_stored_json();
    let back = Resource::from_stored(&stored, 7).unwrap_or_else(|e| {
        panic!(
            "{r:?} is stored as {:?}, which does not read back: {e}",
            String::from_utf8_lossy(&stored)
        )
    });
    assert_eq!(back.metadata().resource_version.as_deref(), Some("7"));
    let mut expected = r.clone();
    expected.metadata_mut().resource_version = Some("7".into());
    assert_eq!(back, expected, "{:?}", String::from_utf8_lossy(&stored));
}
