//! `NetworkPolicy` (namespaced) and `GlobalNetworkPolicy`: ordered ingress and egress rules
//! applied to the endpoints a selector picks, within a tier. Field names follow Calico's
//! `networkpolicy.go` and `globalnetworkpolicy.go`; defaults are what Calico writes on create
//! (`api/pkg/defaults`: `types` from the rules present and the `projectcalico.org/tier` label;
//! the CRD default `tier: default`); checks are Calico's validator and the CEL rules on the
//! specs, plus calicoctl's refusal of `knp.default.` names.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ObjectMeta;
use crate::labels::{check_metadata, check_namespace};
use crate::names::{check_label, check_subdomain};
use crate::rule::{Rule, check_no_global, check_selector};
use crate::validation::{Problems, kind_impls};

/// The tier a policy belongs to when it names none.
pub const DEFAULT_TIER: &str = "default";
/// The label Calico puts on every policy, naming its tier, so selectors can match tiers.
pub const TIER_LABEL: &str = "projectcalico.org/tier";
/// The name prefix under which Calico's etcd mode stores Kubernetes NetworkPolicies; calicoctl
/// refuses Calico policies so named ("kubernetes network policies must be managed through the
/// kubernetes API").
pub const KUBERNETES_POLICY_PREFIX: &str = "knp.default.";
/// Longest policy name.
const NAME_MAX: usize = 253;
/// Most rules in one direction of one policy.
const RULES_MAX: usize = 1024;

/// The order of a policy or tier: lower applies first; none means "last".
///
/// Stored as Go's `float64`, and written as Go writes one: a whole number without a fraction
/// (`100`, not `100.0`), so what a user wrote comes back unchanged.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Order(pub f64);

/// Beyond 2^53 not every whole number is a distinct `f64`; write those as floats.
const EXACT_INTEGER_MAX: f64 = 9_007_199_254_740_992.0;

impl Serialize for Order {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() <= EXACT_INTEGER_MAX {
            s.serialize_i64(v as i64)
        } else {
            s.serialize_f64(v)
        }
    }
}

