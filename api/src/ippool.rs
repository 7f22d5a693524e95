//! `IPPool`: a range of addresses pods get their IPs from, and how traffic to them is
//! encapsulated. Field names, defaults and validation follow Calico's `projectcalico.org/v3`
//! IPPool (`api/pkg/apis/projectcalico/v3/ippool.go`, the CEL rules on `IPPoolSpec`, and
//! `clientv3/ippool.go`'s `validateAndSetDefaults`).

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::net::{canonical, is_masked, parse_cidr};
use crate::validation::{Problems, kind_impls};

/// Default block prefix length for IPv4 pools (64 addresses a block).
pub const DEFAULT_BLOCK_SIZE_V4: u8 = 26;
/// Default block prefix length for IPv6 pools.
pub const DEFAULT_BLOCK_SIZE_V6: u8 = 122;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IPPool {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: IPPoolSpec,
    /// Conditions Calico's controllers write; kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

kind_impls!(IPPool, status);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IPPoolSpec {
    /// The pool's CIDR, as written; [`IPPoolSpec::cidr`] parses it.
    #[serde(default)]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_mode: Option<EncapMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip_mode: Option<EncapMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_outgoing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(
        default,
        rename = "disableBGPExport",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_bgp_export: Option<bool>,
    /// Prefix length of the blocks carved from the pool; 0 means "the default".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_uses: Option<Vec<AllowedUse>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_mode: Option<AssignmentMode>,
}

/// `ipipMode` / `vxlanMode`: when to encapsulate traffic to the pool's addresses.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncapMode {
    Never,
    Always,
    /// Only to nodes on another subnet (the node's `bgp.ipv4Address` prefix decides).
    CrossSubnet,
}

/// What a pool's addresses may be used for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllowedUse {
    Workload,
    Tunnel,
    LoadBalancer,
}

/// Whether IPAM hands out the pool's addresses on its own or only when asked by name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssignmentMode {
    Automatic,
    Manual,
}

/// Calico's default for `allowedUses`, in the order Calico writes it.
const DEFAULT_USES: [AllowedUse; 2] = [AllowedUse::Workload, AllowedUse::Tunnel];

fn enabled(mode: Option<EncapMode>) -> bool {
    matches!(mode, Some(EncapMode::Always | EncapMode::CrossSubnet))
}

impl IPPoolSpec {
    /// The CIDR parsed, host bits kept; `None` if it does not parse.
    pub fn cidr(&self) -> Option<IpNetwork> {
        parse_cidr(&self.cidr)
    }

    /// The block size in effect: the one written, or the default for the pool's family.
    pub fn effective_block_size(&self) -> Option<u8> {
        match self.block_size {
            Some(b) if b != 0 => Some(b),
            _ => self.cidr().map(|c| {
                if c.is_ipv4() {
                    DEFAULT_BLOCK_SIZE_V4
                } else {
                    DEFAULT_BLOCK_SIZE_V6
                }
            }),
        }
    }

    /// The uses in effect: the ones written, or `[Workload, Tunnel]`.
    pub fn effective_allowed_uses(&self) -> &[AllowedUse] {
        match &self.allowed_uses {
            Some(u) if !u.is_empty() => u,
            _ => &DEFAULT_USES,
        }
    }

    pub fn ipip_enabled(&self) -> bool {
        enabled(self.ipip_mode)
    }

    pub fn vxlan_enabled(&self) -> bool {
        enabled(self.vxlan_mode)
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled == Some(true)
    }
}

