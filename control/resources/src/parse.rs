//! Reading manifests: multi-document YAML (`---`), JSON (one or more values), and lists
//! (`kind: List` or `kind: <Kind>List` with `items`). Input is untrusted: its size is bounded,
//! nothing panics, and every error names the document, the field path and the bad value.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::kind::Kind;
use crate::object::API_VERSION;
use crate::resource::Resource;
use crate::validate::ValidationError;

/// Largest manifest accepted (calicoctl users apply files of a few hundred KiB at most).
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// Most resources accepted from one input, across all documents and lists.
pub const MAX_RESOURCES: usize = 20_000;
/// Deepest nesting of maps and lists accepted in a YAML manifest (a resource's top-level map
/// is level 1). Calico's resources nest about 8 deep inside a `List`; the bound keeps the YAML
/// parser's work linear (see `yaml_nesting`). JSON input is bounded by serde_json's own
/// recursion limit, which costs nothing before it is reached.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Why a manifest was refused. `document` is the 0-based index of the YAML/JSON document in
/// the input; `path` is the field path from the document root (`items[2].spec.cidr` inside a
/// list).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("input is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("input holds more than {limit} resources")]
    TooManyResources { limit: usize },
    #[error("document[{document}]: syntax error: {message}")]
    Syntax { document: usize, message: String },
    #[error("document[{document}]: line {line} column {column}: maps and lists nested deeper than {limit} levels")]
    TooDeep {
        document: usize,
        line: usize,
        column: usize,
        limit: usize,
    },
    #[error("document[{document}]: {path}: apiVersion '{found}' is not supported, expected '{API_VERSION}'")]
    ApiVersion {
        document: usize,
        path: String,
        found: String,
    },
    #[error("document[{document}]: {path}: resource type '{found}' is not supported")]
    UnknownKind {
        document: usize,
        path: String,
        found: String,
    },
    #[error("document[{document}]: error with field {path}: {message}")]
    Field {
        document: usize,
        path: String,
        message: String,
    },
    #[error("document[{document}]: {source}")]
    Invalid {
        document: usize,
        source: ValidationError,
    },
}

impl ParseError {
    /// The field path the error is about, if it is about one field.
    pub fn path(&self) -> Option<&str> {
        match self {
            ParseError::ApiVersion { path, .. }
            | ParseError::UnknownKind { path, .. }
            | ParseError::Field { path, .. } => Some(path),
            ParseError::Invalid { source, .. } => source.errors.first().map(|e| e.path.as_str()),
            _ => None,
        }
    }

    pub fn document(&self) -> Option<usize> {
        match self {
            ParseError::Syntax { document, .. }
            | ParseError::TooDeep { document, .. }
            | ParseError::ApiVersion { document, .. }
            | ParseError::UnknownKind { document, .. }
            | ParseError::Field { document, .. }
            | ParseError::Invalid { document, .. } => Some(*document),
            _ => None,
        }
    }
}

/// Parses every resource in `text` as written: no defaults, no validation (use
/// [`load_documents`] for what `create`/`apply` need).
pub fn parse_documents(text: &str) -> Result<Vec<Resource>, ParseError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ParseError::TooLarge {
            size: text.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let documents = split_documents(text)?;
    let mut out = Vec::new();
    for (document, value) in documents.into_iter().enumerate() {
        collect(value, document, "", &mut out)?;
    }
    Ok(out)
}

