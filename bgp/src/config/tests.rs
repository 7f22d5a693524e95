use std::collections::BTreeMap;

use api::ObjectMeta;
use api::bgp_configuration::BGPConfigurationSpec;
use api::bgp_peer::BGPPeerSpec;
use api::node::{NodeBGPSpec, NodeSpec};

use super::*;

fn node(name: &str, ip: &str, labels: &[(&str, &str)]) -> Node {
    Node {
        api_version: "projectcalico.org/v3".into(),
        kind: "Node".into(),
        metadata: ObjectMeta {
            name: name.into(),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        },
        spec: NodeSpec {
            bgp: Some(NodeBGPSpec {
                ipv4_address: Some(format!("{ip}/24")),
                ..Default::default()
            }),
            ..Default::default()
        },
        status: None,
    }
}

fn rr(name: &str, ip: &str) -> Node {
    let mut n = node(name, ip, &[("rr", "true")]);
    if let Some(b) = n.spec.bgp.as_mut() {
        b.route_reflector_cluster_id = Some("224.0.0.1".into());
    }
    n
}

fn config(name: &str, spec: BGPConfigurationSpec) -> BGPConfiguration {
    BGPConfiguration {
        api_version: "projectcalico.org/v3".into(),
        kind: "BGPConfiguration".into(),
        metadata: ObjectMeta {
            name: name.into(),
            ..Default::default()
        },
        spec,
    }
}

fn peer(name: &str, spec: BGPPeerSpec) -> BGPPeer {
    BGPPeer {
        api_version: "projectcalico.org/v3".into(),
        kind: "BGPPeer".into(),
        metadata: ObjectMeta {
            name: name.into(),
            ..Default::default()
        },
        spec,
    }
}

fn calc(
    me: &str,
    nodes: &[Node],
    configs: &[BGPConfiguration],
    peers: &[BGPPeer],
) -> NodeBgpConfig {
    node_bgp_config(&Inputs {
        node_name: me,
        nodes,
        bgp_configurations: configs,
        bgp_peers: peers,
    })
    .expect("config")
}

fn names(c: &NodeBgpConfig) -> Vec<&str> {
    c.peers.iter().map(|p| p.name.as_str()).collect()
}

fn tor() -> BGPPeer {
    peer(
        "tor",
        BGPPeerSpec {
            peer_ip: Some("192.168.0.1".into()),
            as_number: Some(Asn(65001)),
            ..Default::default()
        },
    )
}

#[test]
fn two_node_mesh_passive_by_string_order() {
    // "10.0.0.9" > "10.0.0.10" as strings, though 9 < 10 as numbers.
    let nodes = [node("a", "10.0.0.9", &[]), node("b", "10.0.0.10", &[])];
    let a = calc("a", &nodes, &[], &[]);
    assert_eq!(a.router_id, Ipv4Addr::new(10, 0, 0, 9));
    assert_eq!(a.local_as, Asn(64512));
    assert_eq!(a.listen_port, 179);
    assert_eq!(names(&a), ["Mesh_10_0_0_10"]);
    let p = &a.peers[0];
    assert_eq!(p.kind, PeerKind::Mesh);
    assert_eq!(p.peer_as, Asn(64512));
    assert!(
        !p.passive,
        "10.0.0.9 dials 10.0.0.10: its string is smaller"
    );
    assert_eq!(p.source_address, Some("10.0.0.9".parse().expect("ip")));
    assert_eq!(p.port, None);

    let b = calc("b", &nodes, &[], &[]);
    assert_eq!(names(&b), ["Mesh_10_0_0_9"]);
    assert!(b.peers[0].passive);
}

#[test]
fn mesh_disabled() {
    let nodes = [node("a", "10.0.0.1", &[]), node("b", "10.0.0.2", &[])];
    let configs = [config(
        "default",
        BGPConfigurationSpec {
            node_to_node_mesh_enabled: Some(false),
            ..Default::default()
        },
    )];
    assert!(calc("a", &nodes, &configs, &[]).peers.is_empty());
}

#[test]
fn global_peer_on_every_node() {
    let nodes = [node("a", "10.0.0.1", &[]), node("b", "10.0.0.2", &[])];
    for (me, ip) in [("a", "10.0.0.1"), ("b", "10.0.0.2")] {
        let c = calc(me, &nodes, &[], &[tor()]);
        let g: Vec<_> = c
            .peers
            .iter()
            .filter(|p| p.kind == PeerKind::Global)
            .collect();
        assert_eq!(g.len(), 1, "{me}");
        assert_eq!(g[0].name, "Global_192_168_0_1");
        assert_eq!(g[0].peer_as, Asn(65001));
        assert!(!g[0].passive, "not a Calico node");
        assert!(!g[0].route_reflector_client);
        assert_eq!(g[0].source_address, Some(ip.parse().expect("ip")));
    }
}

