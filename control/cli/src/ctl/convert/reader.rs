//! Reading a v1 document: a JSON map walked field by field, keys matched without regard to
//! case as Go's decoder matched them, unknown keys refused, and every error naming the field's
//! path and its value.

use serde_json::{Map, Value};

/// A field of a v1 document that cannot be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("error with field {path} = '{value}' ({reason})")]
pub struct FieldError {
    pub path: String,
    pub value: String,
    pub reason: String,
}

pub fn bad(path: &str, value: &Value, reason: impl Into<String>) -> FieldError {
    let mut value = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if value.len() > 80 {
        let cut = (0..=80)
            .rev()
            .find(|i| value.is_char_boundary(*i))
            .unwrap_or(0);
        value.truncate(cut);
        value.push_str("...");
    }
    FieldError {
        path: path.to_string(),
        value,
        reason: reason.into(),
    }
}

/// One map of the document at `path`, with the keys it may hold.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    /// `value` as a map whose keys are all in `allowed` (any case); null is an empty map.
    pub fn new(value: &'a Value, path: &str, allowed: &[&str]) -> Result<Obj<'a>, FieldError> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let map = match value {
            Value::Object(map) => map,
            Value::Null => EMPTY.get_or_init(Map::new),
            other => return Err(bad(path, other, "expected a map")),
        };
        for key in map.keys() {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(key)) {
                return Err(bad(
                    &join(path, key),
                    &map[key],
                    format!("unknown field; expected one of {}", allowed.join(", ")),
                ));
            }
        }
        Ok(Obj {
            map,
            path: path.to_string(),
        })
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value of `key`, null counting as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    pub fn child(&self, key: &str, allowed: &[&str]) -> Result<Option<Obj<'a>>, FieldError> {
        self.get(key)
            .map(|v| Obj::new(v, &self.path(key), allowed))
            .transpose()
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(&self.path(key), other, "expected a string")),
        }
    }

    pub fn boolean(&self, key: &str) -> Result<bool, FieldError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(bad(&self.path(key), other, "expected true or false")),
        }
    }

    pub fn list(&self, key: &str) -> Result<&'a [Value], FieldError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(bad(&self.path(key), other, "expected a list")),
        }
    }

    pub fn strings(&self, key: &str) -> Result<Vec<String>, FieldError> {
        self.list(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(bad(
                    &format!("{}[{i}]", self.path(key)),
                    other,
                    "expected a string",
                )),
            })
            .collect()
    }

    /// A map of strings (labels, annotations).
    pub fn string_map(&self, key: &str) -> Result<Map<String, Value>, FieldError> {
        let Some(value) = self.get(key) else {
            return Ok(Map::new());
        };
        let Value::Object(map) = value else {
            return Err(bad(&self.path(key), value, "expected a map of strings"));
        };
        for (k, v) in map {
            if !v.is_string() {
                return Err(bad(&join(&self.path(key), k), v, "expected a string"));
            }
        }
        Ok(map.clone())
    }
}

pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_in_any_case_and_unknown_ones_are_named() {
        let v = json!({"Spec": {"NAT-Outgoing": true}});
        let top = Obj::new(&v, "", &["spec"]).unwrap();
        let spec = top.child("spec", &["nat-outgoing"]).unwrap().unwrap();
        assert!(spec.boolean("nat-outgoing").unwrap());

        let v = json!({"spec": {"natOutgoing": "yes"}});
        let e = Obj::new(&v, "", &["spec"])
            .unwrap()
            .child("spec", &["nat-outgoing"])
            .err()
            .unwrap();
        assert_eq!(
            (e.path.as_str(), e.value.as_str()),
            ("spec.natOutgoing", "yes")
        );
    }
}
