//! `BGPFilter`: ordered accept/reject rules on routes a BGP peer exports or imports
//! (`bgpfilter.go` and its CEL rules).

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::asn::Asn;
use crate::bgp_configuration::is_community_value;
use crate::net::{is_masked, parse_cidr_or_ip};
use crate::validation::{Problems, kind_impls};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BGPFilter {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BGPFilterSpec,
}

kind_impls!(BGPFilter);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BGPFilterSpec {
    #[serde(default, rename = "exportV4", skip_serializing_if = "Option::is_none")]
    pub export_v4: Option<Vec<BGPFilterRule>>,
    #[serde(default, rename = "importV4", skip_serializing_if = "Option::is_none")]
    pub import_v4: Option<Vec<BGPFilterRule>>,
    #[serde(default, rename = "exportV6", skip_serializing_if = "Option::is_none")]
    pub export_v6: Option<Vec<BGPFilterRule>>,
    #[serde(default, rename = "importV6", skip_serializing_if = "Option::is_none")]
    pub import_v6: Option<Vec<BGPFilterRule>>,
}

/// One rule. Calico has separate V4 and V6 types with the same fields; the family decides
/// the CIDR and prefix-length checks.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BGPFilterRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<PrefixLength>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MatchSource>,
    /// An interface name, `*` as a wildcard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_operator: Option<MatchOperator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_type: Option<PeerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<CommunityMatch>,
    #[serde(
        default,
        rename = "asPathPrefix",
        skip_serializing_if = "Option::is_none"
    )]
    pub as_path_prefix: Option<Vec<Asn>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<Operation>>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixLength {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchSource {
    RemotePeers,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOperator {
    Equal,
    NotEqual,
    In,
    NotIn,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerType {
    #[serde(rename = "eBGP")]
    Ebgp,
    #[serde(rename = "iBGP")]
    Ibgp,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Accept,
    Reject,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CommunityMatch {
    pub values: Vec<String>,
}

/// A route change; exactly one field set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_community: Option<CommunityValue>,
    #[serde(
        default,
        rename = "prependASPath",
        skip_serializing_if = "Option::is_none"
    )]
    pub prepend_as_path: Option<PrependAsPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_priority: Option<PriorityValue>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CommunityValue {
    pub value: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PrependAsPath {
    pub prefix: Vec<Asn>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PriorityValue {
    pub value: i64,
}

const PRIORITY: std::ops::RangeInclusive<i64> = 1..=2_147_483_646;

impl BGPFilter {
    fn defaults(&mut self) {}

    fn check(&self, p: &mut Problems) {
        p.subdomain("metadata.name", &self.metadata.name);
        let s = &self.spec;
        for (field, rules, v4) in [
            ("spec.exportV4", &s.export_v4, true),
            ("spec.importV4", &s.import_v4, true),
            ("spec.exportV6", &s.export_v6, false),
            ("spec.importV6", &s.import_v6, false),
        ] {
            for (i, r) in rules.iter().flatten().enumerate() {
                r.check(p, &format!("{field}[{i}]"), v4);
            }
        }
    }
}

impl BGPFilterRule {
    fn check(&self, p: &mut Problems, at: &str, v4: bool) {
        let (family, max_len) = if v4 { ("IPv4", 32) } else { ("IPv6", 128) };
        let cidr = self.cidr.as_deref().filter(|c| !c.is_empty());
        if let Some(c) = cidr
            && !parse_cidr_or_ip(c).is_some_and(|n| n.is_ipv4() == v4 && is_masked(&n))
        {
            p.add(
                format!("{at}.cidr"),
                c,
                format!("must be an {family} CIDR with no host bits set"),
            );
        }
        if cidr.is_some() != self.match_operator.is_some() {
            p.add(
                format!("{at}.matchOperator"),
                self.match_operator
                    .map(|m| format!("{m:?}"))
                    .unwrap_or_default(),
                "cidr and matchOperator must both be set or both be empty",
            );
        }
        if let Some(pl) = self.prefix_length {
            if cidr.is_none() {
                p.add(
                    format!("{at}.prefixLength"),
                    "",
                    "cidr is required when prefixLength is set",
                );
            }
            for (name, v) in [("min", pl.min), ("max", pl.max)] {
                if let Some(v) = v.filter(|v| !(0..=max_len).contains(v)) {
                    p.add(
                        format!("{at}.prefixLength.{name}"),
                        v,
                        format!("must be between 0 and {max_len}"),
                    );
                }
            }
        }
        if let Some(iface) = &self.interface
            && !crate::names::is_interface_name(iface, true)
        {
            p.add(
                format!("{at}.interface"),
                iface,
                "must be 1-15 of [a-zA-Z0-9_.*-]",
            );
        }
        if let Some(m) = &self.communities {
            if m.values.len() != 1 {
                p.add(
                    format!("{at}.communities.values"),
                    m.values.len(),
                    "exactly one value must be given",
                );
            }
            for (j, v) in m.values.iter().enumerate() {
                if !is_community_value(v) {
                    p.add(
                        format!("{at}.communities.values[{j}]"),
                        v,
                        "must be aa:nn or aa:nn:mm",
                    );
                }
            }
        }
        if let Some(v) = self.priority.filter(|v| !PRIORITY.contains(v)) {
            p.add(
                format!("{at}.priority"),
                v,
                "must be between 1 and 2147483646",
            );
        }
        let ops = self.operations.as_deref().unwrap_or_default();
        if !ops.is_empty() && self.action != Action::Accept {
            p.add(
                format!("{at}.operations"),
                ops.len(),
                "operations may only be used with action Accept",
            );
        }
        if self.operations.is_some() && !(1..=10).contains(&ops.len()) {
            p.add(
                format!("{at}.operations"),
                ops.len(),
                "must have 1 to 10 entries",
            );
        }
        for (j, op) in ops.iter().enumerate() {
            let at = format!("{at}.operations[{j}]");
            let set = [
                op.add_community.is_some(),
                op.prepend_as_path.is_some(),
                op.set_priority.is_some(),
            ];
            if set.iter().filter(|s| **s).count() != 1 {
                p.add(
                    &at,
                    "",
                    "exactly one of addCommunity, prependASPath, setPriority must be set",
                );
            }
            if let Some(c) = op
                .add_community
                .as_ref()
                .filter(|c| !is_community_value(&c.value))
            {
                p.add(
                    format!("{at}.addCommunity.value"),
                    &c.value,
                    "must be aa:nn or aa:nn:mm",
                );
            }
            if let Some(pp) = op
                .prepend_as_path
                .as_ref()
                .filter(|pp| !(1..=10).contains(&pp.prefix.len()))
            {
                p.add(
                    format!("{at}.prependASPath.prefix"),
                    pp.prefix.len(),
                    "must have 1 to 10 AS numbers",
                );
            }
            if let Some(sp) = op
                .set_priority
                .as_ref()
                .filter(|sp| !PRIORITY.contains(&sp.value))
            {
                p.add(
                    format!("{at}.setPriority.value"),
                    sp.value,
                    "must be between 1 and 2147483646",
                );
            }
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
kind: BGPFilter
metadata:
  name: my-filter
spec:
  exportV4:
    - action: Accept
      matchOperator: In
      cidr: 77.0.0.0/16
      prefixLength: {min: 24, max: 28}
      operations:
        - addCommunity: {value: '65000:100'}
        - prependASPath: {prefix: [65000, 65546]}
    - action: Reject
      interface: '*.calico'
      source: RemotePeers
      peerType: eBGP
  importV4:
    - action: Reject
      matchOperator: NotIn
      cidr: 44.0.0.0/16
      communities: {values: ['65000:1:2']}
  exportV6:
    - action: Accept
      matchOperator: Equal
      cidr: '9000::0/64'
      asPathPrefix: [65001]
      priority: 512
  importV6:
    - action: Accept
      operations: [{setPriority: {value: 100}}]
",
            "",
        );
    }

    fn filter(spec: &str) -> String {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {{name: f}}\nspec: {spec}\n"
        )
    }

    #[test]
    fn rule_checks() {
        assert_eq!(
            errors(&filter(
                "{exportV4: [{action: Accept, cidr: 'fd00::/64', matchOperator: In}]}"
            )),
            [
                "error with field spec.exportV4[0].cidr = 'fd00::/64' (must be an IPv4 CIDR with no host bits set)"
            ]
        );
        assert_eq!(
            errors(&filter("{importV6: [{action: Accept, cidr: 'fd00::/64'}]}")),
            [
                "error with field spec.importV6[0].matchOperator = '' (cidr and matchOperator must both be set or both \
              be empty)"
            ]
        );
        assert_eq!(
            errors(&filter(
                "{importV4: [{action: Reject, prefixLength: {min: 33}}]}"
            )),
            [
                "error with field spec.importV4[0].prefixLength = '' (cidr is required when prefixLength is set)",
                "error with field spec.importV4[0].prefixLength.min = '33' (must be between 0 and 32)",
            ]
        );
        assert_eq!(
            errors(&filter(
                "{exportV4: [{action: Reject, operations: [{setPriority: {value: 5}}]}]}"
            )),
            [
                "error with field spec.exportV4[0].operations = '1' (operations may only be used with action Accept)"
            ]
        );
        assert_eq!(
            errors(&filter(
                "{exportV4: [{action: Accept, operations: [{setPriority: {value: 5}, addCommunity: {value: '1:2'}}]}]}"
            )),
            [
                "error with field spec.exportV4[0].operations[0] = '' (exactly one of addCommunity, prependASPath, \
              setPriority must be set)"
            ]
        );
        assert_eq!(
            errors(&filter(
                "{exportV4: [{action: Accept, interface: 'this-name-is-too-long'}]}"
            )),
            [
                "error with field spec.exportV4[0].interface = 'this-name-is-too-long' (must be 1-15 of [a-zA-Z0-9_.*-])"
            ]
        );
        let (path, message) = parse_error(&filter(
            "{exportV4: [{cidr: 10.0.0.0/8, matchOperator: In}]}",
        ));
        assert_eq!(
            (path.as_str(), message.as_str()),
            ("spec.exportV4[0]", "missing field `action`")
        );
        let (path, _) = parse_error(&filter("{exportV4: [{action: Drop}]}"));
        assert_eq!(path, "spec.exportV4[0].action");
        let (path, _) = parse_error(&filter("{exportV4: [{action: Accept, protocol: tcp}]}"));
        assert_eq!(path, "spec.exportV4[0].protocol");
    }
}
