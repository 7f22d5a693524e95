//! `Node`: a Calico node as calico-node registers it: its BGP addresses and AS, tunnel
//! addresses, and status (`libcalico-go/lib/apis/internalapi/node.go`).

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::asn::Asn;
use crate::net::{is_mac, is_masked, parse_cidr_or_ip};
use crate::validation::{Problems, kind_impls};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NodeSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
}

kind_impls!(Node, status);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBGPSpec>,
    #[serde(
        default,
        rename = "ipv4VXLANTunnelAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_vxlan_tunnel_addr: Option<String>,
    #[serde(
        default,
        rename = "vxlanTunnelMACAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_tunnel_mac_addr: Option<String>,
    #[serde(
        default,
        rename = "ipv6VXLANTunnelAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_vxlan_tunnel_addr: Option<String>,
    #[serde(
        default,
        rename = "vxlanTunnelMACAddrV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_tunnel_mac_addr_v6: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orch_refs: Option<Vec<OrchRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<NodeWireguardSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<NodeAddress>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<NodeInterface>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeBGPSpec {
    /// The node's own AS; the BGPConfiguration default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<Asn>,
    /// Address and subnet, e.g. `10.0.0.5/24`: the subnet decides `CrossSubnet`.
    #[serde(
        default,
        rename = "ipv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_address: Option<String>,
    #[serde(
        default,
        rename = "ipv6Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_address: Option<String>,
    #[serde(
        default,
        rename = "ipv4IPIPTunnelAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_ipip_tunnel_addr: Option<String>,
    /// Makes the node a route reflector in this cluster (an IPv4 address as the ID).
    #[serde(
        default,
        rename = "routeReflectorClusterID",
        skip_serializing_if = "Option::is_none"
    )]
    pub route_reflector_cluster_id: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrchRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Always written, as Calico's Go type does (no `omitempty`).
    #[serde(default)]
    pub orchestrator: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeWireguardSpec {
    #[serde(
        default,
        rename = "interfaceIPv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_ipv4_address: Option<String>,
    #[serde(
        default,
        rename = "interfaceIPv6Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_ipv6_address: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct NodeAddress {
    /// Always written, as Calico's Go type does (no `omitempty`).
    #[serde(default)]
    pub address: String,
    /// `CalicoNodeIP`, `InternalIP` or `ExternalIP`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct NodeInterface {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard_public_key: Option<String>,
    #[serde(
        default,
        rename = "wireguardPublicKeyV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_public_key_v6: Option<String>,
    #[serde(default, rename = "podCIDRs", skip_serializing_if = "Option::is_none")]
    pub pod_cidrs: Option<Vec<String>>,
}

impl NodeBGPSpec {
    /// The IPv4 address with its subnet (a bare address counts as /32).
    pub fn ipv4_network(&self) -> Option<IpNetwork> {
        self.ipv4_address
            .as_deref()
            .and_then(parse_cidr_or_ip)
            .filter(IpNetwork::is_ipv4)
    }

    pub fn ipv6_network(&self) -> Option<IpNetwork> {
        self.ipv6_address
            .as_deref()
            .and_then(parse_cidr_or_ip)
            .filter(IpNetwork::is_ipv6)
    }
}