impl<'de> Deserialize<'de> for Order {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        f64::deserialize(d).map(Order)
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which directions of traffic a policy applies to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyType {
    Ingress,
    Egress,
}

/// Hints to Felix's policy engine; they never change what a policy enforces.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PerformanceHint {
    /// Program the policy on every node, as if a local endpoint matched it.
    AssumeNeededOnEveryNode,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicy {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NetworkPolicySpec,
}

kind_impls!(NetworkPolicy);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<Rule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<Rule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Defaults from the rules present: see [`default_types`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<PolicyType>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_hints: Option<Vec<PerformanceHint>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GlobalNetworkPolicy {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GlobalNetworkPolicySpec,
}

kind_impls!(GlobalNetworkPolicy);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GlobalNetworkPolicySpec {
    /// Defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<Rule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<Rule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Defaults from the rules present: see [`default_types`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<PolicyType>>,
    /// Untracked: applied before connection tracking, in the raw table (host endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub do_not_track: Option<bool>,
    /// Applied before DNAT, to traffic arriving at host endpoints; ingress only.
    #[serde(default, rename = "preDNAT", skip_serializing_if = "Option::is_none")]
    pub pre_dnat: Option<bool>,
    /// Also applied to traffic forwarded through host endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_on_forward: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_hints: Option<Vec<PerformanceHint>>,
}

/// Calico's default `types` for a policy that names none: Egress alone if it has egress rules
/// and no ingress rules, both if it has both, else Ingress (also with no rules at all).
pub fn default_types(ingress: &[Rule], egress: &[Rule]) -> Vec<PolicyType> {
    match (ingress.is_empty(), egress.is_empty()) {
        (_, true) => vec![PolicyType::Ingress],
        (true, false) => vec![PolicyType::Egress],
        (false, false) => vec![PolicyType::Ingress, PolicyType::Egress],
    }
}

fn rules(r: &Option<Vec<Rule>>) -> &[Rule] {
    r.as_deref().unwrap_or_default()
}

/// The defaults both policy kinds share: `tier`, `types` and the tier label.
fn policy_defaults(
    meta: &mut ObjectMeta,
    tier: &mut Option<String>,
    types: &mut Option<Vec<PolicyType>>,
    ingress: &[Rule],
    egress: &[Rule],
) {
    if tier.as_deref().is_none_or(str::is_empty) {
        *tier = Some(DEFAULT_TIER.to_string());
    }
    if types.as_ref().is_none_or(Vec::is_empty) {
        *types = Some(default_types(ingress, egress));
    }
    let tier = tier.clone().unwrap_or_default();
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(TIER_LABEL.to_string(), tier);
}

/// The checks both policy kinds share on their spec.
struct Shared<'a> {
    tier: &'a Option<String>,
    ingress: &'a [Rule],
    egress: &'a [Rule],
    selector: &'a Option<String>,
    types: &'a Option<Vec<PolicyType>>,
    service_account_selector: &'a Option<String>,
    performance_hints: &'a Option<Vec<PerformanceHint>>,
    /// GlobalNetworkPolicy: service matches must name their namespace.
    global: bool,
}

impl Shared<'_> {
    fn check(&self, p: &mut Problems) {
        if let Some(t) = self.tier.as_deref().filter(|t| !t.is_empty()) {
            p.check(check_subdomain("spec.tier", t));
        }
        for (field, sel) in [
            ("spec.selector", self.selector),
            ("spec.serviceAccountSelector", self.service_account_selector),
        ] {
            check_selector(p, field, sel.as_deref());
            check_no_global(p, field, sel.as_deref());
        }
        if let Some(types) = self.types {
            let mut seen = HashSet::new();
            for t in types {
                if !seen.insert(t) {
                    p.add(
                        "spec.types",
                        types_text(types),
                        format!("'{t:?}' type specified more than once"),
                    );
                }
            }
        }
        if let Some(hints) = self.performance_hints
            && hints.iter().collect::<HashSet<_>>().len() != hints.len()
        {
            p.add(
                "spec.performanceHints",
                format!("{hints:?}"),
                "performance hints must be unique",
            );
        }
        self.check_rules(p);
    }

    fn check_rules(&self, p: &mut Problems) {
        for (name, rules) in [("ingress", self.ingress), ("egress", self.egress)] {
            if rules.len() > RULES_MAX {
                p.add(
                    format!("spec.{name}"),
                    format!("{} rules", rules.len()),
                    format!("at most {RULES_MAX} rules"),
                );
            }
        }
        for (i, r) in self.ingress.iter().enumerate() {
            let path = format!("spec.ingress[{i}]");
            r.check(&path, p);
            if r.destination().services.is_some() {
                p.add(
                    format!("{path}.destination.services"),
                    r.destination().services_text(),
                    "not allowed in ingress rule destination",
                );
            }
            if let Some(svc) = &r.source().services
                && self.global
                && svc.namespace.as_deref().is_none_or(str::is_empty)
            {
                p.add(
                    format!("{path}.source.services.namespace"),
                    "",
                    "must specify a namespace",
                );
            }
        }
        for (i, r) in self.egress.iter().enumerate() {
            let path = format!("spec.egress[{i}]");
            r.check(&path, p);
            if r.source().services.is_some() {
                p.add(
                    format!("{path}.source.services"),
                    r.source().services_text(),
                    "not allowed in egress rule source",
                );
            }
            if r.http.is_some() {
                p.add(format!("{path}.http"), "", "not allowed in egress rules");
            }
            if let Some(svc) = &r.destination().services
                && self.global
                && svc.namespace.as_deref().is_none_or(str::is_empty)
            {
                p.add(
                    format!("{path}.destination.services.namespace"),
                    "",
                    "must specify a namespace",
                );
            }
        }
    }
}

fn types_text(types: &[PolicyType]) -> String {
    let t: Vec<String> = types.iter().map(|t| format!("{t:?}")).collect();
    format!("[{}]", t.join(", "))
}

