//! YAML to JSON values without losing what JSON numbers cannot hold.
//!
//! A YAML integer too big for 64 bits (Calico's own sample WorkloadEndpoint has the container
//! id `1337495556942031415926535`, unquoted) would fail `serde_json::Value`. Calico's loader
//! keeps such a value as its digits; this reader does the same (as a string), and turns
//! non-string map keys (`80: x`) into their text, as YAML-to-JSON conversion does.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

pub(crate) struct LooseValue(pub Value);

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = LooseValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<LooseValue, E> {
        Ok(LooseValue(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<LooseValue, E> {
        Ok(LooseValue(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<LooseValue, E> {
        Ok(LooseValue(Value::Number(v.into())))
    }
    fn visit_i128<E>(self, v: i128) -> Result<LooseValue, E> {
        Ok(LooseValue(match i64::try_from(v) {
            Ok(n) => Value::Number(n.into()),
            Err(_) => Value::String(v.to_string()),
        }))
    }
    fn visit_u128<E>(self, v: u128) -> Result<LooseValue, E> {
        Ok(LooseValue(match u64::try_from(v) {
            Ok(n) => Value::Number(n.into()),
            Err(_) => Value::String(v.to_string()),
        }))
    }
    fn visit_f64<E>(self, v: f64) -> Result<LooseValue, E> {
        // `.inf` / `.nan` have no JSON form: keep the text.
        Ok(LooseValue(
            Number::from_f64(v)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(v.to_string())),
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<LooseValue, E> {
        Ok(LooseValue(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<LooseValue, E> {
        Ok(LooseValue(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<LooseValue, E> {
        Ok(LooseValue(Value::Null))
    }
    fn visit_none<E>(self) -> Result<LooseValue, E> {
        Ok(LooseValue(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<LooseValue, D::Error> {
        LooseValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LooseValue, A::Error> {
        let mut out = Vec::new();
        while let Some(LooseValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(LooseValue(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LooseValue, A::Error> {
        let mut out = Map::new();
        while let Some(LooseValue(k)) = map.next_key()? {
            let key = match k {
                Value::String(s) => s,
                Value::Null => "null".to_string(),
                other => other.to_string(),
            };
            let LooseValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(LooseValue(Value::Object(out)))
    }
}

impl<'de> Deserialize<'de> for LooseValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LooseValue, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}
