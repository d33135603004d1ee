//! Template text to a tree, with Go's syntax for the supported subset. Errors carry the line
//! (`get:LINE: ...`, as Go names the template calicoctl parses `get`).

use super::TemplateError;

/// Functions the evaluator knows; any other name is refused when parsing, as Go does.
pub const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "print",
    "printf",
    "println",
    "join",
    "joinAndTruncate",
    "config",
];

/// Nesting bounds: parentheses in one action, and `if`/`range`/`with` inside each other (the
/// parser and the evaluator recurse on both; a hostile template must not exhaust the stack).
const MAX_PARENS: usize = 64;
const MAX_BLOCKS: usize = 256;

/// Go's built-ins and keywords outside the subset: refused with their name, never guessed at.
const UNSUPPORTED: &[&str] = &[
    "define", "template", "block", "break", "continue", "html", "js", "call", "slice", "urlquery",
];

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
}

#[derive(Debug, Clone)]
pub struct Branch {
    pub pipe: Pipe,
    pub body: Vec<Node>,
    pub otherwise: Vec<Node>,
}

/// `$a, $b := cmd | cmd`: the variables declared (or assigned, `=`) and the commands.
#[derive(Debug, Clone)]
pub struct Pipe {
    pub vars: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Vec<Operand>>,
    pub line: usize,
    /// The action's source, for execution errors (`at <...>`).
    pub source: String,
}

#[derive(Debug, Clone)]
pub enum Operand {
    /// `.` followed by a field chain (empty for `.` alone).
    Dot(Vec<String>),
    /// `$name.Field...` (`$` alone is the data the template was given).
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Paren(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A field chain; `adjacent` when it follows the previous token without space
    /// (`(...).Field`).
    Fields(Vec<String>, bool),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// Template text split into literal text and actions (with their line).
enum Item {
    Text(String),
    Action(Vec<Tok>, usize, String),
}

fn err(line: usize, message: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!("get:{line}: {message}"))
}

pub fn parse(text: &str) -> Result<Vec<Node>, TemplateError> {
    let items = split(text)?;
    let mut parser = Parser {
        items,
        at: 0,
        depth: 0,
    };
    let (nodes, end) = parser.list()?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::End(line) => Err(err(line, "unexpected {{end}}")),
        Stop::Else(line, _) => Err(err(line, "unexpected {{else}}")),
    }
}

/// Splits text and actions, applying `{{-`/`-}}` trimming and dropping comments.
fn split(text: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut rest = text;
    let mut line = 1;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut literal = &rest[..open];
        if trim_next {
            literal = literal.trim_start();
        }
        let mut inner = &rest[open + 2..];
        let trim_before = inner.starts_with("- ")
            || inner.starts_with("-\t")
            || inner.starts_with("-\n")
            || inner.starts_with("-\r");
        if trim_before {
            literal = literal.trim_end();
            inner = &inner[1..];
        }
        if !literal.is_empty() {
            items.push(Item::Text(literal.to_string()));
        }
        line += rest[..open].matches('\n').count();
        let action_line = line;
        let close = find_close(inner).ok_or_else(|| err(action_line, "unclosed action"))?;
        let mut body = &inner[..close];
        trim_next = body.ends_with(" -")
            || body.ends_with("\t-")
            || body.ends_with("\n-")
            || body.ends_with("\r-");
        if trim_next {
            body = &body[..body.len() - 1];
        }
        line += inner[..close].matches('\n').count();
        rest = &inner[close + 2..];
        let trimmed = body.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(err(action_line, "unclosed comment"));
            }
            continue;
        }
        let toks = lex(body, action_line)?;
        if toks.is_empty() {
            return Err(err(action_line, "missing value for command"));
        }
        items.push(Item::Action(toks, action_line, trimmed.to_string()));
    }
    let literal = if trim_next { rest.trim_start() } else { rest };
    if !literal.is_empty() {
        items.push(Item::Text(literal.to_string()));
    }
    Ok(items)
}

