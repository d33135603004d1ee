//! Executing a parsed template over JSON values, with Go's rules for truth, `range`,
//! variables and the functions of [`super::parse::FUNCTIONS`].

use std::cmp::Ordering;

use serde_json::Value;

use super::format;
use super::parse::{Branch, Node, Operand, Pipe};
use super::{ConfigSource, TemplateError};

/// Output beyond this is refused: nested `range`s over a large listing cannot fill memory.
const MAX_OUTPUT: usize = 64 << 20;

struct State<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
    out: String,
    config: &'a dyn ConfigSource,
}

pub fn execute(
    nodes: &[Node],
    data: &Value,
    config: &dyn ConfigSource,
) -> Result<String, TemplateError> {
    let mut state = State {
        root: data,
        vars: Vec::new(),
        out: String::new(),
        config,
    };
    state.list(nodes, data)?;
    Ok(state.out)
}

fn fail(pipe: &Pipe, message: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!(
        "get:{}: executing \"get\" at <{}>: {message}",
        pipe.line, pipe.source
    ))
}

/// Go's truth: false, 0, "", nil and empty slices and maps are false.
fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A field of `v` as Go would reach the corresponding struct field (see the module docs).
fn field(v: &Value, name: &str) -> Result<Value, String> {
    let Value::Object(map) = v else {
        return match v {
            // A field of an absent (nil) value: Go's "nil pointer evaluating".
            Value::Null => Ok(Value::Null),
            other => Err(format!(
                "can't evaluate field {name} in type {}",
                format::type_name(other)
            )),
        };
    };
    if let Some(found) = map.get(name) {
        return Ok(found.clone());
    }
    if let Some((_, found)) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        return Ok(found.clone());
    }
    match name {
        "ObjectMeta" | "ListMeta" => {
            return Ok(map.get("metadata").cloned().unwrap_or(Value::Null))
        }
        "TypeMeta" => return Ok(v.clone()),
        _ => {}
    }
    // Promoted from the embedded ObjectMeta / ListMeta.
    if let Some(Value::Object(meta)) = map.get("metadata") {
        if let Some((_, found)) = meta.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return Ok(found.clone());
        }
    }
    Ok(Value::Null)
}

fn fields(mut v: Value, names: &[String]) -> Result<Value, String> {
    for name in names {
        v = field(&v, name)?;
    }
    Ok(v)
}

