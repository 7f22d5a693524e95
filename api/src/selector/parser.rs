//! The nom grammar for selectors, written against Calico's tokenizer and parser
//! (`libcalico-go/lib/selector/{tokenizer,parser}`) so that the same strings are accepted and
//! rejected.
//!
//! ```text
//! selector   := ws [or_expr ws] EOF                  (empty selects everything)
//! or_expr    := and_expr (ws "||" ws and_expr)*      ("&&" binds tighter than "||")
//! and_expr   := unary (ws "&&" ws unary)*
//! unary      := ("!" ws)* primary                    (a "!" directly before "=" is "!=")
//! primary    := "(" ws or_expr ws ")"
//!             | "has(" ws key ws ")" | "all(" ws ")" | "global(" ws ")"
//!             | key ws operator
//! operator   := "==" ws string | "!=" ws string | "contains" ws string
//!             | "starts" ws "with" ws string | "ends" ws "with" ws string
//!             | "not" ws "in" ws set | "in" ws set
//! set        := "{" ws [string ws ("," ws string ws)* ["," ws]] "}"
//! string     := '"' any-but-'"' '"' | "'" any-but-"'" "'"    (no escapes)
//! key        := [A-Za-z0-9_./-]{1,512}
//! ws         := [ \t]*
//! ```
//!
//! Word operators must end at a word boundary (`a inx` is not `a in x`). Every failure is a
//! `nom::Err::Failure` carrying the unparsed rest of the input, from which the caller computes the
//! byte position.

use std::borrow::Cow;
use std::collections::BTreeSet;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_until, take_while1};
use nom::character::complete::{char, satisfy, space0};
use nom::combinator::{not, value};
use nom::error::{ErrorKind, ParseError};
use nom::multi::many0_count;
use nom::sequence::{delimited, preceded, terminated};
use nom::{IResult, Parser};

use super::Expr;

/// Calico's tokenizer rejects label names longer than this (`MaxLabelLength`).
pub(super) const MAX_KEY_LEN: usize = 512;

/// Parentheses nested deeper than this are rejected, so that hostile input cannot exhaust the
/// stack of the recursive descent (or of the recursive evaluator and printer afterwards). Calico
/// has no limit (Go stacks grow); real selectors nest a handful of levels, and 64 levels stay
/// under 512 KiB of stack even in an unoptimised build.
pub(super) const MAX_NESTING: usize = 64;

/// Why parsing stopped, and the input that was left at that point.
#[derive(Debug)]
pub(super) struct Failure<'a> {
    pub(super) rest: &'a str,
    pub(super) reason: Cow<'static, str>,
}

impl<'a> ParseError<&'a str> for Failure<'a> {
    fn from_error_kind(input: &'a str, kind: ErrorKind) -> Self {
        Failure {
            rest: input,
            reason: Cow::Owned(format!("syntax error ({})", kind.description())),
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, Failure<'a>>;

fn fail<'a, T>(rest: &'a str, reason: impl Into<Cow<'static, str>>) -> PResult<'a, T> {
    Err(nom::Err::Failure(Failure {
        rest,
        reason: reason.into(),
    }))
}

/// Turns a recoverable mismatch of `parser` into a hard failure at the start of its input: once
/// the grammar has committed, the only useful error is "expected X here".
fn expect<'a, O>(
    mut parser: impl Parser<&'a str, Output = O, Error = Failure<'a>>,
    reason: &'static str,
) -> impl FnMut(&'a str) -> PResult<'a, O> {
    move |input| match parser.parse(input) {
        Err(nom::Err::Error(_)) => fail(input, reason),
        other => other,
    }
}

/// Parses a whole selector.
pub(super) fn selector(input: &str) -> Result<Expr, Failure<'_>> {
    let blank: PResult<'_, &str> = space0(input);
    if let Ok(("", _)) = blank {
        return Ok(Expr::All);
    }
    let parsed = delimited(space0, |i| or_expr(i, 0), space0).parse(input);
    match parsed {
        Ok(("", expr)) => Ok(expr),
        Ok((rest, _)) => Err(Failure {
            rest,
            reason: Cow::Borrowed("expected '&&', '||' or end of selector"),
        }),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e),
        Err(nom::Err::Incomplete(_)) => Err(Failure {
            rest: "",
            reason: Cow::Borrowed("unexpected end of selector"),
        }),
    }
}

