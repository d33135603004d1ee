//! `patch`: JSON Merge Patch (RFC 7386) applied to a resource's JSON form, as calicoctl's
//! `patch` does for Calico resources, then read back as a typed resource.

use serde_json::Value;

use crate::parse::{resource_from_value, ParseError};
use crate::resource::Resource;

/// RFC 7386 section 2: objects merge key by key, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

impl Resource {
    /// The resource as a JSON value (the shape `to_json` prints).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads one resource from a JSON value (apiVersion and kind included).
    pub fn from_value(value: Value) -> Result<Resource, ParseError> {
        resource_from_value(value, 0)
    }

    /// This resource with `patch` (a JSON merge patch, e.g. `{"spec":{"natOutgoing":true}}`)
    /// applied. The kind, name and namespace cannot be patched away: the result must still be
    /// the same resource (checked by `validate_update`, which callers run before writing).
    pub fn merge_patched(&self, patch: &Value) -> Result<Resource, ParseError> {
        let mut value = self.to_value();
        merge_patch(&mut value, patch);
        Resource::from_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        // RFC 7386 appendix A, a selection.
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ] {
            let mut t = target.clone();
            merge_patch(&mut t, &patch);
            assert_eq!(t, result, "{target} + {patch}");
        }
    }
}
