//! Calico's selector language: parsing (with an error that says where), evaluation against a
//! label map, and a canonical printed form.
//!
//! A selector such as `role == "db" && projectcalico.org/namespace in {"prod", "staging"}` picks
//! resources by their labels. [`parse`] accepts exactly what Calico's own parser accepts (the
//! grammar is in the `parser` module), [`Selector::evaluate`] matches a label map with Calico's
//! semantics, and `Display` prints Calico's canonical form, which parses back to an equal
//! [`Selector`].
//!
//! This module must never panic on user input: every malformed selector is a [`SelectorError`]
//! with the byte position where parsing stopped, and nesting depth is bounded so that hostile
//! input cannot overflow the stack.

mod parser;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A parsed selector. Only [`parse`] makes one, so its expression always prints to text that
/// parses back to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Selector {
    expr: Expr,
}

/// The syntax tree of a selector.
///
/// `!` never wraps another `!` (a double negation is removed while parsing), and `And`/`Or` have
/// at least two operands. Parentheses are not kept: `And`/`Or` print their own.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    /// `all()`, also what the empty selector means.
    All,
    /// `global()`: Calico uses it in namespace selectors to mean "non-namespaced resources"; as a
    /// test of a label map it always matches.
    Global,
    /// `has(key)`.
    Has(String),
    /// `key == "value"`: false when the label is missing.
    Eq { key: String, value: String },
    /// `key != "value"`: true when the label is missing.
    Ne { key: String, value: String },
    /// `key contains "value"`: false when the label is missing.
    Contains { key: String, value: String },
    /// `key starts with "value"`: false when the label is missing.
    StartsWith { key: String, value: String },
    /// `key ends with "value"`: false when the label is missing.
    EndsWith { key: String, value: String },
    /// `key in {"a", "b"}`: false when the label is missing.
    In {
        key: String,
        values: BTreeSet<String>,
    },
    /// `key not in {"a", "b"}`: true when the label is missing.
    NotIn {
        key: String,
        values: BTreeSet<String>,
    },
    /// `!expr`.
    Not(Box<Expr>),
    /// `(a && b && ...)`.
    And(Vec<Expr>),
    /// `(a || b || ...)`.
    Or(Vec<Expr>),
}

/// A selector that does not parse, with the byte offset where parsing failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector '{input}': {reason} at position {position}")]
pub struct SelectorError {
    pub input: String,
    pub position: usize,
    pub reason: String,
}

/// Parse a selector. The empty string (and whitespace) selects everything, as in Calico.
///
/// Whitespace is spaces and tabs only; Calico rejects other whitespace, so we do too.
pub fn parse(input: &str) -> Result<Selector, SelectorError> {
    match parser::selector(input) {
        Ok(expr) => Ok(Selector { expr }),
        Err(failure) => Err(SelectorError {
            input: input.to_string(),
            // The parser only ever hands back a suffix of its input.
            position: input.len().saturating_sub(failure.rest.len()),
            reason: failure.reason.into_owned(),
        }),
    }
}

impl Selector {
    /// The selector that matches everything: `all()`, which is also what `""` parses to.
    pub fn all() -> Self {
        Selector { expr: Expr::All }
    }

    /// Whether this selector is `all()` (or was written as the empty string).
    pub fn is_all(&self) -> bool {
        self.expr == Expr::All
    }

    /// The syntax tree, for callers that index selectors by the labels they test.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether a resource with these labels is selected.
    pub fn evaluate(&self, labels: &BTreeMap<String, String>) -> bool {
        self.expr.evaluate(labels)
    }
}

impl Default for Selector {
    fn default() -> Self {
        Selector::all()
    }
}

impl Expr {
    /// Whether a label map satisfies this expression.
    pub fn evaluate(&self, labels: &BTreeMap<String, String>) -> bool {
        let label = |key: &String| labels.get(key);
        match self {
            Expr::All | Expr::Global => true,
            Expr::Has(key) => labels.contains_key(key),
            Expr::Eq { key, value } => label(key) == Some(value),
            Expr::Ne { key, value } => label(key) != Some(value),
            Expr::Contains { key, value } => label(key).is_some_and(|v| v.contains(value.as_str())),
            Expr::StartsWith { key, value } => {
                label(key).is_some_and(|v| v.starts_with(value.as_str()))
            }
            Expr::EndsWith { key, value } => {
                label(key).is_some_and(|v| v.ends_with(value.as_str()))
            }
            Expr::In { key, values } => label(key).is_some_and(|v| values.contains(v)),
            Expr::NotIn { key, values } => !label(key).is_some_and(|v| values.contains(v)),
            Expr::Not(inner) => !inner.evaluate(labels),
            Expr::And(operands) => operands.iter().all(|e| e.evaluate(labels)),
            Expr::Or(operands) => operands.iter().any(|e| e.evaluate(labels)),
        }
    }

    /// `!self`, without ever building `!!x`.
    fn negate(self) -> Expr {
        match self {
            Expr::Not(inner) => *inner,
            other => Expr::Not(Box::new(other)),
        }
    }
}

/// Calico's quoting: double quotes unless the value contains one. A value cannot contain both
/// kinds (the language has no escapes), so this always parses back.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    let quote = if value.contains('"') { '\'' } else { '"' };
    write!(f, "{quote}{value}{quote}")
}

fn write_joined(f: &mut fmt::Formatter<'_>, operands: &[Expr], op: &str) -> fmt::Result {
    f.write_str("(")?;
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            f.write_str(op)?;
        }
        write!(f, "{operand}")?;
    }
    f.write_str(")")
}

/// The canonical form, identical to what Calico's `Selector.String()` prints: single spaces
/// around operators, `&&`/`||` groups always parenthesised, sets sorted and de-duplicated.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, op, value) = match self {
            Expr::All => return f.write_str("all()"),
            Expr::Global => return f.write_str("global()"),
            Expr::Has(key) => return write!(f, "has({key})"),
            Expr::Not(inner) => return write!(f, "!{inner}"),
            Expr::And(operands) => return write_joined(f, operands, " && "),
            Expr::Or(operands) => return write_joined(f, operands, " || "),
            Expr::In { key, values } | Expr::NotIn { key, values } => {
                let op = if matches!(self, Expr::In { .. }) {
                    "in"
                } else {
                    "not in"
                };
                write!(f, "{key} {op} {{")?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_quoted(f, value)?;
                }
                return f.write_str("}");
            }
            Expr::Eq { key, value } => (key, "==", value),
            Expr::Ne { key, value } => (key, "!=", value),
            Expr::Contains { key, value } => (key, "contains", value),
            Expr::StartsWith { key, value } => (key, "starts with", value),
            Expr::EndsWith { key, value } => (key, "ends with", value),
        };
        write!(f, "{key} {op} ")?;
        write_quoted(f, value)
    }
}

/// The canonical form: parsing it gives an equal selector.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}