impl State<'_> {
    fn list(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => self.write(t)?,
                Node::Action(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.vars.is_empty() {
                        self.write(&format::plain(&v))?;
                    }
                }
                Node::If(b) => {
                    let (v, mark) = self.scoped_pipe(b, dot)?;
                    if truth(&v) {
                        self.list(&b.body, dot)?;
                    } else {
                        self.list(&b.otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::With(b) => {
                    let (v, mark) = self.scoped_pipe(b, dot)?;
                    if truth(&v) {
                        self.list(&b.body, &v)?;
                    } else {
                        self.list(&b.otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(b) => self.range(b, dot)?,
            }
        }
        Ok(())
    }

    fn write(&mut self, s: &str) -> Result<(), TemplateError> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(TemplateError(format!(
                "get: output exceeds {} MiB",
                MAX_OUTPUT >> 20
            )));
        }
        self.out.push_str(s);
        Ok(())
    }

    /// The pipeline of `if`/`with`, its variables visible up to `{{end}}`: (value, the
    /// variable count to return to).
    fn scoped_pipe(&mut self, b: &Branch, dot: &Value) -> Result<(Value, usize), TemplateError> {
        let mark = self.vars.len();
        let v = self.pipe(&b.pipe, dot)?;
        Ok((v, mark))
    }

    fn range(&mut self, b: &Branch, dot: &Value) -> Result<(), TemplateError> {
        let mark = self.vars.len();
        let mut bare = b.pipe.clone();
        bare.vars.clear();
        let v = self.pipe(&bare, dot)?;
        let entries: Vec<(Value, Value)> = match &v {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (Value::from(i), item.clone()))
                .collect(),
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| (Value::String(k.clone()), map[k].clone()))
                    .collect()
            }
            other => {
                return Err(fail(
                    &b.pipe,
                    format!("range can't iterate over {}", format::plain(other)),
                ))
            }
        };
        if entries.is_empty() {
            self.list(&b.otherwise, dot)?;
            self.vars.truncate(mark);
            return Ok(());
        }
        for (key, item) in entries {
            match b.pipe.vars.as_slice() {
                [] => {}
                [one] => self.vars.push((one.clone(), item.clone())),
                [k, e] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((e.clone(), item.clone()));
                }
                _ => return Err(fail(&b.pipe, "too many declarations in range")),
            }
            self.list(&b.body, &item)?;
            self.vars.truncate(mark);
        }
        Ok(())
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value, TemplateError> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(pipe, cmd, dot, value)?);
        }
        let value = value.unwrap_or(Value::Null);
        match (pipe.vars.as_slice(), pipe.assign) {
            ([], _) => {}
            ([name], false) => self.vars.push((name.clone(), value.clone())),
            ([name], true) => {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| fail(pipe, format!("undefined variable: ${name}")))?;
                slot.1 = value.clone();
            }
            _ => return Err(fail(pipe, "too many declarations")),
        }
        Ok(value)
    }

    fn command(
        &mut self,
        pipe: &Pipe,
        cmd: &[Operand],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        if let Some(Operand::Func(name)) = cmd.first() {
            let mut args = Vec::with_capacity(cmd.len());
            for op in &cmd[1..] {
                args.push(self.operand(pipe, op, dot)?);
            }
            args.extend(piped);
            return self.call(name, &args).map_err(|e| fail(pipe, e));
        }
        if cmd.len() > 1 || piped.is_some() {
            return Err(fail(pipe, "can't give argument to non-function"));
        }
        self.operand(pipe, &cmd[0], dot)
    }

    fn operand(&mut self, pipe: &Pipe, op: &Operand, dot: &Value) -> Result<Value, TemplateError> {
        let v = match op {
            Operand::Dot(names) => fields(dot.clone(), names),
            Operand::Var(name, names) => {
                let base = if name.is_empty() {
                    self.root.clone()
                } else {
                    self.vars
                        .iter()
                        .rev()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                        .ok_or_else(|| fail(pipe, format!("undefined variable: ${name}")))?
                };
                fields(base, names)
            }
            Operand::Str(s) => Ok(Value::String(s.clone())),
            Operand::Num(n) => Ok(number(*n)),
            Operand::Bool(b) => Ok(Value::Bool(*b)),
            Operand::Nil => return Err(fail(pipe, "nil is not a command")),
            Operand::Func(name) => return self.call(name, &[]).map_err(|e| fail(pipe, e)),
            Operand::Paren(inner, names) => {
                let v = self.pipe(inner, dot)?;
                fields(v, names)
            }
        };
        v.map_err(|e| fail(pipe, e))
    }

    fn call(&mut self, name: &str, args: &[Value]) -> Result<Value, String> {
        let need = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "wrong number of args for {name}: want {n} got {}",
                    args.len()
                ))
            }
        };
        let at_least = |n: usize| {
            if args.len() >= n {
                Ok(())
            } else {
                Err(format!(
                    "wrong number of args for {name}: want at least {n} got {}",
                    args.len()
                ))
            }
        };
        match name {
            "and" => {
                at_least(1)?;
                Ok(args
                    .iter()
                    .find(|a| !truth(a))
                    .unwrap_or(&args[args.len() - 1])
                    .clone())
            }
            "or" => {
                at_least(1)?;
                Ok(args
                    .iter()
                    .find(|a| truth(a))
                    .unwrap_or(&args[args.len() - 1])
                    .clone())
            }
            "not" => {
                need(1)?;
                Ok(Value::Bool(!truth(&args[0])))
            }
            "len" => {
                need(1)?;
                match &args[0] {
                    Value::String(s) => Ok(Value::from(s.len())),
                    Value::Array(a) => Ok(Value::from(a.len())),
                    Value::Object(o) => Ok(Value::from(o.len())),
                    other => Err(format!("len of type {}", format::type_name(other))),
                }
            }
            "index" => {
                at_least(1)?;
                let mut v = args[0].clone();
                for key in &args[1..] {
                    v = index(&v, key)?;
                }
                Ok(v)
            }
            "eq" => {
                at_least(2)?;
                for other in &args[1..] {
                    if compare(&args[0], other)? == Ordering::Equal {
                        return Ok(Value::Bool(true));
                    }
                }
                Ok(Value::Bool(false))
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                need(2)?;
                let ord = compare(&args[0], &args[1])?;
                if name != "ne" && !(args[0].is_number() || args[0].is_string()) {
                    return Err(format!(
                        "invalid type for comparison: {}",
                        format::type_name(&args[0])
                    ));
                }
                Ok(Value::Bool(match name {
                    "ne" => ord != Ordering::Equal,
                    "lt" => ord == Ordering::Less,
                    "le" => ord != Ordering::Greater,
                    "gt" => ord == Ordering::Greater,
                    _ => ord != Ordering::Less,
                }))
            }
            "print" => Ok(Value::String(format::sprint(args))),
            "println" => Ok(Value::String(format::sprintln(args))),
            "printf" => {
                at_least(1)?;
                let Value::String(f) = &args[0] else {
                    return Err(format!(
                        "printf's format must be a string, not {}",
                        format::type_name(&args[0])
                    ));
                };
                format::sprintf(f, &args[1..]).map(Value::String)
            }
            "join" => {
                need(2)?;
                Ok(Value::String(join(&args[0], &text(&args[1])?, 0)))
            }
            "joinAndTruncate" => {
                need(3)?;
                let max = args[2].as_i64().ok_or_else(|| {
                    format!(
                        "joinAndTruncate's length must be an integer, not {}",
                        format::plain(&args[2])
                    )
                })?;
                Ok(Value::String(join(&args[0], &text(&args[1])?, max)))
            }
            "config" => {
                need(1)?;
                let key = text(&args[0])?;
                if key.eq_ignore_ascii_case("asnumber") {
                    Ok(Value::String(self.config.as_number()))
                } else {
                    Err(format!(
                        "config {key:?}: unknown setting (calicoctl knows \"asnumber\")"
                    ))
                }
            }
            other => Err(format!("function {other:?} not defined")),
        }
    }
}