/// [`parse_documents`], then Calico's defaults and validation for each resource: what
/// `create`, `apply` and `replace` store.
pub fn load_documents(text: &str) -> Result<Vec<Resource>, ParseError> {
    // Remember which document each resource came from, for the error.
    if text.len() > MAX_INPUT_BYTES {
        return Err(ParseError::TooLarge {
            size: text.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let documents = split_documents(text)?;
    let mut out = Vec::new();
    for (document, value) in documents.into_iter().enumerate() {
        let start = out.len();
        collect(value, document, "", &mut out)?;
        for r in &mut out[start..] {
            r.apply_defaults();
            r.validate()
                .map_err(|source| ParseError::Invalid { document, source })?;
        }
    }
    Ok(out)
}

/// The documents of `text` (YAML or JSON) as JSON values, empty documents dropped, with the
/// same bounds as [`parse_documents`]: for readers of other shapes (v1 manifests to convert).
pub fn documents(text: &str) -> Result<Vec<Value>, ParseError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ParseError::TooLarge {
            size: text.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    split_documents(text)
}

/// The documents of `text` as JSON values (empty documents dropped).
fn split_documents(text: &str) -> Result<Vec<Value>, ParseError> {
    let mut values = Vec::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON: one value or several in a row.
        for (document, v) in serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .enumerate()
        {
            let v = v.map_err(|e| ParseError::Syntax {
                document,
                message: e.to_string(),
            })?;
            values.push(v);
            if values.len() > MAX_RESOURCES {
                return Err(ParseError::TooManyResources {
                    limit: MAX_RESOURCES,
                });
            }
        }
        return Ok(values);
    }
    crate::yaml_nesting::check(text, MAX_NESTING_DEPTH).map_err(|at| ParseError::TooDeep {
        document: at.document,
        line: at.line,
        column: at.column,
        limit: MAX_NESTING_DEPTH,
    })?;
    for (document, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let v = crate::yaml_value::LooseValue::deserialize(de)
            .map_err(|e| ParseError::Syntax {
                document,
                message: e.to_string(),
            })?
            .0;
        values.push(v);
        if values.len() > MAX_RESOURCES {
            return Err(ParseError::TooManyResources {
                limit: MAX_RESOURCES,
            });
        }
    }
    // Empty documents (`---` at the start or end, comments only) hold nothing.
    Ok(values.into_iter().filter(|v| !v.is_null()).collect())
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Adds the resource(s) in `value` (a resource, a list, or a sequence of them) to `out`.
fn collect(
    value: Value,
    document: usize,
    prefix: &str,
    out: &mut Vec<Resource>,
) -> Result<(), ParseError> {
    let mut value = value;
    if let Value::Object(map) = &mut value {
        envelope_keys(map, &["apiVersion", "kind"], document, prefix)?;
        if is_list(map) {
            envelope_keys(map, &["items"], document, prefix)?;
        }
    }
    let items = match value {
        Value::Array(items) => Some(items),
        Value::Object(ref map) if is_list(map) => match value {
            Value::Object(mut map) => {
                check_api_version(&map, document, prefix)?;
                match map.remove("items") {
                    Some(Value::Array(items)) => Some(items),
                    Some(Value::Null) | None => Some(Vec::new()),
                    Some(other) => {
                        return Err(ParseError::Field {
                            document,
                            path: join(prefix, "items"),
                            message: format!(
                                "expected a list of resources, found {}",
                                describe(&other)
                            ),
                        })
                    }
                }
            }
            _ => None,
        },
        other => {
            if out.len() >= MAX_RESOURCES {
                return Err(ParseError::TooManyResources {
                    limit: MAX_RESOURCES,
                });
            }
            out.push(resource_at(other, document, prefix)?);
            None
        }
    };
    for (i, item) in items.into_iter().flatten().enumerate() {
        let at = if prefix.is_empty() {
            format!("items[{i}]")
        } else {
            format!("{prefix}.items[{i}]")
        };
        // Lists do not nest in Calico; a list inside a list is refused by `resource_at`.
        if out.len() >= MAX_RESOURCES {
            return Err(ParseError::TooManyResources {
                limit: MAX_RESOURCES,
            });
        }
        out.push(resource_at(item, document, &at)?);
    }
    Ok(())
}

/// Renames envelope keys spelt in another case (`Kind:`, `Spec:`) to their canonical
/// spelling, as Go's decoder matches them; two spellings of one key are refused.
fn envelope_keys(
    map: &mut serde_json::Map<String, Value>,
    names: &[&str],
    document: usize,
    prefix: &str,
) -> Result<(), ParseError> {
    crate::fold::canonicalize_keys(map, names).map_err(|(field, message)| ParseError::Field {
        document,
        path: join(prefix, &field),
        message,
    })
}

fn is_list(map: &serde_json::Map<String, Value>) -> bool {
    match map.get("kind").and_then(Value::as_str) {
        Some("List") => true,
        Some(k) => k
            .strip_suffix("List")
            .is_some_and(|base| Kind::from_yaml_kind(base).is_some()),
        None => false,
    }
}

fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        let cut = (0..=80).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

fn check_api_version(
    map: &serde_json::Map<String, Value>,
    document: usize,
    prefix: &str,
) -> Result<(), ParseError> {
    match map.get("apiVersion") {
        Some(Value::String(v)) if v == API_VERSION => Ok(()),
        Some(other) => Err(ParseError::ApiVersion {
            document,
            path: join(prefix, "apiVersion"),
            found: other
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| describe(other)),
        }),
        None => Err(ParseError::Field {
            document,
            path: join(prefix, "apiVersion"),
            message: format!("apiVersion is required (expected '{API_VERSION}')"),
        }),
    }
}

/// One resource from a JSON value (also used for values read from the datastore).
pub(crate) fn resource_from_value(value: Value, document: usize) -> Result<Resource, ParseError> {
    resource_at(value, document, "")
}

fn resource_at(value: Value, document: usize, prefix: &str) -> Result<Resource, ParseError> {
    let Value::Object(mut map) = value else {
        return Err(ParseError::Field {
            document,
            path: if prefix.is_empty() {
                ".".into()
            } else {
                prefix.to_string()
            },
            message: format!(
                "expected a resource (a map with apiVersion, kind, metadata, spec), found {}",
                describe(&value)
            ),
        });
    };
    envelope_keys(
        &mut map,
        &["apiVersion", "kind", "metadata", "spec"],
        document,
        prefix,
    )?;
    check_api_version(&map, document, prefix)?;
    let kind = match map.get("kind") {
        Some(Value::String(k)) => match Kind::from_yaml_kind(k) {
            Some(kind) => kind,
            None => {
                return Err(ParseError::UnknownKind {
                    document,
                    path: join(prefix, "kind"),
                    found: k.clone(),
                })
            }
        },
        Some(other) => {
            return Err(ParseError::UnknownKind {
                document,
                path: join(prefix, "kind"),
                found: describe(other),
            })
        }
        None => {
            return Err(ParseError::Field {
                document,
                path: join(prefix, "kind"),
                message: "kind is required".into(),
            })
        }
    };
    map.remove("apiVersion");
    map.remove("kind");
    let metadata = map.remove("metadata").unwrap_or(Value::Null);
    let spec = map.remove("spec").unwrap_or(Value::Null);
    let extra: BTreeMap<String, Value> = map.into_iter().collect();
    Resource::from_parts(kind, metadata, spec, extra).map_err(|(path, message)| ParseError::Field {
        document,
        path: join(prefix, &path),
        message,
    })
}
