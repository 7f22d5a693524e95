//! What a Calico node exports, imports and installs, as Calico's confd writes it into BIRD's
//! configuration (`bird_ipam.cfg`, `bird_aggr.cfg` in `confd/etc/calico/confd/templates`):
//!
//! - [`local_routes`]: the routes the node originates: each confirmed affine block as one
//!   aggregate (`calico_aggr`: "export the block, nothing beneath it"), a /32 (/128) for each
//!   address this node holds in a block affine to another node (Calico exports those from its
//!   kernel routes; here they come from the IPAM attributes' `node`), and the default
//!   BGPConfiguration's `serviceClusterIPs`, `serviceExternalIPs` and `serviceLoadBalancerIPs`.
//!   Nothing inside a disabled pool or one with `disableBGPExport`. `prefixAdvertisements` add
//!   their communities to every route inside their CIDR (`apply_communities`).
//! - [`PeerPolicy`]: `calico_export_to_bgp_peers`: the peer's `BGPFilter` rules first (`cidr`
//!   with `matchOperator`, `prefixLength`, `source`, `peerType`, `communities`,
//!   `asPathPrefix`; `operations` are not applied), then
//!   accept what lies in an exportable pool or a service range, reject the rest (so a default
//!   route learned from a ToR is not passed on). Import: the filters' import rules, then accept.
//! - [`Install`]: `calico_kernel_programming`: learned routes go into the kernel unless they
//!   lie in an IPIP or VXLAN pool ("Cluster routes are handled by Felix").
//!
//! Pure functions of resources and IPAM data; nothing here does I/O.

use std::collections::BTreeMap;

use api::bgp_configuration::{BGPConfiguration, BGPConfigurationSpec, CommunityValue, GLOBAL_NAME};
use api::bgp_filter::{Action, BGPFilter, BGPFilterRule, MatchOperator, MatchSource, PeerType};
use api::ippool::IPPool;
use api::net::within;
use ipam::affinity::BlockAffinity;
use ipam::block::AllocationBlock;
use ipnetwork::IpNetwork;

use crate::route::{LocalRoute, Policy, RouteSource};
use crate::wire::{Community, LargeCommunity, PathAttributes, SegmentType};

/// A pool as routing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolRoute {
    pub cidr: IpNetwork,
    /// IPIP or VXLAN: felix programs its routes.
    pub encapsulated: bool,
    /// Enabled and not `disableBGPExport`.
    pub exported: bool,
}

/// The pools with a valid CIDR.
pub fn pool_routes(pools: &[IPPool]) -> Vec<PoolRoute> {
    pools
        .iter()
        .filter_map(|p| {
            Some(PoolRoute {
                cidr: p.spec.cidr()?,
                encapsulated: p.spec.ipip_enabled() || p.spec.vxlan_enabled(),
                exported: !p.spec.is_disabled() && p.spec.disable_bgp_export != Some(true),
            })
        })
        .collect()
}

/// Which learned prefixes go into the kernel (`calico_kernel_programming`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    pools: Vec<PoolRoute>,
}

impl Install {
    pub fn new(pools: &[IPPool]) -> Install {
        Install {
            pools: pool_routes(pools),
        }
    }

    pub fn installs(&self, prefix: &IpNetwork) -> bool {
        !self
            .pools
            .iter()
            .any(|p| p.encapsulated && within(&p.cidr, prefix))
    }
}

/// The BGPConfiguration `default`, which holds the cluster-wide fields Calico reads only there
/// (service ranges, communities, prefix advertisements).
pub fn global_config(configs: &[BGPConfiguration]) -> Option<&BGPConfigurationSpec> {
    configs
        .iter()
        .find(|c| c.metadata.name == GLOBAL_NAME)
        .map(|c| &c.spec)
}

