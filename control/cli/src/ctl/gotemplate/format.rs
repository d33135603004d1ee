//! Go's `fmt` as templates see it: `%v` of a value (what an action prints), `print`,
//! `println` and `printf` with the verbs scripts use.

use serde_json::Value;

/// Go's `%v`: strings bare, integers without a fraction, slices `[a b]`, maps `map[k:v]`
/// (sorted keys). An absent field (JSON has no zero values) prints nothing at the top level
/// and `<nil>` inside a slice or map.
pub fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => nested(other),
    }
}

fn nested(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(nested).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", nested(&map[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float(n.as_f64().unwrap_or(0.0))
    }
}

fn float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// Go's type name of a value, for `%!d(string=x)` and error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// `print`: operands joined, with a space between two that are both not strings.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&nested_top(a));
    }
    out
}

/// `println`: operands joined by spaces, then a newline.
pub fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(nested_top).collect();
    format!("{}\n", parts.join(" "))
}

/// A function's operand prints `<nil>` for nil, as Go's fmt does.
fn nested_top(v: &Value) -> String {
    nested(v)
}

/// `printf FORMAT ARGS...`: verbs `v s d q t f x X %` with flags `-+0 ` width and precision.
/// A missing operand or one of the wrong type prints as Go prints it (`%!d(MISSING)`,
/// `%!d(string=x)`); a verb outside the subset is an error naming it.
pub fn sprintf(format: &str, args: &[Value]) -> Result<String, String> {
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::new();
    let mut next = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        while let Some(&c) = chars.get(i) {
            match c {
                '-' => spec.left = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => {}
                _ => break,
            }
            i += 1;
        }
        spec.width = digits(&chars, &mut i);
        if chars.get(i) == Some(&'.') {
            i += 1;
            spec.precision = Some(digits(&chars, &mut i).unwrap_or(0));
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        if !"vsdqtfxX".contains(verb) {
            return Err(format!(
                "printf verb %{verb} is not supported by brindlectl's go-template (supported: %v %s %d %q %t %f %x %X %%)"
            ));
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let text = match one(verb, &spec, arg) {
            Some(t) => t,
            None => format!("%!{verb}({}={})", type_name(arg), nested(arg)),
        };
        out.push_str(&spec.pad(text, arg.is_number()));
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", type_name(a), nested(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    Ok(out)
}

#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Spec {
    fn pad(&self, text: String, numeric: bool) -> String {
        let Some(width) = self.width else {
            return text;
        };
        let len = text.chars().count();
        if len >= width {
            return text;
        }
        let fill = width - len;
        if self.left {
            format!("{text}{}", " ".repeat(fill))
        } else if self.zero && numeric {
            match text.strip_prefix('-') {
                Some(digits) => format!("-{}{digits}", "0".repeat(fill)),
                None => format!("{}{text}", "0".repeat(fill)),
            }
        } else {
            format!("{}{text}", " ".repeat(fill))
        }
    }

    fn sign(&self, negative: bool) -> &'static str {
        if negative {
            ""
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        }
    }
}

fn digits(chars: &[char], i: &mut usize) -> Option<usize> {
    let start = *i;
    while chars.get(*i).is_some_and(|c| c.is_ascii_digit()) {
        *i += 1;
    }
    let text: String = chars[start..*i].iter().collect();
    // Bounded: a width is a few digits, not a way to allocate gigabytes.
    text.parse::<usize>().ok().map(|n| n.min(4096))
}

/// One operand under one verb; `None` when the verb does not apply to its type.
fn one(verb: char, spec: &Spec, arg: &Value) -> Option<String> {
    let int = || -> Option<i128> {
        let n = arg.as_number()?;
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match verb {
        'v' => Some(match spec.precision {
            Some(p) if arg.is_string() => truncate(&nested(arg), p),
            _ => nested(arg),
        }),
        's' => match arg {
            Value::String(s) => Some(match spec.precision {
                Some(p) => truncate(s, p),
                None => s.clone(),
            }),
            Value::Array(_) | Value::Object(_) => Some(nested(arg)),
            _ => None,
        },
        'q' => arg.as_str().map(|s| format!("{s:?}")),
        't' => arg.as_bool().map(|b| b.to_string()),
        'd' => int().map(|n| format!("{}{n}", spec.sign(n < 0))),
        'f' => arg.as_f64().map(|f| {
            let p = spec.precision.unwrap_or(6);
            format!("{}{f:.p$}", spec.sign(f < 0.0))
        }),
        'x' | 'X' => {
            let text = match arg {
                Value::String(s) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                _ => {
                    let n = int()?;
                    if n < 0 {
                        format!("-{:x}", -n)
                    } else {
                        format!("{n:x}")
                    }
                }
            };
            Some(if verb == 'X' {
                text.to_uppercase()
            } else {
                text
            })
        }
        _ => None,
    }
}

fn truncate(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_as_go_prints_them() {
        assert_eq!(plain(&json!("a")), "a");
        assert_eq!(plain(&json!(26)), "26");
        assert_eq!(plain(&json!(1.5)), "1.5");
        assert_eq!(plain(&json!(["a", 2])), "[a 2]");
        assert_eq!(plain(&json!({"b": "2", "a": "1"})), "map[a:1 b:2]");
        assert_eq!(plain(&Value::Null), "");
    }

    #[test]
    fn printf_verbs_flags_and_go_markers() {
        let s = sprintf(
            "%-6s|%4d|%04d|%q|%t|%.2f|%x|%%",
            &[
                json!("ab"),
                json!(7),
                json!(-7),
                json!("q"),
                json!(true),
                json!(1.5),
                json!(255),
            ],
        )
        .unwrap();
        assert_eq!(s, "ab    |   7|-007|\"q\"|true|1.50|ff|%");
        assert_eq!(
            sprintf("%d %s", &[json!("x")]).unwrap(),
            "%!d(string=x) %!s(MISSING)"
        );
        assert_eq!(
            sprintf("%s", &[json!("a"), json!(1)]).unwrap(),
            "a%!(EXTRA int=1)"
        );
        let e = sprintf("%e", &[json!(1)]).unwrap_err();
        assert!(e.contains("%e"), "{e}");
        assert_eq!(sprint(&[json!(1), json!(2), json!("a"), json!(3)]), "1 2a3");
        assert_eq!(sprintln(&[json!(1), json!("a")]), "1 a\n");
    }
}
