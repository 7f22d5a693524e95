//! The routing information base: every peer's routes (Adj-RIB-In), the best path per prefix
//! (Loc-RIB, RFC 4271 §9.1), and what each peer is sent (Adj-RIB-Out, computed from the
//! Loc-RIB through RFC 4271/4456 rules and the peer's [`Policy`], never stored).
//!
//! [`Rib`] is pure: it takes received UPDATEs, session events and this node's own routes, and
//! returns [`Changes`]: best-path changes for the kernel ([`FibChange`], with the ECMP next-hop
//! set) and, per peer, what to announce and withdraw ([`OutUpdate`], grouped by identical
//! attributes so the peer task packs them into few UPDATEs). It does no I/O and reads no clock.
//!
//! Memory is laid out for full tables: a prefix's paths are an inline one-element vector keyed
//! by the packed prefix, and a path is a pointer to an interned attribute set plus the peer, so
//! a route costs about 40 octets however many share its attributes (a full table from one peer
//! has a few hundred thousand attribute sets at most; a Calico cluster a handful).
//!
//! Graceful restart, helper side (RFC 4724 §4.2): a restarting peer's paths are kept and marked
//! stale; fresh announcements clear the mark, its End-of-RIB removes what is still stale, and so
//! does [`Rib::stale_expired`] when its restart time runs out.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use api::asn::Asn;
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use smallvec::SmallVec;

use crate::config::NextHop;
use crate::fsm::RouteDisposition;
use crate::route::{LocalRoute, PeerId, Policy, RouteSource};
use crate::wire::{
    AsPath, AsSegment, Community, Family, MpReach, Origin, PathAttributes, SegmentType, Update,
};

/// RFC 4271 §5.1.5: the LOCAL_PREF assumed when none was received.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The peer id of routes this node originates.
const LOCAL: u32 = 0;

/// This speaker's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalSpeaker {
    pub router_id: Ipv4Addr,
    pub asn: Asn,
    /// RFC 4456 CLUSTER_ID when this node reflects routes (`routeReflectorClusterID`).
    pub cluster_id: Option<Ipv4Addr>,
}

/// What the RIB needs to know about an Established peer.
#[derive(Clone, Debug)]
pub struct PeerSettings {
    pub address: IpAddr,
    /// Our end of the session: the next hop when we advertise "next hop self".
    pub local_address: IpAddr,
    /// The peer's BGP identifier.
    pub router_id: Ipv4Addr,
    pub peer_as: Asn,
    /// The AS we present to this peer (Calico's `localASNumber`, else the node's).
    pub local_as: Asn,
    pub internal: bool,
    /// We reflect routes to this peer (RFC 4456).
    pub rr_client: bool,
    pub next_hop: NextHop,
    /// How often our AS may appear in a received AS_PATH (`numAllowedLocalASNumbers`).
    pub num_allowed_local_as: u32,
    /// Whether the peer speaks 4-octet AS numbers; if not, its AS4_PATH is merged (RFC 6793).
    pub four_octet_as: bool,
    pub policy: Arc<dyn Policy>,
}

/// A best-path change for the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibChange {
    pub prefix: IpNetwork,
    /// The ECMP next-hop set, sorted; empty: no learned route to `prefix` any more.
    pub next_hops: Vec<IpAddr>,
    /// Where the best path came from (`None` when there is none).
    pub source: Option<RouteSource>,
}

/// Something to send one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutUpdate {
    /// `prefixes` with the complete outgoing `attrs` (no MP_REACH_NLRI: the peer task builds it
    /// for IPv6 from `next_hop`); for IPv4, `attrs.next_hop` is `next_hop`.
    Announce {
        attrs: Arc<PathAttributes>,
        next_hop: IpAddr,
        prefixes: Vec<IpNetwork>,
    },
    Withdraw(Vec<IpNetwork>),
    /// RFC 4724 §2: the end of the initial advertisement of a family.
    EndOfRib(Family),
}

/// What a call changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub fib: Vec<FibChange>,
    pub out: Vec<(PeerId, OutUpdate)>,
}

/// A path's attributes and next hop, shared by every route that carries them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    /// Without MP_REACH_NLRI/MP_UNREACH_NLRI.
    pub attrs: PathAttributes,
    pub next_hop: IpAddr,
}

