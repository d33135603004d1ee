//! Manifests are untrusted input: no input makes the parser panic, and sizes are bounded.

use resources::*;

/// xorshift64*: a fixed-seed generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn manifests() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    v
}

/// Parses, and if that works, runs everything downstream too: defaults, validation, output,
/// tables, the datastore encoding.
fn exercise(text: &str) {
    if let Ok(rs) = parse_documents(text) {
        for mut r in rs {
            let _ = r.validate();
            r.apply_defaults();
            let _ = r.validate();
            let _ = r.key();
            let _ = r.table_row(true, true);
            let _ = Resource::from_stored(&r.to_stored_json(), 1);
            let _ = to_yaml(std::slice::from_ref(&r));
        }
    }
    let _ = load_documents(text);
}

#[test]
fn truncated_manifests_never_panic() {
    for m in manifests() {
        for cut in (0..=m.len()).filter(|i| m.is_char_boundary(*i)) {
            exercise(&m[..cut]);
        }
    }
}

#[test]
fn mutated_manifests_never_panic() {
    const PIECES: [&str; 24] = [
        ":",
        "- ",
        "\n",
        "  ",
        "{",
        "}",
        "[",
        "]",
        "'",
        "\"",
        "*a",
        "&a ",
        "!!binary ",
        "---\n",
        "null",
        "-1",
        "1e999",
        "99999999999999999999999",
        "ports: [",
        "cidr: ",
        "kind: List\nitems: 3\n",
        "\t",
        "\u{1F600}",
        "?",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let ms = manifests();
    for _ in 0..3000 {
        let mut s = ms[rng.below(ms.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let mut at = rng.below(s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            if rng.below(3) == 0 && at < s.len() {
                let mut end = (at + 1 + rng.below(8)).min(s.len());
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.replace_range(at..end, "");
            } else {
                s.insert_str(at, PIECES[rng.below(PIECES.len())]);
            }
        }
        exercise(&s);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let len = rng.below(300);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise(&String::from_utf8_lossy(&bytes));
        // And random text over YAML's own alphabet.
        let alphabet = b"ab:{}[]-, \n'\"&*!#|>%@`0123456789.";
        let text: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())] as char)
            .collect();
        exercise(&text);
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = "#".repeat(parse::MAX_INPUT_BYTES + 1);
    assert_eq!(
        parse_documents(&big),
        Err(ParseError::TooLarge {
            size: big.len(),
            limit: parse::MAX_INPUT_BYTES
        })
    );
    assert!(matches!(
        load_documents(&big),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn alias_bombs_and_deep_nesting_are_refused() {
    // "Billion laughs": each level references the previous one ten times.
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = 'a';
    for name in "bcdefghi".chars() {
        bomb.push_str(&format!("{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        prev = name;
    }
    assert!(
        matches!(parse_documents(&bomb), Err(ParseError::Syntax { .. })),
        "alias expansion must be bounded"
    );

    let deep_yaml = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_documents(&deep_yaml).is_err());
    let deep_json = format!("{{\"a\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_documents(&deep_json).is_err());
    let deep_map = format!(
        "{}x: 1",
        (0..5000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect::<String>()
    );
    assert!(parse_documents(&deep_map).is_err());
}
