//! Splits a selector into tokens, each with the byte offset it starts at.
//!
//! The token rules are Calico's (libcalico-go `selector/tokenizer`):
//! - whitespace is only space and tab;
//! - a label is one or more of `[a-zA-Z0-9_./-]` (so `projectcalico.org/namespace` is one label);
//! - a string literal is `'...'` or `"..."` with no escapes: it ends at the next matching quote,
//!   so a value may hold the other quote kind but never its own;
//! - right after a label the words `contains`, `starts with`, `ends with`, `not in` and `in` are
//!   operators (matched as prefixes, as Calico does), anywhere else they would be labels;
//! - `has(label)`, `all()` and `global()` are single tokens (spaces allowed inside the
//!   parentheses, not between the word and `(`).
//!
//! The whole input is tokenized before parsing, as Calico does, so a lexical error (say an
//! unterminated string) is reported even when a grammar error comes earlier.

use crate::error::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Label,
    String,
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Not,
    All,
    Global,
    Has,
    LParen,
    RParen,
    And,
    Or,
    Eof,
}

impl Kind {
    /// How the token is written, for error messages.
    pub(crate) fn spelling(self) -> &'static str {
        match self {
            Kind::Label => "a label",
            Kind::String => "a string literal",
            Kind::LBrace => "'{'",
            Kind::RBrace => "'}'",
            Kind::Comma => "','",
            Kind::Eq => "'=='",
            Kind::Ne => "'!='",
            Kind::In => "'in'",
            Kind::NotIn => "'not in'",
            Kind::Contains => "'contains'",
            Kind::StartsWith => "'starts with'",
            Kind::EndsWith => "'ends with'",
            Kind::Not => "'!'",
            Kind::All => "'all()'",
            Kind::Global => "'global()'",
            Kind::Has => "'has()'",
            Kind::LParen => "'('",
            Kind::RParen => "')'",
            Kind::And => "'&&'",
            Kind::Or => "'||'",
            Kind::Eof => "the end of the selector",
        }
    }
}

