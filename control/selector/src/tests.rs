use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::scope::{policy_selector, rule_selector};

fn sel(input: &str) -> Selector {
    Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

fn err(input: &str) -> ParseError {
    match Selector::parse(input) {
        Ok(s) => panic!("{input:?} parsed as {s}"),
        Err(e) => e,
    }
}

/// Asserts that `input` fails at `position` with a message containing `needle`.
fn assert_error(input: &str, position: usize, needle: &str) {
    let e = err(input);
    assert_eq!(e.position, position, "{input:?}: {e}");
    assert!(
        e.message.contains(needle),
        "{input:?}: {e} lacks {needle:?}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("at position {position}: ")),
        "{e}"
    );
}

const WEB: [(&str, &str); 3] = [
    ("role", "web-frontend"),
    ("env", "prod"),
    ("k8s.io/app", "shop"),
];

// ---- evaluation of each operator ----

#[test]
fn equality_and_inequality() {
    assert!(sel("role == 'web-frontend'").matches(&WEB));
    assert!(!sel("role == 'web'").matches(&WEB));
    assert!(!sel("zone == 'a'").matches(&WEB), "== needs the label");
    assert!(sel("role != 'db'").matches(&WEB));
    assert!(!sel("role != 'web-frontend'").matches(&WEB));
    assert!(
        sel("zone != 'a'").matches(&WEB),
        "!= holds when the label is absent"
    );
}

#[test]
fn set_membership() {
    assert!(sel("env in { 'dev', \"prod\" }").matches(&WEB));
    assert!(!sel("env in {'dev'}").matches(&WEB));
    assert!(!sel("zone in {'a'}").matches(&WEB));
    assert!(!sel("env in {}").matches(&WEB));
    assert!(!sel("env not in {'prod', 'dev'}").matches(&WEB));
    assert!(sel("env not in {'dev'}").matches(&WEB));
    assert!(
        sel("zone not in {'a'}").matches(&WEB),
        "not in holds when the label is absent"
    );
    assert!(sel("env not in {}").matches(&WEB));
}

#[test]
fn substring_operators() {
    assert!(sel("role contains 'front'").matches(&WEB));
    assert!(!sel("role contains 'back'").matches(&WEB));
    assert!(sel("role starts with 'web-'").matches(&WEB));
    assert!(!sel("role starts with 'front'").matches(&WEB));
    assert!(sel("role ends with \"end\"").matches(&WEB));
    assert!(!sel("role ends with 'web'").matches(&WEB));
    for op in ["contains", "starts with", "ends with"] {
        assert!(
            !sel(&format!("zone {op} ''")).matches(&WEB),
            "{op} needs the label"
        );
    }
}

#[test]
fn has_all_global_and_not() {
    assert!(sel("has(k8s.io/app)").matches(&WEB));
    assert!(!sel("has(zone)").matches(&WEB));
    assert!(sel("!has(zone)").matches(&WEB));
    assert!(sel("has( role )").matches(&WEB));
    assert!(sel("all()").matches(&WEB));
    assert!(sel("all()").matches(&()));
    assert!(!sel("!all()").matches(&()));
    assert!(sel("!!has(role)").matches(&WEB));
    assert!(!sel("!!!has(role)").matches(&WEB));
    // global(): not namespaced.
    assert!(sel("global()").matches(&WEB));
    assert!(!sel("global()").matches(&[(NAMESPACE_LABEL, "default")]));
    assert!(sel("!global()").matches(&[(NAMESPACE_LABEL, "default")]));
}

#[test]
fn and_or_and_parentheses() {
    assert!(sel("role == 'web-frontend' && env == 'prod'").matches(&WEB));
    assert!(!sel("role == 'web-frontend' && env == 'dev'").matches(&WEB));
    assert!(sel("role == 'db' || env == 'prod'").matches(&WEB));
    assert!(!sel("role == 'db' || env == 'dev'").matches(&WEB));
    assert!(!sel("!(role == 'db' || env == 'prod')").matches(&WEB));
}

#[test]
fn precedence_is_not_then_and_then_or() {
    // || is weakest: a || (b && c).
    let s = sel("a == 'x' || b == 'y' && c == 'z'");
    assert_eq!(s.canonical(), "(a == \"x\" || (b == \"y\" && c == \"z\"))");
    assert!(s.matches(&[("a", "x")]));
    assert!(!s.matches(&[("b", "y")]));
    // Parentheses override it.
    let s = sel("(a == 'x' || b == 'y') && c == 'z'");
    assert!(!s.matches(&[("a", "x")]));
    assert!(s.matches(&[("a", "x"), ("c", "z")]));
    // ! binds to one operation, not to the && chain.
    let s = sel("!has(a) && has(b)");
    assert_eq!(s.canonical(), "(!has(a) && has(b))");
    assert!(s.matches(&[("b", "1")]));
    assert!(!s.matches(&[("a", "1"), ("b", "1")]));
    assert!(!s.matches(&()));
}

#[test]
fn label_keys_take_calico_characters() {
    let s = sel("projectcalico.org/namespace == 'ns1' && a_b-c.d/E9 == 'v'");
    assert!(s.matches(&[(NAMESPACE_LABEL, "ns1"), ("a_b-c.d/E9", "v")]));
    // Operator words are labels where no operator can be.
    assert!(sel("in in {'in'}").matches(&[("in", "in")]));
    assert!(sel("contains contains 'x'").matches(&[("contains", "xx")]));
}

#[test]
fn every_label_source_can_be_evaluated() {
    let s = sel("role == 'db' && has(tier)");
    let btree: BTreeMap<String, String> =
        [("role".into(), "db".into()), ("tier".into(), "1".into())].into();
    let hash: HashMap<String, String> = btree.clone().into_iter().collect();
    let pairs: Vec<(&str, &str)> = vec![("role", "db"), ("tier", "1")];
    assert!(s.matches(&btree));
    assert!(s.matches(&hash));
    assert!(s.matches(&pairs[..]));
    assert!(!s.matches(&pairs[..1]));
    // The endpoint's own role overrides the profile's.
    let own = [("role", "db")];
    let profile = [("role", "web"), ("tier", "1")];
    assert!(s.matches(&ParentLabels::new(&own, &profile)));
    assert!(!s.matches(&ParentLabels::new(&profile, &own)));
}

// ---- canonical form ----

#[test]
fn canonical_form_is_calicos() {
    let cases = [
        ("", "all()"),
        ("  \t ", "all()"),
        ("all( )", "all()"),
        ("global()", "global()"),
        ("has( a )", "has(a)"),
        ("a=='b'", "a == \"b\""),
        ("a != \"b\"", "a != \"b\""),
        ("a == 'say \"hi\"'", "a == 'say \"hi\"'"),
        ("a == \"it's\"", "a == \"it's\""),
        ("a contains 'x'", "a contains \"x\""),
        ("a starts  with 'x'", "a starts with \"x\""),
        ("a ends\twith 'x'", "a ends with \"x\""),
        ("a in {'c', \"b\", 'c', 'a',}", "a in {\"a\", \"b\", \"c\"}"),
        ("a not in {}", "a not in {}"),
        ("a notin {'x'}", "a not in {\"x\"}"),
        ("a in {'q\"'}", "a in {'q\"'}"),
        ("!has(a)", "!has(a)"),
        ("!!has(a)", "has(a)"),
        ("!(!has(a))", "has(a)"),
        ("((has(a)))", "has(a)"),
        ("has(a)&&has(b)&&has(c)", "(has(a) && has(b) && has(c))"),
        ("(has(a)&&has(b))&&has(c)", "((has(a) && has(b)) && has(c))"),
        ("!(has(a) || has(b))", "!(has(a) || has(b))"),
    ];
    for (input, canonical) in cases {
        assert_eq!(sel(input).canonical(), canonical, "{input:?}");
        assert_eq!(sel(input).to_string(), canonical);
    }
}

#[test]
fn canonical_form_round_trips_and_equal_selectors_are_equal() {
    let inputs = [
        "role == 'db' && (env in {'b','a'} || !has(x)) || k starts with \"p\"",
        "!(a not in {'1'} && b ends with 'z') && global()",
        "x contains 'it\"s' || all()",
    ];
    for input in inputs {
        let s = sel(input);
        let again = sel(&s.canonical());
        assert_eq!(again, s, "{input:?}");
        assert_eq!(again.canonical(), s.canonical());
        assert_eq!(again.unique_id(), s.unique_id());
    }
    assert_eq!(sel("a in {'x', 'y'}"), sel("a in { \"y\", 'x', 'y' }"));
    assert_ne!(sel("a in {'x'}"), sel("a not in {'x'}"));
    assert_eq!("has(a)".parse::<Selector>().unwrap(), sel("has( a )"));
}

// ---- helpers for the policy compiler ----

#[test]
fn label_keys_lists_what_is_read() {
    let s = sel("a == '1' && (has(b) || !c in {'x'}) && d not in {} && global() && all()");
    let keys: Vec<&str> = s.label_keys().into_iter().collect();
    assert_eq!(keys, ["a", "b", "c", "d", NAMESPACE_LABEL]);
    assert!(sel("all()").label_keys().is_empty());
}

#[test]
fn is_all_only_for_all() {
    assert!(sel("all()").is_all());
    assert!(sel("").is_all());
    assert!(sel("(all())").is_all());
    assert!(!sel("!all()").is_all());
    assert!(!sel("all() && all()").is_all());
    assert!(!sel("has(a)").is_all());
}

#[test]
fn unique_id_is_calicos_sha224_of_the_canonical_form() {
    // Expected values computed independently (Python hashlib + base64) for "s:" + canonical.
    assert_eq!(
        sel("a=='b'").unique_id(),
        "s:flMh0m0X_BowkAK_W3j3MgH8oQOsj3WxGDoXCQ"
    );
    assert_eq!(
        sel("").unique_id(),
        "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"
    );
    assert_ne!(sel("a=='b'").unique_id(), sel("a=='c'").unique_id());
}

#[test]
fn base64_url_handles_every_tail_length() {
    assert_eq!(base64_url_unpadded(&[0xfb, 0xff, 0x01]), "-_8B");
    assert_eq!(base64_url_unpadded(&[0xfb, 0xff]), "-_8");
    assert_eq!(base64_url_unpadded(&[0xfb]), "-w");
    assert_eq!(base64_url_unpadded(&[]), "");
}

#[test]
fn label_prefix_and_conjunction() {
    let s = sel("a == 'x' && !has(b) || c in {'y'}");
    assert_eq!(
        s.with_label_prefix("pcsa.").canonical(),
        "((pcsa.a == \"x\" && !has(pcsa.b)) || pcsa.c in {\"y\"})"
    );
    let both = sel("has(a)").and(&sel("has(b) || has(c)"));
    assert_eq!(both.canonical(), "(has(a) && (has(b) || has(c)))");
    assert_eq!(sel(&both.canonical()), both);
}

// ---- namespace scoping ----

#[test]
fn namespaced_policy_selects_only_its_namespace() {
    let ns = PolicyScope::Namespace("shop");
    let p = policy_selector(ns, Some(&sel("role == 'db'")));
    assert_eq!(
        p.canonical(),
        "(role == \"db\" && projectcalico.org/namespace == \"shop\")"
    );
    assert!(p.matches(&[("role", "db"), (NAMESPACE_LABEL, "shop")]));
    assert!(!p.matches(&[("role", "db"), (NAMESPACE_LABEL, "other")]));
    assert_eq!(
        policy_selector(ns, None).canonical(),
        "projectcalico.org/namespace == \"shop\""
    );
    assert!(policy_selector(PolicyScope::Global, None).is_all());
    assert_eq!(
        policy_selector(PolicyScope::Global, Some(&sel("has(a)"))),
        sel("has(a)")
    );
}

#[test]
fn rule_selector_without_namespace_selector_stays_in_the_policy_namespace() {
    let ns = PolicyScope::Namespace("shop");
    let r = rule_selector(ns, Some(&sel("role == 'web'")), None, false).unwrap();
    assert_eq!(
        r.canonical(),
        "(projectcalico.org/namespace == \"shop\" && role == \"web\")"
    );
    assert!(r.matches(&[("role", "web"), (NAMESPACE_LABEL, "shop")]));
    assert!(!r.matches(&[("role", "web"), (NAMESPACE_LABEL, "other")]));
    assert!(
        !r.matches(&[("role", "web")]),
        "a host endpoint is not in the namespace"
    );
    // Only a notSelector: still limited to the namespace.
    let r = rule_selector(ns, None, None, true).unwrap();
    assert_eq!(r.canonical(), "projectcalico.org/namespace == \"shop\"");
    // Nothing about endpoints: no selector at all.
    assert_eq!(rule_selector(ns, None, None, false), None);
    // Global policies are not limited.
    assert_eq!(
        rule_selector(PolicyScope::Global, Some(&sel("has(a)")), None, false),
        Some(sel("has(a)"))
    );
    assert_eq!(rule_selector(PolicyScope::Global, None, None, true), None);
}

#[test]
fn namespace_selector_matches_inherited_namespace_labels() {
    let ns = PolicyScope::Namespace("shop");
    let r = rule_selector(
        ns,
        Some(&sel("role == 'web'")),
        Some(&sel("team == 'blue'")),
        false,
    )
    .unwrap();
    assert_eq!(r.canonical(), "(pcns.team == \"blue\" && role == \"web\")");
    let own = [("role", "web"), (NAMESPACE_LABEL, "other")];
    let blue = [("pcns.team", "blue")];
    let red = [("pcns.team", "red")];
    assert!(r.matches(&ParentLabels::new(&own, &blue)));
    assert!(!r.matches(&ParentLabels::new(&own, &red)));
}

#[test]
fn namespace_selector_all_and_global_pick_namespaced_or_not() {
    let ns = PolicyScope::Namespace("shop");
    let any_ns = rule_selector(ns, None, Some(&sel("all()")), false).unwrap();
    assert_eq!(any_ns.canonical(), "has(projectcalico.org/namespace)");
    assert!(any_ns.matches(&[(NAMESPACE_LABEL, "x")]));
    assert!(!any_ns.matches(&[("role", "host")]));
    let global = rule_selector(ns, Some(&sel("has(a)")), Some(&sel("global()")), false).unwrap();
    assert_eq!(
        global.canonical(),
        "(!has(projectcalico.org/namespace) && has(a))"
    );
    assert!(global.matches(&[("a", "1")]));
    assert!(!global.matches(&[("a", "1"), (NAMESPACE_LABEL, "x")]));
    let not_global =
        rule_selector(PolicyScope::Global, None, Some(&sel("!global()")), false).unwrap();
    assert_eq!(not_global.canonical(), "has(projectcalico.org/namespace)");
}

// ---- errors, each with its position ----

#[test]
fn unterminated_strings() {
    assert_error("a == 'b", 5, "unterminated string");
    assert_error("a == \"b' && c == 'd'", 5, "unterminated string");
}

#[test]
fn missing_or_bad_operators() {
    assert_error("a 'b'", 2, "expected an operator");
    assert_error("a", 1, "expected an operator");
    assert_error("a b == 'c'", 2, "expected an operator");
    assert_error("a = 'b'", 2, "expected '=='");
    assert_error("has(a) & has(b)", 7, "expected '&&'");
    assert_error("has(a) | has(b)", 7, "expected '||'");
    assert_error("a starts 'x'", 9, "expected 'with' after 'starts'");
    assert_error("a ends 'x'", 7, "expected 'with' after 'ends'");
    assert_error("a not {'x'}", 6, "expected 'in' after 'not'");
    assert_error(
        "a == b",
        5,
        "expected a string literal after '==', found a label",
    );
    assert_error("a == (", 5, "expected a string literal after '=='");
    assert_error("a == ", 5, "expected a string literal after '=='");
    assert_error(
        "a contains {'x'}",
        11,
        "expected a string literal after 'contains'",
    );
    assert_error("a == 'x' &&", 11, "unexpected end of selector");
    assert_error("&& has(a)", 0, "unexpected '&&'");
    assert_error("has()", 4, "expected a label name inside has(");
    assert_error("has(a b)", 6, "expected ')' to close 'has('");
    assert_error("all(x)", 4, "expected ')' to close 'all('");
    assert_error("global( ", 8, "expected ')' to close 'global('");
    assert_error("a == 'x' # c", 9, "unexpected character '#'");
    assert_error("a == 'x'\n", 8, "unexpected character '\\n'");
}

#[test]
fn bad_sets() {
    assert_error("a in 'x'", 5, "expected a set literal");
    assert_error("a in {'x' 'y'}", 10, "bad set literal");
    assert_error("a in {,}", 6, "bad set literal");
    assert_error("a in {'x',,}", 10, "bad set literal");
    assert_error("a not in {'x'", 13, "to close the '{' at position 9");
}

#[test]
fn trailing_garbage() {
    assert_error(
        "has(a) has(b)",
        7,
        "unexpected 'has()' after a complete expression",
    );
    assert_error(
        "a == 'b' 'c'",
        9,
        "unexpected a string literal after a complete expression",
    );
}

#[test]
fn unbalanced_parentheses() {
    assert_error("(has(a)", 7, "expected ')' to close the '(' at position 0");
    assert_error("((has(a) && has(b))", 19, "at position 0");
    assert_error("has(a))", 6, "')' with no '('");
    assert_error("()", 1, "unexpected ')'");
}

#[test]
fn too_long() {
    let ok = format!("a == '{}'", "x".repeat(MAX_SELECTOR_LEN - 7));
    assert_eq!(ok.len(), MAX_SELECTOR_LEN);
    assert!(Selector::parse(&ok).is_ok());
    let long = format!("a == '{}'", "x".repeat(MAX_SELECTOR_LEN));
    assert_error(&long, MAX_SELECTOR_LEN, "longer than the 4096 allowed");
}

#[test]
fn too_deep() {
    let ok = format!(
        "{}has(a){}",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    assert_eq!(sel(&ok), sel("has(a)"));
    let deep = format!(
        "{}has(a){}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    assert_error(&deep, MAX_NESTING, "nested deeper than 64");
    // The longest run of '(' the length bound allows: an error, not a stack overflow.
    assert_error(&"(".repeat(MAX_SELECTOR_LEN), MAX_NESTING, "nested deeper");
    assert_error(
        &"!(".repeat(MAX_SELECTOR_LEN / 2),
        2 * MAX_NESTING + 1,
        "nested deeper",
    );
    // A run of '!' is folded without recursion.
    assert_eq!(sel(&format!("{}has(a)", "!".repeat(4000))), sel("has(a)"));
}

// ---- the canonical form stays within the limits ----

/// Parses `input`; if it parses, checks the promise the limits exist to keep: the canonical
/// form is within them and parses back to the same selector.
fn parse_consistently(input: &str) -> Result<Selector, ParseError> {
    let result = Selector::parse(input);
    if let Ok(s) = &result {
        let canonical = s.canonical();
        assert!(
            canonical.len() <= MAX_SELECTOR_LEN,
            "{} bytes in, {} out",
            input.len(),
            canonical.len()
        );
        assert_eq!(
            Selector::parse(&canonical).as_ref(),
            Ok(s),
            "{} bytes in, {} out",
            input.len(),
            canonical.len()
        );
    }
    result
}

/// `doubles` levels of `has(a) || has(b) && (...)` inside `singles` levels of
/// `has(c) && (...)`: one pair of parentheses per level in the input, but two per double level
/// in the canonical form, `(has(a) || (has(b) && ...))`.
fn nested_groups(singles: usize, doubles: usize) -> String {
    let mut s = "has(z)".to_string();
    for _ in 0..doubles {
        s = format!("has(a) || has(b) && ({s})");
    }
    for _ in 0..singles {
        s = format!("has(c) && ({s})");
    }
    s
}

#[test]
fn canonical_nesting_is_held_to_the_input_limit() {
    // (singles, doubles, canonical depth); the input nests singles + doubles deep.
    let accepted = [(0, 32, 64), (64, 0, 64), (62, 1, 64), (0, 1, 2)];
    for (singles, doubles, depth) in accepted {
        let input = nested_groups(singles, doubles);
        let s = parse_consistently(&input)
            .unwrap_or_else(|e| panic!("{singles}+{doubles} levels ({depth} canonical): {e}"));
        let canonical = s.canonical();
        let mut deepest = 0usize;
        let mut open = 0usize;
        for c in canonical.chars().filter(|c| matches!(c, '(' | ')')) {
            if c == '(' {
                open += 1;
                deepest = deepest.max(open);
            } else {
                open -= 1;
            }
        }
        // `has(...)` holds one level of its own in the text.
        assert_eq!(deepest, depth + 1, "{canonical}");
    }
    // One level past: 65 canonical levels from an input only 33 deep.
    let input = nested_groups(1, 32);
    let e = parse_consistently(&input).expect_err("65 canonical levels");
    assert_eq!(e.position, input.len(), "{e}");
    assert!(
        e.message
            .contains("nested deeper than 64 in the canonical form"),
        "{e}"
    );
    assert!(e.message.contains("(65 deep)"), "{e}");
    // The fuzzer's: 33 groups of `||` over `&&`, 66 canonical levels.
    let e = parse_consistently(&nested_groups(0, 33)).expect_err("66 canonical levels");
    assert!(e.message.contains("(66 deep)"), "{e}");
    // 65 levels in the input are refused by the input check, where the 65th '(' is.
    let input = nested_groups(65, 0);
    let e = parse_consistently(&input).expect_err("65 input levels");
    assert_eq!(e.position, input.rfind("(has(z)").unwrap(), "{e}");
    assert!(e.message.contains("nested deeper than 64"), "{e}");
    // Redundant parentheses vanish from the canonical form: 32 of them around 32 double
    // levels make 64 in the input and 64 in the canonical form.
    let half = MAX_NESTING / 2;
    let input = format!(
        "{}{}{}",
        "(".repeat(half),
        nested_groups(0, half),
        ")".repeat(half)
    );
    assert_eq!(
        parse_consistently(&input),
        parse_consistently(&nested_groups(0, half))
    );
    assert!(parse_consistently(&input).is_ok());
}

#[test]
fn canonical_length_is_held_to_the_input_limit() {
    // `a=="x..."` prints as `a == "x..."`: two bytes longer. Walk the input from 4093 to 4097
    // bytes (canonical 4095 to 4099).
    for input_len in MAX_SELECTOR_LEN - 3..=MAX_SELECTOR_LEN + 1 {
        let input = format!("a==\"{}\"", "x".repeat(input_len - 5));
        assert_eq!(input.len(), input_len);
        let canonical_len = input_len + 2;
        match parse_consistently(&input) {
            Ok(s) => {
                assert!(
                    canonical_len <= MAX_SELECTOR_LEN,
                    "{input_len} bytes accepted"
                );
                assert_eq!(s.canonical().len(), canonical_len);
            }
            Err(e) if input_len > MAX_SELECTOR_LEN => {
                assert_eq!(e.position, MAX_SELECTOR_LEN, "{e}");
                assert!(
                    e.message
                        .contains(&format!("selector is {input_len} bytes long")),
                    "{e}"
                );
            }
            Err(e) => {
                assert!(
                    canonical_len > MAX_SELECTOR_LEN,
                    "{input_len} bytes refused: {e}"
                );
                assert_eq!(e.position, input_len, "{e}");
                assert!(
                    e.message.contains(&format!(
                        "canonical form is {canonical_len} bytes long, longer than the 4096 allowed"
                    )),
                    "{e}"
                );
            }
        }
    }
    // Groups grow too: `has(a)&&has(a)&&...` gains parentheses and spaces around each `&&`.
    let term = "has(a)&&";
    for n in [450, 500, 510, 511, 512] {
        let input = format!("{}has(a)", term.repeat(n));
        // 6 bytes per has(a), 4 per " && ", 2 for the parentheses.
        let canonical_len = 6 * (n + 1) + 4 * n + 2;
        let result = parse_consistently(&input);
        assert_eq!(
            result.is_ok(),
            input.len() <= MAX_SELECTOR_LEN && canonical_len <= MAX_SELECTOR_LEN,
            "{n} terms, {} bytes in, {canonical_len} canonical: {result:?}",
            input.len()
        );
    }
    // A canonical form exactly at the limit is accepted: 4089 x's print as 4096 bytes.
    let at = format!("a == \"{}\"", "x".repeat(MAX_SELECTOR_LEN - 7));
    assert_eq!(
        parse_consistently(&format!("a=='{}'", "x".repeat(MAX_SELECTOR_LEN - 7)))
            .map(|s| s.canonical()),
        Ok(at)
    );
}

// ---- no input panics ----

/// Random byte strings and random soups of selector fragments: parsing never panics, errors
/// point inside the input, and whatever parses round-trips through its canonical form.
#[test]
fn random_inputs_never_panic_and_parsed_ones_round_trip() {
    const FRAGMENTS: &[&str] = &[
        "a",
        "b.c/d",
        "==",
        "!=",
        "!",
        "&&",
        "||",
        "(",
        ")",
        "{",
        "}",
        ",",
        "'x'",
        "\"y\"",
        "'",
        "\"",
        "in",
        "not in",
        "contains",
        "starts with",
        "ends with",
        "has(a)",
        "has(",
        "all()",
        "global()",
        " ",
        "\t",
        "=",
        "&",
        "|",
        "é",
        "\0",
    ];
    let mut rng = StdRng::seed_from_u64(0x5e1ec70);
    let mut parsed = 0;
    for round in 0..40_000 {
        let input = match round % 3 {
            0 => {
                let len = rng.gen_range(0..64);
                let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            1 => {
                let n = rng.gen_range(0..24);
                let soup: Vec<&str> = (0..n)
                    .map(|_| FRAGMENTS[rng.gen_range(0..FRAGMENTS.len())])
                    .collect();
                soup.join(" ")
            }
            _ => {
                // A valid selector with one fragment inserted, or a byte range cut out.
                let mut valid = String::new();
                random_selector(&mut rng, 0, &mut valid);
                let mut at = rng.gen_range(0..=valid.len());
                while !valid.is_char_boundary(at) {
                    at -= 1;
                }
                if rng.gen() {
                    valid.insert_str(at, FRAGMENTS[rng.gen_range(0..FRAGMENTS.len())]);
                } else {
                    let mut end = (at + rng.gen_range(1..4)).min(valid.len());
                    while !valid.is_char_boundary(end) {
                        end += 1;
                    }
                    valid.replace_range(at..end, "");
                }
                valid
            }
        };
        match Selector::parse(&input) {
            Ok(s) => {
                parsed += usize::from(!s.is_all());
                let again = Selector::parse(&s.canonical())
                    .unwrap_or_else(|e| panic!("{input:?} -> {s}: {e}"));
                assert_eq!(again, s, "{input:?}");
                s.matches(&WEB);
            }
            Err(e) => assert!(e.position <= input.len(), "{input:?}: {e}"),
        }
    }
    // The fragment soup must reach the parser's success paths, or the round trip tests nothing.
    assert!(
        parsed > 500,
        "only {parsed} random inputs other than all() parsed"
    );
}

/// Writes a random valid selector with random spacing and quote kinds.
fn random_selector(rng: &mut StdRng, depth: usize, out: &mut String) {
    const KEYS: &[&str] = &[
        "a",
        "b",
        "k8s.io/app",
        "projectcalico.org/namespace",
        "pcns.team",
    ];
    const VALUES: &[&str] = &["", "x", "y", "it's", "say \"hi\"", "web-1"];
    let space = |rng: &mut StdRng, out: &mut String| {
        for _ in 0..rng.gen_range(0..2) {
            out.push(if rng.gen() { ' ' } else { '\t' });
        }
    };
    let quoted = |rng: &mut StdRng, out: &mut String| {
        let v = VALUES[rng.gen_range(0..VALUES.len())];
        let q = if v.contains('"') || (!v.contains('\'') && rng.gen()) {
            '\''
        } else {
            '"'
        };
        out.push(q);
        out.push_str(v);
        out.push(q);
    };
    for _ in 0..rng.gen_range(0..3) {
        out.push('!');
    }
    let key = KEYS[rng.gen_range(0..KEYS.len())];
    match rng.gen_range(0..if depth > 3 { 7 } else { 9 }) {
        0 => out.push_str(["all()", "global()", "all( )"][rng.gen_range(0..3)]),
        1 => out.push_str(&format!("has({key})")),
        2 | 3 => {
            let op = ["==", "!=", "contains", "starts with", "ends  with"][rng.gen_range(0..5)];
            out.push_str(key);
            out.push(' ');
            out.push_str(op);
            space(rng, out);
            quoted(rng, out);
        }
        4..=6 => {
            out.push_str(key);
            out.push_str([" in", " not in"][rng.gen_range(0..2)]);
            space(rng, out);
            out.push('{');
            for i in 0..rng.gen_range(0..4) {
                if i > 0 {
                    out.push(',');
                }
                space(rng, out);
                quoted(rng, out);
            }
            out.push('}');
        }
        _ => {
            out.push('(');
            for i in 0..rng.gen_range(1..4) {
                if i > 0 {
                    space(rng, out);
                    out.push_str(if rng.gen() { "&&" } else { "||" });
                    space(rng, out);
                }
                random_selector(rng, depth + 1, out);
            }
            out.push(')');
        }
    }
}

#[test]
fn random_valid_selectors_parse_and_round_trip() {
    let mut rng = StdRng::seed_from_u64(0xca11c0);
    for _ in 0..5_000 {
        let mut input = String::new();
        random_selector(&mut rng, 0, &mut input);
        let s = Selector::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        let canonical = s.canonical();
        let again = Selector::parse(&canonical).unwrap_or_else(|e| panic!("{canonical:?}: {e}"));
        assert_eq!(again, s, "{input:?}");
        assert_eq!(again.canonical(), canonical);
    }
}