fn text(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("expected a string, got {}", format::type_name(v)))
}

/// Numbers written in a template: integers stay integers (so that they print and compare
/// as Go's `int`).
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn index(v: &Value, key: &Value) -> Result<Value, String> {
    match (v, key) {
        (Value::Array(items), Value::Number(n)) => {
            let i = n
                .as_i64()
                .ok_or_else(|| format!("cannot index slice with {n}"))?;
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| format!("error calling index: index out of range: {i}"))
        }
        (Value::Object(map), Value::String(k)) => Ok(map.get(k).cloned().unwrap_or(Value::Null)),
        (Value::Null, _) => Err("error calling index: index of untyped nil".to_string()),
        (v, k) => Err(format!(
            "error calling index: cannot index {} with {}",
            format::type_name(v),
            format::type_name(k)
        )),
    }
}

/// Go's comparison of basic values; other pairs are errors, as in Go.
fn compare(a: &Value, b: &Value) -> Result<Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            Ok(x.partial_cmp(&y).unwrap_or(Ordering::Equal))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Null, Value::Null) => Ok(Ordering::Equal),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            Err(format!(
                "error calling compare: non-comparable type {}",
                format::type_name(if a.is_array() || a.is_object() { a } else { b })
            ))
        }
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            format::type_name(a),
            format::type_name(b)
        )),
    }
}

