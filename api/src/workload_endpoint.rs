//! `WorkloadEndpoint` (namespaced): a pod's (or other workload's) interface on a node, which
//! the CNI plugin writes and Felix programs. Field names follow Calico's
//! `internalapi/workloadendpoint.go`. Defaults are what Calico's client writes on create: the
//! name built from the spec's identifiers when none is given (`names/workloadendpoint.go`) and
//! the `projectcalico.org/namespace` and `projectcalico.org/orchestrator` labels. Checks are the
//! validator's (`validateWorkloadEndpointSpec`, ports, NATs) plus the client's name check.

use std::fmt;
use std::net::IpAddr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ObjectMeta;
use crate::host_endpoint::{INTERFACE_RULE, check_port_protocol, is_interface_name};
use crate::labels::{check_metadata, check_namespace};
use crate::net::{is_mac, is_masked, parse_cidr_or_ip};
use crate::network_set::NAMESPACE_LABEL;
use crate::port::port_name_problem;
use crate::protocol::Protocol;
use crate::validation::{Problems, kind_impls};

/// The label Calico sets to the endpoint's orchestrator.
pub const ORCHESTRATOR_LABEL: &str = "projectcalico.org/orchestrator";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEndpoint {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: WorkloadEndpointSpec,
}

kind_impls!(WorkloadEndpoint);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEndpointSpec {
    /// `k8s`, `cni`, `libnetwork`, `openstack`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(
        default,
        rename = "containerID",
        skip_serializing_if = "Option::is_none"
    )]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The interface's name inside the workload, e.g. `eth0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// The endpoint's addresses, each a /32 or /128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_networks: Option<Vec<String>>,
    #[serde(default, rename = "ipNATs", skip_serializing_if = "Option::is_none")]
    pub ip_nats: Option<Vec<IpNat>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Vec<String>>,
    /// The host side of the veth, e.g. `cali1234567890a`. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<WorkloadEndpointPort>>,
    /// Source prefixes the endpoint may send from besides its own addresses (no RPF check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_spoofed_source_prefixes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_controls: Option<QosControls>,
}

/// A 1:1 NAT: connections to `externalIP` go to `internalIP`, one of the endpoint's addresses.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct IpNat {
    #[serde(default, rename = "internalIP")]
    pub internal_ip: String,
    #[serde(default, rename = "externalIP")]
    pub external_ip: String,
}

/// A named or host-mapped port of a workload.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEndpointPort {
    /// May be empty only for a port mapped to the host (`hostPort` set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub protocol: Protocol,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    #[serde(default, rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// Bandwidth, packet-rate and connection limits, and the DSCP mark for egress traffic.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QosControls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_bandwidth: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_burst: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_peakrate: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_minburst: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_bandwidth: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_burst: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_peakrate: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_minburst: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_packet_rate: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_packet_burst: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_packet_rate: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_packet_burst: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_max_connections: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_max_connections: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dscp: Option<Dscp>,
}

/// A DSCP value: a number 0-63 or a name (`EF`, `AF11`...`AF43`, `CS0`...`CS6`, `DF`), as
/// Calico's `numorstring.DSCP`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dscp {
    Number(u8),
    Name(String),
}

/// Calico's DSCP names and their values (RFC 2474, 2597, 3246).
const DSCP_NAMES: [(&str, u8); 21] = [
    ("DF", 0),
    ("EF", 46),
    ("AF11", 10),
    ("AF12", 12),
    ("AF13", 14),
    ("AF21", 18),
    ("AF22", 20),
    ("AF23", 22),
    ("AF31", 26),
    ("AF32", 28),
    ("AF33", 30),
    ("AF41", 34),
    ("AF42", 36),
    ("AF43", 38),
    ("CS0", 0),
    ("CS1", 8),
    ("CS2", 16),
    ("CS3", 24),
    ("CS4", 32),
    ("CS5", 40),
    ("CS6", 48),
];

impl Dscp {
    /// The 6-bit value; `None` for an unknown name or a number above 63.
    pub fn value(&self) -> Option<u8> {
        match self {
            Dscp::Number(n) => (*n <= 63).then_some(*n),
            Dscp::Name(n) => {
                let n = n.trim().to_ascii_uppercase();
                DSCP_NAMES.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
            }
        }
    }
}