impl IPPool {
    /// What Calico writes on create: the CIDR in canonical form, the block size for the
    /// family, `allowedUses [Workload, Tunnel]`, `nodeSelector all()`, both encapsulation
    /// modes `Never`, `assignmentMode Automatic`. A CIDR with host bits is left as written so
    /// that validation rejects it, as Calico does.
    fn defaults(&mut self) {
        let s = &mut self.spec;
        if let Some(net) = s.cidr().filter(is_masked) {
            s.cidr = canonical(&net);
        }
        if matches!(s.block_size, None | Some(0))
            && let Some(b) = s.effective_block_size()
        {
            s.block_size = Some(b);
        }
        if s.allowed_uses.as_ref().is_none_or(Vec::is_empty) {
            s.allowed_uses = Some(DEFAULT_USES.to_vec());
        }
        if s.node_selector.as_deref().is_none_or(str::is_empty) {
            s.node_selector = Some("all()".to_string());
        }
        s.ipip_mode.get_or_insert(EncapMode::Never);
        s.vxlan_mode.get_or_insert(EncapMode::Never);
        s.assignment_mode.get_or_insert(AssignmentMode::Automatic);
    }

    fn check(&self, p: &mut Problems) {
        p.subdomain("metadata.name", &self.metadata.name);
        let s = &self.spec;
        let uses = s.effective_allowed_uses();
        let load_balancer = uses.contains(&AllowedUse::LoadBalancer);

        if s.ipip_enabled() && s.vxlan_enabled() {
            p.add(
                "spec.vxlanMode",
                mode_text(s.vxlan_mode),
                "ipipMode and vxlanMode cannot both be enabled",
            );
        }
        if load_balancer && (s.ipip_enabled() || s.vxlan_enabled()) {
            p.add(
                "spec.allowedUses",
                uses_text(uses),
                "LoadBalancer IP pool cannot have IPIP or VXLAN enabled",
            );
        }
        if load_balancer && uses.iter().any(|u| *u != AllowedUse::LoadBalancer) {
            p.add(
                "spec.allowedUses",
                uses_text(uses),
                "LoadBalancer cannot be combined with Workload or Tunnel allowed uses",
            );
        }
        if load_balancer && s.disable_bgp_export == Some(true) {
            p.add(
                "spec.disableBGPExport",
                "true",
                "LoadBalancer IP pools cannot disable BGP export",
            );
        }
        let node_selector = s
            .node_selector
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or("all()");
        if load_balancer && node_selector != "all()" {
            p.add(
                "spec.nodeSelector",
                node_selector,
                "IP Pool with AllowedUse LoadBalancer must have nodeSelector set to all()",
            );
        }
        if let Some(ns) = s.namespace_selector.as_deref().filter(|n| !n.is_empty())
            && uses.contains(&AllowedUse::Tunnel)
        {
            p.add(
                "spec.namespaceSelector",
                ns,
                "IP Pool with AllowedUse Tunnel cannot have namespaceSelector \
                     (set allowedUses to [Workload])",
            );
        }
        for (field, sel) in [
            ("spec.nodeSelector", &s.node_selector),
            ("spec.namespaceSelector", &s.namespace_selector),
        ] {
            let Some(sel) = sel.as_deref() else { continue };
            if sel.contains("global(") {
                p.add(field, sel, "global() selector is not valid for an IPPool");
            } else {
                p.selector(field, Some(sel));
            }
        }
        if let Some(b) = s.block_size.filter(|b| *b != 0)
            && let Some(c) = s.cidr()
        {
            let ok = if c.is_ipv4() {
                (20..=32).contains(&b)
            } else {
                (116..=128).contains(&b)
            };
            if !ok {
                p.add(
                    "spec.blockSize",
                    b,
                    "blockSize must be between 20 and 32 for IPv4 pools, and between 116 and \
                         128 for IPv6 pools",
                );
            }
        }
        self.check_cidr(p);
    }

