//! Label and annotation keys and values as Kubernetes defines them, which Calico's validator
//! checks on the metadata of every resource it validates, on Profile `labelsToApply` and on
//! rule annotations.

use std::collections::BTreeMap;

use crate::ObjectMeta;
use crate::validation::Problems;

/// Kubernetes' limit on all annotations of one object together (keys plus values).
const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;
/// Kubernetes' `LabelValueMaxLength` and the limit on a qualified name's name part.
const NAME_MAX: usize = 63;

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, the name part of a key and a non-empty value.
fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && edge(&b[0])
        && edge(&b[b.len() - 1])
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

/// Kubernetes' `IsQualifiedName`: `[prefix/]name`, the prefix a DNS-1123 subdomain, the name
/// 1-63 alphanumerics, `-`, `_` or `.`, starting and ending with an alphanumeric.
pub fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Some("prefix part must be non-empty".to_string());
        }
        if crate::names::check_subdomain("", p).is_err() {
            return Some(format!(
                "prefix part '{p}' must be a DNS-1123 subdomain (lower-case alphanumerics, '-' \
                 and '.')"
            ));
        }
    }
    if name.len() > NAME_MAX {
        return Some(format!(
            "name part must be no more than {NAME_MAX} characters"
        ));
    }
    if !is_name_part(name) {
        return Some(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must \
             start and end with an alphanumeric character"
                .to_string(),
        );
    }
    None
}

/// Kubernetes' `IsValidLabelValue`: empty, or at most 63 characters like a key's name part.
pub fn label_value_problem(value: &str) -> Option<String> {
    if value.len() > NAME_MAX {
        return Some(format!("must be no more than {NAME_MAX} characters"));
    }
    if !value.is_empty() && !is_name_part(value) {
        return Some(
            "a label value must be empty or consist of alphanumeric characters, '-', '_' or \
             '.', and must start and end with an alphanumeric character"
                .to_string(),
        );
    }
    None
}

/// Check a label map: every key a qualified name, every value a label value.
pub(crate) fn check_labels(p: &mut Problems, field: &str, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        if let Some(why) = qualified_name_problem(k) {
            p.add(field, k, format!("invalid label key: {why}"));
        }
        if let Some(why) = label_value_problem(v) {
            p.add(
                format!("{field}.{k}"),
                v,
                format!("invalid label value: {why}"),
            );
        }
    }
}

/// Check annotations: keys are qualified names (compared lower-cased, as Calico does), and all
/// of them together at most 256 KiB.
pub(crate) fn check_annotations(
    p: &mut Problems,
    field: &str,
    annotations: &BTreeMap<String, String>,
) {
    let mut size = 0;
    for (k, v) in annotations {
        if let Some(why) = qualified_name_problem(&k.to_ascii_lowercase()) {
            p.add(field, k, format!("invalid annotation key: {why}"));
        }
        size += k.len() + v.len();
    }
    if size > ANNOTATIONS_MAX_BYTES {
        p.add(
            field,
            format!("{size} bytes"),
            format!(
                "total size of annotations is too large by {} bytes",
                size - ANNOTATIONS_MAX_BYTES
            ),
        );
    }
}

/// The metadata checks Calico's validator makes on every resource: labels and annotations.
/// (Names are each kind's own rule.)
pub(crate) fn check_metadata(p: &mut Problems, meta: &ObjectMeta) {
    if let Some(l) = &meta.labels {
        check_labels(p, "metadata.labels", l);
    }
    if let Some(a) = &meta.annotations {
        check_annotations(p, "metadata.annotations", a);
    }
}

/// A namespaced resource's namespace, when written, must be a DNS-1123 label.
pub(crate) fn check_namespace(p: &mut Problems, meta: &ObjectMeta) {
    if let Some(ns) = &meta.namespace {
        p.check(crate::names::check_label("metadata.namespace", ns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names() {
        for ok in [
            "app",
            "app.kubernetes.io/name",
            "projectcalico.org/tier",
            "A_b-c.D",
            "x",
        ] {
            assert_eq!(qualified_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "/app",
            "a/b/c",
            "Example.com/app",
            "-app",
            "app-",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(qualified_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn label_values() {
        for ok in ["", "prod", "v1.2_3-x"] {
            assert_eq!(label_value_problem(ok), None, "{ok}");
        }
        for bad in ["-x", "x-", "a b", "a/b", &"a".repeat(64)] {
            assert!(label_value_problem(bad).is_some(), "{bad}");
        }
    }
}