/// One token. `text` is the label (for `Label` and `Has`) or the unquoted value (`String`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub kind: Kind,
    pub position: usize,
    pub text: &'a str,
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Tokenizes `input`; the last token is always `Eof` (positioned at the input's end).
/// At most one token per input byte plus `Eof`, so the allocation is bounded by the input.
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let mut lexer = Lexer {
        input,
        bytes: input.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
    tokens: Vec<Token<'a>>,
}

impl<'a> Lexer<'a> {
    fn run(&mut self) -> Result<(), ParseError> {
        loop {
            self.skip_space();
            let start = self.pos;
            let Some(&b) = self.bytes.get(start) else {
                self.push(Kind::Eof, start, "");
                return Ok(());
            };
            match b {
                b'(' => self.single(Kind::LParen),
                b')' => self.single(Kind::RParen),
                b'{' => self.single(Kind::LBrace),
                b'}' => self.single(Kind::RBrace),
                b',' => self.single(Kind::Comma),
                b'\'' | b'"' => self.string_literal(b)?,
                b'=' => self.pair(
                    b'=',
                    Kind::Eq,
                    "expected '==' (a single '=' is not an operator)",
                )?,
                b'&' => self.pair(
                    b'&',
                    Kind::And,
                    "expected '&&' (a single '&' is not an operator)",
                )?,
                b'|' => self.pair(
                    b'|',
                    Kind::Or,
                    "expected '||' (a single '|' is not an operator)",
                )?,
                b'!' => {
                    if self.bytes.get(start + 1) == Some(&b'=') {
                        self.pos += 2;
                        self.push(Kind::Ne, start, "");
                    } else {
                        self.single(Kind::Not);
                    }
                }
                _ if self.last_kind() == Some(Kind::Label) => self.operator_word()?,
                _ => self.word()?,
            }
        }
    }

    fn last_kind(&self) -> Option<Kind> {
        self.tokens.last().map(|t| t.kind)
    }

    fn push(&mut self, kind: Kind, position: usize, text: &'a str) {
        self.tokens.push(Token {
            kind,
            position,
            text,
        });
    }

    fn skip_space(&mut self) {
        while self.bytes.get(self.pos).is_some_and(|&b| is_space(b)) {
            self.pos += 1;
        }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn single(&mut self, kind: Kind) {
        self.push(kind, self.pos, "");
        self.pos += 1;
    }

    fn pair(&mut self, second: u8, kind: Kind, error: &str) -> Result<(), ParseError> {
        let start = self.pos;
        if self.bytes.get(start + 1) == Some(&second) {
            self.pos += 2;
            self.push(kind, start, "");
            Ok(())
        } else {
            Err(ParseError::new(start, error))
        }
    }

    fn string_literal(&mut self, quote: u8) -> Result<(), ParseError> {
        let start = self.pos;
        let body = start + 1;
        match self.bytes[body..].iter().position(|&b| b == quote) {
            Some(len) => {
                // The quotes are ASCII, so these offsets are on char boundaries.
                self.push(Kind::String, start, &self.input[body..body + len]);
                self.pos = body + len + 1;
                Ok(())
            }
            None => Err(ParseError::new(
                start,
                format!(
                    "unterminated string: no closing {} for the one here",
                    quote as char
                ),
            )),
        }
    }

    fn label_len(&self) -> usize {
        self.bytes[self.pos..]
            .iter()
            .take_while(|&&b| is_label_byte(b))
            .count()
    }

    /// After a label only an operator may follow (Calico matches these words as prefixes).
    fn operator_word(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let two_words = |lexer: &mut Self, first: &str, second: &str, kind: Kind| {
            lexer.pos += first.len();
            lexer.skip_space();
            if lexer.rest().starts_with(second) {
                lexer.pos += second.len();
                lexer.push(kind, start, "");
                Ok(())
            } else {
                Err(ParseError::new(
                    lexer.pos,
                    format!("expected '{second}' after '{first}'"),
                ))
            }
        };
        let rest = self.rest();
        if rest.starts_with("contains") {
            self.pos += "contains".len();
            self.push(Kind::Contains, start, "");
            Ok(())
        } else if rest.starts_with("starts") {
            two_words(self, "starts", "with", Kind::StartsWith)
        } else if rest.starts_with("ends") {
            two_words(self, "ends", "with", Kind::EndsWith)
        } else if rest.starts_with("not") {
            two_words(self, "not", "in", Kind::NotIn)
        } else if rest.starts_with("in") {
            self.pos += "in".len();
            self.push(Kind::In, start, "");
            Ok(())
        } else {
            let label = self.tokens.last().map_or("", |t| t.text);
            Err(ParseError::new(
                start,
                format!(
                    "expected an operator (==, !=, in, not in, contains, starts with, ends with) \
                     after label '{label}'"
                ),
            ))
        }
    }

    /// `has(label)`, `all()`, `global()` or a label.
    fn word(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let rest = self.rest();
        if rest.starts_with("has(") {
            self.pos += "has(".len();
            self.skip_space();
            let label_start = self.pos;
            let len = self.label_len();
            if len == 0 {
                return Err(ParseError::new(
                    label_start,
                    "expected a label name inside has( )",
                ));
            }
            self.pos += len;
            let label = &self.input[label_start..label_start + len];
            self.skip_space();
            self.close_paren("has(")?;
            self.push(Kind::Has, start, label);
            Ok(())
        } else if rest.starts_with("all(") {
            self.pos += "all(".len();
            self.skip_space();
            self.close_paren("all(")?;
            self.push(Kind::All, start, "");
            Ok(())
        } else if rest.starts_with("global(") {
            self.pos += "global(".len();
            self.skip_space();
            self.close_paren("global(")?;
            self.push(Kind::Global, start, "");
            Ok(())
        } else {
            let len = self.label_len();
            if len == 0 {
                let c = rest.chars().next().unwrap_or(' ');
                return Err(ParseError::new(
                    start,
                    format!("unexpected character {c:?}: expected a label, has(), all(), global(), '!' or '('"),
                ));
            }
            self.pos += len;
            self.push(Kind::Label, start, &self.input[start..start + len]);
            Ok(())
        }
    }

    fn close_paren(&mut self, opened: &str) -> Result<(), ParseError> {
        if self.bytes.get(self.pos) == Some(&b')') {
            self.pos += 1;
            Ok(())
        } else {
            Err(ParseError::new(
                self.pos,
                format!("expected ')' to close '{opened}'"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<Kind> {
        tokenize(input).unwrap().iter().map(|t| t.kind).collect()
    }

    #[test]
    fn operator_words_only_follow_a_label() {
        assert_eq!(
            kinds("in in {}"),
            [Kind::Label, Kind::In, Kind::LBrace, Kind::RBrace, Kind::Eof]
        );
        assert_eq!(
            kinds("a starts   with 'x'"),
            [Kind::Label, Kind::StartsWith, Kind::String, Kind::Eof]
        );
        assert_eq!(kinds("a not\tin {}")[1], Kind::NotIn);
    }

    #[test]
    fn tokens_carry_their_byte_offsets_and_text() {
        let toks = tokenize("  has( k.io/x ) && v == \"w'x\"").unwrap();
        assert_eq!(
            (toks[0].kind, toks[0].position, toks[0].text),
            (Kind::Has, 2, "k.io/x")
        );
        assert_eq!((toks[1].kind, toks[1].position), (Kind::And, 16));
        assert_eq!(
            (toks[4].kind, toks[4].position, toks[4].text),
            (Kind::String, 24, "w'x")
        );
        assert_eq!((toks[5].kind, toks[5].position), (Kind::Eof, 29));
    }
}