#[derive(Clone, Debug)]
struct Path {
    attrs: Arc<RouteAttrs>,
    peer: u32,
    stale: bool,
}

type Paths = SmallVec<[Path; 1]>;

/// A prefix packed into a map key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    V4(u64),
    V6(u128, u8),
}

impl Key {
    fn of(p: &IpNetwork) -> Key {
        match p {
            IpNetwork::V4(n) => {
                Key::V4((u64::from(u32::from(n.network())) << 8) | u64::from(n.prefix()))
            }
            IpNetwork::V6(n) => Key::V6(u128::from(n.network()), n.prefix()),
        }
    }

    fn prefix(self) -> IpNetwork {
        match self {
            Key::V4(k) => IpNetwork::V4(
                Ipv4Network::new(Ipv4Addr::from((k >> 8) as u32), (k & 0xff) as u8)
                    .unwrap_or_else(|_| Ipv4Network::from(Ipv4Addr::UNSPECIFIED)),
            ),
            Key::V6(a, l) => IpNetwork::V6(
                Ipv6Network::new(Ipv6Addr::from(a), l)
                    .unwrap_or_else(|_| Ipv6Network::from(Ipv6Addr::UNSPECIFIED)),
            ),
        }
    }
}

struct Peer {
    settings: PeerSettings,
    up: bool,
    received: usize,
}

/// See the module documentation.
pub struct Rib {
    local: LocalSpeaker,
    peers: HashMap<u32, Peer>,
    /// B-trees rather than hash maps: no doubling of a million-entry table while it grows,
    /// about 40 octets a route, and ordered output.
    v4: BTreeMap<u64, Paths>,
    v6: BTreeMap<(u128, u8), Paths>,
    interned: HashSet<Arc<RouteAttrs>>,
    /// Interned sets are dropped when unused once the set count doubles since the last purge.
    purge_at: usize,
    local_routes: BTreeMap<IpNetwork, LocalRoute>,
}

/// What the kernel and the peers see of a prefix: its best path and ECMP set.
#[derive(Clone, Debug)]
struct Selected {
    best: Option<Path>,
    next_hops: Vec<IpAddr>,
}

impl Rib {
    pub fn new(local: LocalSpeaker) -> Rib {
        Rib {
            local,
            peers: HashMap::new(),
            v4: BTreeMap::new(),
            v6: BTreeMap::new(),
            interned: HashSet::new(),
            purge_at: 1024,
            local_routes: BTreeMap::new(),
        }
    }

    pub fn local(&self) -> &LocalSpeaker {
        &self.local
    }

    /// Every prefix whose best path was learned from a peer, with its ECMP next hops: what the
    /// kernel should hold, before the install filter.
    pub fn learned_routes(&self) -> Vec<FibChange> {
        let v4 = self.v4.iter().map(|(k, p)| (Key::V4(*k), p));
        let v6 = self.v6.iter().map(|(k, p)| (Key::V6(k.0, k.1), p));
        v4.chain(v6)
            .filter_map(|(key, paths)| {
                let sel = self.select(paths);
                let best = sel.best.as_ref().filter(|b| b.peer != LOCAL)?;
                Some(FibChange {
                    prefix: key.prefix(),
                    source: Some(self.source_of(best)),
                    next_hops: sel.next_hops,
                })
            })
            .collect()
    }

