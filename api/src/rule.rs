//! Policy rules: what a packet must match (`Rule`, `EntityRule`, ICMP, HTTP, services and
//! service accounts) and the action taken. Shared by NetworkPolicy, GlobalNetworkPolicy and
//! Profile. Field names follow Calico's `policy_common.go`; the checks are Calico's
//! validator (`validateRule`, `validateEntityRule`, `validateHTTPRule`) and the CEL rules on
//! `Rule`, `ICMPFields` and `EntityRule`.

use std::collections::{BTreeMap, HashSet};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::labels::check_annotations;
use crate::net::{canonical, is_masked, parse_cidr};
use crate::port::{Port, list_text};
use crate::protocol::Protocol;
use crate::validation::Problems;

/// Longest selector Calico's CRD schema accepts.
pub(crate) const SELECTOR_MAX: usize = 1024;
/// Most `nets` or `notNets` in one entity rule.
const NETS_MAX: usize = 256;
/// Most `ports` or `notPorts` in one entity rule.
const PORTS_MAX: usize = 50;
/// Most HTTP methods, and most HTTP paths, in one rule.
const HTTP_ITEMS_MAX: usize = 20;
/// Longest HTTP path match.
const HTTP_PATH_MAX: usize = 1024;
/// Longest service name or namespace.
const SERVICE_NAME_MAX: usize = 253;

/// What a rule does with a packet it matches.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    Deny,
    Log,
    Pass,
}

/// One rule: match criteria and an action.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Required; `None` only so that a missing action is a validation error naming the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// 4 or 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpFields>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_protocol: Option<Protocol>,
    #[serde(default, rename = "notICMP", skip_serializing_if = "Option::is_none")]
    pub not_icmp: Option<IcmpFields>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<EntityRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<EntityRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RuleMetadata>,
}

/// ICMP type and code to match.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct IcmpFields {
    /// 0-254 (255 is not matchable in iptables).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<i64>,
    /// 0-255; only with a type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
}

/// The source or destination side of a rule. All criteria present must match.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EntityRule {
    /// CIDRs, strictly masked (`10.0.0.0/8`, not `10.0.0.1/8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nets: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ServiceMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<Port>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_nets: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ports: Option<Vec<Port>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<ServiceAccountMatch>,
}

/// A Kubernetes Service, by name and namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Kubernetes service accounts, by name and/or by a selector on their labels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAccountMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// Layer-7 match on HTTP requests (application layer policy).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<HttpPath>>,
}

/// One HTTP path match: exactly one of `exact` or `prefix`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpPath {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Annotations a user attaches to a rule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn list_len<T>(v: &Option<Vec<T>>) -> usize {
    v.as_ref().map_or(0, Vec::len)
}

/// A selector field of a policy or rule: at most 1024 characters and it must parse.
pub(crate) fn check_selector(p: &mut Problems, field: &str, value: Option<&str>) {
    let Some(v) = value else { return };
    if v.len() > SELECTOR_MAX {
        p.add(
            field,
            v,
            format!("selector must be no more than {SELECTOR_MAX} characters"),
        );
        return;
    }
    p.selector(field, Some(v));
}

/// Calico: `global()` may only appear in an entity rule's `namespaceSelector`.
pub(crate) fn check_no_global(p: &mut Problems, field: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| v.contains("global(")) {
        p.add(
            field,
            v,
            "global() can only be used in an EntityRule namespaceSelector",
        );
    }
}

impl Rule {
    /// The source side, or an empty one.
    pub fn source(&self) -> &EntityRule {
        static EMPTY: EntityRule = EMPTY_ENTITY;
        self.source.as_ref().unwrap_or(&EMPTY)
    }

    /// The destination side, or an empty one.
    pub fn destination(&self) -> &EntityRule {
        static EMPTY: EntityRule = EMPTY_ENTITY;
        self.destination.as_ref().unwrap_or(&EMPTY)
    }

