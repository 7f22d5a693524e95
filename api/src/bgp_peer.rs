//! `BGPPeer`: a BGP session (or a set of them, by selector) between Calico nodes and a peer
//! (`bgppeer.go`, and the CEL rules on `BGPPeerSpec`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::asn::Asn;
use crate::duration::Duration;
use crate::net::PeerIp;
use crate::validation::{Problems, kind_impls};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeer {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BGPPeerSpec,
}

kind_impls!(BGPPeer);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerSpec {
    /// The one node this peering is for; with neither this nor `nodeSelector`, every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    /// `<IP>`, `<IPv4>:<port>` or `[<IPv6>]:<port>`, as written; [`BGPPeerSpec::peer_ip`]
    /// parses it.
    #[serde(default, rename = "peerIP", skip_serializing_if = "Option::is_none")]
    pub peer_ip: Option<String>,
    /// 0 means unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<Asn>,
    #[serde(
        default,
        rename = "localASNumber",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_as_number: Option<Asn>,
    /// Peer with the Calico nodes this selects, at their own addresses and AS numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_selector: Option<String>,
    /// Deprecated by `nextHopMode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_original_next_hop: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_mode: Option<NextHopMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<BGPPassword>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<SourceAddress>,
    /// Graceful restart time; BIRD's default (120s) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_time: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<Duration>,
    #[serde(
        default,
        rename = "numAllowedLocalASNumbers",
        skip_serializing_if = "Option::is_none"
    )]
    pub num_allowed_local_as_numbers: Option<i32>,
    /// GTSM (RFC 5082): the number of hops to the peer.
    #[serde(
        default,
        rename = "ttlSecurity",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_security: Option<u8>,
    /// A gateway to install a /32 route to the peer through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable_by: Option<String>,
    /// Names of `BGPFilter`s, applied in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_workload_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_peering: Option<ReversePeering>,
}

/// How the next hop of routes sent to the peer is set.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHopMode {
    Auto,
    /// `next hop self`.
    #[serde(rename = "Self")]
    OwnAddress,
    /// `next hop keep`.
    Keep,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceAddress {
    #[serde(rename = "UseNodeIP")]
    UseNodeIp,
    None,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReversePeering {
    Auto,
    Manual,
}

/// A BGP (TCP MD5) password, from a Kubernetes secret in calico-node's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BGPPassword {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

/// Kubernetes' `SecretKeySelector`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SecretKeySelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl BGPPeerSpec {
    /// The peer address parsed; `None` when unset, `Some(Err)` when it does not parse.
    pub fn peer_ip(&self) -> Option<Result<PeerIp, crate::net::PeerIpError>> {
        set(&self.peer_ip).map(str::parse)
    }

    /// The peer's AS number, if set (0 counts as unset, as in Calico).
    pub fn as_number(&self) -> Option<Asn> {
        self.as_number.filter(|a| a.0 != 0)
    }
}

impl BGPPeer {
    fn defaults(&mut self) {}

