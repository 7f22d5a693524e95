use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use api::asn::Asn;
use ipnetwork::{IpNetwork, Ipv4Network};

use super::*;
use crate::route::{AcceptAll, LocalRoute, Policy, RouteSource};
use crate::wire::{AsPath, Community, Origin, PathAttributes, Update};

const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn rib() -> Rib {
    Rib::new(LocalSpeaker {
        router_id: ME,
        asn: Asn(65001),
        cluster_id: None,
    })
}

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct P {
    addr: &'static str,
    asn: u32,
    rr_client: bool,
    policy: Arc<dyn Policy>,
}

fn ebgp(addr: &'static str, asn: u32) -> P {
    P {
        addr,
        asn,
        rr_client: false,
        policy: Arc::new(AcceptAll),
    }
}

fn ibgp(addr: &'static str) -> P {
    ebgp(addr, 65001)
}

fn up(rib: &mut Rib, id: u32, p: P) -> Changes {
    up_with(rib, id, p, NextHop::Auto)
}

fn up_with(rib: &mut Rib, id: u32, p: P, next_hop: NextHop) -> Changes {
    let addr: IpAddr = p.addr.parse().unwrap();
    let IpAddr::V4(router_id) = addr else {
        panic!("v4 peers only here")
    };
    rib.peer_up(
        PeerId(id),
        PeerSettings {
            address: addr,
            local_address: IpAddr::V4(ME),
            router_id,
            peer_as: Asn(p.asn),
            local_as: Asn(65001),
            internal: p.asn == 65001,
            rr_client: p.rr_client,
            next_hop,
            num_allowed_local_as: 0,
            four_octet_as: true,
            policy: p.policy,
        },
    )
}

fn attrs(next_hop: &str, path: &[u32]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(path.iter().map(|a| Asn(*a)))),
        next_hop: Some(next_hop.parse().unwrap()),
        ..Default::default()
    }
}

fn announce(attrs: PathAttributes, prefixes: &[&str]) -> Update {
    Update {
        withdrawn: Vec::new(),
        attributes: attrs,
        nlri: prefixes
            .iter()
            .map(|p| p.parse::<Ipv4Network>().unwrap())
            .collect(),
    }
}

fn withdraw(prefixes: &[&str]) -> Update {
    Update {
        withdrawn: prefixes
            .iter()
            .map(|p| p.parse::<Ipv4Network>().unwrap())
            .collect(),
        ..Default::default()
    }
}

fn next_hops(rib: &Rib, prefix: &str) -> Vec<IpAddr> {
    rib.best(&net(prefix)).map(|(_, nh)| nh).unwrap_or_default()
}

