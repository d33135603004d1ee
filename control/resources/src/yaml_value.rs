//! YAML to JSON values without losing what JSON numbers cannot hold.
//!
//! A YAML integer too big for 64 bits (Calico's own sample WorkloadEndpoint has the container
//! id `1337495556942031415926535`, unquoted) would fail `serde_json::Value`. Calico's loader
//! keeps such a value as its digits; this reader does the same (as a string), and turns
//! scalar map keys that are not strings (`80: x`) into their text, as YAML-to-JSON conversion
//! does.
//!
//! A key that is itself a map or a list (`? {a: 1}`, `? [a]`) is refused, as Calico's
//! YAML-to-JSON conversion refuses it ("invalid map key"). Turning such a key into text is
//! not only meaningless for a resource, it is a denial of service: each level's text holds
//! the escaped text of the level below, so `? ? ? ... a` doubled in size per level
//! (66 bytes of input asked for gigabytes). The key is refused as soon as its first event is
//! seen, before anything below it is read.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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
        while let Some(key) = map.next_key_seed(KeySeed)? {
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

/// Reads one map key: a scalar, as its text.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

/// Scalars go through [`LooseVisitor`] (so a key reads as the same value would) and become
/// their text; maps and lists are refused without being read.
struct KeyVisitor;

/// The text of a scalar key: strings as they are, anything else as JSON prints it.
fn key_text(LooseValue(v): LooseValue) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// Why a map or list key is refused. The YAML parser adds the line and column.
fn complex_key<E: de::Error>(found: &str) -> E {
    E::custom(format!(
        "a map key must be a string, number, bool or null, found a {found} \
         (complex keys such as `? {{...}}` are not supported, as in Calico)"
    ))
}

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map key (a string, number, bool or null)")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        LooseVisitor.visit_bool(v).map(key_text)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        LooseVisitor.visit_i64(v).map(key_text)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        LooseVisitor.visit_u64(v).map(key_text)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        LooseVisitor.visit_i128(v).map(key_text)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        LooseVisitor.visit_u128(v).map(key_text)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        LooseVisitor.visit_f64(v).map(key_text)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<String, A::Error> {
        Err(complex_key("list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<String, A::Error> {
        Err(complex_key("map"))
    }
}