fn service_ranges(global: Option<&BGPConfigurationSpec>) -> Vec<IpNetwork> {
    let Some(g) = global else { return Vec::new() };
    [
        &g.service_cluster_ips,
        &g.service_external_ips,
        &g.service_load_balancer_ips,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .filter_map(|b| b.cidr.as_deref()?.parse().ok())
    .collect()
}

/// One community as written in a BGPConfiguration or BGPFilter: `aa:nn` or `aa:nn:mm`.
fn parse_community(v: &str) -> Option<Result<Community, LargeCommunity>> {
    Some(match CommunityValue::parse(v)? {
        CommunityValue::Standard(a, n) => Ok(Community((u32::from(a) << 16) | u32::from(n))),
        CommunityValue::Large(a, b, c) => Err(LargeCommunity {
            global_admin: a,
            local_data_1: b,
            local_data_2: c,
        }),
    })
}

/// The communities `prefixAdvertisements` attach to `prefix`.
fn communities_for(global: Option<&BGPConfigurationSpec>, prefix: &IpNetwork) -> LocalRoute {
    let mut route = LocalRoute::default();
    let Some(g) = global else { return route };
    let named: BTreeMap<&str, &str> = g
        .communities
        .iter()
        .flatten()
        .filter_map(|c| Some((c.name.as_deref()?, c.value.as_deref()?)))
        .collect();
    for adv in g.prefix_advertisements.iter().flatten() {
        let Some(cidr) = adv
            .cidr
            .as_deref()
            .and_then(|c| c.parse::<IpNetwork>().ok())
        else {
            continue;
        };
        if !within(&cidr, prefix) {
            continue;
        }
        for c in adv.communities.iter().flatten() {
            let value = named.get(c.as_str()).copied().unwrap_or(c);
            match parse_community(value) {
                Some(Ok(c)) if !route.communities.contains(&c) => route.communities.push(c),
                Some(Err(l)) if !route.large_communities.contains(&l) => {
                    route.large_communities.push(l)
                }
                Some(_) => {}
                None => {
                    tracing::warn!(community = %value, "ignoring a community that is neither aa:nn nor aa:nn:mm")
                }
            }
        }
    }
    route
}

/// What [`local_routes`] reads.
#[derive(Clone, Copy, Debug)]
pub struct ExportInputs<'a> {
    pub node: &'a str,
    pub pools: &'a [IPPool],
    pub blocks: &'a BTreeMap<IpNetwork, AllocationBlock>,
    /// This node's block affinities.
    pub affinities: &'a BTreeMap<IpNetwork, BlockAffinity>,
    pub bgp_configurations: &'a [BGPConfiguration],
}

/// The routes this node originates.
pub fn local_routes(inputs: &ExportInputs<'_>) -> BTreeMap<IpNetwork, LocalRoute> {
    let pools = pool_routes(inputs.pools);
    let global = global_config(inputs.bgp_configurations);
    let exported = |p: &IpNetwork| {
        pools
            .iter()
            .any(|pool| pool.exported && within(&pool.cidr, p))
    };
    let host = format!("host:{}", inputs.node);
    let mut prefixes = Vec::new();
    for (cidr, affinity) in inputs.affinities {
        let ours = inputs
            .blocks
            .get(cidr)
            .is_some_and(|b| b.affinity() == Some(host.as_str()));
        if affinity.is_confirmed() && ours && exported(cidr) {
            prefixes.push(*cidr);
        }
    }
    for (cidr, block) in inputs.blocks {
        if block.affinity() == Some(host.as_str()) || !exported(cidr) {
            continue;
        }
        for (ordinal, slot) in block.allocations().iter().enumerate() {
            let Some(attr) = slot.and_then(|i| block.attributes().get(i)) else {
                continue;
            };
            if attr.secondary.get("node").map(String::as_str) != Some(inputs.node) {
                continue;
            }
            if let Ok(ip) = block.ip_of(ordinal) {
                let len = if ip.is_ipv4() { 32 } else { 128 };
                if let Ok(n) = IpNetwork::new(ip, len) {
                    prefixes.push(n);
                }
            }
        }
    }
    prefixes.extend(service_ranges(global));
    prefixes
        .into_iter()
        .map(|p| (p, communities_for(global, &p)))
        .collect()
}

/// One BGPFilter rule with the family it was written for (`exportV4`, `importV6`, ...).
#[derive(Clone, Debug, PartialEq)]
struct Rule {
    v4: bool,
    rule: BGPFilterRule,
}

/// One peer's import and export policy. Equal inputs give equal policies, so the caller can
/// keep the old one (and the session's state) when nothing changed.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerPolicy {
    pools: Vec<PoolRoute>,
    services: Vec<IpNetwork>,
    /// An iBGP session, for rules' `peerType` (Calico's `is_same_as`).
    internal: bool,
    /// The rules of the peer's filters, in order.
    export_rules: Vec<Rule>,
    import_rules: Vec<Rule>,
}