/// The `}}` ending an action, skipping quoted strings (which may contain `}}`).
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' && q != b'`' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if b == b'"' || b == b'`' || b == b'\'' {
                    quote = Some(b);
                } else if bytes[i..].starts_with(b"}}") {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Reads `.A.B...` from `chars[i..]` (at a '.'); returns the names and the new index.
fn field_chain(chars: &[char], mut i: usize) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    while i < chars.len() && chars[i] == '.' && i + 1 < chars.len() && ident_char(chars[i + 1]) {
        let start = i + 1;
        i = start;
        while i < chars.len() && ident_char(chars[i]) {
            i += 1;
        }
        names.push(chars[start..i].iter().collect());
    }
    (names, i)
}

fn lex(body: &str, line: usize) -> Result<Vec<Tok>, TemplateError> {
    let chars: Vec<char> = body.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut spaced = true;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            spaced = true;
            continue;
        }
        match c {
            '.' => {
                let (names, next) = field_chain(&chars, i);
                if names.is_empty() {
                    if i + 1 < chars.len() && chars[i + 1].is_ascii_digit() {
                        let (n, next) = number(&chars, i, line)?;
                        toks.push(Tok::Num(n));
                        i = next;
                    } else {
                        toks.push(Tok::Fields(Vec::new(), false));
                        i += 1;
                    }
                } else {
                    toks.push(Tok::Fields(names, !spaced));
                    i = next;
                }
            }
            '$' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                let (fields, next) = field_chain(&chars, i);
                i = next;
                toks.push(Tok::Var(name, fields));
            }
            '"' => {
                let (s, next) = quoted(&chars, i, line)?;
                toks.push(Tok::Str(s));
                i = next;
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or_else(|| err(line, "unterminated raw quoted string"))?;
                toks.push(Tok::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '\'' => {
                return Err(err(
                    line,
                    "character constants ('x') are not supported by brindlectl's go-template",
                ))
            }
            '(' => {
                if toks.iter().filter(|t| **t == Tok::LParen).count() >= MAX_PARENS {
                    return Err(err(
                        line,
                        format!("more than {MAX_PARENS} parentheses in one action"),
                    ));
                }
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let (n, next) = number(&chars, i, line)?;
                toks.push(Tok::Num(n));
                i = next;
            }
            c if ident_char(c) => {
                let start = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                toks.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(err(line, format!("unexpected {other:?} in command"))),
        }
        spaced = false;
    }
    Ok(toks)
}

fn number(chars: &[char], start: usize, line: usize) -> Result<(f64, usize), TemplateError> {
    let mut i = start;
    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "+-._".contains(chars[i])) {
        i += 1;
    }
    let text: String = chars[start..i].iter().collect();
    let parsed = if let Some(hex) = text.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok().map(|n| n as f64)
    } else {
        text.replace('_', "").parse::<f64>().ok()
    };
    parsed
        .filter(|n| n.is_finite())
        .map(|n| (n, i))
        .ok_or_else(|| err(line, format!("bad number syntax: {text:?}")))
}

/// A Go interpreted string literal starting at `chars[start]` (a '"').
fn quoted(chars: &[char], start: usize, line: usize) -> Result<(String, usize), TemplateError> {
    let mut s = String::new();
    let mut i = start + 1;
    loop {
        let c = *chars
            .get(i)
            .ok_or_else(|| err(line, "unterminated quoted string"))?;
        i += 1;
        match c {
            '"' => return Ok((s, i)),
            '\n' => return Err(err(line, "unterminated quoted string")),
            '\\' => {
                let e = *chars
                    .get(i)
                    .ok_or_else(|| err(line, "unterminated quoted string"))?;
                i += 1;
                match e {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    '\\' => s.push('\\'),
                    '"' => s.push('"'),
                    '\'' => s.push('\''),
                    'a' => s.push('\u{7}'),
                    'b' => s.push('\u{8}'),
                    'f' => s.push('\u{c}'),
                    'v' => s.push('\u{b}'),
                    'x' | 'u' | 'U' => {
                        let len = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = chars.get(i..i + len).unwrap_or(&[]).iter().collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| err(line, format!("invalid escape \\{e}{hex}")))?;
                        s.push(ch);
                        i += len;
                    }
                    other => return Err(err(line, format!("unknown escape sequence \\{other}"))),
                }
            }
            c => s.push(c),
        }
    }
}

