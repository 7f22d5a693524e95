//! `ClusterInformation`: cluster-wide facts calico-node writes, one resource named
//! `default` (`clusterinfo.go`, `clientv3/clusterinfo.go`).

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::validation::{Problems, kind_impls};

/// The only name a ClusterInformation may have.
pub const CLUSTER_INFORMATION_NAME: &str = "default";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInformation {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ClusterInformationSpec,
}

kind_impls!(ClusterInformation);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInformationSpec {
    #[serde(
        default,
        rename = "clusterGUID",
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_guid: Option<String>,
    /// e.g. `k8s,bgp,kubeadm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calico_version: Option<String>,
    /// False while a datastore migration asks components to wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_ready: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl ClusterInformation {
    fn defaults(&mut self) {}

    fn check(&self, p: &mut Problems) {
        if self.metadata.name != CLUSTER_INFORMATION_NAME {
            p.add(
                "metadata.name",
                &self.metadata.name,
                "a ClusterInformation must be named \"default\"",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_round_trip, errors, parse_error};

    #[test]
    fn round_trip_unchanged() {
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: ClusterInformation
metadata:
  name: default
spec:
  calicoVersion: v3.31.0
  clusterGUID: 6e0a1c1bc3c54c1c9b1c7f0a7c3e2f11
  clusterType: k8s,bgp,kubeadm
  datastoreReady: true
  variant: Calico
",
            "",
        );
    }

    #[test]
    fn rules() {
        assert_eq!(
            errors(
                "apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata: {name: info}\n"
            ),
            [
                "error with field metadata.name = 'info' (a ClusterInformation must be named \"default\")"
            ]
        );
        let (path, _) = parse_error(
            "apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata: {name: default}\n\
             spec: {clusterGuid: x}\n",
        );
        assert_eq!(path, "spec.clusterGuid");
    }
}