// The recursive spine (or -> and -> unary -> primary -> parenthesised -> or) is plain Rust
// around nom token parsers: nom's combinators add several stack frames per nesting level, and
// unoptimised builds then need tens of kilobytes per pair of parentheses.

fn or_expr(input: &str, depth: usize) -> PResult<'_, Expr> {
    chain(input, depth, "||", and_expr, Expr::Or)
}

fn and_expr(input: &str, depth: usize) -> PResult<'_, Expr> {
    chain(input, depth, "&&", unary, Expr::And)
}

/// One or more `operand`s separated by `op`; a single operand is returned as it is.
fn chain<'a>(
    input: &'a str,
    depth: usize,
    op: &'static str,
    operand: fn(&'a str, usize) -> PResult<'a, Expr>,
    build: fn(Vec<Expr>) -> Expr,
) -> PResult<'a, Expr> {
    let (mut rest, first) = operand(input, depth)?;
    let mut operands = vec![first];
    loop {
        let separator: PResult<'_, _> = (space0, tag(op), space0).parse(rest);
        let Ok((after, _)) = separator else { break };
        let (after, next) = operand(after, depth)?;
        operands.push(next);
        rest = after;
    }
    let expr = if operands.len() == 1 {
        operands.swap_remove(0)
    } else {
        build(operands)
    };
    Ok((rest, expr))
}

fn unary(input: &str, depth: usize) -> PResult<'_, Expr> {
    let (rest, bangs) = bangs(input)?;
    let (rest, expr) = primary(rest, depth)?;
    // Calico folds a run of `!` into one negation or none.
    let expr = if bangs % 2 == 1 { expr.negate() } else { expr };
    Ok((rest, expr))
}

/// Leading `!`s (each possibly followed by whitespace); a `!` directly before `=` is `!=`.
fn bangs(input: &str) -> PResult<'_, usize> {
    many0_count(terminated(char('!'), (not(char('=')), space0))).parse(input)
}

fn primary(input: &str, depth: usize) -> PResult<'_, Expr> {
    if input.starts_with('(') {
        parenthesised(input, depth)
    } else {
        leaf(input)
    }
}

fn parenthesised(input: &str, depth: usize) -> PResult<'_, Expr> {
    if depth >= MAX_NESTING {
        return fail(input, "parentheses nested too deeply");
    }
    let (inner, _) = (char('('), space0).parse(input)?;
    let (rest, expr) = or_expr(inner, depth + 1)?;
    let (rest, _) = (space0, expect(char(')'), "expected ')', '&&' or '||'")).parse(rest)?;
    Ok((rest, expr))
}

/// Everything but a parenthesised group: `has()`, `all()`, `global()`, or a label comparison.
fn leaf(input: &str) -> PResult<'_, Expr> {
    let parsed = alt((
        has,
        value(
            Expr::All,
            (
                tag("all("),
                space0,
                expect(char(')'), "expected ')' after 'all('"),
            ),
        ),
        value(
            Expr::Global,
            (
                tag("global("),
                space0,
                expect(char(')'), "expected ')' after 'global('"),
            ),
        ),
        comparison,
    ))
    .parse(input);
    match parsed {
        Err(nom::Err::Error(_)) if input.is_empty() => {
            fail(input, "unexpected end of selector, expected an expression")
        }
        Err(nom::Err::Error(_)) => fail(
            input,
            "expected a label, '!', '(', 'has(', 'all(' or 'global('",
        ),
        other => other,
    }
}

fn has(input: &str) -> PResult<'_, Expr> {
    let (rest, _) = tag("has(").parse(input)?;
    let (rest, key) =
        preceded(space0, expect(key, "expected a label inside 'has()'")).parse(rest)?;
    let (rest, _) =
        preceded(space0, expect(char(')'), "expected ')' to close 'has('")).parse(rest)?;
    Ok((rest, Expr::Has(key.to_string())))
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

