//! `BGPConfiguration`: the cluster's BGP settings (`default`) and per-node overrides
//! (`node.<nodename>`) (`bgpconfig.go`, its CEL rules, `clientv3/bgpconfig.go`).

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::asn::Asn;
use crate::bgp_peer::BGPPassword;
use crate::duration::Duration;
use crate::net::{is_masked, parse_cidr_or_ip};
use crate::validation::{Problems, kind_impls};

/// The AS number of nodes that set none, when `default` sets none either.
pub const DEFAULT_AS_NUMBER: Asn = Asn(64512);
/// The name of the cluster-wide BGPConfiguration.
pub const GLOBAL_NAME: &str = "default";
/// Per-node BGPConfigurations are named this followed by the node name.
pub const NODE_PREFIX: &str = "node.";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BGPConfiguration {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BGPConfigurationSpec,
}

kind_impls!(BGPConfiguration);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BGPConfigurationSpec {
    /// `Trace|Debug|Info|Warning|Error|Fatal`, any case. Default `Info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_severity_screen: Option<String>,
    /// Full iBGP mesh between nodes; true when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    /// The nodes' default AS number; 64512 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<Asn>,
    #[serde(
        default,
        rename = "serviceLoadBalancerIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_load_balancer_ips: Option<Vec<ServiceIPBlock>>,
    #[serde(
        default,
        rename = "serviceExternalIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_external_ips: Option<Vec<ServiceIPBlock>>,
    #[serde(
        default,
        rename = "serviceClusterIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_cluster_ips: Option<Vec<ServiceIPBlock>>,
    /// Default `Enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_load_balancer_aggregation: Option<EnabledDisabled>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<Vec<Community>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_advertisements: Option<Vec<PrefixAdvertisement>>,
    /// 179 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_password: Option<BGPPassword>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_max_restart_time: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_mode: Option<BindMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored_interfaces: Option<Vec<String>>,
    #[serde(
        default,
        rename = "localWorkloadPeeringIPV4",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_workload_peering_ipv4: Option<String>,
    #[serde(
        default,
        rename = "localWorkloadPeeringIPV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_workload_peering_ipv6: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_cluster_routes: Option<ProgramClusterRoutes>,
    #[serde(
        default,
        rename = "ipv4NormalRoutePriority",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_normal_route_priority: Option<i64>,
    #[serde(
        default,
        rename = "ipv6NormalRoutePriority",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_normal_route_priority: Option<i64>,
}

/// A service CIDR to advertise.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ServiceIPBlock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
}

/// A named BGP community value, `aa:nn` or `aa:nn:mm`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Community {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Communities to attach to routes within a CIDR.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PrefixAdvertisement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// Community names from `communities`, or literal values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnabledDisabled {
    Enabled,
    Disabled,
}

/// Where BIRD listens: all addresses (`None`) or only the node's IP (`NodeIP`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    None,
    #[serde(rename = "NodeIP")]
    NodeIp,
}

/// Which cluster routes the BGP daemon programs (the rest are felix's).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramClusterRoutes {
    Enabled,
    Disabled,
    #[serde(rename = "EnabledIPIPOnly")]
    EnabledIpipOnly,
    EnabledNoEncapOnly,
}

/// Whether `text` is a log level Calico accepts (`^(?i)(Trace|Debug|Info|Warning|Error|Fatal)?$`).
pub(crate) fn is_log_severity(text: &str) -> bool {
    ["", "trace", "debug", "info", "warning", "error", "fatal"]
        .contains(&text.to_ascii_lowercase().as_str())
}

/// A BGP community value as Calico writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommunityValue {
    /// `aa:nn`, 16-bit parts (RFC 1997).
    Standard(u16, u16),
    /// `aa:nn:mm`, 32-bit parts (RFC 8092).
    Large(u32, u32, u32),
}

