//! Calico's label selector language (`control/selector`), as policies, pools and BGP peers
//! carry it.
//!
//! Holds for every input: an error names a position inside the input; an accepted selector's
//! canonical form parses back to an equal selector (the crate's promise) and prints the same
//! again; both evaluate alike on labels made from the selector's own keys; the canonical form
//! stays within the parser's limits.

use selector::{Selector, MAX_SELECTOR_LEN};
use std::collections::BTreeMap;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = match Selector::parse(text) {
        Ok(s) => s,
        Err(e) => {
            assert!(e.position <= text.len(), "{e} past the end of {text:?}");
            assert!(!e.message.is_empty());
            return;
        }
    };
    let canonical = parsed.canonical();
    assert!(
        canonical.len() <= MAX_SELECTOR_LEN,
        "{text:?} prints {canonical:?}"
    );
    let again = Selector::parse(&canonical)
        .unwrap_or_else(|e| panic!("{text:?} prints {canonical:?}, which does not parse: {e}"));
    assert_eq!(parsed, again, "{text:?} prints {canonical:?}");
    assert_eq!(again.canonical(), canonical);
    assert_eq!(parsed.unique_id(), again.unique_id());

    // Labels from the selector's own keys, with values taken from the input, so that
    // evaluation reaches the comparisons.
    let keys: Vec<String> = parsed.label_keys().into_iter().map(str::to_owned).collect();
    let values = ["", "a", text];
    for (round, value) in values.iter().enumerate() {
        let labels: BTreeMap<String, String> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| (i + round) % 3 != 0)
            .map(|(_, k)| (k.clone(), (*value).to_owned()))
            .collect();
        assert_eq!(parsed.matches(&labels), again.matches(&labels));
    }
    let _ = parsed.with_label_prefix("pcns.").canonical();
}
