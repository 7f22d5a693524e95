//! The calculation from datastore resources to the node's desired dataplane, as plain data.
//!
//! [`calculate`] takes the Nodes, IPPools, IPAM blocks, this node's block affinities and the
//! WorkloadEndpoints, and returns a [`Dataplane`]: the routes felix owns (protocol 80) and the
//! workload routes, the `tunl0` and `vxlan.calico` devices with their addresses, the VXLAN
//! neighbour and FDB entries per remote VTEP, and the pools NAT outgoing applies to. It is
//! Calico's route calculation (felix `calc` + `routetable`), restated:
//!
//! - a `/32` (`/128`) per local workload address, `dev <cali interface> scope link`;
//! - a blackhole per local confirmed block, so addresses not (or no longer) in use are dropped
//!   here instead of looping;
//! - to a remote node's block in an IPIP pool: `via <node IP> dev tunl0 onlink`, or plainly
//!   `via <node IP>` for `CrossSubnet` when the node is on our subnet;
//! - in a VXLAN pool: `via <node's VTEP address> dev vxlan.calico onlink`, with an ARP entry
//!   (VTEP address -> VTEP MAC) and an FDB entry (VTEP MAC -> node IP); `CrossSubnet` on our
//!   subnet is a plain `via <node IP>`;
//! - a `/32` to each address another node holds in a block affine to a third node (borrowed
//!   addresses), the same way as that node's blocks;
//! - nothing for no-encap pools: those routes come from BGP.
//!
//! No I/O, no clock: everything is a function of its inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use api::ippool::{EncapMode, IPPool};
use api::net::within;
use api::node::Node;
use api::workload_endpoint::WorkloadEndpoint;
use ipam::affinity::BlockAffinity;
use ipam::block::AllocationBlock;
use ipnetwork::IpNetwork;

/// Calico's IPIP device: the kernel's fallback `ipip` device, configured, never created.
pub const IPIP_DEVICE: &str = "tunl0";
/// Calico's VXLAN device.
pub const VXLAN_DEVICE: &str = "vxlan.calico";
/// Calico's defaults (`FelixConfiguration.vxlanVNI`, `vxlanPort`).
pub const VXLAN_VNI: u32 = 4096;
pub const VXLAN_PORT: u16 = 4789;

/// Where a route sends traffic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Drop (a local block's unused addresses).
    Blackhole,
    /// A local workload: `dev <interface> scope link`.
    Workload { interface: String },
    /// A gateway, optionally through a device and `onlink` (the tunnels).
    Via {
        gateway: IpAddr,
        device: Option<String>,
        onlink: bool,
    },
}

/// The `tunl0` configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipip {
    pub address: Ipv4Addr,
}

/// The `vxlan.calico` configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vxlan {
    pub address: Ipv4Addr,
    pub mac: String,
    /// The node's own address: VXLAN's local endpoint.
    pub local: Ipv4Addr,
}

/// A remote VXLAN endpoint: an ARP entry for its VTEP address and an FDB entry to its node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vtep {
    pub node: String,
    pub address: Ipv4Addr,
    pub mac: String,
    pub node_ip: Ipv4Addr,
}

/// The node's desired dataplane.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dataplane {
    pub routes: BTreeMap<IpNetwork, Target>,
    /// `None`: no IPIP pool needs the device configured.
    pub ipip: Option<Ipip>,
    pub vxlan: Option<Vxlan>,
    pub vteps: Vec<Vtep>,
    /// Pools with `natOutgoing`: traffic from them to outside every pool is masqueraded.
    pub nat_outgoing: Vec<IpNetwork>,
    /// Every enabled pool, the "inside" of NAT outgoing.
    pub all_pools: Vec<IpNetwork>,
}

/// What [`calculate`] reads.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub node: &'a str,
    pub nodes: &'a [Node],
    pub pools: &'a [IPPool],
    pub blocks: &'a BTreeMap<IpNetwork, AllocationBlock>,
    /// This node's block affinities.
    pub affinities: &'a BTreeMap<IpNetwork, BlockAffinity>,
    pub workloads: &'a [WorkloadEndpoint],
}

/// What routing needs to know about a node.
struct NodeInfo<'a> {
    /// The node's `bgp.ipv4Address` in CIDR form: its address and subnet.
    net: Option<ipnetwork::Ipv4Network>,
    vtep: Option<(Ipv4Addr, &'a str)>,
    ipip: Option<Ipv4Addr>,
}

fn node_info(n: &Node) -> NodeInfo<'_> {
    let bgp = n.spec.bgp.as_ref();
    NodeInfo {
        net: bgp
            .and_then(|b| b.ipv4_address.as_deref())
            .and_then(|a| a.parse().ok()),
        vtep: n
            .spec
            .ipv4_vxlan_tunnel_addr
            .as_deref()
            .and_then(|a| a.parse().ok())
            .zip(n.spec.vxlan_tunnel_mac_addr.as_deref()),
        ipip: bgp
            .and_then(|b| b.ipv4_ipip_tunnel_addr.as_deref())
            .and_then(|a| a.parse().ok()),
    }
}