    /// Calico's checks on one rule on its own; `path` is the rule's YAML path, e.g.
    /// `spec.ingress[0]`. Direction-specific checks are the policy's.
    pub(crate) fn check(&self, path: &str, p: &mut Problems) {
        if self.action.is_none() {
            p.add(
                format!("{path}.action"),
                "",
                "action is required: one of Allow, Deny, Log, Pass",
            );
        }
        if let Some(v) = self.ip_version.filter(|v| *v != 4 && *v != 6) {
            p.add(format!("{path}.ipVersion"), v, "ipVersion must be 4 or 6");
        }
        for (name, proto) in [
            ("protocol", &self.protocol),
            ("notProtocol", &self.not_protocol),
        ] {
            let Some(proto) = proto else { continue };
            let field = format!("{path}.{name}");
            if let Some(why) = proto.problem() {
                p.add(&field, proto, why);
            }
            if proto.is_icmp() && self.ip_version.is_some_and(|v| v != 4) {
                p.add(&field, proto, "protocol ICMP requires ipVersion 4");
            }
            if proto.is_icmpv6() && self.ip_version.is_some_and(|v| v != 6) {
                p.add(&field, proto, "protocol ICMPv6 requires ipVersion 6");
            }
        }
        for (name, icmp) in [("icmp", &self.icmp), ("notICMP", &self.not_icmp)] {
            if let Some(icmp) = icmp {
                icmp.check(&format!("{path}.{name}"), p);
            }
        }
        if self.icmp.is_some()
            && !self
                .protocol
                .as_ref()
                .is_some_and(|p| p.is_icmp() || p.is_icmpv6())
        {
            p.add(
                format!("{path}.icmp"),
                self.protocol
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                "ICMP fields require protocol to be ICMP or ICMPv6",
            );
        }
        self.check_ports(path, p);
        self.check_nets(path, p);
        for (name, side) in [("source", &self.source), ("destination", &self.destination)] {
            if let Some(side) = side {
                side.check(&format!("{path}.{name}"), p);
            }
        }
        let dst = self.destination();
        if dst.services.is_some() && (list_len(&dst.ports) > 0 || list_len(&dst.not_ports) > 0) {
            p.add(
                format!("{path}.destination.services"),
                dst.services_text(),
                "ports and notPorts cannot be specified with services",
            );
        }
        if let Some(http) = &self.http {
            self.check_http(http, &format!("{path}.http"), p);
        }
        if let Some(a) = self.metadata.as_ref().and_then(|m| m.annotations.as_ref()) {
            check_annotations(p, &format!("{path}.metadata.annotations"), a);
        }
    }

