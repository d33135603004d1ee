//! Denial-of-service regressions found by fuzzing (issue 14, "Hostile input"): small manifests
//! that made the YAML reader take exponential memory or quadratic time. Each must be refused
//! quickly and cheaply. The time and allocation bounds are generous (a thousand times what the
//! refusal costs) and far below what the defects cost (gigabytes, minutes); they are not
//! benchmarks.
//!
//! The assertions read the error's text, not its variant, so that this file also compiles and
//! runs (and fails) against the code before the fixes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use resources::*;

/// Counts the bytes each thread asks for, so that a test measures only its own parse even
/// while other tests run on other threads.
struct CountingAllocator;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with`: the thread-local may already be gone while a thread shuts down.
    let _ = ALLOCATED.try_with(|a| a.set(a.get().saturating_add(bytes)));
}

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size.saturating_sub(layout.size()));
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Refusing any of these inputs must take less than this...
const TIME_BOUND: Duration = Duration::from_secs(1);
/// ...and allocate less than this in all (the YAML parser's own buffers are some 100 KiB).
const ALLOCATION_BOUND: usize = 16 << 20;

/// Parses `text` (both entry points) and returns the error, checking the bounds.
fn refused_cheaply(what: &str, text: &str) -> ParseError {
    let mut error = None;
    for parse in [parse_documents, load_documents] {
        let before = ALLOCATED.with(Cell::get);
        let start = Instant::now();
        let result = parse(text);
        let elapsed = start.elapsed();
        let allocated = ALLOCATED.with(Cell::get) - before;
        assert!(
            elapsed < TIME_BOUND,
            "{what}: took {elapsed:?} ({} bytes of input)",
            text.len()
        );
        assert!(
            allocated < ALLOCATION_BOUND,
            "{what}: allocated {allocated} bytes ({} bytes of input)",
            text.len()
        );
        error = Some(result.expect_err(what));
    }
    error.expect("two parses ran")
}

const COMPLEX_KEY: &str = "a map key must be a string, number, bool or null";

#[test]
fn complex_map_keys_are_refused_at_the_first_level() {
    // 20 levels first: before the fix this costs ~150 ms and some megabytes, not gigabytes, so
    // a regression fails here before the fuzzer's inputs below are tried.
    let inputs = [
        ("20 nested map keys", format!("{}a", "? ".repeat(20))),
        // The fuzzer's 66-byte input: more than 2 GB before the fix.
        ("the fuzzer's 66 bytes", format!("{}a", "? ".repeat(32))),
        // 448 bytes of `?` and spaces, 64 keys deep (the deepest nesting accepted); the
        // fuzzer's input of that size ran over 120 s and 14 GB.
        ("448 bytes of '?' and spaces", "?      ".repeat(64)),
        (
            "indented '?' lines",
            (0..28).map(|i| format!("{}?\n", " ".repeat(i))).collect(),
        ),
    ];
    for (what, text) in &inputs {
        let e = refused_cheaply(what, text);
        let message = e.to_string();
        assert!(message.contains(COMPLEX_KEY), "{what}: {message}");
        assert!(message.contains("found a map"), "{what}: {message}");
        assert_eq!(e.document(), Some(0), "{what}");
    }
    // Deeper than the nesting limit, either refusal will do.
    let e = refused_cheaply("224 nested keys", &"? ".repeat(224));
    assert!(e.to_string().contains("nested deeper"), "{e}");
}

#[test]
fn complex_keys_are_refused_where_they_are() {
    // The message names the field path and the position of the key, and what it is.
    let text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: n\n\
                spec:\n  ? [a, b]\n  : x\n";
    let message = refused_cheaply("a list as a key", text).to_string();
    assert!(message.contains(COMPLEX_KEY), "{message}");
    assert!(message.contains("found a list"), "{message}");
    assert!(message.contains("spec"), "{message}");
    assert!(message.contains("line 6 column 5"), "{message}");

    // In the second document, through an alias.
    let text = "a: 1\n---\nx: &m {k: v}\ny:\n  ? *m\n  : 1\n";
    let e = refused_cheaply("an aliased map as a key", text);
    assert_eq!(e.document(), Some(1));
    assert!(e.to_string().contains("found a map"), "{e}");
}

#[test]
fn scalar_keys_still_read_as_their_text() {
    let text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: n\n  \
                labels:\n    80: a\n    true: b\n    ~: c\n    1.5: d\n    99999999999999999999999: e\n";
    let rs = parse_documents(text).unwrap();
    let labels = &rs[0].metadata().labels;
    for key in ["80", "true", "null", "1.5", "99999999999999999999999"] {
        assert!(labels.contains_key(key), "{key} in {labels:?}");
    }
}

const TOO_DEEP: &str = "nested deeper than 64 levels";

#[test]
fn deep_flow_nesting_is_refused_before_the_yaml_parser_runs() {
    // 100k levels: quadratic time in libyaml before the fix (over a minute), though only
    // 200 KB. Refused at the 65th level: `a:` is level 1, the 64th `[` is level 65, at column 67.
    let n = 100_000;
    let text = format!("a: {}{}", "[".repeat(n), "]".repeat(n));
    let e = refused_cheaply("100k nested flow sequences", &text);
    assert_eq!(
        e.to_string(),
        format!("document[0]: line 1 column 67: maps and lists {TOO_DEEP}")
    );
    let text = format!("a: {}", "{a: ".repeat(n));
    let e = refused_cheaply("100k nested flow maps, unclosed", &text);
    assert!(e.to_string().contains(TOO_DEEP), "{e}");
}

#[test]
fn nesting_is_bounded_at_exactly_the_limit() {
    // `a:` plus `depth - 1` flow sequences.
    let flow = |depth: usize| format!("a: {}{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
    // A block map in a block map... `depth` deep.
    let block = |depth: usize| {
        (0..depth)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect::<String>()
    };
    for (what, text) in [("flow", flow as fn(usize) -> String), ("block", block)] {
        let at = text(parse::MAX_NESTING_DEPTH);
        // At the limit the nesting is fine (what is refused is the missing apiVersion).
        let e = parse_documents(&at).expect_err(what);
        assert!(!e.to_string().contains("nested deeper"), "{what}: {e}");
        assert!(e.to_string().contains("apiVersion"), "{what}: {e}");
        let past = text(parse::MAX_NESTING_DEPTH + 1);
        let e = parse_documents(&past).expect_err(what);
        assert!(
            matches!(
                e,
                ParseError::TooDeep {
                    document: 0,
                    limit: parse::MAX_NESTING_DEPTH,
                    ..
                }
            ),
            "{what}: {e:?}"
        );
    }
    // The document is named.
    let text = format!("a: 1\n---\n{}", flow(parse::MAX_NESTING_DEPTH + 1));
    assert!(matches!(
        parse_documents(&text),
        Err(ParseError::TooDeep {
            document: 1,
            line: 3,
            ..
        })
    ));
}
