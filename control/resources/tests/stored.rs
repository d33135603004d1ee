//! What the datastore holds: a resource comes back from its stored JSON exactly as it went in.

use datastore::{Datastore, EmbeddedStore};
use resources::*;

/// The float fuzzing found (issue 14) read back one ULP off by serde_json's default (fast,
/// inexact) parser, then the extremes of the range and some classic hard cases.
const FLOATS: [&str; 6] = [
    "3.333333333333333e90",
    "2.2250738585072014e-308",
    "1.7976931348623157e308",
    "5e-324",
    "0.1",
    "9.007199254740993e15",
];

fn manifest() -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: n\n\
         spec:\n  nets: [10.0.0.0/8]\n  weights: [{}]\n",
        FLOATS.join(", ")
    )
}

/// The values of `spec.weights`, as read back.
fn weights(r: &Resource) -> Vec<f64> {
    let value = serde_json::to_value(r).unwrap();
    value["spec"]["weights"]
        .as_array()
        .unwrap_or_else(|| panic!("spec.weights in {value}"))
        .iter()
        .map(|w| w.as_f64().unwrap_or_else(|| panic!("{w} is not a number")))
        .collect()
}

fn assert_exact(what: &str, got: &[f64]) {
    for (text, got) in FLOATS.iter().zip(got) {
        let want: f64 = text.parse().unwrap();
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{what}: {text} came back as {got:e}"
        );
    }
}

#[test]
fn floats_round_trip_exactly_through_the_datastore() {
    let r = parse_documents(&manifest()).unwrap().remove(0);
    assert_exact("parsed from YAML", &weights(&r));

    // The path every writer and the node's watch take: stored JSON in, the same bytes out.
    let store = EmbeddedStore::open_in_memory().unwrap();
    let stored = r.to_stored_json();
    store.put(&r.key(), &stored).unwrap();
    let kv = store.get(&r.key()).unwrap().expect("just stored");
    let back = Resource::from_kv(&kv).unwrap();
    assert_exact("read back from the datastore", &weights(&back));
    // Writing back what was read stores the same bytes (a read-modify-write changes nothing).
    assert_eq!(back.to_stored_json(), stored);
}

#[test]
fn floats_in_json_manifests_are_read_exactly() {
    let r = parse_documents(&manifest()).unwrap().remove(0);
    let json = to_json(std::slice::from_ref(&r));
    let again = parse_documents(&json).unwrap().remove(0);
    assert_exact("parsed from JSON", &weights(&again));
}