/// calicoctl's `joinAndTruncate`: a map becomes sorted `k=v` items, a single value a
/// one-item list; truncated to `max` bytes ending in `...` when `max > 0`.
fn join(items: &Value, sep: &str, max: i64) -> String {
    let parts: Vec<String> = match items {
        Value::Null => return String::new(),
        Value::Object(map) => {
            let mut kv: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", format::plain(v)))
                .collect();
            kv.sort();
            kv
        }
        Value::Array(a) => a.iter().map(format::plain).collect(),
        other => vec![format::plain(other)],
    };
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(p);
        if max > 0 && out.len() as i64 > max {
            let mut keep = (max as usize).saturating_sub(3);
            while !out.is_char_boundary(keep) {
                keep -= 1;
            }
            out.truncate(keep);
            out.push_str("...");
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{check, render, ConfigSource};
    use serde_json::json;

    struct Asn;
    impl ConfigSource for Asn {
        fn as_number(&self) -> String {
            "64512".into()
        }
    }

    fn r(t: &str, data: serde_json::Value) -> String {
        render(t, &data, &Asn).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    fn pools() -> serde_json::Value {
        json!([{
            "kind": "IPPoolList",
            "apiVersion": "projectcalico.org/v3",
            "metadata": {"resourceVersion": "7"},
            "items": [
                {"kind": "IPPool", "metadata": {"name": "a", "labels": {"z": "1", "y": "2"}},
                 "spec": {"cidr": "10.0.0.0/16", "ipipMode": "Never", "blockSize": 26}},
                {"kind": "IPPool", "metadata": {"name": "b"},
                 "spec": {"cidr": "10.1.0.0/16", "ipipMode": "Always", "blockSize": 26, "disabled": true}}
            ]
        }])
    }

    #[test]
    fn go_field_names_reach_json_fields() {
        let t = "{{range .}}{{range .Items}}{{.ObjectMeta.Name}} {{.Name}} {{.Spec.CIDR}} {{.spec.ipipMode}} {{.Kind}}\n{{end}}{{.ResourceVersion}}{{end}}";
        assert_eq!(
            r(t, pools()),
            "a a 10.0.0.0/16 Never IPPool\nb b 10.1.0.0/16 Always IPPool\n7"
        );
    }

    #[test]
    fn control_flow_variables_and_functions() {
        let t = r#"{{- range $i, $p := (index . 0).Items -}}
{{ $i }}:{{ if $p.Spec.Disabled }}off{{ else if eq $p.Spec.IPIPMode "Never" "CrossSubnet" }}plain{{ else }}ipip{{ end }}
{{- with $p.Metadata.Labels }} {{ join . "," }}{{ end }} {{ printf "%-6s|" $p.Name }}{{ len $p.Spec.CIDR }}
{{ end -}}
{{ joinAndTruncate "abcdefgh" "" 6 }} {{ config "asnumber" }} {{ "t\tn" }} {{ 3 | print }}{{/* gone */}}"#;
        assert_eq!(
            r(t, pools()),
            "0:plain y=2,z=1 a     |11\n1:off b     |11\nabc... 64512 t\tn 3"
        );
        assert_eq!(r("{{range .}}x{{else}}none{{end}}", json!([])), "none");
        assert_eq!(r("{{$x := 1}}{{$x = 2}}{{$x}}", json!(null)), "2");
        assert_eq!(
            r("{{if and 1 0}}y{{else}}n{{end}}{{or 0 \"s\"}}", json!(null)),
            "ns"
        );
        assert_eq!(
            r("{{lt 1 2}} {{ge \"a\" \"b\"}} {{not .}}", json!(null)),
            "true false true"
        );
        assert_eq!(r(r"a\nb", json!(null)), r"a\nb");
        // Multi-byte text and strings around the delimiters.
        assert_eq!(r("é{{\"ü}\"}}ß{{- \" ∂\" -}} ", json!(null)), "éü}ß ∂");
    }

    #[test]
    fn outside_the_subset_fails_naming_it() {
        for (t, names) in [
            ("{{define \"x\"}}{{end}}", "\"define\""),
            ("{{template \"x\"}}", "\"template\""),
            ("{{html .}}", "\"html\""),
            ("{{nosuch .}}", "function \"nosuch\" not defined"),
            ("{{ é }}", "function \"é\" not defined"),
            ("{{.A", "unclosed action"),
            ("{{if .A}}x", "without {{end}}"),
            ("{{end}}", "unexpected {{end}}"),
            ("{{'x'}}", "character constants"),
            ("{{\"abc}}", "unclosed action"),
            (
                "{{if 1}}".repeat(100_000).as_str(),
                "nested more than 256 deep",
            ),
            (
                format!("{{{{{}1{}}}}}", "(".repeat(100_000), ")".repeat(100_000)).as_str(),
                "parentheses",
            ),
        ] {
            let e = check(t).unwrap_err().to_string();
            assert!(
                e.starts_with("template: get:1: ") && e.contains(names),
                "{t}: {e}"
            );
        }
        for (t, names) in [
            ("{{printf \"%e\" 1}}", "%e"),
            ("{{range 3}}{{end}}", "range can't iterate over 3"),
            ("{{.A.B}}", "can't evaluate field B in type string"),
            ("{{$nope}}", "undefined variable: $nope"),
            ("{{eq 1 \"a\"}}", "incompatible types"),
            ("{{index .A 1}}", "cannot index string"),
            ("{{config \"x\"}}", "unknown setting"),
            ("{{1 2}}", "non-function"),
        ] {
            let e = render(t, &json!({"A": "s"}), &Asn).unwrap_err().to_string();
            assert!(
                e.contains("executing \"get\"") && e.contains(names),
                "{t}: {e}"
            );
        }
    }
}
