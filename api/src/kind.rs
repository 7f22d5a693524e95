//! The table of resource kinds: Calico's kind names, the plurals used in etcd keys, whether a
//! kind lives in a namespace, and the names calicoctl accepts for it on the command line.

use std::fmt;

/// Every `projectcalico.org/v3` kind this project stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    IPPool,
    IPReservation,
    IPAMConfiguration,
    BGPPeer,
    BGPConfiguration,
    BGPFilter,
    Node,
    WorkloadEndpoint,
    HostEndpoint,
    NetworkPolicy,
    GlobalNetworkPolicy,
    Tier,
    Profile,
    NetworkSet,
    GlobalNetworkSet,
    FelixConfiguration,
    ClusterInformation,
}

struct KindInfo {
    name: &'static str,
    plural: &'static str,
    namespaced: bool,
    /// The names calicoctl accepts (calicoctl's resourcemgr registers these per kind).
    aliases: &'static [&'static str],
}

impl ResourceKind {
    pub const ALL: &'static [ResourceKind] = &[
        ResourceKind::IPPool,
        ResourceKind::IPReservation,
        ResourceKind::IPAMConfiguration,
        ResourceKind::BGPPeer,
        ResourceKind::BGPConfiguration,
        ResourceKind::BGPFilter,
        ResourceKind::Node,
        ResourceKind::WorkloadEndpoint,
        ResourceKind::HostEndpoint,
        ResourceKind::NetworkPolicy,
        ResourceKind::GlobalNetworkPolicy,
        ResourceKind::Tier,
        ResourceKind::Profile,
        ResourceKind::NetworkSet,
        ResourceKind::GlobalNetworkSet,
        ResourceKind::FelixConfiguration,
        ResourceKind::ClusterInformation,
    ];

    fn info(self) -> KindInfo {
        use ResourceKind::*;
        let (name, plural, namespaced, aliases): (_, _, _, &'static [&'static str]) = match self {
            IPPool => (
                "IPPool",
                "ippools",
                false,
                &["ippool", "ippools", "ipp", "ipps", "pool", "pools"],
            ),
            IPReservation => (
                "IPReservation",
                "ipreservations",
                false,
                &[
                    "ipreservation",
                    "ipreservations",
                    "reservation",
                    "reservations",
                ],
            ),
            IPAMConfiguration => (
                "IPAMConfiguration",
                "ipamconfigurations",
                false,
                &[
                    "ipamconfiguration",
                    "ipamconfigurations",
                    "ipamconfig",
                    "ipamconfigs",
                ],
            ),
            BGPPeer => (
                "BGPPeer",
                "bgppeers",
                false,
                &["bgppeer", "bgppeers", "bgpp", "bgpps", "bp", "bps"],
            ),
            BGPConfiguration => (
                "BGPConfiguration",
                "bgpconfigurations",
                false,
                &[
                    "bgpconfiguration",
                    "bgpconfigurations",
                    "bgpconfig",
                    "bgpconfigs",
                ],
            ),
            BGPFilter => (
                "BGPFilter",
                "bgpfilters",
                false,
                &["bgpfilter", "bgpfilters", "bgpf", "bgpfs", "bf", "bfs"],
            ),
            Node => ("Node", "nodes", false, &["node", "nodes", "no", "nos"]),
            WorkloadEndpoint => (
                "WorkloadEndpoint",
                "workloadendpoints",
                true,
                &["workloadendpoint", "workloadendpoints", "wep", "weps"],
            ),
            HostEndpoint => (
                "HostEndpoint",
                "hostendpoints",
                false,
                &["hostendpoint", "hostendpoints", "hep", "heps"],
            ),
            NetworkPolicy => (
                "NetworkPolicy",
                "networkpolicies",
                true,
                &[
                    "networkpolicy",
                    "networkpolicies",
                    "policy",
                    "np",
                    "policies",
                    "pol",
                    "pols",
                ],
            ),
            GlobalNetworkPolicy => (
                "GlobalNetworkPolicy",
                "globalnetworkpolicies",
                false,
                &[
                    "globalnetworkpolicy",
                    "globalnetworkpolicies",
                    "gnp",
                    "gnps",
                ],
            ),
            Tier => ("Tier", "tiers", false, &["tier", "tiers"]),
            Profile => (
                "Profile",
                "profiles",
                false,
                &["profile", "profiles", "pro", "pros"],
            ),
            NetworkSet => (
                "NetworkSet",
                "networksets",
                true,
                &["networkset", "networksets", "netsets"],
            ),
            GlobalNetworkSet => (
                "GlobalNetworkSet",
                "globalnetworksets",
                false,
                &["globalnetworkset", "globalnetworksets", "gnetsets"],
            ),
            FelixConfiguration => (
                "FelixConfiguration",
                "felixconfigurations",
                false,
                &[
                    "felixconfiguration",
                    "felixconfigurations",
                    "felixconfig",
                    "felixconfigs",
                ],
            ),
            ClusterInformation => (
                "ClusterInformation",
                "clusterinformations",
                false,
                &[
                    "clusterinformation",
                    "clusterinformations",
                    "clusterinfo",
                    "clusterinfos",
                ],
            ),
        };
        KindInfo {
            name,
            plural,
            namespaced,
            aliases,
        }
    }

    /// The kind as written in a resource's `kind` field, e.g. `IPPool`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The kind of a list of this kind, e.g. `IPPoolList`.
    pub fn list_name(self) -> String {
        format!("{}List", self.name())
    }

    /// The lower-case plural used in etcd keys, e.g. `ippools`.
    pub fn plural(self) -> &'static str {
        self.info().plural
    }

    /// Whether resources of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self.info().namespaced
    }

    /// The names calicoctl accepts for this kind on its command line.
    pub fn aliases(self) -> &'static [&'static str] {
        self.info().aliases
    }

    /// The kind named exactly as in a resource's `kind` field (`IPPool`, not `ippool`).
    pub fn from_name(name: &str) -> Option<ResourceKind> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The kind a calicoctl command-line argument names: any alias, case-insensitive, as
    /// calicoctl matches them.
    pub fn from_cli_name(arg: &str) -> Option<ResourceKind> {
        let arg = arg.to_ascii_lowercase();
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.aliases().contains(&arg.as_str()))
    }

    /// The kind whose etcd plural is `plural`.
    pub fn from_plural(plural: &str) -> Option<ResourceKind> {
        Self::ALL.iter().copied().find(|k| k.plural() == plural)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_unique_and_resolve_back() {
        let mut seen = std::collections::HashSet::new();
        for &k in ResourceKind::ALL {
            assert_eq!(ResourceKind::from_name(k.name()), Some(k));
            assert_eq!(ResourceKind::from_plural(k.plural()), Some(k));
            for a in k.aliases() {
                assert!(seen.insert(*a), "alias {a} used twice");
                assert_eq!(ResourceKind::from_cli_name(a), Some(k));
            }
        }
        assert_eq!(
            ResourceKind::from_cli_name("IPPool"),
            Some(ResourceKind::IPPool)
        );
        assert_eq!(
            ResourceKind::from_cli_name("gnp"),
            Some(ResourceKind::GlobalNetworkPolicy)
        );
        assert_eq!(ResourceKind::from_cli_name("bogus"), None);
    }
}