fn key(input: &str) -> PResult<'_, &str> {
    let (rest, key) = take_while1(is_key_char).parse(input)?;
    if key.len() > MAX_KEY_LEN {
        return fail(input, "label is longer than 512 characters");
    }
    Ok((rest, key))
}

#[derive(Clone, Copy)]
enum Operator {
    Eq,
    Ne,
    Contains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
}

/// A keyword operator: `tag` that is not followed by a label character.
fn word<'a>(keyword: &'static str) -> impl Parser<&'a str, Output = (), Error = Failure<'a>> {
    value((), terminated(tag(keyword), not(satisfy(is_key_char))))
}

fn operator(input: &str) -> PResult<'_, Operator> {
    alt((
        value(Operator::Eq, tag("==")),
        value(Operator::Ne, tag("!=")),
        value(Operator::Contains, word("contains")),
        value(Operator::StartsWith, (tag("starts"), space0, word("with"))),
        value(Operator::EndsWith, (tag("ends"), space0, word("with"))),
        value(Operator::NotIn, (tag("not"), space0, word("in"))),
        value(Operator::In, word("in")),
    ))
    .parse(input)
}

fn comparison(input: &str) -> PResult<'_, Expr> {
    let (rest, key) = key(input)?;
    let (rest, _) = space0(rest)?;
    let (rest, op) = match operator(rest) {
        Err(nom::Err::Error(_)) => {
            return fail(
                rest,
                format!(
                    "expected an operator (==, !=, in, not in, contains, starts with, ends with) \
                     after label '{key}'"
                ),
            );
        }
        other => other?,
    };
    let key = key.to_string();
    let (rest, _) = space0(rest)?;
    if let Operator::In | Operator::NotIn = op {
        let (rest, values) = expect(set, "expected '{' to start a set of values").parse(rest)?;
        let expr = match op {
            Operator::In => Expr::In { key, values },
            _ => Expr::NotIn { key, values },
        };
        return Ok((rest, expr));
    }
    let (rest, value) = expect(quoted, "expected a quoted string").parse(rest)?;
    let value = value.to_string();
    let expr = match op {
        Operator::Eq => Expr::Eq { key, value },
        Operator::Ne => Expr::Ne { key, value },
        Operator::Contains => Expr::Contains { key, value },
        Operator::StartsWith => Expr::StartsWith { key, value },
        _ => Expr::EndsWith { key, value },
    };
    Ok((rest, expr))
}

/// A string literal in single or double quotes; the other quote may appear inside, there are no
/// escapes (as in Calico).
fn quoted(input: &str) -> PResult<'_, &str> {
    let opening: PResult<'_, &str> = alt((tag("\""), tag("'"))).parse(input);
    let (body, quote) = opening?;
    let closed: PResult<'_, &str> = terminated(take_until(quote), tag(quote)).parse(body);
    match closed {
        Ok(done) => Ok(done),
        Err(_) => fail(input, "unterminated string"),
    }
}

/// `{"a", 'b'}`; empty sets and a trailing comma are accepted, as Calico's parser does.
fn set(input: &str) -> PResult<'_, BTreeSet<String>> {
    let (mut rest, _) = (char('{'), space0).parse(input)?;
    let mut values = BTreeSet::new();
    loop {
        match quoted(rest) {
            Ok((after, value)) => {
                values.insert(value.to_string());
                let (after, _) = space0(after)?;
                let comma: PResult<'_, _> = (char(','), space0).parse(after);
                match comma {
                    Ok((after, _)) => rest = after,
                    Err(_) => {
                        let (after, _) = expect(char('}'), "expected ',' or '}'").parse(after)?;
                        return Ok((after, values));
                    }
                }
            }
            Err(nom::Err::Error(_)) => {
                let (after, _) =
                    expect(char('}'), "expected a quoted string or '}'").parse(rest)?;
                return Ok((after, values));
            }
            Err(e) => return Err(e),
        }
    }
}
