//! Errors a user sees when a resource cannot be read or is not valid.

use thiserror::Error;

use crate::ResourceKind;

/// One invalid field, printed as Calico's validator prints it:
/// `error with field spec.cidr = '10.0.0.0/33' (invalid CIDR)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field as a path in the user's YAML, e.g. `spec.ipipMode`.
    pub field: String,
    /// The offending value as the user wrote it.
    pub value: String,
    /// Why it is wrong.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "error with field {} = '{}' ({})",
            self.field, self.value, self.reason
        )
    }
}

/// Why a document could not become a valid resource.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The text is not YAML/JSON, or a field has the wrong type or is unknown. `path` is where,
    /// e.g. `spec.foo`; empty for a syntax error with no path.
    #[error("{}", parse_message(.kind, .path, .message))]
    Parse {
        kind: Option<ResourceKind>,
        path: String,
        message: String,
    },
    /// The document has no `kind`.
    #[error("resource is missing the field 'kind'")]
    MissingKind,
    /// The `kind` is not one of ours.
    #[error("resource type '{0}' is not supported")]
    UnknownKind(String),
    /// The `apiVersion` is not `projectcalico.org/v3`.
    #[error("{kind} has apiVersion '{api_version}', expected 'projectcalico.org/v3'")]
    BadApiVersion { kind: String, api_version: String },
    /// The resource parsed but breaks Calico's validation rules.
    #[error("{kind}({name}): {}", join(.errors))]
    Validation {
        kind: ResourceKind,
        name: String,
        errors: Vec<FieldError>,
    },
}

fn parse_message(kind: &Option<ResourceKind>, path: &str, message: &str) -> String {
    match (kind, path.is_empty()) {
        (Some(k), false) => format!("{k}: field {path}: {message}"),
        (Some(k), true) => format!("{k}: {message}"),
        (None, false) => format!("field {path}: {message}"),
        (None, true) => message.to_string(),
    }
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