impl PeerPolicy {
    /// `filters` are the BGPFilters the peer names, in the order it names them; `internal`
    /// says whether the session is iBGP.
    pub fn new(
        pools: &[IPPool],
        bgp_configurations: &[BGPConfiguration],
        filters: &[&BGPFilter],
        internal: bool,
    ) -> PeerPolicy {
        let mut export_rules = Vec::new();
        let mut import_rules = Vec::new();
        let tag = |v4: bool, rules: &Option<Vec<BGPFilterRule>>| -> Vec<Rule> {
            rules
                .iter()
                .flatten()
                .map(|r| Rule {
                    v4,
                    rule: r.clone(),
                })
                .collect()
        };
        for f in filters {
            let s = &f.spec;
            export_rules.extend(tag(true, &s.export_v4));
            export_rules.extend(tag(false, &s.export_v6));
            import_rules.extend(tag(true, &s.import_v4));
            import_rules.extend(tag(false, &s.import_v6));
        }
        PeerPolicy {
            pools: pool_routes(pools),
            services: service_ranges(global_config(bgp_configurations)),
            internal,
            export_rules,
            import_rules,
        }
    }

    /// The first rule matching decides; `None` when none matches.
    fn decide(
        &self,
        rules: &[Rule],
        prefix: &IpNetwork,
        learned: bool,
        attrs: &PathAttributes,
    ) -> Option<bool> {
        rules
            .iter()
            .find(|r| self.matches(r, prefix, learned, attrs))
            .map(|r| r.rule.action == Action::Accept)
    }

    /// Every condition a rule sets must hold (Calico AND-s them in BIRD's filter).
    fn matches(&self, r: &Rule, prefix: &IpNetwork, learned: bool, attrs: &PathAttributes) -> bool {
        let rule = &r.rule;
        // A V4 rule never applies to an IPv6 route, nor a V6 rule to an IPv4 one.
        if r.v4 != prefix.is_ipv4() {
            return false;
        }
        if let Some(cidr) = rule.cidr.as_deref() {
            let Ok(cidr) = cidr.parse::<IpNetwork>() else {
                return false;
            };
            let m = match rule.match_operator.unwrap_or(MatchOperator::In) {
                MatchOperator::Equal => cidr == *prefix,
                MatchOperator::NotEqual => cidr != *prefix,
                MatchOperator::In => within(&cidr, prefix),
                MatchOperator::NotIn => !within(&cidr, prefix),
            };
            if !m {
                return false;
            }
        }
        if let Some(len) = rule.prefix_length {
            let l = i32::from(prefix.prefix());
            if len.min.is_some_and(|m| l < m) || len.max.is_some_and(|m| l > m) {
                return false;
            }
        }
        if rule.source == Some(MatchSource::RemotePeers) && !learned {
            return false;
        }
        match rule.peer_type {
            Some(PeerType::Ibgp) if !self.internal => return false,
            Some(PeerType::Ebgp) if self.internal => return false,
            _ => {}
        }
        if let Some(c) = &rule.communities {
            let carried = |v: &String| match parse_community(v) {
                Some(Ok(c)) => attrs.communities.contains(&c),
                Some(Err(l)) => attrs.large_communities.contains(&l),
                None => false,
            };
            if !c.values.iter().all(carried) {
                return false;
            }
        }
        if let Some(prefix_asns) = &rule.as_path_prefix {
            let path: Vec<_> = attrs
                .as_path
                .iter()
                .flat_map(|p| p.segments.iter())
                .take_while(|s| s.kind == SegmentType::Sequence)
                .flat_map(|s| s.asns.iter().copied())
                .collect();
            if !path.starts_with(prefix_asns) {
                return false;
            }
        }
        // An interface only ever matches routes from the kernel, never BGP-learned or our own
        // aggregates; `priority` matches BIRD's kernel metric, which BGP routes here do not
        // carry. A rule with either never matches.
        if rule.interface.is_some() || rule.priority.is_some() {
            return false;
        }
        true
    }
}

impl Policy for PeerPolicy {
    fn import(&self, prefix: &IpNetwork, attrs: &PathAttributes) -> bool {
        self.decide(&self.import_rules, prefix, true, attrs)
            .unwrap_or(true)
    }

    fn export(&self, prefix: &IpNetwork, source: RouteSource, attrs: &PathAttributes) -> bool {
        let learned = source != RouteSource::Local;
        if let Some(verdict) = self.decide(&self.export_rules, prefix, learned, attrs) {
            return verdict;
        }
        self.pools
            .iter()
            .any(|p| p.exported && within(&p.cidr, prefix))
            || self.services.iter().any(|s| within(s, prefix))
    }
}

#[cfg(test)]
mod tests;