    /// Prefixes with at least one path.
    pub fn route_count(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Paths held from peer `id` (stale ones included).
    pub fn received_count(&self, id: PeerId) -> usize {
        self.peers.get(&id.0).map_or(0, |p| p.received)
    }

    /// Distinct attribute sets held.
    pub fn attribute_sets(&self) -> usize {
        self.interned.len()
    }

    /// The best path's attributes for `prefix`, and its ECMP next hops.
    pub fn best(&self, prefix: &IpNetwork) -> Option<(Arc<RouteAttrs>, Vec<IpAddr>)> {
        let sel = self.select(self.paths(Key::of(prefix))?);
        sel.best.map(|b| (b.attrs, sel.next_hops))
    }

    fn paths(&self, key: Key) -> Option<&Paths> {
        match key {
            Key::V4(k) => self.v4.get(&k),
            Key::V6(a, l) => self.v6.get(&(a, l)),
        }
    }

    fn intern(&mut self, attrs: RouteAttrs) -> Arc<RouteAttrs> {
        if let Some(a) = self.interned.get(&attrs) {
            return a.clone();
        }
        if self.interned.len() >= self.purge_at {
            self.interned.retain(|a| Arc::strong_count(a) > 1);
            self.purge_at = (self.interned.len() * 2).max(1024);
        }
        let a = Arc::new(attrs);
        self.interned.insert(a.clone());
        a
    }

    /// A session reached Established: its initial advertisement, then End-of-RIB.
    pub fn peer_up(&mut self, id: PeerId, settings: PeerSettings) -> Changes {
        let received = self.peers.get(&id.0).map_or(0, |p| p.received);
        self.peers.insert(
            id.0,
            Peer {
                settings,
                up: true,
                received,
            },
        );
        Changes {
            fib: Vec::new(),
            out: self.adj_rib_out(id).into_iter().map(|o| (id, o)).collect(),
        }
    }

    /// A session left Established.
    pub fn peer_down(&mut self, id: PeerId, disposition: RouteDisposition) -> Changes {
        let Some(peer) = self.peers.get_mut(&id.0) else {
            return Changes::default();
        };
        peer.up = false;
        match disposition {
            RouteDisposition::Withdraw => {
                let changes = self.remove_paths(id.0, |_| true);
                self.peers.remove(&id.0);
                changes
            }
            RouteDisposition::KeepStale { .. } => {
                for paths in self.v4.values_mut().chain(self.v6.values_mut()) {
                    for p in paths.iter_mut().filter(|p| p.peer == id.0) {
                        p.stale = true;
                    }
                }
                Changes::default()
            }
        }
    }

    /// RFC 4724: the peer's restart time ran out; its stale paths go.
    pub fn stale_expired(&mut self, id: PeerId) -> Changes {
        let changes = self.remove_paths(id.0, |p| p.stale);
        if self
            .peers
            .get(&id.0)
            .is_some_and(|p| !p.up && p.received == 0)
        {
            self.peers.remove(&id.0);
        }
        changes
    }

    /// Removes `peer`'s paths for which `which` holds, everywhere.
    fn remove_paths(&mut self, peer: u32, which: impl Fn(&Path) -> bool) -> Changes {
        let mut keys = Vec::new();
        for (k, paths) in &self.v4 {
            if paths.iter().any(|p| p.peer == peer && which(p)) {
                keys.push(Key::V4(*k));
            }
        }
        for (k, paths) in &self.v6 {
            if paths.iter().any(|p| p.peer == peer && which(p)) {
                keys.push(Key::V6(k.0, k.1));
            }
        }
        let mut changes = Changes::default();
        let mut batch = OutBatch::default();
        for key in keys {
            self.modify(key, &mut changes, &mut batch, |paths| {
                paths.retain(|p| !(p.peer == peer && which(p)));
            });
        }
        self.finish(changes, batch)
    }

    /// An accepted UPDATE from `id`.
    pub fn update(&mut self, id: PeerId, update: Update) -> Changes {
        if let Some(family) = update.end_of_rib_family() {
            return self.end_of_rib(id, family);
        }
        let withdrawn = update.withdrawn_prefixes();
        let announced = update.announced_prefixes();
        let mut changes = Changes::default();
        let mut batch = OutBatch::default();
        for p in &withdrawn {
            self.withdraw_one(id.0, Key::of(p), &mut changes, &mut batch);
        }
        if !announced.is_empty() {
            self.announce(id, update.attributes, &announced, &mut changes, &mut batch);
        }
        self.finish(changes, batch)
    }

    /// RFC 7606 treat-as-withdraw, or withdrawals from anywhere else.
    pub fn withdraw(&mut self, id: PeerId, prefixes: &[IpNetwork]) -> Changes {
        let mut changes = Changes::default();
        let mut batch = OutBatch::default();
        for p in prefixes {
            self.withdraw_one(id.0, Key::of(p), &mut changes, &mut batch);
        }
        self.finish(changes, batch)
    }

    fn end_of_rib(&mut self, id: PeerId, family: Family) -> Changes {
        let v4 = family == Family::IPV4_UNICAST;
        let mut keys = Vec::new();
        if v4 {
            keys.extend(
                self.v4
                    .iter()
                    .filter(|(_, ps)| ps.iter().any(|p| p.peer == id.0 && p.stale))
                    .map(|(k, _)| Key::V4(*k)),
            );
        } else {
            keys.extend(
                self.v6
                    .iter()
                    .filter(|(_, ps)| ps.iter().any(|p| p.peer == id.0 && p.stale))
                    .map(|(k, _)| Key::V6(k.0, k.1)),
            );
        }
        let mut changes = Changes::default();
        let mut batch = OutBatch::default();
        for key in keys {
            self.modify(key, &mut changes, &mut batch, |paths| {
                paths.retain(|p| !(p.peer == id.0 && p.stale));
            });
        }
        self.finish(changes, batch)
    }

    fn withdraw_one(&mut self, peer: u32, key: Key, changes: &mut Changes, batch: &mut OutBatch) {
        self.modify(key, changes, batch, |paths| {
            paths.retain(|p| p.peer != peer)
        });
    }

    /// The import checks that depend only on the attributes (RFC 4271 §9.1.2, RFC 4456 §8).
    fn acceptable(&self, settings: &PeerSettings, attrs: &PathAttributes) -> bool {
        if let Some(path) = &attrs.as_path {
            let ours = |a: &Asn| *a == self.local.asn || *a == settings.local_as;
            let count = path
                .segments
                .iter()
                .flat_map(|s| s.asns.iter())
                .filter(|a| ours(a))
                .count();
            if count > settings.num_allowed_local_as as usize {
                return false;
            }
        }
        if attrs.originator_id == Some(self.local.router_id) {
            return false;
        }
        let cluster = self.cluster_id();
        if attrs.cluster_list.contains(&cluster) {
            return false;
        }
        true
    }

    fn cluster_id(&self) -> Ipv4Addr {
        // RFC 4456 §7: without a configured CLUSTER_ID, the reflector's BGP identifier.
        self.local.cluster_id.unwrap_or(self.local.router_id)
    }

    fn announce(
        &mut self,
        id: PeerId,
        mut attrs: PathAttributes,
        prefixes: &[IpNetwork],
        changes: &mut Changes,
        batch: &mut OutBatch,
    ) {
        let Some(peer) = self.peers.get(&id.0) else {
            return;
        };
        let settings = peer.settings.clone();
        if !settings.four_octet_as {
            attrs = attrs.merge_as4();
        }
        let v6_next_hop = match &attrs.mp_reach {
            Some(MpReach::Ipv6Unicast { next_hop, .. }) => Some(IpAddr::V6(*next_hop)),
            Some(MpReach::Ipv4Unicast { next_hop, .. }) => Some(IpAddr::V4(*next_hop)),
            None => None,
        };
        attrs.mp_reach = None;
        attrs.mp_unreach = None;
        let accept = self.acceptable(&settings, &attrs);
        let v4_attrs = attrs.next_hop.map(|nh| RouteAttrs {
            attrs: attrs.clone(),
            next_hop: IpAddr::V4(nh),
        });
        let v6_attrs = v6_next_hop.map(|nh| RouteAttrs {
            attrs: attrs.clone(),
            next_hop: nh,
        });
        let v4 = v4_attrs.map(|a| self.intern(a));
        let v6 = v6_attrs.map(|a| self.intern(a));
        for prefix in prefixes {
            let interned = match prefix {
                IpNetwork::V4(_) => v4.clone().or_else(|| v6.clone()),
                IpNetwork::V6(_) => v6.clone(),
            };
            let key = Key::of(prefix);
            let ok = accept && interned.is_some() && settings.policy.import(prefix, &attrs);
            match interned.filter(|_| ok) {
                Some(a) => {
                    let path = Path {
                        attrs: a,
                        peer: id.0,
                        stale: false,
                    };
                    self.modify(key, changes, batch, move |paths| {
                        match paths.iter_mut().find(|p| p.peer == path.peer) {
                            Some(p) => *p = path,
                            None => paths.push(path),
                        }
                    });
                }
                // A refused announcement replaces (so withdraws) the peer's previous path.
                None => self.withdraw_one(id.0, key, changes, batch),
            }
        }
    }

    /// Changes the paths of `key` with `f` and records what that changes for the kernel and
    /// the peers.
    fn modify(
        &mut self,
        key: Key,
        changes: &mut Changes,
        batch: &mut OutBatch,
        f: impl FnOnce(&mut Paths),
    ) {
        let (before, after, counts) = {
            let paths = match key {
                Key::V4(k) => self.v4.entry(k).or_default(),
                Key::V6(a, l) => self.v6.entry((a, l)).or_default(),
            };
            let old: SmallVec<[u32; 2]> = paths.iter().map(|p| p.peer).collect();
            let before_paths = paths.clone();
            f(paths);
            let new: SmallVec<[u32; 2]> = paths.iter().map(|p| p.peer).collect();
            let after_paths = paths.clone();
            if paths.is_empty() {
                match key {
                    Key::V4(k) => {
                        self.v4.remove(&k);
                    }
                    Key::V6(a, l) => {
                        self.v6.remove(&(a, l));
                    }
                }
            }
            (before_paths, after_paths, (old, new))
        };
        for peer in counts.0.iter().filter(|p| !counts.1.contains(p)) {
            if let Some(p) = self.peers.get_mut(peer) {
                p.received = p.received.saturating_sub(1);
            }
        }
        for peer in counts.1.iter().filter(|p| !counts.0.contains(p)) {
            if let Some(p) = self.peers.get_mut(peer) {
                p.received += 1;
            }
        }
        let old = self.select(&before);
        let new = self.select(&after);
        let prefix = key.prefix();
        let learned = |s: &Selected| s.best.as_ref().is_some_and(|b| b.peer != LOCAL);
        if (learned(&old) || learned(&new))
            && (old.next_hops != new.next_hops || self.source(&old) != self.source(&new))
        {
            changes.fib.push(FibChange {
                prefix,
                next_hops: if learned(&new) {
                    new.next_hops.clone()
                } else {
                    Vec::new()
                },
                source: new.best.as_ref().map(|b| self.source_of(b)),
            });
        }
        let same_best = match (&old.best, &new.best) {
            (Some(a), Some(b)) => a.peer == b.peer && Arc::ptr_eq(&a.attrs, &b.attrs),
            (None, None) => true,
            _ => false,
        };
        if !same_best {
            self.export_change(prefix, old.best.as_ref(), new.best.as_ref(), batch);
        }
    }

    fn source_of(&self, p: &Path) -> RouteSource {
        if p.peer == LOCAL {
            return RouteSource::Local;
        }
        match self.peers.get(&p.peer) {
            Some(peer) => RouteSource::Peer {
                id: PeerId(p.peer),
                internal: peer.settings.internal,
                router_id: peer.settings.router_id,
            },
            None => RouteSource::Peer {
                id: PeerId(p.peer),
                internal: true,
                router_id: Ipv4Addr::UNSPECIFIED,
            },
        }
    }

    fn source(&self, s: &Selected) -> Option<RouteSource> {
        s.best.as_ref().map(|b| self.source_of(b))
    }

    /// The best path and ECMP set among `paths`.
    fn select(&self, paths: &Paths) -> Selected {
        let mut best: Option<&Path> = None;
        for p in paths {
            best = match best {
                Some(b) if self.compare(b, p) != Ordering::Greater => Some(b),
                _ => Some(p),
            };
        }
        let Some(best) = best else {
            return Selected {
                best: None,
                next_hops: Vec::new(),
            };
        };
        let mut next_hops: Vec<IpAddr> = paths
            .iter()
            .filter(|p| p.peer != LOCAL && self.multipath_equal(best, p))
            .map(|p| p.attrs.next_hop)
            .filter(|nh| !nh.is_unspecified())
            .collect();
        next_hops.sort();
        next_hops.dedup();
        Selected {
            best: Some(best.clone()),
            next_hops,
        }
    }

    fn internal(&self, p: &Path) -> bool {
        self.peers
            .get(&p.peer)
            .is_none_or(|peer| peer.settings.internal)
    }

    /// The neighbouring AS: the first AS of the path (RFC 4271 §9.1.2.2 c).
    fn neighbor_as(p: &Path) -> Option<Asn> {
        p.attrs
            .attrs
            .as_path
            .as_ref()
            .and_then(|a| a.segments.first())
            .filter(|s| s.kind == SegmentType::Sequence)
            .and_then(|s| s.asns.first().copied())
    }

    /// The decision process of RFC 4271 §9.1.2.2 up to the interior-cost step, which the ECMP
    /// set shares: equal here means equally good for forwarding.
    fn compare_multipath(&self, a: &Path, b: &Path) -> Ordering {
        // Our own routes first (BIRD prefers its static routes the same way).
        let local = |p: &Path| p.peer == LOCAL;
        let lp = |p: &Path| p.attrs.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF);
        let len = |p: &Path| {
            p.attrs
                .attrs
                .as_path
                .as_ref()
                .map_or(0, AsPath::path_length)
        };
        let origin = |p: &Path| p.attrs.attrs.origin.unwrap_or(Origin::Incomplete);
        local(b)
            .cmp(&local(a))
            .then_with(|| lp(b).cmp(&lp(a)))
            .then_with(|| len(a).cmp(&len(b)))
            .then_with(|| origin(a).cmp(&origin(b)))
            .then_with(|| {
                // c) MED only between paths from the same neighbouring AS; missing is 0.
                if Self::neighbor_as(a) == Self::neighbor_as(b) {
                    let med = |p: &Path| p.attrs.attrs.med.unwrap_or(0);
                    med(a).cmp(&med(b))
                } else {
                    Ordering::Equal
                }
            })
            // d) eBGP over iBGP.
            .then_with(|| self.internal(a).cmp(&self.internal(b)))
    }