/// The encapsulation a pool asks for towards a node on the same subnet or not.
fn encapsulation(pool: &IPPool, same_subnet: bool) -> Encap {
    let mode = |m: Option<EncapMode>| m.unwrap_or(EncapMode::Never);
    let applies = |m: EncapMode| match m {
        EncapMode::Always => true,
        EncapMode::CrossSubnet => !same_subnet,
        EncapMode::Never => false,
    };
    let (ipip, vxlan) = (mode(pool.spec.ipip_mode), mode(pool.spec.vxlan_mode));
    if applies(vxlan) {
        Encap::Vxlan
    } else if applies(ipip) {
        Encap::Ipip
    } else if vxlan != EncapMode::Never || ipip != EncapMode::Never {
        // CrossSubnet on our subnet: routed directly, still felix's route.
        Encap::Direct
    } else {
        Encap::None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encap {
    /// No-encap pool: BGP's routes, not ours.
    None,
    Direct,
    Ipip,
    Vxlan,
}

/// The desired dataplane of `inputs.node`.
pub fn calculate(inputs: &Inputs<'_>) -> Dataplane {
    let mut dp = Dataplane::default();
    let nodes: BTreeMap<&str, (&Node, NodeInfo<'_>)> = inputs
        .nodes
        .iter()
        .map(|n| (n.metadata.name.as_str(), (n, node_info(n))))
        .collect();
    let me = nodes.get(inputs.node).map(|(_, i)| i);
    let my_net = me.and_then(|i| i.net);
    let pools: Vec<(&IPPool, IpNetwork)> = inputs
        .pools
        .iter()
        .filter(|p| !p.spec.is_disabled())
        .filter_map(|p| Some((p, p.spec.cidr()?)))
        .collect();
    let pool_of = |net: &IpNetwork| pools.iter().find(|(_, c)| within(c, net)).map(|(p, _)| *p);

    // Local workloads.
    for w in inputs.workloads {
        if w.spec.node.as_deref() != Some(inputs.node) {
            continue;
        }
        let Some(interface) = w.spec.interface_name.clone() else {
            continue;
        };
        for net in w.spec.ip_networks.iter().flatten() {
            if let Ok(n) = net.parse::<IpNetwork>() {
                dp.routes.insert(
                    n,
                    Target::Workload {
                        interface: interface.clone(),
                    },
                );
            }
        }
    }

    // Local confirmed blocks: blackholes.
    let host = format!("host:{}", inputs.node);
    for (cidr, affinity) in inputs.affinities {
        let ours = inputs
            .blocks
            .get(cidr)
            .is_some_and(|b| b.affinity() == Some(host.as_str()));
        if affinity.is_confirmed() && ours && pool_of(cidr).is_some() {
            dp.routes.entry(*cidr).or_insert(Target::Blackhole);
        }
    }

    // How to reach `owner` for addresses of `pool`.
    let route_to = |owner: &str, pool: &IPPool| -> Option<Target> {
        let (_, info) = nodes.get(owner)?;
        let node_ip = info.net?.ip();
        let same = my_net.is_some_and(|m| m.contains(node_ip));
        match encapsulation(pool, same) {
            Encap::None => None,
            Encap::Direct => Some(Target::Via {
                gateway: IpAddr::V4(node_ip),
                device: None,
                onlink: false,
            }),
            Encap::Ipip => Some(Target::Via {
                gateway: IpAddr::V4(node_ip),
                device: Some(IPIP_DEVICE.into()),
                onlink: true,
            }),
            Encap::Vxlan => info.vtep.map(|(vtep, _)| Target::Via {
                gateway: IpAddr::V4(vtep),
                device: Some(VXLAN_DEVICE.into()),
                onlink: true,
            }),
        }
    };

    // Remote blocks, and addresses borrowed from them by other nodes.
    for (cidr, block) in inputs.blocks {
        let Some(pool) = pool_of(cidr) else { continue };
        let owner = block.host();
        if let Some(owner) = owner.filter(|o| *o != inputs.node)
            && let Some(t) = route_to(owner, pool)
        {
            dp.routes.entry(*cidr).or_insert(t);
        }
        for (ordinal, slot) in block.allocations().iter().enumerate() {
            let Some(attr) = slot.and_then(|i| block.attributes().get(i)) else {
                continue;
            };
            let Some(holder) = attr.secondary.get("node").map(String::as_str) else {
                continue;
            };
            if Some(holder) == owner || holder == inputs.node {
                continue;
            }
            let (Ok(ip), Some(t)) = (block.ip_of(ordinal), route_to(holder, pool)) else {
                continue;
            };
            let len = if ip.is_ipv4() { 32 } else { 128 };
            if let Ok(n) = IpNetwork::new(ip, len) {
                dp.routes.entry(n).or_insert(t);
            }
        }
    }

    // Tunnel devices, when a pool needs them and the node has its tunnel address.
    let any = |f: fn(&IPPool) -> bool| pools.iter().any(|(p, _)| f(p));
    if any(|p| p.spec.ipip_enabled())
        && let Some(address) = me.and_then(|i| i.ipip)
    {
        dp.ipip = Some(Ipip { address });
    }
    if any(|p| p.spec.vxlan_enabled())
        && let (Some((address, mac)), Some(net)) = (me.and_then(|i| i.vtep), my_net)
    {
        dp.vxlan = Some(Vxlan {
            address,
            mac: mac.to_string(),
            local: net.ip(),
        });
        for (name, (_, info)) in &nodes {
            if *name == inputs.node {
                continue;
            }
            if let (Some((address, mac)), Some(net)) = (info.vtep, info.net) {
                dp.vteps.push(Vtep {
                    node: name.to_string(),
                    address,
                    mac: mac.to_string(),
                    node_ip: net.ip(),
                });
            }
        }
    }

    let nat: BTreeSet<IpNetwork> = pools
        .iter()
        .filter(|(p, _)| p.spec.nat_outgoing == Some(true))
        .map(|(_, c)| *c)
        .collect();
    dp.nat_outgoing = nat.into_iter().collect();
    dp.all_pools = pools.iter().map(|(_, c)| *c).collect();
    dp
}

#[cfg(test)]
mod tests;