fn is_label(s: &str) -> bool {
    check_label("", s).is_ok()
}

/// Length and reserved-prefix checks both policy kinds make on their name.
fn check_name_length(p: &mut Problems, name: &str) -> bool {
    if name.is_empty() {
        p.add("metadata.name", "", "name is required");
        return false;
    }
    if name.len() > NAME_MAX {
        p.add(
            "metadata.name",
            name,
            format!("name is too long by {} bytes", name.len() - NAME_MAX),
        );
        return false;
    }
    true
}

const POLICY_NAME_RULE: &str = "a policy name must be a DNS-1123 label (lower-case \
                                alphanumerics and '-', at most 63), or two such labels joined \
                                by one '.'";

impl NetworkPolicy {
    fn defaults(&mut self) {
        let s = &mut self.spec;
        policy_defaults(
            &mut self.metadata,
            &mut s.tier,
            &mut s.types,
            rules(&s.ingress),
            rules(&s.egress),
        );
    }

    fn check(&self, p: &mut Problems) {
        let name = &self.metadata.name;
        if check_name_length(p, name) {
            if name.starts_with(KUBERNETES_POLICY_PREFIX) {
                p.add(
                    "metadata.name",
                    name,
                    "names starting 'knp.default.' are reserved: kubernetes network policies \
                     must be managed through the kubernetes API",
                );
            } else if !is_network_policy_name(name) {
                p.add("metadata.name", name, POLICY_NAME_RULE);
            }
        }
        check_namespace(p, &self.metadata);
        check_metadata(p, &self.metadata);
        let s = &self.spec;
        Shared {
            tier: &s.tier,
            ingress: rules(&s.ingress),
            egress: rules(&s.egress),
            selector: &s.selector,
            types: &s.types,
            service_account_selector: &s.service_account_selector,
            performance_hints: &s.performance_hints,
            global: false,
        }
        .check(p);
    }
}

/// Calico's NetworkPolicy name rule: a label, two labels joined by a dot, or a subdomain after
/// `knp.default.` or `ossg.default.` (OpenStack security groups).
fn is_network_policy_name(name: &str) -> bool {
    for prefix in [KUBERNETES_POLICY_PREFIX, "ossg.default."] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return check_subdomain("", rest).is_ok();
        }
    }
    is_global_policy_name(name)
}

/// Calico's GlobalNetworkPolicy name rule: a label, or two labels joined by a dot.
fn is_global_policy_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((a, b)) => is_label(a) && is_label(b),
        None => is_label(name),
    }
}

impl GlobalNetworkPolicy {
    fn defaults(&mut self) {
        let s = &mut self.spec;
        policy_defaults(
            &mut self.metadata,
            &mut s.tier,
            &mut s.types,
            rules(&s.ingress),
            rules(&s.egress),
        );
    }

    fn check(&self, p: &mut Problems) {
        let name = &self.metadata.name;
        if check_name_length(p, name) && !is_global_policy_name(name) {
            p.add("metadata.name", name, POLICY_NAME_RULE);
        }
        check_metadata(p, &self.metadata);
        let s = &self.spec;
        Shared {
            tier: &s.tier,
            ingress: rules(&s.ingress),
            egress: rules(&s.egress),
            selector: &s.selector,
            types: &s.types,
            service_account_selector: &s.service_account_selector,
            performance_hints: &s.performance_hints,
            global: true,
        }
        .check(p);
        check_selector(p, "spec.namespaceSelector", s.namespace_selector.as_deref());
        check_no_global(p, "spec.namespaceSelector", s.namespace_selector.as_deref());
        self.check_host_modes(p);
    }

