//! The BGP sessions one node runs, calculated from the datastore's `Node`s,
//! `BGPConfiguration`s and `BGPPeer`s exactly as Calico's confd does it: the full mesh, global
//! and node-specific peers, `peerSelector` peerings with their automatic reverse peerings, and
//! route-reflector clients. [`node_bgp_config`] is a pure function of [`Inputs`]; its result,
//! [`NodeBgpConfig`], is what the speaker reconciles its peers against. It never resolves a
//! secret, opens a socket or reads the clock.
//!
//! Sources: `confd/pkg/backends/calico/client.go` (`updatePeersV1`, `nodeAsBGPPeers`,
//! `nodesWithIPPortAndAS`, `setPeerConfigFieldsFromV3Resource`) turns v3 resources into v1
//! peerings; `confd/pkg/backends/calico/bgp_processor.go` (`processMeshPeers`,
//! `processPeersFromPath`, `buildPeerFromData`) turns those into BIRD peers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use api::asn::Asn;
use api::bgp_configuration::{
    BGPConfiguration, BGPConfigurationSpec, DEFAULT_AS_NUMBER, GLOBAL_NAME, NODE_PREFIX,
};
use api::bgp_peer::{
    BGPPassword, BGPPeer, BGPPeerSpec, NextHopMode, ReversePeering, SecretKeySelector,
    SourceAddress,
};
use api::duration::Duration;
use api::node::Node;

use crate::fsm::dials_first;

/// Calico's BGP port when no `BGPConfiguration` sets `listenPort`.
pub const DEFAULT_LISTEN_PORT: u16 = 179;

/// What the calculation reads.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub node_name: &'a str,
    pub nodes: &'a [Node],
    /// `default` and any `node.<name>`; others are ignored.
    pub bgp_configurations: &'a [BGPConfiguration],
    pub bgp_peers: &'a [BGPPeer],
}

/// Why no configuration can be calculated for the node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("node {0} does not exist")]
    NodeNotFound(String),
    // bgp_processor.go populateNodeConfig: "failed to get node IPv4 address".
    #[error("node {0} has no spec.bgp.ipv4Address: Calico's BGP needs one for the router ID")]
    NoIpv4Address(String),
}

/// The node's BGP daemon settings and sessions.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeBgpConfig {
    pub router_id: Ipv4Addr,
    pub local_as: Asn,
    pub listen_port: u16,
    /// The node's `routeReflectorClusterID`: it is a route reflector.
    pub cluster_id: Option<String>,
    /// Mesh peers, then global, then node-specific; each group ordered by address and port.
    pub peers: Vec<PeerConfig>,
}

/// Where a session comes from; also the prefix of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerKind {
    Mesh,
    Global,
    Node,
}

impl PeerKind {
    fn prefix(self) -> &'static str {
        match self {
            PeerKind::Mesh => "Mesh",
            PeerKind::Global => "Global",
            PeerKind::Node => "Node",
        }
    }
}

/// Where the next hop of routes sent to the peer points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// BIRD's default for the session type.
    Auto,
    /// `next hop self`.
    OwnAddress,
    /// `next hop keep`.
    Keep,
}

/// One BGP session.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerConfig {
    /// BIRD's protocol name: `Mesh_10_0_0_1`, `Global_10_0_0_1_port_1179`, `Node_fd00__1`.
    pub name: String,
    pub ip: IpAddr,
    pub port: Option<u16>,
    pub peer_as: Asn,
    pub kind: PeerKind,
    /// Wait for the peer to open the connection.
    pub passive: bool,
    /// This node reflects routes to the peer.
    pub route_reflector_client: bool,
    pub source_address: Option<IpAddr>,
    /// GTSM hop count; `None` is off.
    pub ttl_security: Option<u8>,
    /// Seconds, rounded.
    pub keepalive_time: Option<u64>,
    /// Graceful restart time in seconds, rounded.
    pub max_restart_time: Option<u64>,
    pub next_hop: NextHop,
    pub num_allowed_local_as: Option<u32>,
    /// The AS this node presents to the peer instead of its own.
    pub local_as: Option<Asn>,
    pub reachable_by: Option<IpAddr>,
    pub filters: Vec<String>,
    /// The secret holding the TCP MD5 password, unresolved.
    pub password: Option<SecretKeySelector>,
}

