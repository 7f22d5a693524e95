//! Resource and interface names as Kubernetes and Calico's validator accept them.

use crate::FieldError;

/// Longest DNS-1123 subdomain (Kubernetes `validation.DNS1123SubdomainMaxLength`).
const SUBDOMAIN_MAX: usize = 253;
/// Longest DNS-1123 label (Kubernetes `validation.DNS1123LabelMaxLength`).
const LABEL_MAX: usize = 63;
/// Longest Linux interface name: `IFNAMSIZ` (16) less the terminating NUL.
const INTERFACE_MAX: usize = 15;

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= LABEL_MAX
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// A DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, each dot-separated part a
/// label, at most 253 characters. Most Calico resource names must be one.
pub fn check_subdomain(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, value, "name is required"));
    }
    if value.len() > SUBDOMAIN_MAX || !value.split('.').all(is_label) {
        return Err(FieldError::new(
            field,
            value,
            "must be a DNS-1123 subdomain: lower-case alphanumerics, '-' and '.', \
             starting and ending with an alphanumeric",
        ));
    }
    Ok(())
}

/// A DNS-1123 label: like a subdomain but without dots, at most 63 characters (namespaces).
pub fn check_label(field: &str, value: &str) -> Result<(), FieldError> {
    if !is_label(value) {
        return Err(FieldError::new(
            field,
            value,
            "must be a DNS-1123 label: at most 63 lower-case alphanumerics or '-', \
             starting and ending with an alphanumeric",
        ));
    }
    Ok(())
}

/// A Linux interface name as Calico's validator accepts it: 1-15 of `[a-zA-Z0-9_.-]`
/// (`interfaceRegex`), or with `globs` also `*` anywhere (`ignoredInterfaceRegex`, BGP filter
/// rules' `interface`), so `*` alone and `eth*` pass. Callers add their own rules for `*`.
pub fn is_interface_name(name: &str, globs: bool) -> bool {
    (1..=INTERFACE_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b) || (globs && b == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains() {
        for ok in ["default", "pool-1", "node.example.com", "a", "0"] {
            assert!(check_subdomain("metadata.name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Pool",
            "-a",
            "a-",
            "a..b",
            "a_b",
            ".a",
            &"a".repeat(254),
        ] {
            assert!(check_subdomain("metadata.name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interface_names() {
        for ok in ["eth0", "bond0.100", "en_p1-s0", "a", "abcdefghijklmno"] {
            assert!(is_interface_name(ok, false), "{ok}");
            assert!(is_interface_name(ok, true), "{ok}");
        }
        for glob in ["*", "eth*", "*.calico", "cali*x*"] {
            assert!(!is_interface_name(glob, false), "{glob}");
            assert!(is_interface_name(glob, true), "{glob}");
        }
        for bad in [
            "",
            "eth 0",
            "eth0:1",
            "abcdefghijklmnop",
            "eth?",
            "éth0",
            "eth/0",
        ] {
            assert!(!is_interface_name(bad, false), "{bad}");
            assert!(!is_interface_name(bad, true), "{bad}");
        }
    }

    #[test]
    fn labels() {
        assert!(check_label("metadata.namespace", "kube-system").is_ok());
        assert!(check_label("metadata.namespace", "a.b").is_err());
        assert!(check_label("metadata.namespace", &"a".repeat(64)).is_err());
    }
}
