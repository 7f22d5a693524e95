//! `IPAMConfiguration`: the cluster's IPAM settings, one resource named `default`
//! (`ipamconfig.go`, `clientv3/ipamconfig.go`).

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::validation::{Problems, kind_impls};

/// The only name an IPAMConfiguration may have.
pub const IPAM_CONFIG_NAME: &str = "default";
/// Blocks a host may claim when `maxBlocksPerHost` is 0 (unset): Calico IPAM's built-in cap.
pub const DEFAULT_MAX_BLOCKS_PER_HOST: u32 = 20;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IPAMConfiguration {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: IPAMConfigurationSpec,
}

kind_impls!(IPAMConfiguration);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IPAMConfigurationSpec {
    /// No borrowing of addresses from other hosts' blocks. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_affinity: Option<bool>,
    /// Most blocks one host may claim; 0 means no explicit limit. 0..=1000000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_blocks_per_host: Option<i64>,
    /// Whether hosts claim new blocks on their own. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_allocate_blocks: Option<bool>,
    #[serde(
        default,
        rename = "kubeVirtVMAddressPersistence",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_virt_vm_address_persistence: Option<VMAddressPersistence>,
    /// Minimum age of a released address before reuse, 0..=1200.
    #[serde(
        default,
        rename = "ipCooldownSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_cooldown_seconds: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VMAddressPersistence {
    Enabled,
    Disabled,
}

impl IPAMConfigurationSpec {
    pub fn strict_affinity(&self) -> bool {
        self.strict_affinity.unwrap_or(false)
    }

    pub fn auto_allocate_blocks(&self) -> bool {
        self.auto_allocate_blocks.unwrap_or(true)
    }
}

impl IPAMConfiguration {
    /// Calico's Go type always writes `strictAffinity` and `autoAllocateBlocks` (no
    /// `omitempty`); their API defaults are false and true. `maxBlocksPerHost` defaults to 0,
    /// which Calico omits when writing, so it is not added.
    fn defaults(&mut self) {
        self.spec.strict_affinity.get_or_insert(false);
        self.spec.auto_allocate_blocks.get_or_insert(true);
    }

    fn check(&self, p: &mut Problems) {
        if self.metadata.name != IPAM_CONFIG_NAME {
            p.add(
                "metadata.name",
                &self.metadata.name,
                "an IPAMConfiguration must be named \"default\"",
            );
        }
        if let Some(m) = self.spec.max_blocks_per_host {
            if m < 0 {
                p.add(
                    "spec.maxBlocksPerHost",
                    m,
                    "must be greater than or equal to 0",
                );
            } else if m > 1_000_000 {
                p.add(
                    "spec.maxBlocksPerHost",
                    m,
                    "must be less than or equal to 1000000",
                );
            }
        }
        if let Some(c) = self.spec.ip_cooldown_seconds
            && !(0..=1200).contains(&c)
        {
            p.add("spec.ipCooldownSeconds", c, "must be between 0 and 1200");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_round_trip, errors, parse_error};

    #[test]
    fn round_trip() {
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: IPAMConfiguration
metadata:
  name: default
spec:
  maxBlocksPerHost: 4
",
            "spec: {strictAffinity: false, autoAllocateBlocks: true}",
        );
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: IPAMConfiguration
metadata: {name: default}
spec: {strictAffinity: true, autoAllocateBlocks: false, maxBlocksPerHost: 0, ipCooldownSeconds: 30,
       kubeVirtVMAddressPersistence: Disabled}
",
            "",
        );
    }

    #[test]
    fn rules() {
        assert_eq!(
            errors(
                "apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: ipam}\n"
            ),
            [
                "error with field metadata.name = 'ipam' (an IPAMConfiguration must be named \"default\")"
            ]
        );
        assert_eq!(
            errors(
                "apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: default}\n\
                 spec: {maxBlocksPerHost: -1, ipCooldownSeconds: 1201}\n"
            ),
            [
                "error with field spec.maxBlocksPerHost = '-1' (must be greater than or equal to 0)",
                "error with field spec.ipCooldownSeconds = '1201' (must be between 0 and 1200)",
            ]
        );
        let (path, _) = parse_error(
            "apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: default}\n\
             spec: {strictAffinity: yes please}\n",
        );
        assert_eq!(path, "spec.strictAffinity");
        let (path, _) = parse_error(
            "apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: default}\n\
             spec: {maxBlocks: 3}\n",
        );
        assert_eq!(path, "spec.maxBlocks");
    }
}