    fn multipath_equal(&self, best: &Path, p: &Path) -> bool {
        self.compare_multipath(best, p) == Ordering::Equal
            && (self.internal(best) || Self::neighbor_as(best) == Self::neighbor_as(p))
    }

    /// `Less` when `a` is better. After the multipath steps: shorter CLUSTER_LIST (RFC 4456
    /// §9), lower ORIGINATOR_ID or router ID (RFC 4271 §9.1.2.2 f), lower peer address (g),
    /// then fresh before stale.
    fn compare(&self, a: &Path, b: &Path) -> Ordering {
        let id = |p: &Path| {
            p.attrs.attrs.originator_id.unwrap_or_else(|| {
                self.peers
                    .get(&p.peer)
                    .map_or(self.local.router_id, |x| x.settings.router_id)
            })
        };
        let addr = |p: &Path| self.peers.get(&p.peer).map(|x| x.settings.address);
        self.compare_multipath(a, b)
            .then_with(|| {
                a.attrs
                    .attrs
                    .cluster_list
                    .len()
                    .cmp(&b.attrs.attrs.cluster_list.len())
            })
            .then_with(|| id(a).cmp(&id(b)))
            .then_with(|| addr(a).cmp(&addr(b)))
            .then_with(|| a.stale.cmp(&b.stale))
    }