impl PeerConfig {
    /// A session of `kind` to `ip` (and `port`) in `peer_as`, named as Calico names it, with
    /// every option at its default: dials, no reflection, no password, BIRD's next-hop rule.
    pub fn new(kind: PeerKind, ip: IpAddr, port: Option<u16>, peer_as: Asn) -> PeerConfig {
        PeerConfig {
            name: peer_name(kind, ip, port),
            ip,
            port,
            peer_as,
            kind,
            passive: false,
            route_reflector_client: false,
            source_address: None,
            ttl_security: None,
            keepalive_time: None,
            max_restart_time: None,
            next_hop: NextHop::Auto,
            num_allowed_local_as: None,
            local_as: None,
            reachable_by: None,
            filters: Vec::new(),
            password: None,
        }
    }
}

/// A Calico node's BGP identity, as confd's `/calico/bgp/v1/host/<name>/...` keys hold it.
struct BgpNode<'a> {
    name: &'a str,
    node: &'a Node,
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
    asn: Asn,
    /// `spec.bgp.asNumber` as written, without the default.
    own_asn: Option<Asn>,
    cluster_id: Option<&'a str>,
    /// The node's `node.<name>` listen port, else the default one (`nodeListenPorts`,
    /// `globalListenPort`); `None` when neither is set.
    listen_port: Option<u16>,
}

impl BgpNode<'_> {
    fn ip(&self, v4: bool) -> Option<IpAddr> {
        if v4 { self.ipv4 } else { self.ipv6 }
    }
}

/// A peering before it becomes a session: confd's v1 `backends.BGPPeer`.
#[derive(Clone, Debug)]
struct Peering<'a> {
    ip: IpAddr,
    port: Option<u16>,
    peer_as: Asn,
    local_as: Option<Asn>,
    source_address: Option<SourceAddress>,
    keep_next_hop: bool,
    next_hop_mode: Option<NextHopMode>,
    calico_node: bool,
    ttl_security: Option<u8>,
    filters: &'a [String],
    num_allowed_local_as: Option<u32>,
    reachable_by: Option<IpAddr>,
    rr_cluster_id: Option<&'a str>,
    password: Option<&'a SecretKeySelector>,
    max_restart_time: Option<u64>,
    keepalive_time: Option<u64>,
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn seconds(d: Option<&Duration>) -> Option<u64> {
    // client.go setPeerConfigFieldsFromV3Resource: int(math.Round(d.Seconds())).
    d.and_then(Duration::to_std)
        .map(|d| (d.as_secs_f64().round()) as u64)
}

fn secret(p: Option<&BGPPassword>) -> Option<&SecretKeySelector> {
    p.and_then(|p| p.secret_key_ref.as_ref())
}