    fn check_cidr(&self, p: &mut Problems) {
        let s = &self.spec;
        if s.cidr.is_empty() {
            p.add("spec.cidr", "", "IPPool CIDR must be specified");
            return;
        }
        let Some(net) = s.cidr() else {
            p.add("spec.cidr", &s.cidr, "IPPool CIDR must be a valid subnet");
            return;
        };
        if !is_masked(&net) {
            p.add(
                "spec.cidr",
                &s.cidr,
                format!(
                    "IPPool CIDR is not strictly masked (did you mean {}?)",
                    canonical(&net)
                ),
            );
        }
        let link_local: IpNetwork = if net.is_ipv4() {
            "169.254.0.0/16".parse().unwrap()
        } else {
            "fe80::/10".parse().unwrap()
        };
        if link_local.contains(net.ip()) || net.contains(link_local.ip()) {
            p.add(
                "spec.cidr",
                &s.cidr,
                format!("IPPool CIDR overlaps with link local range {link_local}"),
            );
        }
        if net.is_ipv6() && s.ipip_enabled() {
            p.add(
                "spec.ipipMode",
                mode_text(s.ipip_mode),
                "IPIP is not supported on IPv6 pools",
            );
        }
        if let Some(b) = s.effective_block_size()
            && !s.is_disabled()
            && net.prefix() > b
        {
            p.add(
                "spec.cidr",
                &s.cidr,
                format!(
                    "IP pool size is too small for use with Calico IPAM. It must be equal to \
                         or greater than the block size (/{b})."
                ),
            );
        }
    }
}

fn mode_text(mode: Option<EncapMode>) -> String {
    mode.map(|m| format!("{m:?}")).unwrap_or_default()
}

fn uses_text(uses: &[AllowedUse]) -> String {
    format!("{uses:?}")
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_round_trip, errors, parse_error};

    const POOL: &str = "
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-ipv4-ippool
spec:
  cidr: 192.168.0.0/16
  ipipMode: CrossSubnet
  natOutgoing: true
";

    #[test]
    fn round_trip_adds_exactly_calicos_defaults() {
        assert_round_trip(
            POOL,
            "
spec:
  blockSize: 26
  vxlanMode: Never
  nodeSelector: all()
  allowedUses: [Workload, Tunnel]
  assignmentMode: Automatic
",
        );
    }

    #[test]
    fn round_trip_full_v6_pool_unchanged() {
        let full = "
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: v6
  labels: {zone: a}
spec:
  cidr: fd00:10::/48
  blockSize: 120
  ipipMode: Never
  vxlanMode: Always
  natOutgoing: false
  disabled: false
  disableBGPExport: true
  nodeSelector: rack == 'r1'
  namespaceSelector: team == 'a'
  allowedUses: [Workload]
  assignmentMode: Manual
";
        assert_round_trip(full, "");
    }

    #[test]
    fn v6_defaults_and_canonical_cidr() {
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: v6}
spec: {cidr: 'fd00:0:0:10::/64', blockSize: 0}
",
            "
spec:
  cidr: 'fd00:0:0:10::/64'
  blockSize: 122
  ipipMode: Never
  vxlanMode: Never
  nodeSelector: all()
  allowedUses: [Workload, Tunnel]
  assignmentMode: Automatic
",
        );
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: v6}
spec: {cidr: 'fd00:0::/64'}
",
            "
spec:
  cidr: 'fd00::/64'
  blockSize: 122
  ipipMode: Never
  vxlanMode: Never
  nodeSelector: all()
  allowedUses: [Workload, Tunnel]
  assignmentMode: Automatic