    /// Whether `path` (best for `prefix`) goes to peer `to`, and with which attributes.
    fn export(&self, prefix: &IpNetwork, path: &Path, to_id: u32, to: &Peer) -> Option<RouteAttrs> {
        // A session carries the family of its addresses, as Calico's BIRD (IPv4) and BIRD6
        // sessions do.
        if !to.up || path.peer == to_id || prefix.is_ipv4() != to.settings.address.is_ipv4() {
            return None;
        }
        let attrs = &path.attrs.attrs;
        let ebgp = !to.settings.internal;
        // RFC 1997.
        if attrs.communities.contains(&Community::NO_ADVERTISE)
            || (ebgp && attrs.communities.contains(&Community::NO_EXPORT))
        {
            return None;
        }
        let from = self.peers.get(&path.peer).filter(|_| path.peer != LOCAL);
        let reflected = match from {
            Some(src) if src.settings.internal && !ebgp => {
                // RFC 4456 §6: iBGP to iBGP only by reflection.
                if !(src.settings.rr_client || to.settings.rr_client) {
                    return None;
                }
                Some(src)
            }
            _ => None,
        };
        if !to
            .settings
            .policy
            .export(prefix, self.source_of(path), attrs)
        {
            return None;
        }
        let mut out = attrs.clone();
        let mut next_hop = path.attrs.next_hop;
        let self_hop = to.settings.local_address;
        let local = path.peer == LOCAL;
        if ebgp {
            prepend(&mut out, to.settings.local_as);
            if local || to.settings.next_hop != NextHop::Keep {
                next_hop = self_hop;
            }
            out.local_pref = None;
            out.originator_id = None;
            out.cluster_list.clear();
            if !local {
                out.med = None;
            }
        } else {
            out.local_pref.get_or_insert(DEFAULT_LOCAL_PREF);
            if local || to.settings.next_hop == NextHop::OwnAddress {
                next_hop = self_hop;
            }
            if let Some(src) = reflected {
                out.originator_id.get_or_insert(src.settings.router_id);
                out.cluster_list.insert(0, self.cluster_id());
            }
        }
        if local && out.as_path.is_none() {
            out.as_path = Some(AsPath::default());
        }
        // A next hop of the wrong family cannot be sent; our own address is the fallback.
        if next_hop.is_ipv4() != prefix.is_ipv4() || next_hop.is_unspecified() {
            next_hop = self_hop;
        }
        out.next_hop = match next_hop {
            IpAddr::V4(v4) if prefix.is_ipv4() => Some(v4),
            _ => None,
        };
        Some(RouteAttrs {
            attrs: out,
            next_hop,
        })
    }

