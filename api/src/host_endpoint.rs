//! `HostEndpoint`: one of a node's own interfaces (or all of them, `*`), so that policy can
//! protect the host. Field names follow Calico's `hostendpoint.go`; Calico writes no defaults;
//! checks are the validator's and the CEL rules on `HostEndpointSpec` (node required;
//! `interfaceName` or `expectedIPs` required).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::labels::check_metadata;
use crate::port::port_name_problem;
use crate::protocol::Protocol;
use crate::validation::{Problems, kind_impls};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HostEndpoint {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: HostEndpointSpec,
}

kind_impls!(HostEndpoint);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HostEndpointSpec {
    /// The node the interface is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The interface, or `*` for all of the host's traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    /// The interface's addresses: they find the interface when no name is given, and are what
    /// policy selectors matching this endpoint match.
    #[serde(
        default,
        rename = "expectedIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub expected_ips: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Vec<String>>,
    /// Named ports that policy rules can refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<EndpointPort>>,
}

/// A named port of a host endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EndpointPort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
}

/// An endpoint's `interfaceName`: `*` alone (every interface) or a name without globs.
pub(crate) fn is_interface_name(s: &str) -> bool {
    s == "*" || crate::names::is_interface_name(s, false)
}

pub(crate) const INTERFACE_RULE: &str =
    "an interface name is '*' or 1-15 letters, digits, '_', '.' or '-'";

/// The checks Calico makes on an endpoint port's protocol: a valid protocol that has ports.
pub(crate) fn check_port_protocol(p: &mut Problems, field: &str, proto: &Protocol) {
    if let Some(why) = proto.problem() {
        p.add(field, proto, why);
    } else if !proto.supports_ports() {
        p.add(
            field,
            proto,
            "protocol does not support ports: use TCP, UDP or SCTP",
        );
    }
}

impl HostEndpoint {
    fn defaults(&mut self) {}

    fn check(&self, p: &mut Problems) {
        p.subdomain("metadata.name", &self.metadata.name);
        check_metadata(p, &self.metadata);
        let s = &self.spec;
        match s.node.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => p.subdomain("spec.node", n),
            None => p.add("spec.node", "", "node must be specified"),
        }
        let interface = s.interface_name.as_deref().filter(|i| !i.is_empty());
        if let Some(i) = interface.filter(|i| !is_interface_name(i)) {
            p.add("spec.interfaceName", i, INTERFACE_RULE);
        }
        let ips = s.expected_ips.as_deref().unwrap_or_default();
        if interface.is_none() && ips.is_empty() {
            p.add(
                "spec.interfaceName",
                "",
                "at least one of interfaceName or expectedIPs must be specified",
            );
        }
        for (i, ip) in ips.iter().enumerate() {
            if ip.parse::<IpAddr>().is_err() {
                p.add(format!("spec.expectedIPs[{i}]"), ip, "invalid IP address");
            }
        }
        for (i, profile) in s.profiles.iter().flatten().enumerate() {
            p.subdomain(&format!("spec.profiles[{i}]"), profile);
        }
        for (i, port) in s.ports.iter().flatten().enumerate() {
            let path = format!("spec.ports[{i}]");
            if let Some(why) = port_name_problem(&port.name) {
                p.add(format!("{path}.name"), &port.name, why);
            }
            check_port_protocol(p, &format!("{path}.protocol"), &port.protocol);
            if port.port == 0 {
                p.add(format!("{path}.port"), 0, "port must be 1-65535");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_round_trip, errors, parse_error};

    const HEP: &str = "
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: some.name
  labels:
    type: production
spec:
  interfaceName: eth0
  node: myhost
  expectedIPs:
    - 192.168.0.1
    - 'fd00::1'
  profiles:
    - profile1
    - kns.default
  ports:
    - name: some-port
      port: 1234
      protocol: TCP
    - name: another-port
      port: 5432
      protocol: 17
";

    #[test]
    fn round_trip_unchanged() {
        assert_round_trip(HEP, "");
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: all-interfaces}
spec: {node: myhost, interfaceName: '*'}
",
            "",
        );
    }

    #[test]
    fn node_and_an_interface_are_required() {
        assert_eq!(
            errors(
                "
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: h}
spec: {}
"
            ),
            [
                "error with field spec.node = '' (node must be specified)",
                "error with field spec.interfaceName = '' (at least one of interfaceName or \
                 expectedIPs must be specified)",
            ]
        );
        let ips_only = HEP.replace("  interfaceName: eth0\n", "");
        assert_eq!(errors(&ips_only), Vec::<String>::new());
    }

    #[test]
    fn field_checks() {
        assert_eq!(
            errors(&HEP.replace("eth0", "a-very-long-interface")),
            [
                "error with field spec.interfaceName = 'a-very-long-interface' (an interface name \
              is '*' or 1-15 letters, digits, '_', '.' or '-')"
            ]
        );
        assert_eq!(
            errors(&HEP.replace("192.168.0.1", "192.168.0.0/24")),
            ["error with field spec.expectedIPs[0] = '192.168.0.0/24' (invalid IP address)"]
        );
        assert_eq!(
            errors(&HEP.replace("protocol: 17", "protocol: ICMP")),
            [
                "error with field spec.ports[1].protocol = 'ICMP' (protocol does not support \
              ports: use TCP, UDP or SCTP)"
            ]
        );
        assert_eq!(
            errors(&HEP.replace("port: 1234", "port: 0")),
            ["error with field spec.ports[0].port = '0' (port must be 1-65535)"]
        );
        assert_eq!(
            errors(&HEP.replace("some-port", "Some_Port")),
            [
                "error with field spec.ports[0].name = 'Some_Port' (invalid port name: must \
              contain only alpha-numeric characters (a-z, 0-9), and hyphens (-))"
            ]
        );
        assert_eq!(errors(&HEP.replace("profile1", "Profile1")).len(), 1);
        assert_eq!(
            errors(&HEP.replace("node: myhost", "node: My_Host")).len(),
            1
        );
    }

    #[test]
    fn parse_errors_name_the_field() {
        let (path, msg) = parse_error(&HEP.replace("expectedIPs", "expectedIps"));
        assert_eq!(path, "spec.expectedIps");
        assert!(msg.contains("unknown field"), "{msg}");
        let (path, msg) = parse_error(&HEP.replace("      port: 5432\n", ""));
        assert_eq!(path, "spec.ports[1]");
        assert!(msg.contains("missing field `port`"), "{msg}");
        let (path, _) = parse_error(&HEP.replace("port: 1234", "port: 70000"));
        assert_eq!(path, "spec.ports[0].port");
    }

    #[test]
    fn interface_names() {
        for ok in ["*", "eth0", "bond0.100", "en_p1-s0"] {
            assert!(is_interface_name(ok), "{ok}");
        }
        for bad in ["", "eth 0", "eth0:1", "abcdefghijklmnop", "eth*"] {
            assert!(!is_interface_name(bad), "{bad}");
        }
    }
}