    fn check(&self, p: &mut Problems) {
        p.subdomain("metadata.name", &self.metadata.name);
        let s = &self.spec;
        if let Some(node) = set(&s.node) {
            p.subdomain("spec.node", node);
        }
        p.selector("spec.nodeSelector", s.node_selector.as_deref());
        p.selector("spec.peerSelector", s.peer_selector.as_deref());
        p.selector(
            "spec.localWorkloadSelector",
            s.local_workload_selector.as_deref(),
        );

        let peer = match s.peer_ip() {
            Some(Err(e)) => {
                p.add(
                    "spec.peerIP",
                    &e.0,
                    "must be <IP>, <IPv4>:<port> or [<IPv6>]:<port>, port 1-65535",
                );
                None
            }
            Some(Ok(peer)) => Some(peer),
            None => None,
        };
        if let Some(gw) = set(&s.reachable_by) {
            match gw.parse::<IpAddr>() {
                Err(_) => p.add("spec.reachableBy", gw, "must be an IP address"),
                Ok(_) if s.peer_ip.as_deref().is_none_or(str::is_empty) => p.add(
                    "spec.reachableBy",
                    gw,
                    "reachableBy must be empty when peerIP is empty",
                ),
                Ok(gw_ip) => {
                    if peer.is_some_and(|peer| peer.ip.is_ipv4() != gw_ip.is_ipv4()) {
                        p.add(
                            "spec.reachableBy",
                            gw,
                            "ReachableBy and PeerIP address family mismatched",
                        );
                    }
                }
            }
        }
        for (i, f) in s.filters.iter().flatten().enumerate() {
            p.subdomain(&format!("spec.filters[{i}]"), f);
        }

        // Calico's cross-field rules (CEL on BGPPeerSpec).
        if let (Some(node), Some(_)) = (set(&s.node), set(&s.node_selector)) {
            p.add(
                "spec.node",
                node,
                "node and nodeSelector cannot both be set",
            );
        }
        if let (Some(ip), Some(_)) = (set(&s.peer_ip), set(&s.peer_selector)) {
            p.add(
                "spec.peerIP",
                ip,
                "peerIP and peerSelector cannot both be set",
            );
        }
        if let (Some(_), Some(asn)) = (set(&s.peer_selector), s.as_number()) {
            p.add(
                "spec.asNumber",
                asn,
                "asNumber must be empty when peerSelector is set",
            );
        }
        if let Some(lws) = set(&s.local_workload_selector) {
            if let Some(ip) = set(&s.peer_ip) {
                p.add(
                    "spec.peerIP",
                    ip,
                    "peerIP must be empty when localWorkloadSelector is set",
                );
            }
            if let Some(ps) = set(&s.peer_selector) {
                p.add(
                    "spec.peerSelector",
                    ps,
                    "peerSelector must be empty when localWorkloadSelector is set",
                );
            }
            if s.as_number().is_none() {
                p.add(
                    "spec.localWorkloadSelector",
                    lws,
                    "asNumber is required when localWorkloadSelector is set",
                );
            }
        }
        if s.keep_original_next_hop == Some(true) && s.next_hop_mode.is_some() {
            p.add(
                "spec.keepOriginalNextHop",
                "true",
                "keepOriginalNextHop and nextHopMode cannot both be set; keepOriginalNextHop is \
                 deprecated, use nextHopMode instead",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::AnyResource;
    use crate::testing::{assert_round_trip, errors, parse_error, read};

    #[test]
    fn round_trip_unchanged() {
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: rack1-tor
spec:
  nodeSelector: rack == 'rack-1'
  peerIP: 10.0.1.1:179
  asNumber: 64513
  localASNumber: 64600
  keepOriginalNextHop: false
  password:
    secretKeyRef:
      name: bgp-secrets
      key: rr-password
  sourceAddress: UseNodeIP
  maxRestartTime: 2m
  keepaliveTime: 30s
  numAllowedLocalASNumbers: 1
  ttlSecurity: 1
  reachableBy: 10.0.1.254
  filters: [export-pods, import-default]
  reversePeering: Manual
",
            "",
        );
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: route-reflectors}
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'
  nextHopMode: Self
",
            "",
        );
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: node1-v6}
spec: {node: node1, peerIP: '[fd00::1]:1179', asNumber: '1.10'}
",
            "spec: {asNumber: 65546}",
        );
    }

    #[test]
    fn typed_accessors() {
        let AnyResource::BGPPeer(p) = read(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\n\
             spec: {peerIP: 'fd00::1', asNumber: 65000, keepaliveTime: 1m30s}\n",
        )
        .unwrap() else {
            panic!()
        };
        let peer = p.spec.peer_ip().unwrap().unwrap();
        assert_eq!(
            (peer.ip.to_string(), peer.port),
            ("fd00::1".to_string(), None)
        );
        assert_eq!(p.spec.as_number(), Some(crate::asn::Asn(65000)));
        assert_eq!(
            p.spec.keepalive_time.unwrap().to_std(),
            Some(std::time::Duration::from_secs(90))
        );
    }

    fn peer(spec: &str) -> String {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {spec}\n"
        )
    }

    #[test]
    fn peer_ip_and_reachable_by() {
        for bad in [
            "10.0.0.1:0",
            "10.0.0.1:70000",
            "'[fd00::1]'",
            "router.example",
        ] {
            let bad_text = bad.trim_matches('\'');
            assert_eq!(
                errors(&peer(&format!("{{peerIP: {bad}, asNumber: 1}}"))),
                [format!(
                    "error with field spec.peerIP = '{bad_text}' (must be <IP>, <IPv4>:<port> or \
                     [<IPv6>]:<port>, port 1-65535)"
                )]
            );
        }
        assert_eq!(
            errors(&peer("{peerIP: 10.0.0.1, reachableBy: 'fd00::1'}")),
            [
                "error with field spec.reachableBy = 'fd00::1' (ReachableBy and PeerIP address family mismatched)"
            ]
        );
        assert_eq!(
            errors(&peer("{reachableBy: 10.0.0.254}")),
            [
                "error with field spec.reachableBy = '10.0.0.254' (reachableBy must be empty when peerIP is empty)"
            ]
        );
        assert_eq!(
            errors(&peer("{peerIP: 10.0.0.1, reachableBy: gw}")),
            ["error with field spec.reachableBy = 'gw' (must be an IP address)"]
        );
    }

    #[test]
    fn cross_field_rules() {
        assert_eq!(
            errors(&peer("{node: n1, nodeSelector: all()}")),
            ["error with field spec.node = 'n1' (node and nodeSelector cannot both be set)"]
        );
        assert_eq!(
            errors(&peer(
                "{peerIP: 10.0.0.1, peerSelector: all(), asNumber: 65000}"
            )),
            [
                "error with field spec.peerIP = '10.0.0.1' (peerIP and peerSelector cannot both be set)",
                "error with field spec.asNumber = '65000' (asNumber must be empty when peerSelector is set)",
            ]
        );
        assert_eq!(
            errors(&peer(
                "{localWorkloadSelector: color == 'red', peerIP: 10.0.0.1}"
            )),
            [
                "error with field spec.peerIP = '10.0.0.1' (peerIP must be empty when localWorkloadSelector is set)",
                "error with field spec.localWorkloadSelector = 'color == 'red'' (asNumber is required when \
                 localWorkloadSelector is set)",
            ]
        );
        assert_eq!(
            errors(&peer(
                "{localWorkloadSelector: all(), peerSelector: all(), asNumber: 65001}"
            )),
            [
                "error with field spec.asNumber = '65001' (asNumber must be empty when peerSelector is set)",
                "error with field spec.peerSelector = 'all()' (peerSelector must be empty when \
                 localWorkloadSelector is set)",
            ]
        );
        assert_eq!(
            errors(&peer(
                "{peerIP: 10.0.0.1, keepOriginalNextHop: true, nextHopMode: Keep}"
            )),
            [
                "error with field spec.keepOriginalNextHop = 'true' (keepOriginalNextHop and nextHopMode cannot both \
              be set; keepOriginalNextHop is deprecated, use nextHopMode instead)"
            ]
        );
        assert_eq!(
            errors(&peer("{node: Node_1, filters: [ok, Not_OK]}")),
            [
                "error with field spec.node = 'Node_1' (must be a DNS-1123 subdomain: lower-case alphanumerics, \
                 '-' and '.', starting and ending with an alphanumeric)",
                "error with field spec.filters[1] = 'Not_OK' (must be a DNS-1123 subdomain: lower-case \
                 alphanumerics, '-' and '.', starting and ending with an alphanumeric)",
            ]
        );
    }

    #[test]
    fn parse_errors_name_the_field() {
        let (path, message) = parse_error(&peer("{asNumber: 1.10}"));
        assert_eq!(path, "spec.asNumber");
        assert!(message.contains("must be quoted"), "{message}");
        let (path, message) = parse_error(&peer("{maxRestartTime: 2 minutes}"));
        assert_eq!(path, "spec.maxRestartTime");
        assert!(
            message.starts_with("invalid duration '2 minutes'"),
            "{message}"
        );
        let (path, _) = parse_error(&peer("{ttlSecurity: 256}"));
        assert_eq!(path, "spec.ttlSecurity");
        let (path, message) = parse_error(&peer("{nextHopMode: self}"));
        assert_eq!(path, "spec.nextHopMode");
        assert_eq!(
            message,
            "unknown variant `self`, expected one of `Auto`, `Self`, `Keep`"
        );
        // Calico Enterprise fields are not part of Calico's v3 BGPPeer.
        let (path, _) = parse_error(&peer("{failureDetectionMode: BFDIfDirectlyConnected}"));
        assert_eq!(path, "spec.failureDetectionMode");
        let (path, _) = parse_error(&peer(
            "{password: {secretKeyRef: {name: s, key: k, namespace: x}}}",
        ));
        assert_eq!(path, "spec.password.secretKeyRef.namespace");
    }
}