    /// The CEL rules on `doNotTrack`, `preDNAT` and `applyOnForward`.
    fn check_host_modes(&self, p: &mut Problems) {
        let s = &self.spec;
        let untracked = s.do_not_track == Some(true);
        let pre_dnat = s.pre_dnat == Some(true);
        if untracked && pre_dnat {
            p.add(
                "spec.preDNAT",
                "true",
                "preDNAT and doNotTrack cannot both be true",
            );
        }
        if pre_dnat && !rules(&s.egress).is_empty() {
            p.add(
                "spec.egress",
                format!("{} rules", rules(&s.egress).len()),
                "preDNAT policy cannot have any egress rules",
            );
        }
        if pre_dnat
            && let Some(types) = s.types.as_ref().filter(|t| t.contains(&PolicyType::Egress))
        {
            p.add(
                "spec.types",
                types_text(types),
                "preDNAT policy cannot have 'Egress' type",
            );
        }
        if (untracked || pre_dnat) && s.apply_on_forward != Some(true) {
            p.add(
                "spec.applyOnForward",
                s.apply_on_forward.unwrap_or(false),
                "applyOnForward must be true if either preDNAT or doNotTrack is true",
            );
        }
    }
}

impl NetworkPolicy {
    /// The tier in effect: the one written, or `default`.
    pub fn tier(&self) -> &str {
        self.spec
            .tier
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_TIER)
    }
}

impl GlobalNetworkPolicy {
    /// The tier in effect: the one written, or `default`.
    pub fn tier(&self) -> &str {
        self.spec
            .tier
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_TIER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_round_trip, errors, parse_error};

    const NP: &str = "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: allow-tcp-6379
  namespace: production
spec:
  selector: role == 'database'
  order: 100
  ingress:
    - action: Allow
      metadata:
        annotations:
          from: frontend
      protocol: TCP
      source:
        selector: role == 'frontend'
        namespaceSelector: team == 'a'
      destination:
        ports:
          - 6379
          - '7000:7010'
    - action: Allow
      protocol: ICMP
      icmp:
        type: 8
    - action: Deny
      source:
        nets: [10.0.0.0/8]
        notNets: [10.1.0.0/16]
        serviceAccounts:
          names: [web]
  egress:
    - action: Allow
      protocol: UDP
      destination:
        services:
          name: kube-dns
          namespace: kube-system
    - action: Pass
  serviceAccountSelector: role == 'db'
  performanceHints: [AssumeNeededOnEveryNode]
";

    #[test]
    fn network_policy_round_trip_adds_tier_types_and_label() {
        assert_round_trip(
            NP,
            "
metadata:
  labels:
    projectcalico.org/tier: default
spec:
  tier: default
  types: [Ingress, Egress]
",
        );
    }

    #[test]
    fn network_policy_written_in_full_is_unchanged_but_for_the_label() {
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: security.allow-web
  namespace: web
  labels: {app: web}
spec:
  tier: security
  order: 10.5
  selector: app == 'web'
  types: [Egress]
  ingress:
    - action: Allow
      protocol: TCP
      http:
        methods: [GET]
        paths: [{prefix: /api}]
",
            "metadata: {labels: {projectcalico.org/tier: security}}",
        );
    }

    #[test]
    fn default_types_follow_the_rules_present() {
        let allow = Rule {
            action: Some(crate::rule::Action::Allow),
            ..Default::default()
        };
        let one = std::slice::from_ref(&allow);
        assert_eq!(default_types(&[], &[]), [PolicyType::Ingress]);
        assert_eq!(default_types(one, &[]), [PolicyType::Ingress]);
        assert_eq!(default_types(&[], one), [PolicyType::Egress]);
        assert_eq!(
            default_types(one, one),
            [PolicyType::Ingress, PolicyType::Egress]
        );
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: egress-only}
spec:
  egress: [{action: Deny}]
",
            "
metadata: {labels: {projectcalico.org/tier: default}}
spec: {tier: default, types: [Egress]}
",
        );
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-all}
spec: {}
",
            "
metadata: {labels: {projectcalico.org/tier: default}}
spec: {tier: default, types: [Ingress]}
",
        );
    }

    const GNP: &str = "
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: allow-ssh-to-hosts
  labels:
    owner: ops