/// The announcements `changes` sends `peer`: (prefix, attributes).
fn sent(changes: &Changes, peer: u32) -> Vec<(IpNetwork, Arc<PathAttributes>)> {
    changes
        .out
        .iter()
        .filter(|(id, _)| id.0 == peer)
        .flat_map(|(_, o)| match o {
            OutUpdate::Announce {
                attrs, prefixes, ..
            } => prefixes.iter().map(|p| (*p, attrs.clone())).collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn withdrawn(changes: &Changes, peer: u32) -> Vec<IpNetwork> {
    changes
        .out
        .iter()
        .filter(|(id, _)| id.0 == peer)
        .flat_map(|(_, o)| match o {
            OutUpdate::Withdraw(p) => p.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn each_decision_step_picks_the_path_the_rfc_prefers() {
    // (description, path from peer 1, path from peer 2, winner's next hop)
    type Case = (&'static str, PathAttributes, PathAttributes, &'static str);
    let base = |nh: &str| attrs(nh, &[65100]);
    let cases: Vec<Case> = vec![
        (
            "higher LOCAL_PREF",
            PathAttributes {
                local_pref: Some(50),
                ..base("10.0.0.2")
            },
            PathAttributes {
                local_pref: Some(200),
                ..base("10.0.0.3")
            },
            "10.0.0.3",
        ),
        (
            "shorter AS_PATH",
            attrs("10.0.0.2", &[65100, 65200]),
            attrs("10.0.0.3", &[65100]),
            "10.0.0.3",
        ),
        (
            "lower ORIGIN",
            PathAttributes {
                origin: Some(Origin::Incomplete),
                ..base("10.0.0.2")
            },
            PathAttributes {
                origin: Some(Origin::Igp),
                ..base("10.0.0.3")
            },
            "10.0.0.3",
        ),
        (
            "lower MED from the same neighbouring AS",
            PathAttributes {
                med: Some(20),
                ..base("10.0.0.2")
            },
            PathAttributes {
                med: Some(10),
                ..base("10.0.0.3")
            },
            "10.0.0.3",
        ),
        (
            "shorter CLUSTER_LIST",
            PathAttributes {
                cluster_list: vec![ME, ME],
                originator_id: Some("10.9.9.1".parse().unwrap()),
                ..base("10.0.0.2")
            },
            PathAttributes {
                cluster_list: vec![],
                originator_id: Some("10.9.9.9".parse().unwrap()),
                ..base("10.0.0.3")
            },
            "10.0.0.3",
        ),
        (
            "lower ORIGINATOR_ID",
            PathAttributes {
                originator_id: Some("10.9.9.9".parse().unwrap()),
                ..base("10.0.0.2")
            },
            PathAttributes {
                originator_id: Some("10.9.9.1".parse().unwrap()),
                ..base("10.0.0.3")
            },
            "10.0.0.3",
        ),
        (
            "lower router ID",
            base("10.0.0.2"),
            base("10.0.0.3"),
            "10.0.0.2",
        ),
    ];
    for (what, a, b, winner) in cases {
        let mut r = rib();
        // Both iBGP so every step past eBGP-over-iBGP can decide.
        up(&mut r, 1, ibgp("10.0.0.2"));
        up(&mut r, 2, ibgp("10.0.0.3"));
        r.update(PeerId(1), announce(a.clone(), &["10.50.0.0/24"]));
        r.update(PeerId(2), announce(b.clone(), &["10.50.0.0/24"]));
        let (best, _) = r.best(&net("10.50.0.0/24")).unwrap();
        assert_eq!(best.next_hop, ip(winner), "{what}");
    }
}

#[test]
fn ebgp_beats_ibgp_and_equal_ebgp_paths_from_one_as_are_ecmp() {
    let mut r = rib();
    up(&mut r, 1, ibgp("10.0.0.5"));
    up(&mut r, 2, ebgp("10.0.0.2", 65100));
    up(&mut r, 3, ebgp("10.0.0.3", 65100));
    up(&mut r, 4, ebgp("10.0.0.4", 65200));
    r.update(
        PeerId(1),
        announce(attrs("10.0.0.5", &[65100]), &["10.60.0.0/24"]),
    );
    let c = r.update(
        PeerId(2),
        announce(attrs("10.0.0.2", &[65100]), &["10.60.0.0/24"]),
    );
    assert_eq!(
        c.fib,
        [FibChange {
            prefix: net("10.60.0.0/24"),
            next_hops: vec![ip("10.0.0.2")],
            source: Some(RouteSource::Peer {
                id: PeerId(2),
                internal: false,
                router_id: "10.0.0.2".parse().unwrap()
            }),
        }]
    );
    let c = r.update(
        PeerId(3),
        announce(attrs("10.0.0.3", &[65100]), &["10.60.0.0/24"]),
    );
    assert_eq!(c.fib[0].next_hops, [ip("10.0.0.2"), ip("10.0.0.3")]);
    // Same length from another AS: not part of the set (BIRD's merge paths would need
    // the same neighbouring AS too).
    r.update(
        PeerId(4),
        announce(attrs("10.0.0.4", &[65200]), &["10.60.0.0/24"]),
    );
    assert_eq!(
        next_hops(&r, "10.60.0.0/24"),
        [ip("10.0.0.2"), ip("10.0.0.3")]
    );
}

#[test]
fn withdrawing_the_best_falls_back_and_the_last_withdrawal_empties_the_route() {
    let mut r = rib();
    up(&mut r, 1, ebgp("10.0.0.2", 65100));
    up(&mut r, 2, ebgp("10.0.0.3", 65200));
    up(&mut r, 3, ibgp("10.0.0.9"));
    r.update(
        PeerId(1),
        announce(attrs("10.0.0.2", &[65100]), &["10.70.0.0/24"]),
    );
    r.update(
        PeerId(2),
        announce(attrs("10.0.0.3", &[65200, 65201]), &["10.70.0.0/24"]),
    );
    let c = r.update(PeerId(1), withdraw(&["10.70.0.0/24"]));
    assert_eq!(c.fib[0].next_hops, [ip("10.0.0.3")]);
    // The iBGP peer learns the new best (an eBGP path, so it is sent).
    assert_eq!(sent(&c, 3).len(), 1);
    let c = r.update(PeerId(2), withdraw(&["10.70.0.0/24"]));
    assert_eq!(c.fib[0].next_hops, Vec::<IpAddr>::new());
    assert_eq!(withdrawn(&c, 3), [net("10.70.0.0/24")]);
    assert_eq!(r.route_count(), 0);
}

#[test]
fn an_announcement_replaces_the_peers_previous_path() {
    let mut r = rib();
    up(&mut r, 1, ebgp("10.0.0.2", 65100));
    r.update(
        PeerId(1),
        announce(attrs("10.0.0.2", &[65100]), &["10.71.0.0/24"]),
    );
    r.update(
        PeerId(1),
        announce(attrs("10.0.0.4", &[65100]), &["10.71.0.0/24"]),
    );
    assert_eq!(next_hops(&r, "10.71.0.0/24"), [ip("10.0.0.4")]);
    assert_eq!(r.received_count(PeerId(1)), 1);
}

#[test]
fn loops_are_refused() {
    let mut r = Rib::new(LocalSpeaker {
        router_id: ME,
        asn: Asn(65001),
        cluster_id: Some("1.1.1.1".parse().unwrap()),
    });
    up(&mut r, 1, ebgp("10.0.0.2", 65100));
    up(&mut r, 2, ibgp("10.0.0.3"));
    // Our AS in the path (RFC 4271 §9.1.2).
    r.update(
        PeerId(1),
        announce(attrs("10.0.0.2", &[65100, 65001]), &["10.80.0.0/24"]),
    );
    // Our router ID as ORIGINATOR_ID, our cluster in CLUSTER_LIST (RFC 4456 §8).
    r.update(
        PeerId(2),
        announce(
            PathAttributes {
                originator_id: Some(ME),
                ..attrs("10.0.0.3", &[])
            },
            &["10.81.0.0/24"],
        ),
    );
    r.update(
        PeerId(2),
        announce(
            PathAttributes {
                cluster_list: vec!["1.1.1.1".parse().unwrap()],
                ..attrs("10.0.0.3", &[])
            },
            &["10.82.0.0/24"],
        ),
    );
    assert_eq!(r.route_count(), 0);
}

#[test]
fn ebgp_export_prepends_our_as_sets_next_hop_self_and_strips_ibgp_attributes() {
    let mut r = rib();
    up(&mut r, 1, ibgp("10.0.0.3"));
    up(&mut r, 2, ebgp("10.0.0.2", 65100));
    let c = r.update(
        PeerId(1),
        announce(
            PathAttributes {
                local_pref: Some(300),
                med: Some(7),
                ..attrs("10.0.0.3", &[])
            },
            &["10.90.0.0/24"],
        ),
    );
    let out = sent(&c, 2);
    assert_eq!(out.len(), 1);
    let a = &out[0].1;
    assert_eq!(a.as_path, Some(AsPath::sequence([Asn(65001)])));
    assert_eq!(a.next_hop, Some(ME));
    assert_eq!((a.local_pref, a.med), (None, None));
    // iBGP-learned is never sent back to iBGP (not a reflector), nor to its source.
    assert!(sent(&c, 1).is_empty());
}

#[test]
fn local_routes_go_to_everyone_with_our_next_hop_and_their_communities() {
    let mut r = rib();
    up(&mut r, 1, ibgp("10.0.0.3"));
    up(&mut r, 2, ebgp("10.0.0.2", 65100));
    let mut local = BTreeMap::new();
    local.insert(
        net("10.244.1.0/26"),
        LocalRoute {
            communities: vec![Community(65001 << 16 | 1)],
            large_communities: Vec::new(),
        },
    );
    local.insert(net("10.244.2.0/26"), LocalRoute::default());
    let c = r.set_local_routes(local.clone());
    assert!(
        c.fib.is_empty(),
        "our own routes are not the kernel's business here"
    );
    let to_ibgp = sent(&c, 1);
    assert_eq!(to_ibgp.len(), 2);
    for (_, a) in &to_ibgp {
        assert_eq!((a.next_hop, a.local_pref), (Some(ME), Some(100)));
    }
    let to_ebgp = sent(&c, 2);
    let first = to_ebgp
        .iter()
        .find(|(p, _)| *p == net("10.244.1.0/26"))
        .unwrap();
    assert_eq!(first.1.communities, [Community(65001 << 16 | 1)]);
    assert_eq!(first.1.as_path, Some(AsPath::sequence([Asn(65001)])));
    // Unchanged routes are not sent again; a removed one is withdrawn.
    local.remove(&net("10.244.2.0/26"));
    let c = r.set_local_routes(local);
    assert!(sent(&c, 1).is_empty());
    assert_eq!(withdrawn(&c, 1), [net("10.244.2.0/26")]);
    assert_eq!(withdrawn(&c, 2), [net("10.244.2.0/26")]);
}

#[test]
fn a_reflector_reflects_client_routes_with_originator_and_cluster_list() {
    let mut r = Rib::new(LocalSpeaker {
        router_id: ME,
        asn: Asn(65001),
        cluster_id: Some("1.1.1.1".parse().unwrap()),
    });
    let client = |addr| P {
        rr_client: true,
        ..ibgp(addr)
    };
    up(&mut r, 1, client("10.0.0.2"));
    up(&mut r, 2, client("10.0.0.3"));
    up(&mut r, 3, ibgp("10.0.0.4"));
    up(&mut r, 4, ibgp("10.0.0.5"));
    let c = r.update(
        PeerId(1),
        announce(attrs("10.0.0.2", &[]), &["10.91.0.0/24"]),
    );
    for peer in [2, 3, 4] {
        let out = sent(&c, peer);
        assert_eq!(out.len(), 1, "client route goes to peer {peer}");
        let a = &out[0].1;
        assert_eq!(a.originator_id, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(a.cluster_list, ["1.1.1.1".parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(
            a.next_hop,
            Some("10.0.0.2".parse().unwrap()),
            "next hop kept"
        );
    }
    // A non-client's route goes to clients only.
    let c = r.update(
        PeerId(3),
        announce(attrs("10.0.0.4", &[]), &["10.92.0.0/24"]),
    );
    assert_eq!(sent(&c, 1).len(), 1);
    assert_eq!(sent(&c, 2).len(), 1);
    assert!(sent(&c, 4).is_empty());
}

#[test]
fn no_export_and_no_advertise_are_honoured() {
    let mut r = rib();
    up(&mut r, 1, ebgp("10.0.0.2", 65100));
    up(&mut r, 2, ebgp("10.0.0.3", 65200));
    up(
        &mut r,
        3,
        P {
            rr_client: true,
            ..ibgp("10.0.0.4")
        },
    );
    let no_export = PathAttributes {
        communities: vec![Community::NO_EXPORT],
        ..attrs("10.0.0.2", &[65100])
    };
    let c = r.update(PeerId(1), announce(no_export, &["10.93.0.0/24"]));
    assert!(sent(&c, 2).is_empty(), "NO_EXPORT never leaves the AS");
    assert_eq!(sent(&c, 3).len(), 1);
    let no_advertise = PathAttributes {
        communities: vec![Community::NO_ADVERTISE],
        ..attrs("10.0.0.2", &[65100])
    };
    let c = r.update(PeerId(1), announce(no_advertise, &["10.94.0.0/24"]));
    assert!(c.out.is_empty());
    assert_eq!(
        next_hops(&r, "10.94.0.0/24"),
        [ip("10.0.0.2")],
        "still used ourselves"
    );
}

#[derive(Debug)]
struct Only(IpNetwork);

impl Policy for Only {
    fn import(&self, prefix: &IpNetwork, _: &PathAttributes) -> bool {
        *prefix == self.0
    }
    fn export(&self, prefix: &IpNetwork, _: RouteSource, _: &PathAttributes) -> bool {
        *prefix == self.0
    }
}

#[test]
fn policy_filters_import_and_export() {
    let mut r = rib();
    let only = |p| -> Arc<dyn Policy> { Arc::new(Only(net(p))) };
    up(
        &mut r,
        1,
        P {
            policy: only("10.95.0.0/24"),
            ..ebgp("10.0.0.2", 65100)
        },
    );
    up(
        &mut r,
        2,
        P {
            policy: only("10.95.0.0/24"),
            ..ebgp("10.0.0.3", 65200)
        },
    );
    let c = r.update(
        PeerId(1),
        announce(
            attrs("10.0.0.2", &[65100]),
            &["10.95.0.0/24", "10.96.0.0/24"],
        ),
    );
    assert_eq!(r.route_count(), 1, "10.96.0.0/24 refused on import");
    assert_eq!(sent(&c, 2).len(), 1);
    // A refused announcement withdraws the peer's earlier path.
    let c = r.set_policy(PeerId(1), only("10.97.0.0/24"));
    assert_eq!(r.route_count(), 0);
    assert_eq!(withdrawn(&c, 2), [net("10.95.0.0/24")]);
}

#[test]
fn graceful_restart_keeps_stale_paths_until_end_of_rib() {
    let mut r = rib();
    up(&mut r, 1, ebgp("10.0.0.2", 65100));
    r.update(
        PeerId(1),
        announce(
            attrs("10.0.0.2", &[65100]),
            &["10.98.0.0/24", "10.98.1.0/24"],
        ),
    );
    let c = r.peer_down(PeerId(1), RouteDisposition::KeepStale { restart_time: 120 });
    assert!(c.fib.is_empty(), "stale routes stay in the kernel");
    assert_eq!(next_hops(&r, "10.98.0.0/24"), [ip("10.0.0.2")]);
    up(&mut r, 1, ebgp("10.0.0.2", 65100));
    r.update(
        PeerId(1),
        announce(attrs("10.0.0.2", &[65100]), &["10.98.0.0/24"]),
    );
    let eor = Update::end_of_rib(Family::IPV4_UNICAST).unwrap();
    let c = r.update(PeerId(1), eor);
    assert_eq!(
        c.fib,
        [FibChange {
            prefix: net("10.98.1.0/24"),
            next_hops: Vec::new(),
            source: None
        }]
    );
    assert_eq!(r.route_count(), 1);
}

#[test]
fn stale_paths_go_when_the_restart_time_runs_out() {
    let mut r = rib();
    up(&mut r, 1, ebgp("10.0.0.2", 65100));
    r.update(
        PeerId(1),
        announce(attrs("10.0.0.2", &[65100]), &["10.99.0.0/24"]),
    );
    r.peer_down(PeerId(1), RouteDisposition::KeepStale { restart_time: 1 });
    let c = r.stale_expired(PeerId(1));
    assert_eq!(c.fib.len(), 1);
    assert_eq!(r.route_count(), 0);
}

#[test]
fn a_withdrawn_peer_takes_its_routes_and_the_initial_advertisement_ends_with_end_of_rib() {
    let mut r = rib();
    up(&mut r, 1, ebgp("10.0.0.2", 65100));
    r.update(
        PeerId(1),
        announce(attrs("10.0.0.2", &[65100]), &["10.100.0.0/24"]),
    );
    let c = up(&mut r, 2, ebgp("10.0.0.3", 65200));
    assert_eq!(sent(&c, 2).len(), 1);
    assert_eq!(
        c.out.last().map(|(_, o)| o.clone()),
        Some(OutUpdate::EndOfRib(Family::IPV6_UNICAST))
    );
    let c = r.peer_down(PeerId(1), RouteDisposition::Withdraw);
    assert_eq!(withdrawn(&c, 2), [net("10.100.0.0/24")]);
    assert_eq!(r.route_count(), 0);
}

#[test]
fn equal_attributes_are_shared_and_released_with_their_routes() {
    let mut r = rib();
    up(&mut r, 1, ebgp("10.0.0.2", 65100));
    r.update(
        PeerId(1),
        announce(attrs("10.0.0.2", &[65100]), &["10.101.0.0/24"]),
    );
    r.update(
        PeerId(1),
        announce(attrs("10.0.0.2", &[65100]), &["10.101.1.0/24"]),
    );
    let (a, _) = r.best(&net("10.101.0.0/24")).unwrap();
    let (b, _) = r.best(&net("10.101.1.0/24")).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(r.attribute_sets(), 1);
    // 100,000 prefixes in one UPDATE's worth of attributes: one set, every route counted.
    let prefixes: Vec<Ipv4Network> = (0..100_000u32)
        .map(|i| Ipv4Network::new(Ipv4Addr::from(0x1400_0000 + (i << 8)), 24).unwrap())
        .collect();
    let c = r.update(
        PeerId(1),
        Update {
            withdrawn: Vec::new(),
            attributes: attrs("10.0.0.2", &[65100]),
            nlri: prefixes.clone(),
        },
    );
    assert_eq!(c.fib.len(), 100_000);
    assert_eq!(r.route_count(), 100_002);
    assert_eq!(r.received_count(PeerId(1)), 100_002);
    r.update(
        PeerId(1),
        Update {
            withdrawn: prefixes,
            ..Default::default()
        },
    );
    assert_eq!(r.route_count(), 2);
    drop((a, b));
    assert_eq!(r.attribute_sets(), 1);
}

#[test]
fn next_hop_mode_keep_and_self() {
    // (peer kind, nextHopMode, next hop the peer gets for a route learned from 10.0.0.2)
    let cases = [
        ("eBGP", NextHop::Auto, ME),
        ("eBGP", NextHop::Keep, "10.0.0.2".parse().unwrap()),
        ("reflected iBGP", NextHop::Auto, "10.0.0.2".parse().unwrap()),
        ("reflected iBGP", NextHop::OwnAddress, ME),
    ];
    for (kind, mode, expected) in cases {
        let mut r = rib();
        let client = |addr| P {
            rr_client: true,
            ..ibgp(addr)
        };
        up(&mut r, 1, client("10.0.0.2"));
        if kind == "eBGP" {
            up_with(&mut r, 2, ebgp("10.0.0.3", 65100), mode);
        } else {
            up_with(&mut r, 2, client("10.0.0.3"), mode);
        }
        let c = r.update(
            PeerId(1),
            announce(attrs("10.0.0.2", &[]), &["10.110.0.0/24"]),
        );
        let out = sent(&c, 2);
        assert_eq!(out.len(), 1, "{kind} {mode:?}");
        assert_eq!(out[0].1.next_hop, Some(expected), "{kind} {mode:?}");
    }
}