/// A WireGuard public key: base64 of 32 bytes.
fn is_wireguard_key(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 44
        && b[43] == b'='
        && b[..43]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

impl Node {
    fn defaults(&mut self) {}

    fn check(&self, p: &mut Problems) {
        p.subdomain("metadata.name", &self.metadata.name);
        let s = &self.spec;
        if let Some(bgp) = &s.bgp {
            if *bgp == NodeBGPSpec::default() {
                p.add("spec.bgp", "{}", "spec.bgp should not be empty");
            }
            for (field, value, v4) in [
                ("spec.bgp.ipv4Address", &bgp.ipv4_address, true),
                ("spec.bgp.ipv6Address", &bgp.ipv6_address, false),
            ] {
                let Some(v) = value.as_deref().filter(|v| !v.is_empty()) else {
                    continue;
                };
                if parse_cidr_or_ip(v).is_none_or(|n| n.is_ipv4() != v4) {
                    let family = if v4 { "IPv4" } else { "IPv6" };
                    p.add(
                        field,
                        v,
                        format!("must be an {family} address with its subnet, e.g. 10.0.0.5/24"),
                    );
                }
            }
            p.ip_of_family(
                "spec.bgp.ipv4IPIPTunnelAddr",
                bgp.ipv4_ipip_tunnel_addr.as_deref(),
                true,
            );
            p.ip_of_family(
                "spec.bgp.routeReflectorClusterID",
                bgp.route_reflector_cluster_id.as_deref(),
                true,
            );
        }
        p.ip_of_family(
            "spec.ipv4VXLANTunnelAddr",
            s.ipv4_vxlan_tunnel_addr.as_deref(),
            true,
        );
        p.ip_of_family(
            "spec.ipv6VXLANTunnelAddr",
            s.ipv6_vxlan_tunnel_addr.as_deref(),
            false,
        );
        for (field, value) in [
            ("spec.vxlanTunnelMACAddr", &s.vxlan_tunnel_mac_addr),
            ("spec.vxlanTunnelMACAddrV6", &s.vxlan_tunnel_mac_addr_v6),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty() && !is_mac(v)) {
                p.add(field, v, "must be a MAC address");
            }
        }
        if let Some(w) = &s.wireguard {
            p.ip_of_family(
                "spec.wireguard.interfaceIPv4Address",
                w.interface_ipv4_address.as_deref(),
                true,
            );
            p.ip_of_family(
                "spec.wireguard.interfaceIPv6Address",
                w.interface_ipv6_address.as_deref(),
                false,
            );
        }
        for (i, a) in s.addresses.iter().flatten().enumerate() {
            if !parse_cidr_or_ip(&a.address).is_some_and(|n| is_masked(&n)) {
                p.add(
                    format!("spec.addresses[{i}].address"),
                    &a.address,
                    "must be an IP address or a CIDR with no host bits set",
                );
            }
            if let Some(t) = a.kind.as_deref()
                && !["CalicoNodeIP", "InternalIP", "ExternalIP"].contains(&t)
            {
                p.add(
                    format!("spec.addresses[{i}].type"),
                    t,
                    "must be CalicoNodeIP, InternalIP or ExternalIP",
                );
            }
        }
        for (i, iface) in s.interfaces.iter().flatten().enumerate() {
            if let Some(n) = iface.name.as_deref().filter(|n| !n.is_empty()) {
                p.subdomain(&format!("spec.interfaces[{i}].name"), n);
            }
        }
        if let Some(st) = &self.status {
            for (field, value) in [
                ("status.wireguardPublicKey", &st.wireguard_public_key),
                ("status.wireguardPublicKeyV6", &st.wireguard_public_key_v6),
            ] {
                if let Some(k) = value
                    .as_deref()
                    .filter(|k| !k.is_empty() && !is_wireguard_key(k))
                {
                    p.add(field, k, "must be a base64-encoded 32-byte WireGuard key");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::AnyResource;
    use crate::testing::{assert_round_trip, errors, parse_error, read};

    const NODE: &str = "
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: node-hostname
  labels: {rack: r1}
spec:
  bgp:
    asNumber: 64512
    ipv4Address: 10.244.0.1/24
    ipv6Address: 2001:db8:85a3::8a2e:370:7334/120
    ipv4IPIPTunnelAddr: 192.168.0.1
    routeReflectorClusterID: 224.0.0.1
  ipv4VXLANTunnelAddr: 192.168.1.1
  vxlanTunnelMACAddr: 66:ca:8a:e0:1e:4f
  orchRefs:
    - nodeName: node-hostname
      orchestrator: k8s
  addresses:
    - address: 10.244.0.1
      type: InternalIP
  interfaces:
    - name: eth0
      addresses: [10.244.0.1]
status:
  podCIDRs: [192.168.0.0/24]
  wireguardPublicKey: jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXgY=
";

    #[test]
    fn round_trip_unchanged() {
        assert_round_trip(NODE, "");
    }

    #[test]
    fn go_always_written_fields() {
        assert_round_trip(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n}\nspec: {orchRefs: [{nodeName: n}]}\n",
            "spec: {orchRefs: [{nodeName: n, orchestrator: ''}]}",
        );
    }

    #[test]
    fn subnet_kept() {
        let AnyResource::Node(n) = read(NODE).unwrap() else {
            panic!()
        };
        assert_eq!(
            n.spec.bgp.unwrap().ipv4_network().unwrap().to_string(),
            "10.244.0.1/24"
        );
    }

    fn node(spec: &str) -> String {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: n}}\nspec: {spec}\n"
        )
    }

    #[test]
    fn rules() {
        assert_eq!(
            errors(&node("{bgp: {}}")),
            ["error with field spec.bgp = '{}' (spec.bgp should not be empty)"]
        );
        assert_eq!(
            errors(&node(
                "{bgp: {ipv4Address: 'fd00::1/64', ipv4IPIPTunnelAddr: 10.0.0.1/32}}"
            )),
            [
                "error with field spec.bgp.ipv4Address = 'fd00::1/64' (must be an IPv4 address with its subnet, \
                 e.g. 10.0.0.5/24)",
                "error with field spec.bgp.ipv4IPIPTunnelAddr = '10.0.0.1/32' (must be an IPv4 address)",
            ]
        );
        assert_eq!(
            errors(&node(
                "{vxlanTunnelMACAddr: 'zz:00:00:00:00:00', addresses: [{address: 10.0.0.1/8, type: Public}]}"
            )),
            [
                "error with field spec.vxlanTunnelMACAddr = 'zz:00:00:00:00:00' (must be a MAC address)",
                "error with field spec.addresses[0].address = '10.0.0.1/8' (must be an IP address or a CIDR with no \
                 host bits set)",
                "error with field spec.addresses[0].type = 'Public' (must be CalicoNodeIP, InternalIP or ExternalIP)",
            ]
        );
        assert_eq!(
            errors(
                "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n}\nstatus: {wireguardPublicKey: abc}\n"
            ),
            [
                "error with field status.wireguardPublicKey = 'abc' (must be a base64-encoded 32-byte WireGuard key)"
            ]
        );
        let (path, _) = parse_error(&node("{bgp: {ipv4address: 10.0.0.1/24}}"));
        assert_eq!(path, "spec.bgp.ipv4address");
    }
}
