//! Calico's selector language: parsing (with an error that says where), evaluation against a
//! label map, and a canonical printed form.
//!
//! Interface fixed here; the grammar lands with the selector work of the foundation issue.

use std::collections::BTreeMap;
use std::fmt;

/// A parsed selector.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Selector(String);

/// A selector that does not parse, with the byte offset where parsing failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector '{input}': {reason} at position {position}")]
pub struct SelectorError {
    pub input: String,
    pub position: usize,
    pub reason: String,
}

/// Parse a selector. The empty string (and whitespace) selects everything, as in Calico.
pub fn parse(input: &str) -> Result<Selector, SelectorError> {
    Ok(Selector(input.to_string()))
}

impl Selector {
    /// Whether a resource with these labels is selected.
    pub fn evaluate(&self, _labels: &BTreeMap<String, String>) -> bool {
        true
    }
}

/// The canonical form: parsing it gives an equal selector.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