impl CommunityValue {
    pub fn parse(text: &str) -> Option<CommunityValue> {
        let parts: Vec<&str> = text.split(':').collect();
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !parts.iter().all(|p| digits(p)) {
            return None;
        }
        match parts.as_slice() {
            [a, n] => Some(CommunityValue::Standard(a.parse().ok()?, n.parse().ok()?)),
            [a, b, c] => Some(CommunityValue::Large(
                a.parse().ok()?,
                b.parse().ok()?,
                c.parse().ok()?,
            )),
            _ => None,
        }
    }
}

/// A BGP community: `aa:nn` with 16-bit parts or `aa:nn:mm` with 32-bit parts.
pub(crate) fn is_community_value(text: &str) -> bool {
    CommunityValue::parse(text).is_some()
}

/// Calico's `ignoredInterface`: a name with globs, but not `*` alone (that would ignore every
/// interface).
fn is_ignored_interface(text: &str) -> bool {
    text != "*" && crate::names::is_interface_name(text, true)
}

impl BGPConfigurationSpec {
    pub fn node_to_node_mesh_enabled(&self) -> bool {
        self.node_to_node_mesh_enabled.unwrap_or(true)
    }

    pub fn listen_port(&self) -> u16 {
        self.listen_port.filter(|p| *p != 0).unwrap_or(179)
    }
}

impl BGPConfiguration {
    /// Calico writes the CRD defaults `logSeverityScreen: Info` and
    /// `serviceLoadBalancerAggregation: Enabled` on create.
    fn defaults(&mut self) {
        let s = &mut self.spec;
        if s.log_severity_screen.as_deref().is_none_or(str::is_empty) {
            s.log_severity_screen = Some("Info".to_string());
        }
        s.service_load_balancer_aggregation
            .get_or_insert(EnabledDisabled::Enabled);
    }

    fn check(&self, p: &mut Problems) {
        p.subdomain("metadata.name", &self.metadata.name);
        let s = &self.spec;
        if let Some(l) = &s.log_severity_screen
            && !is_log_severity(l)
        {
            p.add(
                "spec.logSeverityScreen",
                l,
                "must be one of Trace, Debug, Info, Warning, Error, Fatal",
            );
        }
        if self.metadata.name != GLOBAL_NAME {
            self.check_default_only(p);
        }
        for (field, blocks) in [
            ("spec.serviceLoadBalancerIPs", &s.service_load_balancer_ips),
            ("spec.serviceExternalIPs", &s.service_external_ips),
            ("spec.serviceClusterIPs", &s.service_cluster_ips),
        ] {
            for (i, b) in blocks.iter().flatten().enumerate() {
                let Some(c) = b.cidr.as_deref().filter(|c| !c.is_empty()) else {
                    continue;
                };
                if !parse_cidr_or_ip(c).is_some_and(|n| is_masked(&n)) {
                    p.add(
                        format!("{field}[{i}].cidr"),
                        c,
                        "must be a CIDR with no host bits set",
                    );
                }
            }
        }
        let communities = s.communities.as_deref().unwrap_or_default();
        for (i, c) in communities.iter().enumerate() {
            match c.name.as_deref() {
                None | Some("") => p.add(
                    format!("spec.communities[{i}].name"),
                    "",
                    "name is required",
                ),
                Some(n) => p.subdomain(&format!("spec.communities[{i}].name"), n),
            }
            let v = c.value.as_deref().unwrap_or_default();
            if !is_community_value(v) {
                p.add(
                    format!("spec.communities[{i}].value"),
                    v,
                    "invalid community value: expected aa:nn (16-bit numbers) or aa:nn:mm (32-bit numbers)",
                );
            }
        }
        let advertisements = s.prefix_advertisements.as_deref().unwrap_or_default();
        if !communities.is_empty() && advertisements.is_empty() {
            p.add(
                "spec.communities",
                communities.len(),
                "communities are defined but not used in prefixAdvertisements",
            );
        }
        for (i, a) in advertisements.iter().enumerate() {
            let c = a.cidr.as_deref().unwrap_or_default();
            if !parse_cidr_or_ip(c).is_some_and(|n| is_masked(&n)) {
                p.add(
                    format!("spec.prefixAdvertisements[{i}].cidr"),
                    c,
                    "must be a CIDR with no host bits set",
                );
            }
            for (j, v) in a.communities.iter().flatten().enumerate() {
                let named = communities
                    .iter()
                    .any(|c| c.name.as_deref() == Some(v.as_str()));
                if !named && !is_community_value(v) {
                    p.add(
                        format!("spec.prefixAdvertisements[{i}].communities[{j}]"),
                        v,
                        "community used is invalid or not defined",
                    );
                }
            }
        }
        if s.node_to_node_mesh_enabled == Some(false) {
            if s.node_mesh_password.is_some() {
                p.add(
                    "spec.nodeMeshPassword",
                    "",
                    "nodeMeshPassword cannot be set when nodeToNodeMeshEnabled is false",
                );
            }
            if let Some(t) = &s.node_mesh_max_restart_time {
                p.add(
                    "spec.nodeMeshMaxRestartTime",
                    t,
                    "nodeMeshMaxRestartTime cannot be set when nodeToNodeMeshEnabled is false",
                );
            }
        }
        if s.listen_port == Some(0) {
            p.add("spec.listenPort", 0, "must be between 1 and 65535");
        }
        for (i, iface) in s.ignored_interfaces.iter().flatten().enumerate() {
            if !is_ignored_interface(iface) {
                p.add(
                    format!("spec.ignoredInterfaces[{i}]"),
                    iface,
                    "must be 1-15 of [a-zA-Z0-9_.*-], not '*'",
                );
            }
        }
        p.ip_of_family(
            "spec.localWorkloadPeeringIPV4",
            s.local_workload_peering_ipv4.as_deref(),
            true,
        );
        p.ip_of_family(
            "spec.localWorkloadPeeringIPV6",
            s.local_workload_peering_ipv6.as_deref(),
            false,
        );
        for (field, value) in [
            ("spec.ipv4NormalRoutePriority", s.ipv4_normal_route_priority),
            ("spec.ipv6NormalRoutePriority", s.ipv6_normal_route_priority),
        ] {
            if let Some(v) = value.filter(|v| !(1..=2_147_483_646).contains(v)) {
                p.add(field, v, "must be between 1 and 2147483646");
            }
        }
    }