#[test]
fn node_selector_peer_on_matching_nodes_only() {
    let nodes = [
        node("a", "10.0.0.1", &[("rack", "1")]),
        node("b", "10.0.0.2", &[("rack", "2")]),
    ];
    let p = peer(
        "rack1",
        BGPPeerSpec {
            node_selector: Some("rack == '1'".into()),
            peer_ip: Some("192.168.1.1:1179".into()),
            as_number: Some(Asn(65001)),
            ..Default::default()
        },
    );
    let a = calc("a", &nodes, &[], std::slice::from_ref(&p));
    assert!(names(&a).contains(&"Node_192_168_1_1_port_1179"));
    assert_eq!(a.peers.last().map(|p| p.port), Some(Some(1179)));
    let b = calc("b", &nodes, &[], &[p]);
    assert_eq!(names(&b), ["Mesh_10_0_0_1"]);
}

#[test]
fn route_reflector_setup() {
    let nodes = [
        rr("rr1", "10.0.0.1"),
        rr("rr2", "10.0.0.2"),
        node("c1", "10.0.0.3", &[]),
        node("c2", "10.0.0.4", &[]),
    ];
    let configs = [config(
        "default",
        BGPConfigurationSpec {
            node_to_node_mesh_enabled: Some(false),
            ..Default::default()
        },
    )];
    let peers = [
        peer(
            "peer-with-rrs",
            BGPPeerSpec {
                node_selector: Some("all()".into()),
                peer_selector: Some("has(rr)".into()),
                ..Default::default()
            },
        ),
        peer(
            "rr-mesh",
            BGPPeerSpec {
                node_selector: Some("has(rr)".into()),
                peer_selector: Some("has(rr)".into()),
                ..Default::default()
            },
        ),
    ];
    let c1 = calc("c1", &nodes, &configs, &peers);
    assert_eq!(c1.cluster_id, None);
    assert_eq!(names(&c1), ["Node_10_0_0_1", "Node_10_0_0_2"]);
    assert!(c1.peers.iter().all(|p| !p.route_reflector_client));

    let r1 = calc("rr1", &nodes, &configs, &peers);
    assert_eq!(r1.cluster_id.as_deref(), Some("224.0.0.1"));
    assert_eq!(
        names(&r1),
        ["Node_10_0_0_2", "Node_10_0_0_3", "Node_10_0_0_4"]
    );
    let clients: Vec<_> = r1
        .peers
        .iter()
        .filter(|p| p.route_reflector_client)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(clients, ["Node_10_0_0_3", "Node_10_0_0_4"]);

    // With the mesh left on, route reflectors still take no part in it.
    let r1 = calc("rr1", &nodes, &[], &peers);
    assert!(r1.peers.iter().all(|p| p.kind != PeerKind::Mesh));
    let c1 = calc("c1", &nodes, &[], &peers);
    let mesh: Vec<_> = c1
        .peers
        .iter()
        .filter(|p| p.kind == PeerKind::Mesh)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(mesh, ["Mesh_10_0_0_4"]);
}

#[test]
fn reverse_peering_from_peer_ip_and_manual() {
    let nodes = [node("a", "10.0.0.1", &[]), node("b", "10.0.0.2", &[])];
    let mut spec = BGPPeerSpec {
        node: Some("a".into()),
        peer_ip: Some("10.0.0.2".into()),
        as_number: Some(Asn(64512)),
        ..Default::default()
    };
    let b = calc("b", &nodes, &[], &[peer("a-to-b", spec.clone())]);
    assert!(names(&b).contains(&"Node_10_0_0_1"));
    spec.reverse_peering = Some(ReversePeering::Manual);
    let b = calc("b", &nodes, &[], &[peer("a-to-b", spec)]);
    assert!(!names(&b).contains(&"Node_10_0_0_1"));
}

#[test]
fn explicit_peering_wins_over_reverse() {
    let nodes = [node("a", "10.0.0.1", &[]), node("b", "10.0.0.2", &[])];
    let peers = [
        peer(
            "a-to-b",
            BGPPeerSpec {
                node: Some("a".into()),
                peer_ip: Some("10.0.0.2".into()),
                as_number: Some(Asn(64512)),
                ..Default::default()
            },
        ),
        peer(
            "b-to-a",
            BGPPeerSpec {
                node: Some("b".into()),
                peer_ip: Some("10.0.0.1".into()),
                as_number: Some(Asn(64512)),
                keepalive_time: Some("30s".parse().expect("duration")),
                ..Default::default()
            },
        ),
    ];
    let b = calc("b", &nodes, &[], &peers);
    let p = b
        .peers
        .iter()
        .find(|p| p.name == "Node_10_0_0_1")
        .expect("peer");
    assert_eq!(p.keepalive_time, Some(30));
}

