//! How deeply a YAML manifest nests, measured before the real parse.
//!
//! Why a separate pass: serde_yaml_ng reads every event of a document into memory before its
//! own recursion limit (128) applies, and libyaml's scanner does work proportional to the
//! current flow depth (`[`, `{`) for every token it reads. So `a: [[[[...` 100k deep is not a
//! quick syntax error but quadratic time (minutes) before that limit is ever checked.
//!
//! Why libyaml's own event stream and not a scan of the characters: whether a `[` opens a
//! flow collection depends on quoting, plain scalars (`a: b [c` is one string) and block
//! indentation (a plain scalar continues on a more indented line). A character scan that
//! disagreed with libyaml anywhere could be led to skip brackets that libyaml does count
//! (say, by making it believe a quoted string is open), and the bound would be gone. This pass
//! runs the same parser serde_yaml_ng runs, event by event, and stops at the first collection
//! nested deeper than the limit, so it costs at most `limit` steps per token.
//!
//! A syntax error ends the pass quietly: the real parse meets the same error at the same
//! place (it runs the same parser over the same text) and reports it with its own message.

use std::mem::MaybeUninit;

/// Where the input first nests deeper than the limit. `document` is 0-based (as in
/// [`crate::ParseError`]), `line` and `column` 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooDeep {
    pub document: usize,
    pub line: usize,
    pub column: usize,
}

/// Checks that no map or list in `text` is nested more than `limit` levels deep (a top-level
/// map is level 1).
pub(crate) fn check(text: &str, limit: usize) -> Result<(), TooDeep> {
    let mut parser = EventParser::new(text);
    let mut depth = 0usize;
    let mut document = 0usize;
    let mut documents_started = 0usize;
    while let Some(event) = parser.next() {
        match event.kind {
            unsafe_libyaml::YAML_DOCUMENT_START_EVENT => {
                document = documents_started;
                documents_started += 1;
            }
            unsafe_libyaml::YAML_SEQUENCE_START_EVENT
            | unsafe_libyaml::YAML_MAPPING_START_EVENT => {
                depth += 1;
                if depth > limit {
                    return Err(TooDeep {
                        document,
                        line: event.line.saturating_add(1),
                        column: event.column.saturating_add(1),
                    });
                }
            }
            unsafe_libyaml::YAML_SEQUENCE_END_EVENT | unsafe_libyaml::YAML_MAPPING_END_EVENT => {
                depth = depth.saturating_sub(1);
            }
            unsafe_libyaml::YAML_STREAM_END_EVENT => break,
            _ => {}
        }
    }
    Ok(())
}

/// What this pass needs of one event: its type and where it starts (0-based).
struct Event {
    kind: unsafe_libyaml::yaml_event_type_t,
    line: usize,
    column: usize,
}

/// libyaml's parser over a borrowed string, deleted on drop.
struct EventParser<'a> {
    /// Boxed because libyaml keeps a pointer to the parser inside it (its read handler's
    /// data): the parser must not move once initialised.
    sys: Box<MaybeUninit<unsafe_libyaml::yaml_parser_t>>,
    /// libyaml reads the input through a raw pointer: keep the borrow for as long.
    _input: &'a str,
    /// Whether `sys` was initialised (and so must be deleted).
    initialised: bool,
    /// Set after an error or the end of the stream: libyaml is not asked again.
    done: bool,
}

impl<'a> EventParser<'a> {
    fn new(input: &'a str) -> EventParser<'a> {
        let mut parser = EventParser {
            sys: Box::new(MaybeUninit::uninit()),
            _input: input,
            initialised: false,
            done: false,
        };
        let sys = parser.sys.as_mut_ptr();
        // SAFETY: `sys` points to writable memory for a `yaml_parser_t` that stays at this
        // address (it is boxed and never moved out). `yaml_parser_initialize` zeroes and sets
        // up every field before anything reads it. The input pointer and length describe
        // `input`, which outlives the parser (`'a`), and is valid UTF-8, as declared.
        unsafe {
            if unsafe_libyaml::yaml_parser_initialize(sys).fail {
                // Out of memory: nothing to measure; the real parse reports it, if it can.
                parser.done = true;
                return parser;
            }
            parser.initialised = true;
            unsafe_libyaml::yaml_parser_set_encoding(sys, unsafe_libyaml::YAML_UTF8_ENCODING);
            unsafe_libyaml::yaml_parser_set_input_string(sys, input.as_ptr(), input.len() as u64);
        }
        parser
    }

    /// The next event, or `None` after the stream's end or an error.
    fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let sys = self.sys.as_mut_ptr();
        let mut raw = MaybeUninit::<unsafe_libyaml::yaml_event_t>::uninit();
        // SAFETY: the parser was initialised (`done` is set otherwise) and has not been
        // deleted. `yaml_parser_parse` fills `raw` completely when it succeeds; only then is
        // it read, and it is deleted right after its type and mark are copied out.
        unsafe {
            if unsafe_libyaml::yaml_parser_parse(sys, raw.as_mut_ptr()).fail {
                self.done = true;
                return None;
            }
            let event = raw.as_mut_ptr();
            let out = Event {
                kind: (*event).type_,
                line: usize::try_from((*event).start_mark.line).unwrap_or(usize::MAX),
                column: usize::try_from((*event).start_mark.column).unwrap_or(usize::MAX),
            };
            unsafe_libyaml::yaml_event_delete(event);
            if out.kind == unsafe_libyaml::YAML_STREAM_END_EVENT {
                self.done = true;
            }
            Some(out)
        }
    }
}

impl Drop for EventParser<'_> {
    fn drop(&mut self) {
        if self.initialised {
            // SAFETY: initialised and not yet deleted; deleted exactly once, here.
            unsafe { unsafe_libyaml::yaml_parser_delete(self.sys.as_mut_ptr()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_block_and_flow_collections() {
        assert_eq!(check("", 0), Ok(()));
        assert_eq!(check("a", 0), Ok(()));
        assert_eq!(check("a: 1", 1), Ok(()));
        assert_eq!(
            check("a: 1", 0),
            Err(TooDeep {
                document: 0,
                line: 1,
                column: 1
            })
        );
        assert_eq!(check("a: [1, {b: [2]}]", 4), Ok(()));
        assert_eq!(
            check("a: [1, {b: [2]}]", 3),
            Err(TooDeep {
                document: 0,
                line: 1,
                column: 12
            })
        );
        assert_eq!(check("a:\n  - b:\n      c: 1\n", 4), Ok(()));
        assert!(check("a:\n  - b:\n      c: 1\n", 3).is_err());
    }

    #[test]
    fn brackets_libyaml_does_not_count_are_not_counted() {
        // Inside quotes, a plain scalar, a block scalar or a comment, a bracket is text.
        let text = "a: \"[[[[\"\nb: '{{{{'\nc: x [[[[ \"y\nd: |\n  [[[[\n# [[[[\n";
        assert_eq!(check(text, 1), Ok(()));
    }

    #[test]
    fn the_document_is_named() {
        let text = "a: 1\n---\nb: [[1]]\n";
        assert_eq!(
            check(text, 2),
            Err(TooDeep {
                document: 1,
                line: 3,
                column: 5
            })
        );
    }

    #[test]
    fn syntax_errors_end_the_pass_quietly() {
        assert_eq!(check("a: [1, 2", 8), Ok(()));
        assert_eq!(check("a: b: c", 8), Ok(()));
        assert_eq!(check("\t- x", 8), Ok(()));
    }
}