fn matching<'a>(nodes: &'a [BgpNode<'a>], selector: &str) -> Vec<&'a BgpNode<'a>> {
    // An unparsable selector matches no node.
    match api::selector::parse(selector) {
        Ok(sel) => nodes
            .iter()
            .filter(|n| sel.evaluate(n.node.metadata.labels()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

struct Cluster<'a> {
    nodes: Vec<BgpNode<'a>>,
    global: Option<&'a BGPConfigurationSpec>,
    global_as: Asn,
}

impl<'a> Cluster<'a> {
    fn new(inputs: &Inputs<'a>) -> Self {
        let config = |name: &str| {
            inputs
                .bgp_configurations
                .iter()
                .find(|c| c.metadata.name == name)
                .map(|c| &c.spec)
        };
        let global = config(GLOBAL_NAME);
        let port =
            |s: Option<&BGPConfigurationSpec>| s.and_then(|s| s.listen_port).filter(|p| *p != 0);
        let global_port = port(global);
        let global_as = global
            .and_then(|g| g.as_number)
            .unwrap_or(DEFAULT_AS_NUMBER);
        let nodes = inputs
            .nodes
            .iter()
            .map(|node| {
                let name = node.metadata.name.as_str();
                let bgp = node.spec.bgp.as_ref();
                BgpNode {
                    name,
                    node,
                    ipv4: bgp.and_then(|b| b.ipv4_network()).map(|n| n.ip()),
                    ipv6: bgp.and_then(|b| b.ipv6_network()).map(|n| n.ip()),
                    asn: bgp.and_then(|b| b.as_number).unwrap_or(global_as),
                    own_asn: bgp.and_then(|b| b.as_number),
                    cluster_id: bgp
                        .and_then(|b| non_empty(b.route_reflector_cluster_id.as_deref())),
                    listen_port: port(config(&format!("{NODE_PREFIX}{name}"))).or(global_port),
                }
            })
            .collect();
        Cluster {
            nodes,
            global,
            global_as,
        }
    }

    /// client.go nodesWithIPPortAndAS: the nodes a `peerIP` peering points at.
    fn nodes_with_ip_port_and_as(
        &self,
        ip: IpAddr,
        asn: Option<Asn>,
        port: Option<u16>,
    ) -> Vec<&BgpNode<'a>> {
        let asn = asn.unwrap_or(self.global_as);
        self.nodes
            .iter()
            .filter(|n| n.ipv4 == Some(ip) || n.ipv6 == Some(ip))
            .filter(|n| n.asn == asn)
            // A port in peerIP must equal the node's listen port when one is configured.
            .filter(|n| port.is_none() || n.listen_port.is_none() || n.listen_port == port)
            .collect()
    }

    /// client.go nodeAsBGPPeers: a Calico node as the far end of a selector peering.
    fn node_as_peerings(
        &self,
        n: &BgpNode<'a>,
        v4: bool,
        v6: bool,
        spec: &'a BGPPeerSpec,
    ) -> Vec<Peering<'a>> {
        let mut out = Vec::new();
        for (want, ip) in [(v4, n.ipv4), (v6, n.ipv6)] {
            let Some(ip) = ip.filter(|_| want) else {
                continue;
            };
            let (keep_next_hop, next_hop_mode) = next_hop_mode(spec);
            out.push(Peering {
                ip,
                port: n.listen_port,
                peer_as: n.asn,
                local_as: None,
                source_address: None,
                keep_next_hop,
                next_hop_mode,
                // nodeAsBGPPeers leaves CalicoNode false, so no passive side is chosen.
                calico_node: false,
                ttl_security: spec.ttl_security,
                filters: spec.filters.as_deref().unwrap_or_default(),
                num_allowed_local_as: None,
                reachable_by: non_empty(spec.reachable_by.as_deref()).and_then(|s| s.parse().ok()),
                rr_cluster_id: n.cluster_id,
                password: None,
                max_restart_time: None,
                keepalive_time: None,
            });
        }
        with_v3_fields(out, spec)
    }

    /// The `peerIP` branch of client.go updatePeersV1; `None` when Calico logs and skips it.
    fn ip_peering(&self, spec: &'a BGPPeerSpec) -> Option<Peering<'a>> {
        let peer = spec.peer_ip()?.ok()?;
        let mut port = peer.port;
        // With no port in peerIP, a peer that is a Calico node is dialled on its listen port.
        if port.is_none()
            && let Some(n) = self
                .nodes_with_ip_port_and_as(peer.ip, spec.as_number(), None)
                .first()
        {
            port = n.listen_port;
        }
        let reachable_by = match non_empty(spec.reachable_by.as_deref()) {
            None => None,
            Some(s) => match s.parse::<IpAddr>() {
                Ok(gw) if gw.is_ipv4() == peer.ip.is_ipv4() => Some(gw),
                _ => return None,
            },
        };
        let (keep_next_hop, next_hop_mode) = next_hop_mode(spec);
        let calico_node = self
            .nodes
            .iter()
            .any(|n| n.ipv4 == Some(peer.ip) || n.ipv6 == Some(peer.ip));
        let p = Peering {
            ip: peer.ip,
            port,
            // Calico writes an unset asNumber as AS 0.
            peer_as: spec.as_number.unwrap_or_default(),
            local_as: spec.local_as_number,
            source_address: None,
            keep_next_hop,
            next_hop_mode,
            calico_node,
            ttl_security: spec.ttl_security,
            filters: spec.filters.as_deref().unwrap_or_default(),
            num_allowed_local_as: spec
                .num_allowed_local_as_numbers
                .and_then(|n| u32::try_from(n).ok()),
            reachable_by,
            rr_cluster_id: None,
            password: None,
            max_restart_time: None,
            keepalive_time: None,
        };
        with_v3_fields(vec![p], spec).pop()
    }
}

/// client.go getNextHopMode: `nextHopMode` overrides the legacy `keepOriginalNextHop`.
fn next_hop_mode(spec: &BGPPeerSpec) -> (bool, Option<NextHopMode>) {
    match spec.next_hop_mode {
        Some(m) => (false, Some(m)),
        None => (spec.keep_original_next_hop.unwrap_or(false), None),
    }
}

/// client.go setPeerConfigFieldsFromV3Resource.
fn with_v3_fields<'a>(mut peerings: Vec<Peering<'a>>, spec: &'a BGPPeerSpec) -> Vec<Peering<'a>> {
    for p in &mut peerings {
        p.password = secret(spec.password.as_ref());
        p.source_address = Some(spec.source_address.unwrap_or(SourceAddress::UseNodeIp));
        p.max_restart_time = seconds(spec.max_restart_time.as_ref());
        p.keepalive_time = seconds(spec.keepalive_time.as_ref());
    }
    peerings
}

/// The v1 peering keys of client.go updatePeersV1, restricted to this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: PeerKind,
    ip: IpAddr,
    port: Option<u16>,
}

/// Calculates the node's BGP configuration.
pub fn node_bgp_config(inputs: &Inputs<'_>) -> Result<NodeBgpConfig, ConfigError> {
    let cluster = Cluster::new(inputs);
    let Some(me) = cluster.nodes.iter().find(|n| n.name == inputs.node_name) else {
        return Err(ConfigError::NodeNotFound(inputs.node_name.to_string()));
    };
    let Some(IpAddr::V4(router_id)) = me.ipv4 else {
        return Err(ConfigError::NoIpv4Address(inputs.node_name.to_string()));
    };
    let listen_port = me.listen_port.unwrap_or(DEFAULT_LISTEN_PORT);

    let mut peers = mesh_peers(&cluster, me);
    for (key, peering) in peerings(&cluster, me, inputs.bgp_peers) {
        if let Some(p) = session(me, key, &peering) {
            peers.push(p);
        }
    }
    Ok(NodeBgpConfig {
        router_id,
        local_as: me.asn,
        listen_port,
        cluster_id: me.cluster_id.map(str::to_string),
        peers,
    })
}

/// bgp_processor.go processMeshPeers.
fn mesh_peers(cluster: &Cluster<'_>, me: &BgpNode<'_>) -> Vec<PeerConfig> {
    // A route reflector does not join the mesh.
    if me.cluster_id.is_some()
        || !cluster
            .global
            .is_none_or(BGPConfigurationSpec::node_to_node_mesh_enabled)
    {
        return Vec::new();
    }
    let password = secret(cluster.global.and_then(|g| g.node_mesh_password.as_ref()));
    let max_restart_time = seconds(
        cluster
            .global
            .and_then(|g| g.node_mesh_max_restart_time.as_ref()),
    );
    let mut out = Vec::new();
    for v4 in [true, false] {
        let Some(local_ip) = me.ip(v4) else {
            continue;
        };
        for n in &cluster.nodes {
            let Some(ip) = n.ip(v4) else {
                continue;
            };
            // Skips ourselves by address, and route reflectors, which peer by BGPPeer only.
            if ip == local_ip || n.cluster_id.is_some() {
                continue;
            }
            // processMeshPeers: a peer without its own AS is given this node's AS.
            let peer_as = n.own_asn.unwrap_or(me.asn);
            out.push(PeerConfig {
                // "Make mesh unidirectional to avoid race conditions".
                passive: !dials_first(local_ip, ip),
                source_address: Some(local_ip),
                max_restart_time,
                password: password.cloned(),
                // Calico names mesh sessions without the port (bgp_processor.go).
                port: n.listen_port,
                ..PeerConfig::new(PeerKind::Mesh, ip, None, peer_as)
            });
        }
    }
    out.sort_by_key(|p| (p.ip.is_ipv6(), p.ip));
    out
}

/// client.go updatePeersV1, for the keys that reach this node: global peerings first, then
/// node-specific ones, then automatic reverse peerings; the first peering for a key wins.
fn peerings<'a>(
    cluster: &'a Cluster<'a>,
    me: &BgpNode<'a>,
    bgp_peers: &'a [BGPPeer],
) -> BTreeMap<Key, Peering<'a>> {
    let mut out: BTreeMap<Key, Peering<'a>> = BTreeMap::new();
    let mut emit = |kind: PeerKind, p: Peering<'a>| {
        let key = Key {
            kind,
            ip: p.ip,
            port: p.port,
        };
        // "If we would be emitting a node-specific peering to a peer IP, and we already have a
        // global peering to that IP, skip emitting the node-specific one."
        let global = Key {
            kind: PeerKind::Global,
            ..key
        };
        if kind == PeerKind::Node && out.contains_key(&global) {
            return;
        }
        // "If we already have an entry for that path, it wins": an explicit forward peering is
        // not overwritten by an implicit reverse one.
        out.entry(key).or_insert(p);
    };
    let selected = |spec: &BGPPeerSpec| match (
        non_empty(spec.node_selector.as_deref()),
        non_empty(spec.node.as_deref()),
    ) {
        (Some(sel), _) => matching(&cluster.nodes, sel)
            .iter()
            .any(|n| n.name == me.name),
        (None, Some(node)) => node == me.name,
        (None, None) => true,
    };
    let is_global = |spec: &BGPPeerSpec| {
        non_empty(spec.node_selector.as_deref()).is_none()
            && non_empty(spec.node.as_deref()).is_none()
    };
    // Peerings to local workloads need the workloads; they are not calculated here.
    let usable = || {
        bgp_peers
            .iter()
            .map(|p| &p.spec)
            .filter(|s| non_empty(s.local_workload_selector.as_deref()).is_none())
    };

    for global_pass in [true, false] {
        for spec in usable().filter(|s| is_global(s) == global_pass) {
            if !selected(spec) {
                continue;
            }
            let kind = if global_pass {
                PeerKind::Global
            } else {
                PeerKind::Node
            };
            let forward = match non_empty(spec.peer_selector.as_deref()) {
                Some(sel) => matching(&cluster.nodes, sel)
                    .into_iter()
                    .flat_map(|n| cluster.node_as_peerings(n, true, true, spec))
                    .collect(),
                None => cluster.ip_peering(spec).into_iter().collect::<Vec<_>>(),
            };
            for p in forward {
                emit(kind, p);
            }
        }
    }

    // The reverse pass: this node is "local" when it matches the BGPPeer's remote side, and
    // peers with the nodes on its local side.
    for spec in usable() {
        if spec.reverse_peering == Some(ReversePeering::Manual) {
            continue;
        }
        let (locals, v4, v6) = match non_empty(spec.peer_selector.as_deref()) {
            Some(sel) => (matching(&cluster.nodes, sel), true, true),
            None => {
                let Some(Ok(peer)) = spec.peer_ip() else {
                    continue;
                };
                let v4 = peer.ip.is_ipv4();
                (
                    cluster.nodes_with_ip_port_and_as(peer.ip, spec.as_number(), peer.port),
                    v4,
                    !v4,
                )
            }
        };
        if !locals.iter().any(|n| n.name == me.name) {
            continue;
        }
        let remotes: Vec<&BgpNode<'_>> = match (
            non_empty(spec.node_selector.as_deref()),
            non_empty(spec.node.as_deref()),
        ) {
            (Some(sel), _) => matching(&cluster.nodes, sel),
            (None, Some(node)) => cluster.nodes.iter().filter(|n| n.name == node).collect(),
            (None, None) => cluster.nodes.iter().collect(),
        };
        for n in remotes {
            for p in cluster.node_as_peerings(n, v4, v6, spec) {
                emit(PeerKind::Node, p);
            }
        }
    }
    out
}

