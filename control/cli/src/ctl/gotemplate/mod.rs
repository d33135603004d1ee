//! `get -o go-template=...`: the subset of Go's `text/template` that calicoctl users' scripts
//! use, evaluated over the resources as JSON.
//!
//! calicoctl executes the template over the slice of objects `get` fetched: one `<Kind>List`
//! when a kind is listed, else one resource per name (or per document of `-f`). Templates
//! address Go struct fields (`.ObjectMeta.Name`, `.Spec.CIDR`, `.Items`), and Go promotes the
//! embedded `ObjectMeta`/`TypeMeta` fields (`.Name`, `.Kind`). brindle holds the resources as
//! JSON, so a field is looked up by its JSON name, then case-insensitively (Go's `CIDR` is
//! `cidr`, `IPIPMode` is `ipipMode`), `ObjectMeta`/`ListMeta` name `metadata`, `TypeMeta` the
//! object itself, and a name not found is looked up in `metadata` (promotion).
//!
//! Supported: text, `{{/* comments */}}`, `{{-`/`-}}` trimming, `.`, field chains, `$` and
//! `$var` (declared with `:=`, assigned with `=`), string (with Go escapes), raw-string,
//! number, `true`/`false`/`nil` constants, parenthesised pipelines, `|` pipelines,
//! `if`/`else if`/`else`, `range` (with `$i, $v :=`), `with`, and the functions `and or not
//! len index eq ne lt le gt ge print printf println` plus calicoctl's `join`,
//! `joinAndTruncate` and `config "asnumber"`. Anything else (`define`, `template`, `block`,
//! `break`, `continue`, `html`, `js`, `call`, `slice`, `urlquery`, an unknown `printf` verb)
//! fails with a message naming it.
//!
//! - `parse`: text to a tree; `exec`: the tree over a value; `format`: Go's `%v` and `printf`.

mod exec;
mod format;
mod parse;

use serde_json::Value;

/// A template that failed to parse or execute: the message names the construct and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

/// The values of `{{config "NAME"}}` (calicoctl knows `asnumber` only).
pub trait ConfigSource {
    fn as_number(&self) -> String;
}

/// Parses `text` and executes it over `data`, returning what it printed.
pub fn render(
    text: &str,
    data: &Value,
    config: &dyn ConfigSource,
) -> Result<String, TemplateError> {
    let tree = parse::parse(text)?;
    exec::execute(&tree, data, config)
}

/// The template is checked before the datastore is read, so that a bad one fails first.
pub fn check(text: &str) -> Result<(), TemplateError> {
    parse::parse(text).map(drop)
}