enum Stop {
    Eof,
    End(usize),
    /// `{{else}}`, or `{{else if ...}}` / `{{else with ...}}` with the tokens after `else`.
    Else(usize, Vec<Tok>),
}

struct Parser {
    items: Vec<Item>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        while self.at < self.items.len() {
            let item = std::mem::replace(&mut self.items[self.at], Item::Text(String::new()));
            self.at += 1;
            let (toks, line, source) = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action(toks, line, source) => (toks, line, source),
            };
            let keyword = match toks.first() {
                Some(Tok::Ident(k)) => k.as_str(),
                _ => "",
            };
            match keyword {
                "end" if toks.len() == 1 => return Ok((nodes, Stop::End(line))),
                "end" => return Err(err(line, "unexpected tokens after {{end}}")),
                "else" => return Ok((nodes, Stop::Else(line, toks[1..].to_vec()))),
                "if" | "range" | "with" => {
                    let kw = keyword.to_string();
                    nodes.push(self.branch(&kw, &toks[1..], line, &source)?);
                }
                k if UNSUPPORTED.contains(&k) => return Err(unsupported(line, k)),
                _ => nodes.push(Node::Action(pipe(&toks, line, &source)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// `if`/`range`/`with` up to its `{{end}}`, with `{{else}}` and `{{else if|with ...}}`.
    fn branch(
        &mut self,
        keyword: &str,
        toks: &[Tok],
        line: usize,
        source: &str,
    ) -> Result<Node, TemplateError> {
        if toks.is_empty() {
            return Err(err(line, format!("missing value for {keyword}")));
        }
        if self.depth >= MAX_BLOCKS {
            return Err(err(
                line,
                format!("if/range/with nested more than {MAX_BLOCKS} deep"),
            ));
        }
        self.depth += 1;
        let node = self.branch_body(keyword, toks, line, source);
        self.depth -= 1;
        node
    }

    fn branch_body(
        &mut self,
        keyword: &str,
        toks: &[Tok],
        line: usize,
        source: &str,
    ) -> Result<Node, TemplateError> {
        let pipe = pipe(toks, line, source)?;
        let (body, end) = self.list()?;
        let otherwise = match end {
            Stop::Eof => {
                return Err(err(
                    line,
                    format!("unexpected EOF: {{{{{keyword}}}}} without {{{{end}}}}"),
                ))
            }
            Stop::End(_) => Vec::new(),
            Stop::Else(else_line, rest) if rest.is_empty() => match self.list()? {
                (nodes, Stop::End(_)) => nodes,
                (_, Stop::Else(l, _)) => return Err(err(l, "expected {{end}}; found {{else}}")),
                (_, Stop::Eof) => {
                    return Err(err(else_line, "unexpected EOF: {{else}} without {{end}}"))
                }
            },
            Stop::Else(else_line, rest) => match rest.first() {
                Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                    let k = k.clone();
                    vec![self.branch(&k, &rest[1..], else_line, source)?]
                }
                _ => return Err(err(else_line, "unexpected tokens after {{else}}")),
            },
        };
        let branch = Branch {
            pipe,
            body,
            otherwise,
        };
        Ok(match keyword {
            "if" => Node::If(branch),
            "range" => Node::Range(branch),
            _ => Node::With(branch),
        })
    }
}

fn unsupported(line: usize, name: &str) -> TemplateError {
    err(
        line,
        format!("{name:?} is not supported by brindlectl's go-template (see docs/brindlectl.md for the supported subset)"),
    )
}

/// A pipeline: optional `$a[, $b] :=` (or `=`), then commands separated by `|`.
fn pipe(toks: &[Tok], line: usize, source: &str) -> Result<Pipe, TemplateError> {
    let mut vars = Vec::new();
    let mut assign = false;
    let mut rest = toks;
    // Declarations: `$x :=`, `$i, $v :=`, `$x =`.
    let decl_end = toks
        .iter()
        .position(|t| matches!(t, Tok::Declare | Tok::Assign));
    if let Some(end) = decl_end {
        let mut names = Vec::new();
        for (i, t) in toks[..end].iter().enumerate() {
            match t {
                Tok::Var(name, fields) if i % 2 == 0 && fields.is_empty() => {
                    names.push(name.clone())
                }
                Tok::Comma if i % 2 == 1 => {}
                _ => return Err(err(line, "bad variable declaration")),
            }
        }
        if names.is_empty() || names.len() > 2 || end % 2 == 0 {
            return Err(err(line, "bad variable declaration"));
        }
        vars = names;
        assign = toks[end] == Tok::Assign;
        rest = &toks[end + 1..];
    }
    let mut cmds = Vec::new();
    let mut i = 0;
    let mut cmd = Vec::new();
    while i < rest.len() {
        match &rest[i] {
            Tok::Pipe => {
                if cmd.is_empty() {
                    return Err(err(line, "missing command before |"));
                }
                cmds.push(std::mem::take(&mut cmd));
                i += 1;
            }
            _ => {
                let (op, next) = operand(rest, i, line, source)?;
                cmd.push(op);
                i = next;
            }
        }
    }
    if cmd.is_empty() {
        return Err(err(line, "missing value for command"));
    }
    cmds.push(cmd);
    Ok(Pipe {
        vars,
        assign,
        cmds,
        line,
        source: source.to_string(),
    })
}

fn operand(
    toks: &[Tok],
    i: usize,
    line: usize,
    source: &str,
) -> Result<(Operand, usize), TemplateError> {
    let op = match &toks[i] {
        Tok::Fields(names, _) => Operand::Dot(names.clone()),
        Tok::Var(name, fields) => Operand::Var(name.clone(), fields.clone()),
        Tok::Str(s) => Operand::Str(s.clone()),
        Tok::Num(n) => Operand::Num(*n),
        Tok::Ident(name) => match name.as_str() {
            "true" => Operand::Bool(true),
            "false" => Operand::Bool(false),
            "nil" => Operand::Nil,
            n if FUNCTIONS.contains(&n) => Operand::Func(n.to_string()),
            n if UNSUPPORTED.contains(&n) => return Err(unsupported(line, n)),
            "if" | "range" | "with" | "else" | "end" => {
                return Err(err(line, format!("unexpected {name:?} in command")))
            }
            n => return Err(err(line, format!("function {n:?} not defined"))),
        },
        Tok::LParen => {
            // The matching parenthesis.
            let mut depth = 0;
            let mut close = None;
            for (j, t) in toks.iter().enumerate().skip(i) {
                match t {
                    Tok::LParen => depth += 1,
                    Tok::RParen => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let close = close.ok_or_else(|| err(line, "unclosed left paren"))?;
            let inner = pipe(&toks[i + 1..close], line, source)?;
            if !inner.vars.is_empty() {
                return Err(err(
                    line,
                    "a declaration inside parentheses is not supported",
                ));
            }
            let mut next = close + 1;
            let mut fields = Vec::new();
            if let Some(Tok::Fields(names, true)) = toks.get(next) {
                fields = names.clone();
                next += 1;
            }
            return Ok((Operand::Paren(Box::new(inner), fields), next));
        }
        Tok::RParen => return Err(err(line, "unexpected right paren")),
        Tok::Comma | Tok::Declare | Tok::Assign | Tok::Pipe => {
            return Err(err(line, "unexpected punctuation in command"))
        }
    };
    Ok((op, i + 1))
}