impl fmt::Display for Dscp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dscp::Number(n) => write!(f, "{n}"),
            Dscp::Name(n) => f.write_str(n),
        }
    }
}

impl Serialize for Dscp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dscp::Number(n) => s.serialize_u8(*n),
            Dscp::Name(n) => s.serialize_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for Dscp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dscp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DSCP number or name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dscp, E> {
                u8::try_from(v)
                    .map(Dscp::Number)
                    .map_err(|_| E::custom(format!("DSCP {v} is out of range 0-63")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dscp, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("DSCP {v} is out of range 0-63")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dscp, E> {
                // As Calico's `Uint8OrString`: digits read as the number.
                Ok(match v.parse::<u8>() {
                    Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Dscp::Number(n),
                    _ => Dscp::Name(v.to_string()),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The name Calico requires of a workload endpoint, from its spec: the identifiers joined with
/// `-`, each with its own dashes doubled. Which identifiers depends on the orchestrator:
/// `<node>-k8s-<pod>-<endpoint>`, `<node>-cni-<containerID>-<endpoint>`,
/// `<node>-libnetwork-libnetwork-<endpoint>`, else `<node>-<orchestrator>-<workload>-<endpoint>`.
/// Errors name the spec field that is missing or malformed.
pub fn endpoint_name(spec: &WorkloadEndpointSpec) -> Result<String, (&'static str, String)> {
    let field = |name: &'static str, v: &Option<String>| (name, v.clone().unwrap_or_default());
    let node = field("node", &spec.node);
    let orch = field("orchestrator", &spec.orchestrator);
    let endpoint = field("endpoint", &spec.endpoint);
    let middle = match orch.1.as_str() {
        "k8s" => field("pod", &spec.pod),
        "cni" => field("containerID", &spec.container_id),
        "libnetwork" => orch.clone(),
        _ => field("workload", &spec.workload),
    };
    let mut parts = Vec::new();
    for (name, value) in [node, orch, middle, endpoint] {
        if value.is_empty() {
            return Err((name, "field should be assigned".to_string()));
        }
        if value.starts_with('-') {
            return Err((name, "field must not begin with a '-'".to_string()));
        }
        if value.ends_with('-') {
            return Err((name, "field must not end with a '-'".to_string()));
        }
        parts.push(value.replace('-', "--"));
    }
    Ok(parts.join("-"))
}

impl WorkloadEndpoint {
    fn defaults(&mut self) {
        if self.metadata.name.is_empty()
            && let Ok(name) = endpoint_name(&self.spec)
        {
            self.metadata.name = name;
        }
        let labels = [
            (NAMESPACE_LABEL, self.metadata.namespace.clone()),
            (ORCHESTRATOR_LABEL, self.spec.orchestrator.clone()),
        ];
        for (key, value) in labels {
            if let Some(v) = value {
                self.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert(key.to_string(), v);
            }
        }
    }

    fn check(&self, p: &mut Problems) {
        let name = &self.metadata.name;
        match endpoint_name(&self.spec) {
            Err((field, why)) => {
                let value = self.spec_text(field);
                p.add(
                    format!("spec.{field}"),
                    value,
                    format!("{why}: a WorkloadEndpoint's name is built from it"),
                );
            }
            Ok(expected) if !name.is_empty() && *name != expected => p.add(
                "metadata.name",
                name,
                format!(
                    "the WorkloadEndpoint name does not match the primary identifiers assigned \
                     in the Spec: expected name {expected}"
                ),
            ),
            Ok(_) => {}
        }
        p.subdomain("metadata.name", name);
        check_namespace(p, &self.metadata);
        check_metadata(p, &self.metadata);
        self.check_spec(p);
    }

    fn spec_text(&self, field: &str) -> String {
        let s = &self.spec;
        let v = match field {
            "node" => &s.node,
            "orchestrator" => &s.orchestrator,
            "pod" => &s.pod,
            "containerID" => &s.container_id,
            "workload" => &s.workload,
            _ => &s.endpoint,
        };
        v.clone().unwrap_or_default()
    }

    fn check_spec(&self, p: &mut Problems) {
        let s = &self.spec;
        for (field, value) in [
            ("spec.orchestrator", &s.orchestrator),
            ("spec.workload", &s.workload),
            ("spec.node", &s.node),
            ("spec.pod", &s.pod),
            ("spec.endpoint", &s.endpoint),
            ("spec.serviceAccountName", &s.service_account_name),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                p.subdomain(field, v);
            }
        }
        if let Some(c) = s.container_id.as_deref().filter(|c| !c.is_empty())
            && !is_container_id(c)
        {
            p.add(
                "spec.containerID",
                c,
                "a container ID is letters, digits and '-', starting and ending with a \
                     letter or digit",
            );
        }
        let interface = s.interface_name.as_deref().unwrap_or_default();
        if !is_interface_name(interface) {
            p.add("spec.interfaceName", interface, INTERFACE_RULE);
        }
        if let Some(mac) = s.mac.as_deref().filter(|m| !m.is_empty() && !is_mac(m)) {
            p.add("spec.mac", mac, "invalid MAC address");
        }
        for (i, profile) in s.profiles.iter().flatten().enumerate() {
            p.subdomain(&format!("spec.profiles[{i}]"), profile);
        }
        self.check_addresses(p);
        for (i, port) in s.ports.iter().flatten().enumerate() {
            port.check(&format!("spec.ports[{i}]"), p);
        }
        if let Some(dscp) = s.qos_controls.as_ref().and_then(|q| q.dscp.as_ref())
            && dscp.value().is_none()
        {
            p.add(
                "spec.qosControls.dscp",
                dscp,
                "DSCP must be a number 0-63 or one of DF, EF, AF11-AF43, CS0-CS6",
            );
        }
    }

    fn check_addresses(&self, p: &mut Problems) {
        let s = &self.spec;
        let mut networks = Vec::new();
        for (i, text) in s.ip_networks.iter().flatten().enumerate() {
            let field = format!("spec.ipNetworks[{i}]");
            let Some(net) = parse_cidr_or_ip(text) else {
                p.add(field, text, "invalid CIDR");
                continue;
            };
            if !is_masked(&net) {
                p.add(&field, text, "CIDR has host bits set");
            } else if net.prefix() != if net.is_ipv4() { 32 } else { 128 } {
                p.add(
                    &field,
                    text,
                    "IP network contains multiple addresses: use a /32 or /128",
                );
            }
            networks.push(net);
        }
        for (i, nat) in s.ip_nats.iter().flatten().enumerate() {
            let path = format!("spec.ipNATs[{i}]");
            let internal = nat.internal_ip.parse::<IpAddr>().ok();
            let external = nat.external_ip.parse::<IpAddr>().ok();
            if internal.is_none() {
                p.add(
                    format!("{path}.internalIP"),
                    &nat.internal_ip,
                    "invalid IP address",
                );
            }
            if external.is_none() {
                p.add(
                    format!("{path}.externalIP"),
                    &nat.external_ip,
                    "invalid IP address",
                );
            }
            if let (Some(int), Some(ext)) = (internal, external)
                && int.is_ipv4() != ext.is_ipv4()
            {
                p.add(
                    format!("{path}.externalIP"),
                    &nat.external_ip,
                    "mismatched IP versions",
                );
            }
            if let Some(int) = internal
                && !networks.iter().any(|n| n.contains(int))
            {
                p.add(
                    format!("{path}.internalIP"),
                    &nat.internal_ip,
                    "NAT is not in the endpoint networks",
                );
            }
        }
        for (field, value, v4) in [
            ("spec.ipv4Gateway", &s.ipv4_gateway, true),
            ("spec.ipv6Gateway", &s.ipv6_gateway, false),
        ] {
            let Some(v) = value.as_deref().filter(|v| !v.is_empty()) else {
                continue;
            };
            match v.parse::<IpAddr>() {
                Ok(ip) if ip.is_ipv4() == v4 => {}
                _ => p.add(
                    field,
                    v,
                    if v4 {
                        "invalid IPv4 gateway address"
                    } else {
                        "invalid IPv6 gateway address"
                    },
                ),
            }
        }
        for (i, text) in s.allow_spoofed_source_prefixes.iter().flatten().enumerate() {
            if parse_cidr_or_ip(text).is_none() {
                p.add(
                    format!("spec.allowSpoofedSourcePrefixes[{i}]"),
                    text,
                    "invalid CIDR",
                );
            }
        }
    }
}

/// Calico's container ID format: `[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?`.
fn is_container_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

impl WorkloadEndpointPort {
    fn check(&self, path: &str, p: &mut Problems) {
        check_port_protocol(p, &format!("{path}.protocol"), &self.protocol);
        match self.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => {
                if let Some(why) = port_name_problem(n) {
                    p.add(format!("{path}.name"), n, why);
                }
            }
            None if self.host_port.unwrap_or(0) == 0 => p.add(
                format!("{path}.name"),
                "",
                "a port name is required unless hostPort is set",
            ),
            None => {}
        }
        if self.port == 0 {
            p.add(format!("{path}.port"), 0, "port must be 1-65535");
        }
        if let Some(ip) = self.host_ip.as_deref().filter(|ip| !ip.is_empty())
            && !parse_cidr_or_ip(ip).is_some_and(|n| is_masked(&n))
        {
            p.add(format!("{path}.hostIP"), ip, "invalid IP address");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_round_trip, errors, parse_error};

    const WEP: &str = "
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: node1-k8s-my--nginx--b1337a-eth0
  namespace: default
  labels:
    app: frontend
    projectcalico.org/serviceaccount: default
spec:
  node: node1
  orchestrator: k8s
  pod: my-nginx-b1337a
  endpoint: eth0
  containerID: 9f3c0d2e7b1a4c58
  serviceAccountName: default
  interfaceName: cali0ef24ba
  mac: ca:fe:1d:52:bb:e9
  ipNetworks:
    - 192.168.0.0/32
    - 'fd00::17/128'
  ipNATs:
    - internalIP: 192.168.0.0
      externalIP: 172.16.0.10
  ipv4Gateway: 169.254.1.1
  profiles:
    - kns.default
    - ksa.default.default
  ports:
    - name: http
      port: 80
      protocol: TCP
    - port: 8443
      protocol: TCP
      hostPort: 443
      hostIP: 10.0.0.1
  allowSpoofedSourcePrefixes:
    - 10.10.0.0/16
  qosControls:
    ingressBandwidth: 1000000
    egressPacketRate: 100
    dscp: AF21
";

    #[test]
    fn round_trip_adds_the_namespace_and_orchestrator_labels() {
        assert_round_trip(
            WEP,
            "
metadata:
  labels:
    projectcalico.org/namespace: default
    projectcalico.org/orchestrator: k8s
",
        );
    }

    #[test]
    fn name_is_built_from_the_spec_when_missing() {
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {namespace: ns1}
spec:
  node: node-a
  orchestrator: cni
  containerID: abc123
  endpoint: eth0
  interfaceName: cali12345
",
            "
metadata:
  name: node--a-cni-abc123-eth0
  labels:
    projectcalico.org/namespace: ns1
    projectcalico.org/orchestrator: cni
",
        );
        let mut spec = WorkloadEndpointSpec {
            node: Some("n".into()),
            orchestrator: Some("libnetwork".into()),
            endpoint: Some("e".into()),
            ..Default::default()
        };
        assert_eq!(endpoint_name(&spec).unwrap(), "n-libnetwork-libnetwork-e");
        spec.orchestrator = Some("openstack".into());
        assert_eq!(
            endpoint_name(&spec),
            Err(("workload", "field should be assigned".into()))
        );
        spec.workload = Some("-vm".into());
        assert_eq!(
            endpoint_name(&spec),
            Err(("workload", "field must not begin with a '-'".into()))
        );
    }

    #[test]
    fn name_must_match_the_spec() {
        assert_eq!(
            errors(&WEP.replace("pod: my-nginx-b1337a", "pod: other")),
            [
                "error with field metadata.name = 'node1-k8s-my--nginx--b1337a-eth0' (the \
              WorkloadEndpoint name does not match the primary identifiers assigned in the \
              Spec: expected name node1-k8s-other-eth0)"
            ]
        );
        assert_eq!(
            errors(&WEP.replace("  endpoint: eth0\n", "")),
            [
                "error with field spec.endpoint = '' (field should be assigned: a \
              WorkloadEndpoint's name is built from it)"
            ]
        );
    }

    #[test]
    fn address_checks() {
        assert_eq!(
            errors(&WEP.replace("192.168.0.0/32", "192.168.0.0/24")),
            [
                "error with field spec.ipNetworks[0] = '192.168.0.0/24' (IP network contains \
                 multiple addresses: use a /32 or /128)",
            ]
        );
        assert_eq!(
            errors(&WEP.replace("internalIP: 192.168.0.0", "internalIP: 192.168.0.9")),
            [
                "error with field spec.ipNATs[0].internalIP = '192.168.0.9' (NAT is not in the \
              endpoint networks)"
            ]
        );
        assert_eq!(
            errors(&WEP.replace("externalIP: 172.16.0.10", "externalIP: 'fd00::10'")),
            ["error with field spec.ipNATs[0].externalIP = 'fd00::10' (mismatched IP versions)"]
        );
        assert_eq!(
            errors(&WEP.replace("ipv4Gateway: 169.254.1.1", "ipv4Gateway: 'fe80::1'")),
            ["error with field spec.ipv4Gateway = 'fe80::1' (invalid IPv4 gateway address)"]
        );
        assert_eq!(
            errors(&WEP.replace("10.10.0.0/16", "10.10.0.0/33")),
            [
                "error with field spec.allowSpoofedSourcePrefixes[0] = '10.10.0.0/33' (invalid \
              CIDR)"
            ]
        );
        assert_eq!(
            errors(&WEP.replace("ca:fe:1d:52:bb:e9", "ca:fe:1d:52:bb")),
            ["error with field spec.mac = 'ca:fe:1d:52:bb' (invalid MAC address)"]
        );
    }

    #[test]
    fn other_checks() {
        assert_eq!(
            errors(&WEP.replace("  interfaceName: cali0ef24ba\n", "")),
            [
                "error with field spec.interfaceName = '' (an interface name is '*' or 1-15 \
              letters, digits, '_', '.' or '-')"
            ]
        );
        assert_eq!(
            errors(&WEP.replace("      hostPort: 443\n", "")),
            [
                "error with field spec.ports[1].name = '' (a port name is required unless \
              hostPort is set)"
            ]
        );
        assert_eq!(
            errors(&WEP.replace(
                "port: 80\n      protocol: TCP",
                "port: 80\n      protocol: ICMP"
            )),
            [
                "error with field spec.ports[0].protocol = 'ICMP' (protocol does not support \
              ports: use TCP, UDP or SCTP)"
            ]
        );
        assert_eq!(
            errors(&WEP.replace("dscp: AF21", "dscp: 64")),
            [
                "error with field spec.qosControls.dscp = '64' (DSCP must be a number 0-63 or one \
              of DF, EF, AF11-AF43, CS0-CS6)"
            ]
        );
        assert_eq!(
            errors(&WEP.replace("containerID: 9f3c", "containerID: _9f3c")).len(),
            1
        );
        assert_eq!(
            errors(&WEP.replace("namespace: default", "namespace: Default")).len(),
            1
        );
    }

    #[test]
    fn dscp_values() {
        assert_eq!(Dscp::Name("ef".into()).value(), Some(46));
        assert_eq!(Dscp::Name("CS6".into()).value(), Some(48));
        assert_eq!(Dscp::Number(63).value(), Some(63));
        assert_eq!(Dscp::Name("AF44".into()).value(), None);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let (path, msg) = parse_error(&WEP.replace("ipNATs", "ipNats"));
        assert_eq!(path, "spec.ipNats");
        assert!(msg.contains("unknown field"), "{msg}");
        let (path, _) = parse_error(&WEP.replace("egressPacketRate", "egressPacketRat"));
        assert_eq!(path, "spec.qosControls.egressPacketRat");
    }
}