    fn export_change(
        &self,
        prefix: IpNetwork,
        old: Option<&Path>,
        new: Option<&Path>,
        batch: &mut OutBatch,
    ) {
        for (id, peer) in &self.peers {
            if !peer.up {
                continue;
            }
            match new.and_then(|p| self.export(&prefix, p, *id, peer)) {
                Some(attrs) => batch.announce(*id, attrs, prefix),
                None => {
                    if old.is_some_and(|p| self.export(&prefix, p, *id, peer).is_some()) {
                        batch.withdraw(*id, prefix);
                    }
                }
            }
        }
    }

    fn finish(&self, mut changes: Changes, batch: OutBatch) -> Changes {
        changes.out = batch.into_out();
        changes
    }

    /// Everything peer `id` should hold, then End-of-RIB for both families (the peer task
    /// sends only the families the session negotiated).
    pub fn adj_rib_out(&self, id: PeerId) -> Vec<OutUpdate> {
        let mut batch = OutBatch::default();
        if let Some(peer) = self.peers.get(&id.0) {
            let v4 = self.v4.iter().map(|(k, p)| (Key::V4(*k), p));
            let v6 = self.v6.iter().map(|(k, p)| (Key::V6(k.0, k.1), p));
            for (key, paths) in v4.chain(v6) {
                let prefix = key.prefix();
                if let Some(best) = self.select(paths).best
                    && let Some(attrs) = self.export(&prefix, &best, id.0, peer)
                {
                    batch.announce(id.0, attrs, prefix);
                }
            }
        }
        let mut out: Vec<OutUpdate> = batch.into_out().into_iter().map(|(_, o)| o).collect();
        out.push(OutUpdate::EndOfRib(Family::IPV4_UNICAST));
        out.push(OutUpdate::EndOfRib(Family::IPV6_UNICAST));
        out
    }