spec:
  tier: platform
  order: 200
  selector: has(host-endpoint)
  namespaceSelector: all()
  doNotTrack: false
  preDNAT: true
  applyOnForward: true
  types: [Ingress]
  ingress:
    - action: Allow
      protocol: TCP
      source:
        nets: ['192.168.0.0/16']
      destination:
        ports: [22]
    - action: Allow
      protocol: TCP
      source:
        services:
          name: ingress
          namespace: edge
";

    #[test]
    fn global_network_policy_round_trip() {
        assert_round_trip(
            GNP,
            "metadata: {labels: {owner: ops, projectcalico.org/tier: platform}}",
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let (path, msg) = parse_error(&NP.replace("  order: 100", "  doNotTrack: true"));
        assert_eq!(path, "spec.doNotTrack");
        assert!(msg.contains("unknown field `doNotTrack`"), "{msg}");
        let (path, msg) = parse_error(&GNP.replace("        nets:", "        net:"));
        assert_eq!(path, "spec.ingress[0].source.net");
        assert!(msg.contains("unknown field `net`"), "{msg}");
        let (path, _) = parse_error(&GNP.replace("types: [Ingress]", "types: [ingress]"));
        assert_eq!(path, "spec.types[0]");
        let (path, _) = parse_error(&NP.replace("action: Pass", "action: Drop"));
        assert_eq!(path, "spec.egress[1].action");
        let (path, _) = parse_error(&NP.replace("- 6379", "- 65536"));
        assert_eq!(path, "spec.ingress[0].destination.ports[0]");
    }

    #[test]
    fn names() {
        for ok in ["a", "allow-web", "tier1.allow-web", "ossg.default.sg-1.x"] {
            assert_eq!(
                errors(&NP.replace("allow-tcp-6379", ok)),
                Vec::<String>::new(),
                "{ok}"
            );
        }
        assert_eq!(
            errors(&NP.replace("allow-tcp-6379", "knp.default.web")),
            [
                "error with field metadata.name = 'knp.default.web' (names starting \
              'knp.default.' are reserved: kubernetes network policies must be managed through \
              the kubernetes API)"
            ]
        );
        for bad in ["a.b.c", "Allow", "a_b", "-a", "ossg.default."] {
            assert_eq!(
                errors(&NP.replace("allow-tcp-6379", bad)),
                [format!(
                    "error with field metadata.name = '{bad}' ({POLICY_NAME_RULE})"
                )],
                "{bad}"
            );
        }
        // GlobalNetworkPolicy names have no knp/ossg form.
        for bad in ["ossg.default.x", "knp.default.x", "a.b.c"] {
            assert_eq!(
                errors(&GNP.replace("allow-ssh-to-hosts", bad)).len(),
                1,
                "{bad}"
            );
        }
        let long = format!("{}.{}", "a".repeat(63), "b".repeat(63));
        assert_eq!(
            errors(&GNP.replace("allow-ssh-to-hosts", &long)),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(&NP.replace("namespace: production", "namespace: Prod")),
            [
                "error with field metadata.namespace = 'Prod' (must be a DNS-1123 label: at most \
              63 lower-case alphanumerics or '-', starting and ending with an alphanumeric)"
            ]
        );
    }

    #[test]
    fn spec_checks() {
        assert_eq!(
            errors(&NP.replace("  order: 100", "  types: [Ingress, Ingress]")),
            [
                "error with field spec.types = '[Ingress, Ingress]' ('Ingress' type specified more \
              than once)"
            ]
        );
        assert_eq!(
            errors(&NP.replace("selector: role == 'database'", "selector: global()")),
            [
                "error with field spec.selector = 'global()' (global() can only be used in an \
              EntityRule namespaceSelector)"
            ]
        );
        assert_eq!(
            errors(&NP.replace("  order: 100", "  tier: Bad_Tier")),
            [
                "error with field spec.tier = 'Bad_Tier' (must be a DNS-1123 subdomain: lower-case \
              alphanumerics, '-' and '.', starting and ending with an alphanumeric)"
            ]
        );
        assert_eq!(
            errors(&NP.replace(
                "[AssumeNeededOnEveryNode]",
                "[AssumeNeededOnEveryNode, AssumeNeededOnEveryNode]"
            )),
            [
                "error with field spec.performanceHints = '[AssumeNeededOnEveryNode, \
              AssumeNeededOnEveryNode]' (performance hints must be unique)"
            ]
        );
        assert_eq!(
            errors(&NP.replace(
                "metadata:\n  name",
                "metadata:\n  labels: {'a b': c}\n  name"
            )),
            [
                "error with field metadata.labels = 'a b' (invalid label key: name part must \
              consist of alphanumeric characters, '-', '_' or '.', and must start and end with \
              an alphanumeric character)"
            ]
        );
    }

    #[test]
    fn rule_errors_carry_the_rule_path() {
        assert_eq!(
            errors(&NP.replace("      protocol: ICMP\n", "")),
            [
                "error with field spec.ingress[1].icmp = '' (ICMP fields require protocol to be \
              ICMP or ICMPv6)"
            ]
        );
    }

    #[test]
    fn services_and_http_by_direction() {
        let np = "
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: n}
spec:
  ingress:
    - action: Allow
      destination: {services: {name: a}}
  egress:
    - action: Allow
      source: {services: {name: b}}
    - action: Allow
      http: {methods: [GET]}
";
        assert_eq!(
            errors(np),
            [
                "error with field spec.ingress[0].destination.services = 'a' (not allowed in \
                 ingress rule destination)",
                "error with field spec.egress[0].source.services = 'b' (not allowed in egress \
                 rule source)",
                "error with field spec.egress[1].http = '' (not allowed in egress rules)",
            ]
        );
        // A global policy's service matches must name a namespace.
        let gnp = "
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: p}
spec:
  ingress:
    - action: Allow
      source: {services: {name: a}}
  egress:
    - action: Allow
      destination: {services: {name: b, namespace: x}}
    - action: Allow
      destination: {services: {name: c}}
