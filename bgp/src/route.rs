//! The few types the RIB, the routing policy and the speaker share: who a route came from
//! ([`RouteSource`]), a route this node originates ([`LocalRoute`]) and the filter each peer's
//! routes pass on the way in and out ([`Policy`]). Pure data; no I/O.

use std::fmt;
use std::net::Ipv4Addr;

use ipnetwork::IpNetwork;

use crate::wire::{Community, LargeCommunity, PathAttributes};

/// The speaker's handle for one configured peer, stable for as long as the peer is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

/// Where a route in the RIB came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteSource {
    /// Originated by this node: its affine blocks, the /32s it hosts from other nodes' blocks,
    /// service CIDRs.
    Local,
    /// Learned from a peer over BGP.
    Peer {
        id: PeerId,
        /// iBGP (same AS) rather than eBGP.
        internal: bool,
        /// The peer's BGP identifier, for RFC 4456 ORIGINATOR_ID and the best-path tie break.
        router_id: Ipv4Addr,
    },
}

/// A route this node originates, with what Calico attaches to it: the `communities` and
/// `prefixAdvertisements` of the BGPConfiguration that match the prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalRoute {
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
}

/// The filter one peer's routes pass: on import (routes the peer sends us) and on export (routes
/// we send the peer). Calico's BIRD config is the model: export only what lies in an exportable
/// IP pool or a service range, plus the peer's `BGPFilter`s.
pub trait Policy: Send + Sync + fmt::Debug {
    /// Whether a route to `prefix` received from this peer enters the RIB.
    fn import(&self, prefix: &IpNetwork, attrs: &PathAttributes) -> bool;
    /// Whether the route to `prefix` (best path from `source`) may be advertised to this peer.
    /// The RIB has already applied RFC 4271/4456 rules (no iBGP-to-iBGP without reflection,
    /// NO_EXPORT, NO_ADVERTISE, split horizon); this is the configured policy on top.
    fn export(&self, prefix: &IpNetwork, source: RouteSource, attrs: &PathAttributes) -> bool;
}

/// Accepts everything both ways. For tests and for peers with no policy.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

impl Policy for AcceptAll {
    fn import(&self, _: &IpNetwork, _: &PathAttributes) -> bool {
        true
    }
    fn export(&self, _: &IpNetwork, _: RouteSource, _: &PathAttributes) -> bool {
        true
    }
}