    /// Replaces the routes this node originates.
    pub fn set_local_routes(&mut self, routes: BTreeMap<IpNetwork, LocalRoute>) -> Changes {
        let mut changes = Changes::default();
        let mut batch = OutBatch::default();
        let old = std::mem::take(&mut self.local_routes);
        for (prefix, _) in old.iter().filter(|(p, r)| routes.get(*p) != Some(*r)) {
            self.modify(Key::of(prefix), &mut changes, &mut batch, |paths| {
                paths.retain(|p| p.peer != LOCAL)
            });
        }
        for (prefix, route) in routes.iter().filter(|(p, r)| old.get(*p) != Some(*r)) {
            let attrs = self.intern(RouteAttrs {
                attrs: PathAttributes {
                    origin: Some(Origin::Igp),
                    as_path: Some(AsPath::default()),
                    communities: route.communities.clone(),
                    large_communities: route.large_communities.clone(),
                    ..Default::default()
                },
                next_hop: match prefix {
                    IpNetwork::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpNetwork::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                },
            });
            let path = Path {
                attrs,
                peer: LOCAL,
                stale: false,
            };
            self.modify(Key::of(prefix), &mut changes, &mut batch, move |paths| {
                paths.retain(|p| p.peer != LOCAL);
                paths.push(path);
            });
        }
        self.local_routes = routes;
        self.finish(changes, batch)
    }

