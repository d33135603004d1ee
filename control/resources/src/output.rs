//! Writing resources the way calicoctl prints them, so that `get -o yaml` output can be
//! applied again: one resource as itself, several as a `<Kind>List` (or `List` when kinds are
//! mixed) with `items`. Keys come out sorted, as calicoctl's (Go maps via JSON) do.

use serde_json::{json, Map, Value};

use crate::kind::Kind;
use crate::object::API_VERSION;
use crate::resource::Resource;

fn value_of(r: &Resource) -> Value {
    // Plain data with string keys: cannot fail.
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// The list object calicoctl prints for several resources: `kind` is `<Kind>List` when every
/// item is `kind` (or when there are none), `List` otherwise.
pub fn list_value(kind: Option<Kind>, items: &[Resource], resource_version: Option<&str>) -> Value {
    let same = kind
        .or_else(|| items.first().map(Resource::kind))
        .filter(|k| items.iter().all(|r| r.kind() == *k));
    let list_kind = same
        .map(Kind::list_kind)
        .unwrap_or_else(|| "List".to_string());
    let mut metadata = Map::new();
    if let Some(rv) = resource_version {
        metadata.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": list_kind,
        "items": items.iter().map(value_of).collect::<Vec<_>>(),
        "metadata": metadata,
    })
}

fn single_or_list(items: &[Resource]) -> Value {
    match items {
        [one] => value_of(one),
        _ => list_value(None, items, None),
    }
}

/// YAML of one resource (as itself) or several (as a list).
pub fn to_yaml(items: &[Resource]) -> String {
    serde_yaml_ng::to_string(&single_or_list(items)).unwrap_or_default()
}

/// JSON (indented as calicoctl prints it) of one resource or several (as a list).
pub fn to_json(items: &[Resource]) -> String {
    serde_json::to_string_pretty(&single_or_list(items)).unwrap_or_default()
}

/// YAML of a `get` that listed a kind: always a `<Kind>List`, even with one or no item, as
/// calicoctl prints `get ippools`.
pub fn list_to_yaml(kind: Kind, items: &[Resource], resource_version: Option<&str>) -> String {
    serde_yaml_ng::to_string(&list_value(Some(kind), items, resource_version)).unwrap_or_default()
}

pub fn list_to_json(kind: Kind, items: &[Resource], resource_version: Option<&str>) -> String {
    serde_json::to_string_pretty(&list_value(Some(kind), items, resource_version))
        .unwrap_or_default()
}

/// calicoctl's `-o ps` / `-o wide` table: columns separated like Go's tabwriter with minimum
/// width 5 and padding 3.
pub fn render_table(kind: Kind, items: &[Resource], wide: bool, all_namespaces: bool) -> String {
    let headers: Vec<String> = kind
        .table_headers(wide, all_namespaces)
        .into_iter()
        .map(String::from)
        .collect();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| r.table_row(wide, all_namespaces))
        .collect();
    pad_columns(&headers, &rows)
}

/// calicoctl's `get -o custom-columns=A,B`: the named columns, in that order, from the kind's
/// ps and wide columns (its `headingsMap`); NAMESPACE leads with `-A`. An unknown heading is
/// refused with calicoctl's message.
pub fn render_custom_table(
    kind: Kind,
    items: &[Resource],
    columns: &[String],
    all_namespaces: bool,
) -> Result<String, String> {
    let mut known: Vec<(&'static str, bool)> = kind
        .table_headers(true, false)
        .into_iter()
        .map(|h| (h, true))
        .collect();
    for h in kind.table_headers(false, false) {
        if !known.iter().any(|(k, _)| *k == h) {
            known.push((h, false));
        }
    }
    let mut picks = Vec::with_capacity(columns.len());
    for c in columns {
        let Some(&(heading, wide)) = known.iter().find(|(k, _)| k == c) else {
            let valid: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "unknown heading {c}, valid values are: {}",
                valid.join(", ")
            ));
        };
        let index = kind
            .table_headers(wide, false)
            .iter()
            .position(|h| *h == heading)
            .unwrap_or(0);
        picks.push((wide, index));
    }
    let namespaced = all_namespaces && kind.namespaced();
    let mut headers: Vec<String> = columns.to_vec();
    if namespaced {
        headers.insert(0, "NAMESPACE".to_string());
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| {
            let (ps, wide) = (r.table_row(false, false), r.table_row(true, false));
            let mut row: Vec<String> = picks
                .iter()
                .map(|&(w, i)| {
                    let cells = if w { &wide } else { &ps };
                    cells.get(i).cloned().unwrap_or_default()
                })
                .collect();
            if namespaced {
                row.insert(0, r.namespace().unwrap_or_default().to_string());
            }
            row
        })
        .collect();
    Ok(pad_columns(&headers, &rows))
}

/// Columns as Go's tabwriter (minwidth 5, padding 3) lays them out.
fn pad_columns(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    for row in std::iter::once(headers).chain(rows.iter().map(Vec::as_slice)) {
        for (i, cell) in row.iter().enumerate() {
            // Padded by hand: `format!`'s width is limited to u16, and a cell (thousands of
            // nets in a set) can be wider.
            let width = (widths.get(i).copied().unwrap_or(0) + 3).max(5);
            out.push_str(cell);
            let pad = width.saturating_sub(cell.chars().count());
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.push('\n');
    }
    out
}
