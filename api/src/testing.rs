//! Test helpers shared by the kinds' tests: read a manifest as calicoctl would, and compare
//! what comes back.

use crate::{AnyResource, ApiError, Resource};

/// Read one YAML manifest.
pub(crate) fn read(yaml: &str) -> Result<AnyResource, ApiError> {
    AnyResource::from_value(serde_yaml::from_str(yaml).expect("test YAML parses"))
}

fn merge(base: &mut serde_json::Value, add: serde_json::Value) {
    match (base, add) {
        (serde_json::Value::Object(b), serde_json::Value::Object(a)) => {
            for (k, v) in a {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, a) => *b = a,
    }
}

/// Read `input`, apply defaults, check it validates, and check it writes back as `input` with
/// `defaults` merged in and nothing else; and that applying defaults again changes nothing.
pub(crate) fn assert_round_trip(input: &str, defaults: &str) {
    let mut r = read(input).unwrap_or_else(|e| panic!("{e}"));
    r.apply_defaults();
    r.validate().unwrap_or_else(|e| panic!("{e}"));
    let mut expected: serde_json::Value = serde_yaml::from_str(input).unwrap();
    if !defaults.trim().is_empty() {
        merge(&mut expected, serde_yaml::from_str(defaults).unwrap());
    }
    assert_eq!(serde_json::to_value(&r).unwrap(), expected);
    let mut again = r.clone();
    again.apply_defaults();
    assert_eq!(again, r, "apply_defaults is not idempotent");
}

/// Read, default and validate `input`; the field errors, each as Calico prints it.
pub(crate) fn errors(input: &str) -> Vec<String> {
    let mut r = read(input).unwrap_or_else(|e| panic!("{e}"));
    r.apply_defaults();
    match r.validate() {
        Ok(()) => vec![],
        Err(ApiError::Validation { errors, .. }) => {
            errors.iter().map(ToString::to_string).collect()
        }
        Err(e) => panic!("not a validation error: {e}"),
    }
}

/// The path and message of a manifest that does not parse.
pub(crate) fn parse_error(input: &str) -> (String, String) {
    match read(input) {
        Err(ApiError::Parse { path, message, .. }) => (path, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}