    /// A new policy for peer `id`: its paths the new import policy refuses are dropped, and it
    /// is sent its whole Adj-RIB-Out again plus withdrawals of what it may no longer have.
    /// Routes the old policy refused come back when the peer answers our ROUTE-REFRESH.
    pub fn set_policy(&mut self, id: PeerId, policy: Arc<dyn Policy>) -> Changes {
        let Some(peer) = self.peers.get_mut(&id.0) else {
            return Changes::default();
        };
        peer.settings.policy = policy.clone();
        let refused: Vec<Key> = self
            .v4
            .iter()
            .map(|(k, p)| (Key::V4(*k), p))
            .chain(self.v6.iter().map(|(k, p)| (Key::V6(k.0, k.1), p)))
            .filter(|(key, paths)| {
                paths
                    .iter()
                    .any(|p| p.peer == id.0 && !policy.import(&key.prefix(), &p.attrs.attrs))
            })
            .map(|(k, _)| k)
            .collect();
        let mut changes = Changes::default();
        let mut batch = OutBatch::default();
        for key in refused {
            self.withdraw_one(id.0, key, &mut changes, &mut batch);
        }
        let mut changes = self.finish(changes, batch);
        if self.peers.get(&id.0).is_some_and(|p| p.up) {
            let announced: HashSet<IpNetwork> = self
                .adj_rib_out(id)
                .iter()
                .flat_map(|o| match o {
                    OutUpdate::Announce { prefixes, .. } => prefixes.clone(),
                    _ => Vec::new(),
                })
                .collect();
            let gone: Vec<IpNetwork> = self
                .v4
                .keys()
                .map(|k| Key::V4(*k))
                .chain(self.v6.keys().map(|k| Key::V6(k.0, k.1)))
                .map(Key::prefix)
                .filter(|p| !announced.contains(p))
                .collect();
            if !gone.is_empty() {
                changes.out.push((id, OutUpdate::Withdraw(gone)));
            }
            changes
                .out
                .extend(self.adj_rib_out(id).into_iter().map(|o| (id, o)));
        }
        changes
    }
}

fn prepend(attrs: &mut PathAttributes, asn: Asn) {
    let path = attrs.as_path.get_or_insert_with(AsPath::default);
    match path.segments.first_mut() {
        Some(s) if s.kind == SegmentType::Sequence && s.asns.len() < 255 => s.asns.insert(0, asn),
        _ => path.segments.insert(
            0,
            AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![asn],
            },
        ),
    }
}

/// Outgoing announcements grouped by peer and attribute set, withdrawals by peer.
#[derive(Default)]
struct OutBatch {
    announce: HashMap<(u32, Arc<RouteAttrs>), Vec<IpNetwork>>,
    withdraw: BTreeMap<u32, Vec<IpNetwork>>,
    /// Outgoing sets seen in this batch, so equal ones share one key.
    seen: HashSet<Arc<RouteAttrs>>,
}

impl OutBatch {
    fn announce(&mut self, peer: u32, attrs: RouteAttrs, prefix: IpNetwork) {
        let attrs = match self.seen.get(&attrs) {
            Some(a) => a.clone(),
            None => {
                let a = Arc::new(attrs);
                self.seen.insert(a.clone());
                a
            }
        };
        self.announce.entry((peer, attrs)).or_default().push(prefix);
    }

    fn withdraw(&mut self, peer: u32, prefix: IpNetwork) {
        self.withdraw.entry(peer).or_default().push(prefix);
    }

    fn into_out(self) -> Vec<(PeerId, OutUpdate)> {
        let mut out: Vec<(PeerId, OutUpdate)> = self
            .withdraw
            .into_iter()
            .map(|(peer, prefixes)| (PeerId(peer), OutUpdate::Withdraw(prefixes)))
            .collect();
        let mut announce: Vec<_> = self.announce.into_iter().collect();
        announce.sort_by_key(|((peer, _), prefixes)| (*peer, prefixes.first().copied()));
        for ((peer, attrs), prefixes) in announce {
            let attrs = Arc::unwrap_or_clone(attrs);
            out.push((
                PeerId(peer),
                OutUpdate::Announce {
                    attrs: Arc::new(attrs.attrs),
                    next_hop: attrs.next_hop,
                    prefixes,
                },
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests;