    /// Numeric ports need a protocol; a protocol other than TCP, UDP or SCTP allows no ports.
    fn check_ports(&self, path: &str, p: &mut Problems) {
        for (side, rule) in [
            ("source", self.source()),
            ("destination", self.destination()),
        ] {
            for (name, ports) in [("ports", &rule.ports), ("notPorts", &rule.not_ports)] {
                let Some(ports) = ports else { continue };
                let field = format!("{path}.{side}.{name}");
                match &self.protocol {
                    None if !ports.iter().all(Port::is_named) => p.add(
                        &field,
                        list_text(ports),
                        "rules with numeric port or port range must set protocol to TCP or UDP \
                         or SCTP",
                    ),
                    Some(proto) if !proto.supports_ports() && !ports.is_empty() => p.add(
                        &field,
                        list_text(ports),
                        format!(
                            "rules that specify ports must set protocol to TCP or UDP or SCTP \
                             (not {proto})"
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }

    /// Nets are CIDRs with no host bits; a rule's nets are all of one IP version, which matches
    /// `ipVersion` when set; a negated catch-all matches nothing and is refused.
    fn check_nets(&self, path: &str, p: &mut Problems) {
        let (mut seen_v4, mut seen_v6) = (false, false);
        for (side, rule) in [
            ("source", self.source()),
            ("destination", self.destination()),
        ] {
            for (name, nets, negated) in [
                ("nets", &rule.nets, false),
                ("notNets", &rule.not_nets, true),
            ] {
                let Some(nets) = nets else { continue };
                let field = format!("{path}.{side}.{name}");
                if nets.len() > NETS_MAX {
                    p.add(
                        &field,
                        format!("{} items", nets.len()),
                        format!("at most {NETS_MAX} CIDRs"),
                    );
                }
                let (mut v4, mut v6) = (false, false);
                for (i, text) in nets.iter().enumerate() {
                    let Some(net) = parse_cidr(text) else {
                        p.add(
                            format!("{field}[{i}]"),
                            text,
                            "invalid CIDR: expected <address>/<prefix length>",
                        );
                        continue;
                    };
                    if !is_masked(&net) {
                        p.add(
                            format!("{field}[{i}]"),
                            text,
                            format!("CIDR has host bits set (did you mean {}?)", canonical(&net)),
                        );
                    }
                    v4 |= net.is_ipv4();
                    v6 |= net.is_ipv6();
                    if negated && is_catch_all(text, &net) {
                        p.add(
                            format!("{field}[{i}]"),
                            text,
                            "catch-all CIDR in negation creates logical contradiction (matches \
                             no traffic)",
                        );
                    }
                }
                if let Some(want) = self.ip_version
                    && ((v4 && want != 4) || (v6 && want != 6))
                {
                    p.add(
                        &field,
                        nets.join(", "),
                        format!("rule IP version ({want}) doesn't match CIDR version"),
                    );
                }
                if (v4 && seen_v6) || (v6 && seen_v4) || (v4 && v6) {
                    p.add(
                        &field,
                        nets.join(", "),
                        "rule contains both IPv4 and IPv6 CIDRs",
                    );
                }
                seen_v4 |= v4;
                seen_v6 |= v6;
            }
        }
    }

    fn check_http(&self, http: &HttpMatch, path: &str, p: &mut Problems) {
        if self.action != Some(Action::Allow) {
            let action = self.action.map(|a| format!("{a:?}")).unwrap_or_default();
            p.add(path, action, "HTTP match is only valid on Allow rules");
        }
        if let Some(proto) = self.protocol.as_ref().filter(|p| !p.is_tcp()) {
            p.add(
                path,
                proto,
                "rules with HTTP match must have protocol TCP or unset",
            );
        }
        if let Some(methods) = &http.methods {
            let field = format!("{path}.methods");
            if methods.len() > HTTP_ITEMS_MAX {
                p.add(
                    &field,
                    format!("{} items", methods.len()),
                    format!("at most {HTTP_ITEMS_MAX} methods"),
                );
            }
            let unique: HashSet<&String> = methods.iter().collect();
            if unique.len() != methods.len() {
                p.add(
                    &field,
                    format!("[{}]", methods.join(", ")),
                    "invalid methods (duplicates)",
                );
            }
        }
        if let Some(paths) = &http.paths {
            if paths.len() > HTTP_ITEMS_MAX {
                p.add(
                    format!("{path}.paths"),
                    format!("{} items", paths.len()),
                    format!("at most {HTTP_ITEMS_MAX} paths"),
                );
            }
            for (i, m) in paths.iter().enumerate() {
                m.check(&format!("{path}.paths[{i}]"), p);
            }
        }
    }
}

fn is_catch_all(text: &str, net: &IpNetwork) -> bool {
    // Calico compares the IPv4 text exactly and the IPv6 network by value.
    match net {
        IpNetwork::V4(_) => text == "0.0.0.0/0",
        IpNetwork::V6(n) => n.prefix() == 0 && n.ip().is_unspecified(),
    }
}

impl HttpPath {
    fn check(&self, path: &str, p: &mut Problems) {
        let (field, value) = match (non_empty(&self.exact), non_empty(&self.prefix)) {
            (Some(_), Some(_)) => {
                p.add(
                    path,
                    "",
                    "invalid path match: both 'exact' and 'prefix' are set",
                );
                return;
            }
            (None, None) => {
                p.add(
                    path,
                    "",
                    "invalid path match: either 'exact' or 'prefix' must be set",
                );
                return;
            }
            (Some(e), None) => (format!("{path}.exact"), e),
            (None, Some(x)) => (format!("{path}.prefix"), x),
        };
        if value.len() > HTTP_PATH_MAX {
            p.add(
                &field,
                value,
                format!("path must be no more than {HTTP_PATH_MAX} characters"),
            );
        }
        // RFC 3986 §3.3: a path starts with '/' and holds no query or fragment.
        if !value.starts_with('/') || value.contains(['?', ' ', '#']) {
            p.add(
                &field,
                value,
                "invalid path: must start with '/' and not contain '?', '#' or spaces",
            );
        }
    }
}

impl IcmpFields {
    fn check(&self, path: &str, p: &mut Problems) {
        if let Some(t) = self.icmp_type.filter(|t| !(0..=254).contains(t)) {
            p.add(format!("{path}.type"), t, "ICMP type must be 0-254");
        }
        if let Some(c) = self.code {
            if !(0..=255).contains(&c) {
                p.add(format!("{path}.code"), c, "ICMP code must be 0-255");
            }
            if self.icmp_type.is_none() {
                p.add(
                    format!("{path}.code"),
                    c,
                    "ICMP code specified without an ICMP type",
                );
            }
        }
    }
}

const EMPTY_ENTITY: EntityRule = EntityRule {
    nets: None,
    selector: None,
    namespace_selector: None,
    services: None,
    ports: None,
    not_nets: None,
    not_selector: None,
    not_ports: None,
    service_accounts: None,
};

impl EntityRule {
    /// The service matched, as `namespace/name` or `name`, for error messages.
    pub(crate) fn services_text(&self) -> String {
        let s = self.services.as_ref();
        let name = s.and_then(|s| s.name.as_deref()).unwrap_or_default();
        match s.and_then(|s| non_empty(&s.namespace)) {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        }
    }

    fn check(&self, path: &str, p: &mut Problems) {
        for (name, sel) in [
            ("selector", &self.selector),
            ("notSelector", &self.not_selector),
            ("namespaceSelector", &self.namespace_selector),
        ] {
            check_selector(p, &format!("{path}.{name}"), sel.as_deref());
        }
        check_no_global(p, &format!("{path}.selector"), self.selector.as_deref());
        if let Some(ns) = self
            .namespace_selector
            .as_deref()
            .filter(|s| s.contains("global("))
        {
            // Calico tokenises the selector: `global()` must be its only term.
            let squeezed: String = ns.chars().filter(|c| !c.is_whitespace()).collect();
            if squeezed != "global()" {
                p.add(
                    format!("{path}.namespaceSelector"),
                    ns,
                    "global() cannot be combined with other selectors",
                );
            }
        }
        for (name, ports) in [("ports", &self.ports), ("notPorts", &self.not_ports)] {
            let Some(ports) = ports else { continue };
            if ports.len() > PORTS_MAX {
                p.add(
                    format!("{path}.{name}"),
                    format!("{} items", ports.len()),
                    format!("at most {PORTS_MAX} ports"),
                );
            }
            for (i, port) in ports.iter().enumerate() {
                if let Some(why) = port.problem() {
                    p.add(format!("{path}.{name}[{i}]"), port, why);
                }
            }
        }
        if let Some(sa) = &self.service_accounts {
            check_selector(
                p,
                &format!("{path}.serviceAccounts.selector"),
                sa.selector.as_deref(),
            );
        }
        if let Some(svc) = &self.services {
            self.check_services(svc, &format!("{path}.services"), p);
        }
    }

    fn check_services(&self, svc: &ServiceMatch, path: &str, p: &mut Problems) {
        for (name, value) in [("name", &svc.name), ("namespace", &svc.namespace)] {
            let Some(v) = non_empty(value) else { continue };
            let field = format!("{path}.{name}");
            if v.len() > SERVICE_NAME_MAX {
                p.add(
                    &field,
                    v,
                    format!("must be no more than {SERVICE_NAME_MAX} characters"),
                );
            } else {
                p.subdomain(&field, v);
            }
        }
        let text = self.services_text();
        if non_empty(&svc.name).is_none() {
            p.add(
                format!("{path}.name"),
                "",
                "services must specify a service name",
            );
        }
        if non_empty(&self.namespace_selector).is_some() {
            p.add(
                path,
                &text,
                "cannot specify NamespaceSelector and Services on the same rule",
            );
        }
        if self.service_accounts.is_some() {
            p.add(
                path,
                &text,
                "cannot specify ServiceAccounts and Services on the same rule",
            );
        }
        if non_empty(&self.selector).is_some() || non_empty(&self.not_selector).is_some() {
            p.add(
                path,
                &text,
                "cannot specify Selector/NotSelector and Services on the same rule",
            );
        }
        if list_len(&self.nets) > 0 || list_len(&self.not_nets) > 0 {
            p.add(
                path,
                &text,
                "cannot specify Nets/NotNets and Services on the same rule",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field errors of one rule written as YAML, each as Calico prints it.
    fn errors(yaml: &str) -> Vec<String> {
        let rule: Rule = serde_yaml::from_str(yaml).unwrap();
        let mut p = Problems::new();
        rule.check("spec.ingress[0]", &mut p);
        match p.finish(crate::ResourceKind::GlobalNetworkPolicy, "x") {
            Ok(()) => vec![],
            Err(crate::ApiError::Validation { errors, .. }) => {
                errors.iter().map(ToString::to_string).collect()
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn one(yaml: &str) -> String {
        let e = errors(yaml);
        assert_eq!(e.len(), 1, "{e:#?}");
        e[0].clone()
    }

    #[test]
    fn valid_rules() {
        for ok in [
            "{action: Allow}",
            "{action: Deny, protocol: TCP, destination: {ports: [80, '8080:8090', http]}}",
            "{action: Allow, destination: {ports: [http]}}",
            "{action: Allow, protocol: 6, source: {notPorts: [22]}}",
            "{action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}}",
            "{action: Allow, protocol: ICMPv6, ipVersion: 6, notICMP: {type: 128}}",
            "{action: Log, notProtocol: UDPLite}",
            "{action: Pass, ipVersion: 4, source: {nets: [10.0.0.0/8], notNets: [10.1.0.0/16]}}",
            "{action: Allow, source: {nets: ['fd00::/64']}, destination: {notNets: ['fd00:1::/64']}}",
            "{action: Allow, source: {selector: \"app == 'web'\", namespaceSelector: global()}}",
            "{action: Allow, destination: {services: {name: api, namespace: prod}}}",
            "{action: Allow, source: {serviceAccounts: {names: [sa1], selector: \"team == 'a'\"}}}",
            "{action: Allow, protocol: TCP, http: {methods: [GET, PUT], paths: [{exact: /a}, {prefix: /b/}]}}",
            "{action: Allow, metadata: {annotations: {owner: team-a}}}",
        ] {
            assert_eq!(errors(ok), Vec::<String>::new(), "{ok}");
        }
    }

    #[test]
    fn action_is_required() {
        assert_eq!(
            one("{protocol: TCP}"),
            "error with field spec.ingress[0].action = '' (action is required: one of Allow, \
             Deny, Log, Pass)"
        );
    }

    #[test]
    fn protocols_and_ip_version() {
        assert_eq!(
            one("{action: Allow, protocol: tcp}"),
            "error with field spec.ingress[0].protocol = 'tcp' (protocol name invalid: must be \
             one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite (exactly so spelled) or a number 1-255)"
        );
        assert!(one("{action: Allow, notProtocol: 0}").contains("notProtocol = '0'"));
        assert_eq!(
            one("{action: Allow, ipVersion: 5}"),
            "error with field spec.ingress[0].ipVersion = '5' (ipVersion must be 4 or 6)"
        );
        assert_eq!(
            one("{action: Allow, protocol: ICMP, ipVersion: 6}"),
            "error with field spec.ingress[0].protocol = 'ICMP' (protocol ICMP requires \
             ipVersion 4)"
        );
        assert!(
            one("{action: Allow, notProtocol: 58, ipVersion: 4}")
                .contains("protocol ICMPv6 requires ipVersion 6")
        );
    }

    #[test]
    fn icmp_rules() {
        assert_eq!(
            one("{action: Allow, protocol: TCP, icmp: {type: 8}}"),
            "error with field spec.ingress[0].icmp = 'TCP' (ICMP fields require protocol to be \
             ICMP or ICMPv6)"
        );
        assert!(one("{action: Allow, icmp: {type: 8}}").contains("ICMP fields require protocol"));
        assert_eq!(
            one("{action: Allow, protocol: ICMP, icmp: {code: 1}}"),
            "error with field spec.ingress[0].icmp.code = '1' (ICMP code specified without an \
             ICMP type)"
        );
        assert_eq!(
            one("{action: Allow, protocol: ICMP, icmp: {type: 255}}"),
            "error with field spec.ingress[0].icmp.type = '255' (ICMP type must be 0-254)"
        );
        assert_eq!(
            one("{action: Allow, protocol: ICMP, notICMP: {type: 3, code: 256}}"),
            "error with field spec.ingress[0].notICMP.code = '256' (ICMP code must be 0-255)"
        );
    }

    #[test]
    fn ports_need_a_port_protocol() {
        assert_eq!(
            one("{action: Allow, destination: {ports: [80, http]}}"),
            "error with field spec.ingress[0].destination.ports = '[80, http]' (rules with \
             numeric port or port range must set protocol to TCP or UDP or SCTP)"
        );
        assert_eq!(
            one("{action: Allow, protocol: ICMP, source: {notPorts: [http]}}"),
            "error with field spec.ingress[0].source.notPorts = '[http]' (rules that specify \
             ports must set protocol to TCP or UDP or SCTP (not ICMP))"
        );
        // Calico's SupportsPorts does not include UDPLite.
        assert!(
            one("{action: Allow, protocol: UDPLite, destination: {ports: [53]}}")
                .contains("must set protocol to TCP or UDP or SCTP (not UDPLite)")
        );
        assert_eq!(
            one("{action: Allow, protocol: TCP, destination: {ports: [0]}}"),
            "error with field spec.ingress[0].destination.ports[0] = '0' (port range invalid, \
             port number must be between 1 and 65535)"
        );
        assert!(
            one("{action: Allow, protocol: TCP, destination: {ports: [Web_Port]}}")
                .starts_with("error with field spec.ingress[0].destination.ports[0] = 'Web_Port' (invalid port name")
        );
    }

    #[test]
    fn nets() {
        assert_eq!(
            one("{action: Allow, source: {nets: [10.0.0.1/8]}}"),
            "error with field spec.ingress[0].source.nets[0] = '10.0.0.1/8' (CIDR has host bits \
             set (did you mean 10.0.0.0/8?))"
        );
        assert_eq!(
            one("{action: Allow, source: {nets: [10.0.0.1]}}"),
            "error with field spec.ingress[0].source.nets[0] = '10.0.0.1' (invalid CIDR: \
             expected <address>/<prefix length>)"
        );
        assert_eq!(
            one("{action: Allow, destination: {notNets: [0.0.0.0/0]}}"),
            "error with field spec.ingress[0].destination.notNets[0] = '0.0.0.0/0' (catch-all \
             CIDR in negation creates logical contradiction (matches no traffic))"
        );
        assert!(one("{action: Allow, source: {notNets: ['::0/0']}}").contains("catch-all"));
        assert_eq!(
            one("{action: Allow, source: {nets: [10.0.0.0/8]}, destination: {nets: ['fd00::/8']}}"),
            "error with field spec.ingress[0].destination.nets = 'fd00::/8' (rule contains both \
             IPv4 and IPv6 CIDRs)"
        );
        assert_eq!(
            one("{action: Allow, ipVersion: 6, source: {nets: [10.0.0.0/8]}}"),
            "error with field spec.ingress[0].source.nets = '10.0.0.0/8' (rule IP version (6) \
             doesn't match CIDR version)"
        );
    }

    #[test]
    fn selectors_and_global() {
        assert_eq!(
            one("{action: Allow, source: {selector: global()}}"),
            "error with field spec.ingress[0].source.selector = 'global()' (global() can only be \
             used in an EntityRule namespaceSelector)"
        );
        assert_eq!(
            one("{action: Allow, source: {namespaceSelector: \"global() && a == 'b'\"}}"),
            "error with field spec.ingress[0].source.namespaceSelector = 'global() && a == 'b'' \
             (global() cannot be combined with other selectors)"
        );
        assert!(
            one(&format!(
                "{{action: Allow, source: {{notSelector: \"{}\"}}}}",
                "a".repeat(1025)
            ))
            .contains("selector must be no more than 1024 characters")
        );
    }

    /// Needs the real selector parser (it rejects `app ==`).
    #[test]
    fn selectors_must_parse() {
        let e = one("{action: Allow, source: {selector: 'app =='}}");
        assert!(
            e.starts_with(
                "error with field spec.ingress[0].source.selector = 'app ==' (invalid selector"
            ),
            "{e}"
        );
    }

    #[test]
    fn services() {
        assert_eq!(
            one("{action: Allow, destination: {services: {namespace: prod}}}"),
            "error with field spec.ingress[0].destination.services.name = '' (services must \
             specify a service name)"
        );
        assert_eq!(
            errors(
                "{action: Allow, protocol: TCP, destination: {services: {name: api}, ports: [80], \
                 selector: a == 'b', nets: [10.0.0.0/8], namespaceSelector: all(), \
                 serviceAccounts: {names: [x]}}}"
            ),
            [
                "error with field spec.ingress[0].destination.services = 'api' (cannot specify \
                 NamespaceSelector and Services on the same rule)",
                "error with field spec.ingress[0].destination.services = 'api' (cannot specify \
                 ServiceAccounts and Services on the same rule)",
                "error with field spec.ingress[0].destination.services = 'api' (cannot specify \
                 Selector/NotSelector and Services on the same rule)",
                "error with field spec.ingress[0].destination.services = 'api' (cannot specify \
                 Nets/NotNets and Services on the same rule)",
                "error with field spec.ingress[0].destination.services = 'api' (ports and \
                 notPorts cannot be specified with services)",
            ]
        );
        assert!(
            one("{action: Allow, source: {services: {name: Bad_Name}}}")
                .starts_with("error with field spec.ingress[0].source.services.name = 'Bad_Name'")
        );
    }

    #[test]
    fn http() {
        assert_eq!(
            one("{action: Deny, http: {methods: [GET]}}"),
            "error with field spec.ingress[0].http = 'Deny' (HTTP match is only valid on Allow \
             rules)"
        );
        assert_eq!(
            one("{action: Allow, protocol: UDP, http: {methods: [GET]}}"),
            "error with field spec.ingress[0].http = 'UDP' (rules with HTTP match must have \
             protocol TCP or unset)"
        );
        assert_eq!(
            one("{action: Allow, http: {methods: [GET, GET]}}"),
            "error with field spec.ingress[0].http.methods = '[GET, GET]' (invalid methods \
             (duplicates))"
        );
        assert_eq!(
            one("{action: Allow, http: {paths: [{exact: /a, prefix: /b}]}}"),
            "error with field spec.ingress[0].http.paths[0] = '' (invalid path match: both \
             'exact' and 'prefix' are set)"
        );
        assert!(one("{action: Allow, http: {paths: [{}]}}").contains("either 'exact' or 'prefix'"));
        assert_eq!(
            one("{action: Allow, http: {paths: [{prefix: '/a?b'}]}}"),
            "error with field spec.ingress[0].http.paths[0].prefix = '/a?b' (invalid path: must \
             start with '/' and not contain '?', '#' or spaces)"
        );
    }

    #[test]
    fn rule_annotations() {
        assert!(
            one("{action: Allow, metadata: {annotations: {'bad key': x}}}")
                .starts_with("error with field spec.ingress[0].metadata.annotations = 'bad key' (invalid annotation key")
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        // The types accept unknown fields (stored values); user input goes through the strict
        // reader.
        let strict = |yaml: &str| {
            crate::resource::from_value::<Rule>(None, serde_yaml::from_str(yaml).unwrap())
        };
        let e = strict("{action: Allow, source: {net: [10.0.0.0/8]}}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `net`"), "{e}");
        assert!(strict("{action: allow}").is_err());
        assert!(strict("{action: Allow, icmp: {typ: 1}}").is_err());
    }

    #[test]
    fn writes_back_as_read() {
        let yaml = "{action: Allow, ipVersion: 4, protocol: TCP, notICMP: {type: 3, code: 1}, \
                    destination: {ports: [80, '1:2']}}";
        let rule: Rule = serde_yaml::from_str(yaml).unwrap();
        let back = serde_json::to_value(&rule).unwrap();
        let want: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(back, want);
    }
}