    /// Fields only the cluster-wide `default` resource may set (clientv3's
    /// `ValidateDefaultOnlyFields`).
    fn check_default_only(&self, p: &mut Problems) {
        let s = &self.spec;
        let only_default = |p: &mut Problems, field: &str, value: String| {
            p.add(
                field,
                value,
                format!("can only be set on the \"{GLOBAL_NAME}\" BGPConfiguration"),
            );
        };
        if let Some(v) = s.node_to_node_mesh_enabled {
            only_default(p, "spec.nodeToNodeMeshEnabled", v.to_string());
        }
        if let Some(v) = s.as_number {
            only_default(p, "spec.asNumber", v.to_string());
        }
        for (field, v) in [
            ("spec.serviceLoadBalancerIPs", &s.service_load_balancer_ips),
            ("spec.serviceExternalIPs", &s.service_external_ips),
            ("spec.serviceClusterIPs", &s.service_cluster_ips),
        ] {
            if v.as_ref().is_some_and(|v| !v.is_empty()) {
                only_default(p, field, String::new());
            }
        }
        if s.node_mesh_password.is_some() {
            only_default(p, "spec.nodeMeshPassword", String::new());
        }
        if let Some(t) = &s.node_mesh_max_restart_time {
            only_default(p, "spec.nodeMeshMaxRestartTime", t.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_round_trip, errors, parse_error};

    #[test]
    fn round_trip_default() {
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
  asNumber: 63400
  listenPort: 178
  bindMode: NodeIP
  serviceClusterIPs:
    - cidr: 10.96.0.0/12
  serviceExternalIPs:
    - cidr: 104.244.42.129/32
    - cidr: 172.217.3.0/24
  serviceLoadBalancerIPs:
    - cidr: 192.0.2.0/24
  communities:
    - name: bgp-large-community
      value: 63400:300:100
  prefixAdvertisements:
    - cidr: 172.218.4.0/26
      communities: [bgp-large-community, '63400:120']
  ignoredInterfaces: [iface-1, 'docker*']
  programClusterRoutes: EnabledNoEncapOnly
  ipv4NormalRoutePriority: 1024
",
            "spec: {logSeverityScreen: Info, serviceLoadBalancerAggregation: Enabled}",
        );
    }

    #[test]
    fn round_trip_per_node() {
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: node.node1}
spec: {logSeverityScreen: debug, listenPort: 1179, serviceLoadBalancerAggregation: Disabled}
",
            "",
        );
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  nodeMeshMaxRestartTime: 2m
  nodeMeshPassword: {secretKeyRef: {name: bgp-secrets, key: mesh}}
",
            "spec: {logSeverityScreen: Info, serviceLoadBalancerAggregation: Enabled}",
        );
    }

    fn config(name: &str, spec: &str) -> String {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {{name: {name}}}\nspec: {spec}\n"
        )
    }

    #[test]
    fn default_only_fields() {
        assert_eq!(
            errors(&config(
                "node.n1",
                "{nodeToNodeMeshEnabled: true, asNumber: 65000, serviceClusterIPs: [{cidr: 10.96.0.0/12}]}"
            )),
            [
                "error with field spec.nodeToNodeMeshEnabled = 'true' (can only be set on the \"default\" BGPConfiguration)",
                "error with field spec.asNumber = '65000' (can only be set on the \"default\" BGPConfiguration)",
                "error with field spec.serviceClusterIPs = '' (can only be set on the \"default\" BGPConfiguration)",
            ]
        );
    }

    #[test]
    fn field_rules() {
        assert_eq!(
            errors(&config(
                "default",
                "{logSeverityScreen: Verbose, listenPort: 0}"
            )),
            [
                "error with field spec.logSeverityScreen = 'Verbose' (must be one of Trace, Debug, Info, Warning, \
                 Error, Fatal)",
                "error with field spec.listenPort = '0' (must be between 1 and 65535)",
            ]
        );
        assert_eq!(
            errors(&config(
                "default",
                "{serviceClusterIPs: [{cidr: 10.96.0.1/12}]}"
            )),
            [
                "error with field spec.serviceClusterIPs[0].cidr = '10.96.0.1/12' (must be a CIDR with no host bits set)"
            ]
        );
        assert_eq!(
            errors(&config(
                "default",
                "{communities: [{name: c1, value: '65536:1'}]}"
            )),
            [
                "error with field spec.communities[0].value = '65536:1' (invalid community value: expected aa:nn \
                 (16-bit numbers) or aa:nn:mm (32-bit numbers))",
                "error with field spec.communities = '1' (communities are defined but not used in prefixAdvertisements)",
            ]
        );
        assert_eq!(
            errors(&config(
                "default",
                "{prefixAdvertisements: [{cidr: 10.0.0.0/8, communities: [nope]}]}"
            )),
            [
                "error with field spec.prefixAdvertisements[0].communities[0] = 'nope' (community used is invalid or \
              not defined)"
            ]
        );
        assert_eq!(
            errors(&config(
                "default",
                "{nodeToNodeMeshEnabled: false, nodeMeshMaxRestartTime: 30s}"
            )),
            [
                "error with field spec.nodeMeshMaxRestartTime = '30s' (nodeMeshMaxRestartTime cannot be set when \
              nodeToNodeMeshEnabled is false)"
            ]
        );
        assert_eq!(
            errors(&config(
                "default",
                "{ignoredInterfaces: ['*'], localWorkloadPeeringIPV4: 'fd00::1'}"
            )),
            [
                "error with field spec.ignoredInterfaces[0] = '*' (must be 1-15 of [a-zA-Z0-9_.*-], not '*')",
                "error with field spec.localWorkloadPeeringIPV4 = 'fd00::1' (must be an IPv4 address)",
            ]
        );
        let (path, _) = parse_error(&config("default", "{nodeToNodeMesh: false}"));
        assert_eq!(path, "spec.nodeToNodeMesh");
        let (path, _) = parse_error(&config("default", "{listenPort: 70000}"));
        assert_eq!(path, "spec.listenPort");
    }
}