fn peer_name(kind: PeerKind, ip: IpAddr, port: Option<u16>) -> String {
    // bgp_processor.go: dots of an IPv4 address, colons of an IPv6 one, become underscores.
    let ip = ip.to_string().replace(['.', ':'], "_");
    match port {
        Some(port) => format!("{}_{ip}_port_{port}", kind.prefix()),
        None => format!("{}_{ip}", kind.prefix()),
    }
}

/// bgp_processor.go buildPeerFromData; `None` for a peering to this node itself or in an
/// address family the node lacks.
fn session(me: &BgpNode<'_>, key: Key, p: &Peering<'_>) -> Option<PeerConfig> {
    let local_ip = me.ip(p.ip.is_ipv4())?;
    if p.ip == local_ip {
        return None;
    }
    let effective_as = p.local_as.unwrap_or(me.asn);
    let next_hop = match p.next_hop_mode {
        Some(NextHopMode::OwnAddress) => NextHop::OwnAddress,
        Some(NextHopMode::Keep) => NextHop::Keep,
        // The legacy keepOriginalNextHop applies to eBGP peers only.
        _ if p.keep_next_hop && p.peer_as != effective_as => NextHop::Keep,
        _ => NextHop::Auto,
    };
    // "If this node is a route reflector (has a cluster ID) and the peer is iBGP and the peer
    // does not have a cluster ID (or has a different one), then the peer is a route reflector
    // client."
    let route_reflector_client =
        p.peer_as == effective_as && me.cluster_id.is_some() && p.rr_cluster_id != me.cluster_id;
    // Only global peerings to Calico nodes pick a passive side by the address-string rule.
    let passive = key.kind == PeerKind::Global && p.calico_node && !dials_first(local_ip, p.ip);
    Some(PeerConfig {
        passive,
        route_reflector_client,
        source_address: (p.source_address == Some(SourceAddress::UseNodeIp)).then_some(local_ip),
        ttl_security: p.ttl_security.filter(|t| *t > 0),
        keepalive_time: p.keepalive_time,
        max_restart_time: p.max_restart_time,
        next_hop,
        num_allowed_local_as: p.num_allowed_local_as.filter(|n| *n > 0),
        local_as: p.local_as.filter(|a| a.0 != 0),
        reachable_by: p.reachable_by,
        filters: p.filters.to_vec(),
        password: p.password.cloned(),
        ..PeerConfig::new(key.kind, p.ip, p.port, p.peer_as)
    })
}

#[cfg(test)]
mod tests;