";
        assert_eq!(
            errors(gnp),
            [
                "error with field spec.ingress[0].source.services.namespace = '' (must specify a \
                 namespace)",
                "error with field spec.egress[1].destination.services.namespace = '' (must \
                 specify a namespace)",
            ]
        );
    }

    #[test]
    fn host_modes() {
        assert_eq!(
            errors(&GNP.replace("doNotTrack: false", "doNotTrack: true")),
            [
                "error with field spec.preDNAT = 'true' (preDNAT and doNotTrack cannot both be \
              true)"
            ]
        );
        assert_eq!(
            errors(&GNP.replace("applyOnForward: true", "applyOnForward: false")),
            [
                "error with field spec.applyOnForward = 'false' (applyOnForward must be true if \
              either preDNAT or doNotTrack is true)"
            ]
        );
        assert_eq!(
            errors(&GNP.replace("types: [Ingress]", "types: [Ingress, Egress]")),
            [
                "error with field spec.types = '[Ingress, Egress]' (preDNAT policy cannot have \
              'Egress' type)"
            ]
        );
        let with_egress = format!("{GNP}  egress: [{{action: Allow}}]\n");
        assert_eq!(
            errors(&with_egress),
            [
                "error with field spec.egress = '1 rules' (preDNAT policy cannot have any egress \
              rules)"
            ]
        );
        let untracked = GNP
            .replace("preDNAT: true", "preDNAT: false")
            .replace("doNotTrack: false", "doNotTrack: true")
            .replace("  applyOnForward: true\n", "");
        assert_eq!(
            errors(&untracked),
            [
                "error with field spec.applyOnForward = 'false' (applyOnForward must be true if \
              either preDNAT or doNotTrack is true)"
            ]
        );
    }

    #[test]
    fn order_writes_whole_numbers_as_integers() {
        assert_eq!(serde_json::to_string(&Order(100.0)).unwrap(), "100");
        assert_eq!(serde_json::to_string(&Order(10.5)).unwrap(), "10.5");
        assert_eq!(serde_json::to_string(&Order(-3.0)).unwrap(), "-3");
    }
}
