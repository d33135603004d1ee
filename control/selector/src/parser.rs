//! Recursive descent over the tokens, following the grammar in the crate docs: one function
//! per precedence level (`or`, `and`, `operation`). An empty (or all-blank) selector is
//! `all()`, as in Calico. Only parentheses nest, and their depth is bounded by [`MAX_NESTING`]
//! so that hostile input cannot exhaust the stack. What parses is then held to the same
//! bounds in canonical form (see [`crate::limits`]).

use crate::error::ParseError;
use crate::expr::Expr;
use crate::lexer::{tokenize, Kind, Token};
use crate::limits::{check_canonical, MAX_NESTING, MAX_SELECTOR_LEN};

pub(crate) fn parse(input: &str) -> Result<Expr, ParseError> {
    if input.len() > MAX_SELECTOR_LEN {
        return Err(ParseError::new(
            MAX_SELECTOR_LEN,
            format!(
                "selector is {} bytes long, longer than the {MAX_SELECTOR_LEN} allowed",
                input.len()
            ),
        ));
    }
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        tokens: &tokens,
        next: 0,
    };
    if parser.peek().kind == Kind::Eof {
        return Ok(Expr::All);
    }
    let expr = parser.or(0)?;
    let rest = parser.peek();
    if rest.kind != Kind::Eof {
        let what = if rest.kind == Kind::RParen {
            "unbalanced parentheses: ')' with no '(' to close".to_string()
        } else {
            format!(
                "unexpected {} after a complete expression",
                rest.kind.spelling()
            )
        };
        return Err(ParseError::new(rest.position, what));
    }
    check_canonical(&expr, input.len())?;
    Ok(expr)
}

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    next: usize,
}

impl<'a> Parser<'_, 'a> {
    /// The next token; the lexer always ends the list with `Eof`, and `Eof` is never consumed.
    fn peek(&self) -> Token<'a> {
        self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn take(&mut self) -> Token<'a> {
        let token = self.peek();
        if token.kind != Kind::Eof {
            self.next += 1;
        }
        token
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut operands = vec![self.and(depth)?];
        while self.peek().kind == Kind::Or {
            self.take();
            operands.push(self.and(depth)?);
        }
        Ok(single_or(operands, Expr::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut operands = vec![self.operation(depth)?];
        while self.peek().kind == Kind::And {
            self.take();
            operands.push(self.operation(depth)?);
        }
        Ok(single_or(operands, Expr::And))
    }

    fn operation(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut negated = false;
        while self.peek().kind == Kind::Not {
            self.take();
            negated = !negated;
        }
        let token = self.take();
        let expr = match token.kind {
            Kind::Has => Expr::Has(token.text.to_string()),
            Kind::All => Expr::All,
            Kind::Global => Expr::Global,
            Kind::Label => self.comparison(token.text)?,
            Kind::LParen => {
                if depth >= MAX_NESTING {
                    return Err(ParseError::new(
                        token.position,
                        format!("parentheses nested deeper than {MAX_NESTING}"),
                    ));
                }
                let inner = self.or(depth + 1)?;
                let close = self.take();
                if close.kind != Kind::RParen {
                    return Err(ParseError::new(
                        close.position,
                        format!(
                            "unbalanced parentheses: expected ')' to close the '(' at position {}, found {}",
                            token.position,
                            close.kind.spelling()
                        ),
                    ));
                }
                inner
            }
            Kind::Eof => return Err(ParseError::new(
                token.position,
                "unexpected end of selector: expected a label, has(), all(), global(), '!' or '('",
            )),
            other => {
                return Err(ParseError::new(
                    token.position,
                    format!(
                        "unexpected {}: expected a label, has(), all(), global(), '!' or '('",
                        other.spelling()
                    ),
                ))
            }
        };
        Ok(if negated { Expr::negate(expr) } else { expr })
    }

    /// The rest of `label <op> value`, the label already taken.
    fn comparison(&mut self, label: &str) -> Result<Expr, ParseError> {
        let op = self.take();
        let key = label.to_string();
        let make: fn(String, String) -> Expr = match op.kind {
            Kind::Eq => Expr::Eq,
            Kind::Ne => Expr::Ne,
            Kind::Contains => Expr::Contains,
            Kind::StartsWith => Expr::StartsWith,
            Kind::EndsWith => Expr::EndsWith,
            Kind::In => return Ok(Expr::In(key, self.set_literal(op)?)),
            Kind::NotIn => return Ok(Expr::NotIn(key, self.set_literal(op)?)),
            other => {
                return Err(ParseError::new(
                    op.position,
                    format!(
                    "expected an operator (==, !=, in, not in, contains, starts with, ends with) \
                         after label '{label}', found {}",
                    other.spelling()
                ),
                ))
            }
        };
        let value = self.take();
        if value.kind != Kind::String {
            return Err(ParseError::new(
                value.position,
                format!(
                    "expected a string literal after {}, found {}",
                    op.kind.spelling(),
                    value.kind.spelling()
                ),
            ));
        }
        Ok(make(key, value.text.to_string()))
    }

    /// `{ "a", 'b', }` after `in` / `not in` (a trailing comma is allowed, as in Calico).
    fn set_literal(&mut self, op: Token<'a>) -> Result<Vec<String>, ParseError> {
        let open = self.take();
        if open.kind != Kind::LBrace {
            return Err(ParseError::new(
                open.position,
                format!(
                    "expected a set literal '{{...}}' after {}, found {}",
                    op.kind.spelling(),
                    open.kind.spelling()
                ),
            ));
        }
        let mut values = Vec::new();
        while self.peek().kind == Kind::String {
            values.push(self.take().text.to_string());
            if self.peek().kind != Kind::Comma {
                break;
            }
            self.take();
        }
        let close = self.take();
        if close.kind != Kind::RBrace {
            return Err(ParseError::new(
                close.position,
                format!(
                    "bad set literal: expected a string literal or '}}' to close the '{{' at position {}, found {}",
                    open.position,
                    close.kind.spelling()
                ),
            ));
        }
        Ok(Expr::set(values))
    }
}

/// One operand stands alone; two or more are joined by `join`.
fn single_or(mut operands: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    if operands.len() == 1 {
        operands.pop().unwrap_or(Expr::All)
    } else {
        join(operands)
    }
}