",
        );
    }

    fn pool(spec: &str) -> String {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: p}}\nspec: {spec}\n"
        )
    }

    #[test]
    fn cidr_rules() {
        assert_eq!(
            errors(&pool("{}")),
            ["error with field spec.cidr = '' (IPPool CIDR must be specified)"]
        );
        assert_eq!(
            errors(&pool("{cidr: 10.0.0.0/33}")),
            ["error with field spec.cidr = '10.0.0.0/33' (IPPool CIDR must be a valid subnet)"]
        );
        assert_eq!(
            errors(&pool("{cidr: 10.0.0.1}")),
            ["error with field spec.cidr = '10.0.0.1' (IPPool CIDR must be a valid subnet)"]
        );
        assert_eq!(
            errors(&pool("{cidr: 10.1.2.3/16}")),
            [
                "error with field spec.cidr = '10.1.2.3/16' (IPPool CIDR is not strictly masked (did you mean 10.1.0.0/16?))"
            ]
        );
        assert_eq!(
            errors(&pool("{cidr: 169.254.0.0/24}")),
            [
                "error with field spec.cidr = '169.254.0.0/24' (IPPool CIDR overlaps with link local range 169.254.0.0/16)"
            ]
        );
        assert_eq!(
            errors(&pool("{cidr: 128.0.0.0/1}")),
            [
                "error with field spec.cidr = '128.0.0.0/1' (IPPool CIDR overlaps with link local range 169.254.0.0/16)"
            ]
        );
        assert_eq!(
            errors(&pool("{cidr: 'fe80::/64'}")),
            [
                "error with field spec.cidr = 'fe80::/64' (IPPool CIDR overlaps with link local range fe80::/10)"
            ]
        );
        assert_eq!(
            errors(&pool("{cidr: 10.0.0.0/27}")),
            [
                "error with field spec.cidr = '10.0.0.0/27' (IP pool size is too small for use with Calico IPAM. \
              It must be equal to or greater than the block size (/26).)"
            ]
        );
        assert!(errors(&pool("{cidr: 10.0.0.0/27, disabled: true}")).is_empty());
        assert!(errors(&pool("{cidr: 10.0.0.0/27, blockSize: 28}")).is_empty());
    }

    #[test]
    fn block_size_ranges() {
        let msg = "(blockSize must be between 20 and 32 for IPv4 pools, and between 116 and 128 for IPv6 pools)";
        assert_eq!(
            errors(&pool("{cidr: 10.0.0.0/8, blockSize: 19}")),
            [format!("error with field spec.blockSize = '19' {msg}")]
        );
        assert_eq!(
            errors(&pool("{cidr: 10.0.0.0/8, blockSize: 33}")),
            [format!("error with field spec.blockSize = '33' {msg}")]
        );
        assert!(errors(&pool("{cidr: 10.0.0.0/8, blockSize: 20}")).is_empty());
        assert!(errors(&pool("{cidr: 10.0.0.0/8, blockSize: 32}")).is_empty());
        assert_eq!(
            errors(&pool("{cidr: 'fd00::/64', blockSize: 115}")),
            [format!("error with field spec.blockSize = '115' {msg}")]
        );
        assert!(errors(&pool("{cidr: 'fd00::/64', blockSize: 116}")).is_empty());
        assert!(errors(&pool("{cidr: 'fd00::/64', blockSize: 128}")).is_empty());
        assert_eq!(
            errors(&pool("{cidr: 10.0.0.0/24, blockSize: 22}")),
            [
                "error with field spec.cidr = '10.0.0.0/24' (IP pool size is too small for use with Calico IPAM. \
              It must be equal to or greater than the block size (/22).)"
            ]
        );
    }

    #[test]
    fn encapsulation_rules() {
        assert_eq!(
            errors(&pool(
                "{cidr: 10.0.0.0/16, ipipMode: Always, vxlanMode: CrossSubnet}"
            )),
            [
                "error with field spec.vxlanMode = 'CrossSubnet' (ipipMode and vxlanMode cannot both be enabled)"
            ]
        );
        assert!(
            errors(&pool(
                "{cidr: 10.0.0.0/16, ipipMode: Always, vxlanMode: Never}"
            ))
            .is_empty()
        );
        assert_eq!(
            errors(&pool("{cidr: 'fd00::/64', ipipMode: CrossSubnet}")),
            [
                "error with field spec.ipipMode = 'CrossSubnet' (IPIP is not supported on IPv6 pools)"
            ]
        );
        assert!(errors(&pool("{cidr: 'fd00::/64', vxlanMode: Always}")).is_empty());
        let (path, message) = parse_error(&pool("{cidr: 10.0.0.0/16, ipipMode: Sometimes}"));
        assert_eq!(path, "spec.ipipMode");
        assert_eq!(
            message,
            "unknown variant `Sometimes`, expected one of `Never`, `Always`, `CrossSubnet`"
        );
    }

    #[test]
    fn allowed_uses_rules() {
        assert!(errors(&pool("{cidr: 10.0.0.0/16, allowedUses: [LoadBalancer]}")).is_empty());
        assert_eq!(
            errors(&pool(
                "{cidr: 10.0.0.0/16, allowedUses: [LoadBalancer, Workload]}"
            )),
            [
                "error with field spec.allowedUses = '[LoadBalancer, Workload]' \
              (LoadBalancer cannot be combined with Workload or Tunnel allowed uses)"
            ]
        );
        assert_eq!(
            errors(&pool(
                "{cidr: 10.0.0.0/16, allowedUses: [LoadBalancer], vxlanMode: Always}"
            )),
            [
                "error with field spec.allowedUses = '[LoadBalancer]' (LoadBalancer IP pool cannot have IPIP or VXLAN enabled)"
            ]
        );
        assert_eq!(
            errors(&pool(
                "{cidr: 10.0.0.0/16, allowedUses: [LoadBalancer], disableBGPExport: true}"
            )),
            [
                "error with field spec.disableBGPExport = 'true' (LoadBalancer IP pools cannot disable BGP export)"
            ]
        );
        assert_eq!(
            errors(&pool(
                "{cidr: 10.0.0.0/16, allowedUses: [LoadBalancer], nodeSelector: \"a == 'b'\"}"
            )),
            ["error with field spec.nodeSelector = 'a == 'b'' \
              (IP Pool with AllowedUse LoadBalancer must have nodeSelector set to all())"]
        );
        // The default uses include Tunnel, so a namespaceSelector needs allowedUses written.
        assert_eq!(
            errors(&pool(
                "{cidr: 10.0.0.0/16, namespaceSelector: \"a == 'b'\"}"
            )),
            ["error with field spec.namespaceSelector = 'a == 'b'' \
              (IP Pool with AllowedUse Tunnel cannot have namespaceSelector (set allowedUses to [Workload]))"]
        );
        assert!(
            errors(&pool(
                "{cidr: 10.0.0.0/16, namespaceSelector: \"a == 'b'\", allowedUses: [Workload]}"
            ))
            .is_empty()
        );
        let (path, message) =
            parse_error(&pool("{cidr: 10.0.0.0/16, allowedUses: [Workload, Pods]}"));
        assert_eq!(path, "spec.allowedUses[1]");
        assert_eq!(
            message,
            "unknown variant `Pods`, expected one of `Workload`, `Tunnel`, `LoadBalancer`"
        );
    }

    #[test]
    fn selectors() {
        assert_eq!(
            errors(&pool("{cidr: 10.0.0.0/16, nodeSelector: global()}")),
            [
                "error with field spec.nodeSelector = 'global()' (global() selector is not valid for an IPPool)"
            ]
        );
    }

    /// Fails until the real selector parser lands in selector.rs (the stub accepts anything).
    #[test]
    fn unparsable_selector_rejected_needs_selector_parser() {
        assert_eq!(
            errors(&pool("{cidr: 10.0.0.0/16, nodeSelector: \"rack == \"}")).len(),
            1,
            "an unparsable nodeSelector must be rejected"
        );
    }

    #[test]
    fn name_and_unknown_fields() {
        assert_eq!(
            errors(
                "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: Pool_1}\nspec: {cidr: 10.0.0.0/16}\n"
            ),
            [
                "error with field metadata.name = 'Pool_1' (must be a DNS-1123 subdomain: lower-case \
              alphanumerics, '-' and '.', starting and ending with an alphanumeric)"
            ]
        );
        let (path, message) = parse_error(&pool("{cidr: 10.0.0.0/16, ipipmode: Always}"));
        assert_eq!(path, "spec.ipipmode");
        assert!(message.starts_with("unknown field `ipipmode`"), "{message}");
    }
}