#[test]
fn node_as_overrides() {
    let mut a = node("a", "10.0.0.1", &[]);
    if let Some(b) = a.spec.bgp.as_mut() {
        b.as_number = Some(Asn(65100));
    }
    let nodes = [a, node("b", "10.0.0.2", &[])];
    let configs = [config(
        "default",
        BGPConfigurationSpec {
            as_number: Some(Asn(63400)),
            ..Default::default()
        },
    )];
    let ca = calc("a", &nodes, &configs, &[]);
    assert_eq!(ca.local_as, Asn(65100));
    // processMeshPeers gives a peer without its own AS this node's AS.
    assert_eq!(ca.peers[0].peer_as, Asn(65100));
    let cb = calc("b", &nodes, &configs, &[]);
    assert_eq!(cb.local_as, Asn(63400));
    assert_eq!(cb.peers[0].peer_as, Asn(65100));
}

#[test]
fn listen_port_node_then_default() {
    let nodes = [node("a", "10.0.0.1", &[]), node("b", "10.0.0.2", &[])];
    let configs = [
        config(
            "default",
            BGPConfigurationSpec {
                listen_port: Some(1179),
                ..Default::default()
            },
        ),
        config(
            "node.b",
            BGPConfigurationSpec {
                listen_port: Some(2179),
                ..Default::default()
            },
        ),
    ];
    let a = calc("a", &nodes, &configs, &[]);
    assert_eq!(a.listen_port, 1179);
    assert_eq!(a.peers[0].port, Some(2179));
    assert_eq!(a.peers[0].name, "Mesh_10_0_0_2");
    let b = calc("b", &nodes, &configs, &[]);
    assert_eq!(b.listen_port, 2179);
    assert_eq!(b.peers[0].port, Some(1179));
}

#[test]
fn node_specific_duplicate_of_global_is_skipped() {
    let nodes = [node("a", "10.0.0.1", &[])];
    let mut dup = tor();
    dup.spec.node = Some("a".into());
    dup.spec.as_number = Some(Asn(65999));
    let c = calc("a", &nodes, &[], &[dup, tor()]);
    assert_eq!(names(&c), ["Global_192_168_0_1"]);
    assert_eq!(c.peers[0].peer_as, Asn(65001));
}

#[test]
fn global_peer_to_calico_node_is_passive_by_string_rule() {
    let nodes = [node("a", "10.0.0.9", &[]), node("b", "10.0.0.10", &[])];
    let configs = [config(
        "default",
        BGPConfigurationSpec {
            node_to_node_mesh_enabled: Some(false),
            ..Default::default()
        },
    )];
    let p = peer(
        "to-b",
        BGPPeerSpec {
            peer_ip: Some("10.0.0.10".into()),
            as_number: Some(Asn(64512)),
            ..Default::default()
        },
    );
    let a = calc("a", &nodes, &configs, std::slice::from_ref(&p));
    assert_eq!(names(&a), ["Global_10_0_0_10"]);
    assert!(!a.peers[0].passive);
    // On b the global peering is to itself and skipped; the reverse one is node-specific.
    let b = calc("b", &nodes, &configs, &[p]);
    assert_eq!(names(&b), ["Node_10_0_0_9"]);
}

#[test]
fn ipv6_mesh_where_both_have_addresses() {
    let mut a = node("a", "10.0.0.1", &[]);
    let mut b = node("b", "10.0.0.2", &[]);
    for (n, ip) in [(&mut a, "fd00::1/64"), (&mut b, "fd00::2/64")] {
        if let Some(bgp) = n.spec.bgp.as_mut() {
            bgp.ipv6_address = Some(ip.into());
        }
    }
    let c = calc("a", &[a, b, node("c", "10.0.0.3", &[])], &[], &[]);
    assert_eq!(
        names(&c),
        ["Mesh_10_0_0_2", "Mesh_10_0_0_3", "Mesh_fd00__2"]
    );
}

#[test]
fn errors_instead_of_panics() {
    let mut n = node("a", "10.0.0.1", &[]);
    n.spec.bgp = None;
    let inputs = |nodes: &'static [Node]| Inputs {
        node_name: "a",
        nodes,
        bgp_configurations: &[],
        bgp_peers: &[],
    };
    assert_eq!(
        node_bgp_config(&inputs(&[])),
        Err(ConfigError::NodeNotFound("a".into()))
    );
    let nodes = [n];
    let r = node_bgp_config(&Inputs {
        nodes: &nodes,
        ..inputs(&[])
    });
    assert_eq!(r, Err(ConfigError::NoIpv4Address("a".into())));
    let bad = peer(
        "bad",
        BGPPeerSpec {
            peer_ip: Some("not-an-ip".into()),
            node_selector: Some("((".into()),
            peer_selector: Some("))".into()),
            ..Default::default()
        },
    );
    let nodes = [node("a", "10.0.0.1", &[])];
    assert!(calc("a", &nodes, &[], &[bad]).peers.is_empty());
}
