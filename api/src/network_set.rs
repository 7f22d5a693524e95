//! `NetworkSet` (namespaced) and `GlobalNetworkSet`: labelled lists of networks that policy
//! selectors can match like endpoints. Field names follow Calico's `networkset.go` and
//! `globalnetworkset.go`; Calico writes no defaults; nets are CIDRs or bare IPs and may have
//! host bits set (the validator's `cidr` check), and the `projectcalico.org/namespace` label is
//! reserved.

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::labels::{check_metadata, check_namespace};
use crate::net::parse_cidr_or_ip;
use crate::validation::{Problems, kind_impls};

/// Calico adds this label itself when it maps a namespace into its data model; a user may not.
pub const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSet {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NetworkSetSpec,
}

kind_impls!(NetworkSet);

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GlobalNetworkSet {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NetworkSetSpec,
}

kind_impls!(GlobalNetworkSet);

/// The spec of both kinds: the networks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nets: Option<Vec<String>>,
}

impl NetworkSetSpec {
    /// The networks that parse, bare IPs as full-length prefixes (validation reports the rest).
    pub fn networks(&self) -> impl Iterator<Item = ipnetwork::IpNetwork> + '_ {
        self.nets
            .iter()
            .flatten()
            .filter_map(|n| parse_cidr_or_ip(n))
    }

    fn check(&self, p: &mut Problems) {
        for (i, n) in self.nets.iter().flatten().enumerate() {
            if parse_cidr_or_ip(n).is_none() {
                p.add(format!("spec.nets[{i}]"), n, "invalid CIDR or IP address");
            }
        }
    }
}

fn check_reserved_label(p: &mut Problems, meta: &ObjectMeta) {
    if meta.labels().contains_key(NAMESPACE_LABEL) {
        p.add(
            "metadata.labels",
            NAMESPACE_LABEL,
            "projectcalico.org/namespace is not a valid label name (Calico sets it)",
        );
    }
}

impl NetworkSet {
    fn defaults(&mut self) {}

    fn check(&self, p: &mut Problems) {
        p.subdomain("metadata.name", &self.metadata.name);
        check_namespace(p, &self.metadata);
        check_metadata(p, &self.metadata);
        check_reserved_label(p, &self.metadata);
        self.spec.check(p);
    }
}

impl GlobalNetworkSet {
    fn defaults(&mut self) {}

    fn check(&self, p: &mut Problems) {
        p.subdomain("metadata.name", &self.metadata.name);
        check_metadata(p, &self.metadata);
        check_reserved_label(p, &self.metadata);
        self.spec.check(p);
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_round_trip, errors, parse_error};

    const NETSET: &str = "
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata:
  name: external-database
  namespace: staging
  labels:
    role: db
spec:
  nets:
    - 198.51.100.0/28
    - 203.0.113.7
    - 10.1.2.3/24
    - 'fd00:10::/64'
";

    const GLOBAL: &str = "
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: a-name-for-the-set
  labels:
    role: external-database
spec:
  nets:
    - 198.51.100.0/28
    - 203.0.113.0/24
";

    #[test]
    fn round_trips_unchanged() {
        // Host bits and bare IPs are kept as written: Calico's `cidr` check allows both.
        assert_round_trip(NETSET, "");
        assert_round_trip(GLOBAL, "");
    }

    #[test]
    fn checks() {
        assert_eq!(
            errors(&NETSET.replace("203.0.113.7", "203.0.113.256")),
            ["error with field spec.nets[1] = '203.0.113.256' (invalid CIDR or IP address)"]
        );
        assert_eq!(
            errors(&GLOBAL.replace("role: external", "projectcalico.org/namespace: external")),
            [
                "error with field metadata.labels = 'projectcalico.org/namespace' \
              (projectcalico.org/namespace is not a valid label name (Calico sets it))"
            ]
        );
        assert_eq!(
            errors(&GLOBAL.replace("a-name-for-the-set", "test$set")).len(),
            1
        );
        assert_eq!(
            errors(&NETSET.replace("namespace: staging", "namespace: a.b")).len(),
            1
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let (path, msg) = parse_error(&GLOBAL.replace("  nets:", "  networks:"));
        assert_eq!(path, "spec.networks");
        assert!(msg.contains("unknown field"), "{msg}");
        let (path, _) = parse_error(&NETSET.replace("spec:", "status: {}\nspec:"));
        assert_eq!(path, "status");
    }
}
