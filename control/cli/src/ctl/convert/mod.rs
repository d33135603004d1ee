//! `convert -f FILE|-`: Calico v1 manifests (`apiVersion: v1`, `kind: ipPool`, `profile`,
//! `policy`, ...) to `projectcalico.org/v3`, as calicoctl's `convert` does with
//! libcalico-go's upgrade converters. Each converted resource goes through brindle's own
//! resource model (defaults, then validation), so what is printed can be created as it is.

mod kinds;
mod names;
mod reader;
mod rules;

use serde_json::{Map, Value};

use super::CtlError;

/// `convert -f file -o yaml|json`.
pub fn convert(file: &str, output: &str, out: &mut String) -> Result<(), CtlError> {
    let json = match output {
        "yaml" | "yml" => false,
        "json" => true,
        other => {
            return Err(CtlError::new(format!(
                "Failed to execute command: unrecognized output format '{other}' (expected yaml or json)"
            )))
        }
    };
    let text = super::crud::read_manifest(file)?;
    let converted = convert_text(&text)
        .map_err(|e| CtlError::new(format!("Failed to convert resource: {e}")))?;
    if converted.is_empty() {
        out.push_str("No resources specified\n");
        return Ok(());
    }
    if json {
        out.push_str(&resources::to_json(&converted));
        out.push('\n');
    } else {
        out.push_str(&resources::to_yaml(&converted));
    }
    Ok(())
}

/// Every v1 resource of `text` (documents, sequences and `<kind>List`s of them) in v3.
pub fn convert_text(text: &str) -> Result<Vec<resources::Resource>, String> {
    let documents = resources::parse::documents(text).map_err(|e| e.to_string())?;
    let mut converted = Vec::new();
    for (document, value) in documents.iter().enumerate() {
        let mut items = Vec::new();
        unpack(value, "", &mut items);
        for (path, item) in items {
            let at = |e: String| {
                if path.is_empty() {
                    format!("document[{document}]: {e}")
                } else {
                    format!("document[{document}]: {path}: {e}")
                }
            };
            if converted.len() >= resources::parse::MAX_RESOURCES {
                return Err(format!(
                    "input holds more than {} resources",
                    resources::parse::MAX_RESOURCES
                ));
            }
            converted.push(convert_one(item).map_err(at)?);
        }
    }
    Ok(converted)
}

/// The resources in `value`: itself, or the items of a sequence or a `<kind>List`.
fn unpack<'a>(value: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) {
    let items = match value {
        Value::Array(items) => Some(items),
        Value::Object(map) => field(map, "kind")
            .and_then(Value::as_str)
            .filter(|k| k.len() > 4 && k.to_ascii_lowercase().ends_with("list"))
            .and(field(map, "items"))
            .and_then(Value::as_array),
        _ => None,
    };
    match items {
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                out.push((format!("{path}items[{i}]"), item));
            }
        }
        None => out.push((path.to_string(), value)),
    }
}

fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn convert_one(value: &Value) -> Result<resources::Resource, String> {
    let Value::Object(map) = value else {
        return Err("expected a resource (a map with apiVersion, kind, metadata, spec)".into());
    };
    let kind = field(map, "kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match field(map, "apiVersion").and_then(Value::as_str) {
        Some("v1") => {}
        Some(v) if v == resources::API_VERSION => {
            return Err(format!(
                "{kind} is already a {v} resource: there is nothing to convert"
            ))
        }
        other => {
            return Err(format!(
                "apiVersion '{}' is not a Calico v1 resource (expected 'v1')",
                other.unwrap_or_default()
            ))
        }
    }
    let v3 = kinds::convert(kind, value)
        .ok_or_else(|| {
            format!(
            "conversion for the resource type '{kind}' is not supported (brindlectl converts {})",
            kinds::SUPPORTED.join(", ")
        )
        })?
        .map_err(|e| e.to_string())?;
    let document = serde_json::json!({
        "apiVersion": resources::API_VERSION,
        "kind": v3.kind,
        "metadata": v3.metadata,
        "spec": v3.spec,
    });
    // Through brindle's own model: Calico's defaults, then its validation.
    let mut loaded = resources::load_documents(&document.to_string()).map_err(|e| {
        let e = e.to_string();
        let e = e.strip_prefix("document[0]: ").unwrap_or(&e).to_string();
        format!("the converted {} fails validation: {e}", v3.kind)
    })?;
    loaded
        .pop()
        .ok_or_else(|| "the conversion produced no resource".to_string())
}
