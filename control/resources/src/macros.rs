//! `calico_struct!`: the one way every Calico object in this crate is declared.
//!
//! Why not `#[derive(Deserialize)]` with `#[serde(flatten)] extra`? Serde's flatten buffers the
//! whole map before it reads the known fields, and the buffer forgets where each value was, so a
//! bad value deep inside `spec` could only be reported as "somewhere in spec". This macro writes
//! the map visitor by hand instead: known keys are read in place (so `serde_path_to_error` sees
//! every key and index on the way down: `spec.ingress[0].destination.ports[1]`) and every other
//! key is kept verbatim in `extra`, so fields we do not model survive a read-modify-write.
//!
//! Keys match field names as Go's `encoding/json` (Calico's decoder) matches them: exactly,
//! else case-insensitively (`Ingress:` sets `ingress`; see [`crate::fold`]). Two keys that
//! set one field (`ingress:` and `Ingress:`) are refused, naming both. Output always uses the
//! canonical spelling.
//! Serialization uses the ordinary derive (flatten is harmless there).

macro_rules! calico_struct {
    // A field read as its own type, or through `$via` (a lenient reader) and converted.
    (@read $map:ident, $ty:ty) => { $map.next_value::<$ty>()? };
    (@read $map:ident, $ty:ty, $via:ty) => { $map.next_value::<$via>()?.into() };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $key:literal => pub $field:ident : $ty:ty $(as $via:ty)?,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(rename = $key)]
                pub $field: $ty,
            )*
            /// Fields this crate does not model, kept verbatim so that they are written back.
            #[serde(flatten)]
            pub extra: std::collections::BTreeMap<String, serde_json::Value>,
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("a map (", stringify!($name), ")"))
                    }
                    // `spec:` with nothing after it is null in YAML: an empty object.
                    fn visit_unit<E: serde::de::Error>(self) -> Result<$name, E> {
                        Ok($name::default())
                    }
                    fn visit_none<E: serde::de::Error>(self) -> Result<$name, E> {
                        Ok($name::default())
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        const KEYS: &[&str] = &[$($key),*];
                        let mut out = $name::default();
                        // The key that set each field, to refuse a second spelling of it.
                        let mut seen: Vec<Option<String>> = vec![None; KEYS.len()];
                        while let Some(key) = map.next_key::<String>()? {
                            // As Go's encoding/json: an exact match, else a case-folded one.
                            let known = $crate::fold::resolve(&key, KEYS);
                            if let Some(i) = known {
                                if let Some(first) = &seen[i] {
                                    return Err(<A::Error as serde::de::Error>::custom(
                                        $crate::fold::duplicate_message(first, &key, KEYS[i]),
                                    ));
                                }
                                seen[i] = Some(key.clone());
                            }
                            match known.map(|i| KEYS[i]) {
                                $( Some($key) => out.$field = $crate::macros::calico_struct!(@read map, $ty $(, $via)?), )*
                                _ => {
                                    let value: serde_json::Value = map.next_value()?;
                                    out.extra.insert(key, value);
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                deserializer.deserialize_any(Visitor)
            }
        }
    };
}

pub(crate) use calico_struct;
