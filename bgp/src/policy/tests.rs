use std::collections::BTreeMap;
use std::net::IpAddr;

use api::bgp_configuration::BGPConfiguration;
use api::bgp_filter::BGPFilter;
use api::ippool::IPPool;
use ipam::affinity::BlockAffinity;
use ipam::block::{AllocationBlock, BlockCidr};
use ipnetwork::IpNetwork;

use super::*;
use crate::route::PeerId;

fn json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn pool(name: &str, cidr: &str, extra: serde_json::Value) -> IPPool {
    let mut spec = serde_json::json!({ "cidr": cidr });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    json(serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": { "name": name }, "spec": spec,
    }))
}

fn bgp_config(spec: serde_json::Value) -> BGPConfiguration {
    json(serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "BGPConfiguration",
        "metadata": { "name": "default" }, "spec": spec,
    }))
}

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

/// A block affine to `owner` with `addresses` allocated to pods on `pod_nodes`.
fn block(cidr: &str, owner: &str, allocated: &[(&str, &str)]) -> AllocationBlock {
    let mut b = AllocationBlock::new(
        BlockCidr::new(net(cidr)).unwrap(),
        Some(&format!("host:{owner}")),
    );
    for (ip, node) in allocated {
        let attrs: BTreeMap<String, String> = [("node".to_string(), node.to_string())].into();
        b.assign(ip.parse::<IpAddr>().unwrap(), Some("h"), &attrs)
            .unwrap();
    }
    b
}

struct World {
    pools: Vec<IPPool>,
    blocks: BTreeMap<IpNetwork, AllocationBlock>,
    affinities: BTreeMap<IpNetwork, BlockAffinity>,
    configs: Vec<BGPConfiguration>,
}

impl World {
    fn routes(&self) -> Vec<String> {
        local_routes(&ExportInputs {
            node: "n1",
            pools: &self.pools,
            blocks: &self.blocks,
            affinities: &self.affinities,
            bgp_configurations: &self.configs,
        })
        .into_keys()
        .map(|p| p.to_string())
        .collect()
    }
}

fn world() -> World {
    let mut blocks = BTreeMap::new();
    let mut affinities = BTreeMap::new();
    // Ours, confirmed; ours, pending; another node's, holding one address of a pod on n1.
    blocks.insert(net("10.65.0.0/26"), block("10.65.0.0/26", "n1", &[]));
    affinities.insert(
        net("10.65.0.0/26"),
        json(serde_json::json!({"state": "confirmed"})),
    );
    blocks.insert(net("10.65.0.64/26"), block("10.65.0.64/26", "n1", &[]));
    affinities.insert(net("10.65.0.64/26"), BlockAffinity::pending());
    blocks.insert(
        net("10.65.1.0/26"),
        block(
            "10.65.1.0/26",
            "n2",
            &[("10.65.1.5", "n1"), ("10.65.1.6", "n2")],
        ),
    );
    World {
        pools: vec![pool("p", "10.65.0.0/16", serde_json::json!({}))],
        blocks,
        affinities,
        configs: Vec::new(),
    }
}

#[test]
fn confirmed_affine_blocks_and_borrowed_addresses_are_exported() {
    assert_eq!(world().routes(), ["10.65.0.0/26", "10.65.1.5/32"]);
}

#[test]
fn nothing_from_disabled_or_non_exported_pools() {
    for extra in [
        serde_json::json!({"disabled": true}),
        serde_json::json!({"disableBGPExport": true}),
    ] {
        let mut w = world();
        w.pools = vec![pool("p", "10.65.0.0/16", extra.clone())];
        assert!(w.routes().is_empty(), "{extra}");
    }
}

#[test]
fn service_ranges_are_exported_with_prefix_advertisement_communities() {
    let mut w = world();
    w.configs = vec![bgp_config(serde_json::json!({
        "serviceClusterIPs": [{"cidr": "10.96.0.0/12"}],
        "serviceExternalIPs": [{"cidr": "192.0.2.0/24"}],
        "communities": [{"name": "svc", "value": "65001:300"}],
        "prefixAdvertisements": [
            {"cidr": "10.96.0.0/12", "communities": ["svc", "65001:1:2"]},
            {"cidr": "10.65.0.0/16", "communities": ["65001:100"]},
        ],
    }))];
    let routes = local_routes(&ExportInputs {
        node: "n1",
        pools: &w.pools,
        blocks: &w.blocks,
        affinities: &w.affinities,
        bgp_configurations: &w.configs,
    });
    let keys: Vec<String> = routes.keys().map(|p| p.to_string()).collect();
    assert_eq!(
        keys,
        [
            "10.65.0.0/26",
            "10.65.1.5/32",
            "10.96.0.0/12",
            "192.0.2.0/24"
        ]
    );
    let svc = &routes[&net("10.96.0.0/12")];
    assert_eq!(svc.communities, [Community(65001 << 16 | 300)]);
    assert_eq!(
        svc.large_communities,
        [LargeCommunity {
            global_admin: 65001,
            local_data_1: 1,
            local_data_2: 2
        }]
    );
    assert_eq!(
        routes[&net("10.65.0.0/26")].communities,
        [Community(65001 << 16 | 100)]
    );
    assert!(routes[&net("192.0.2.0/24")].communities.is_empty());
}

#[test]
fn encapsulated_pools_are_left_to_felix() {
    let pools = vec![
        pool(
            "ipip",
            "10.1.0.0/16",
            serde_json::json!({"ipipMode": "Always"}),
        ),
        pool(
            "vxlan",
            "10.2.0.0/16",
            serde_json::json!({"vxlanMode": "CrossSubnet"}),
        ),
        pool(
            "plain",
            "10.3.0.0/16",
            serde_json::json!({"ipipMode": "Never"}),
        ),
    ];
    let install = Install::new(&pools);
    for (prefix, expected) in [
        ("10.1.4.0/26", false),
        ("10.2.4.0/26", false),
        ("10.3.4.0/26", true),
        ("0.0.0.0/0", true),
        ("192.0.2.0/24", true),
    ] {
        assert_eq!(install.installs(&net(prefix)), expected, "{prefix}");
    }
}

fn filter(spec: serde_json::Value) -> BGPFilter {
    json(serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "BGPFilter",
        "metadata": { "name": "f" }, "spec": spec,
    }))
}

const LEARNED: RouteSource = RouteSource::Peer {
    id: PeerId(1),
    internal: false,
    router_id: std::net::Ipv4Addr::new(10, 0, 0, 2),
};

#[test]
fn export_defaults_to_pools_and_services_only() {
    let w = world();
    let configs = vec![bgp_config(
        serde_json::json!({"serviceClusterIPs": [{"cidr": "10.96.0.0/12"}]}),
    )];
    let p = PeerPolicy::new(&w.pools, &configs, &[], false);
    let a = PathAttributes::default();
    assert!(p.export(&net("10.65.0.0/26"), RouteSource::Local, &a));
    assert!(
        p.export(&net("10.65.9.0/26"), LEARNED, &a),
        "other nodes' blocks, reflected"
    );
    assert!(p.export(&net("10.96.0.0/12"), RouteSource::Local, &a));
    assert!(
        !p.export(&net("0.0.0.0/0"), LEARNED, &a),
        "a ToR's default route stays here"
    );
    assert!(p.import(&net("0.0.0.0/0"), &a), "everything is imported");
}

#[test]
fn bgp_filter_rules_decide_first_in_order() {
    let w = world();
    let f = filter(serde_json::json!({
        "exportV4": [
            {"cidr": "10.65.0.0/26", "matchOperator": "Equal", "action": "Reject"},
            {"cidr": "192.0.2.0/24", "matchOperator": "In", "action": "Accept"},
            {"cidr": "10.65.0.0/16", "matchOperator": "NotIn", "source": "RemotePeers", "action": "Accept"},
        ],
        "importV4": [
            {"cidr": "10.0.0.0/8", "matchOperator": "In", "prefixLength": {"min": 25}, "action": "Reject"},
            {"cidr": "10.10.0.0/16", "matchOperator": "NotEqual", "action": "Accept"},
            {"cidr": "10.10.0.0/16", "matchOperator": "Equal", "action": "Reject"},
        ],
    }));
    let p = PeerPolicy::new(&w.pools, &[], &[&f], false);
    let a = PathAttributes::default();
    assert!(
        !p.export(&net("10.65.0.0/26"), RouteSource::Local, &a),
        "Equal reject"
    );
    assert!(
        p.export(&net("10.65.0.64/26"), RouteSource::Local, &a),
        "falls through to the pool"
    );
    assert!(
        p.export(&net("192.0.2.128/25"), RouteSource::Local, &a),
        "In accept"
    );
    assert!(
        p.export(&net("198.51.100.0/24"), LEARNED, &a),
        "NotIn + RemotePeers"
    );
    assert!(
        !p.export(&net("198.51.100.0/24"), RouteSource::Local, &a),
        "RemotePeers only"
    );
    assert!(!p.import(&net("10.1.2.0/25"), &a), "prefixLength min");
    assert!(p.import(&net("10.1.2.0/24"), &a));
    assert!(
        !p.import(&net("10.10.0.0/16"), &a),
        "NotEqual does not match, Equal rejects"
    );
    // V4 rules never match IPv6 prefixes.
    assert!(p.import(&net("fd00::/25"), &a));
}

#[test]
fn bgp_filter_peer_type_communities_and_as_path_prefix() {
    let w = world();
    let f = filter(serde_json::json!({
        "importV4": [
            {"peerType": "iBGP", "cidr": "10.1.0.0/16", "action": "Reject"},
            {"communities": {"values": ["65000:100", "65000:1:2"]}, "action": "Reject"},
            {"asPathPrefix": [65010, 65020], "action": "Reject"},
            {"priority": 512, "action": "Reject"},
        ],
        "importV6": [{"action": "Reject"}],
    }));
    let ebgp = PeerPolicy::new(&w.pools, &[], &[&f], false);
    let ibgp = PeerPolicy::new(&w.pools, &[], &[&f], true);
    let plain = PathAttributes::default();
    assert!(
        !ibgp.import(&net("10.1.2.0/24"), &plain),
        "iBGP rule on an iBGP session"
    );
    assert!(
        ebgp.import(&net("10.1.2.0/24"), &plain),
        "iBGP rule skipped on eBGP"
    );
    let both = PathAttributes {
        communities: vec![Community(65000 << 16 | 100)],
        large_communities: vec![LargeCommunity {
            global_admin: 65000,
            local_data_1: 1,
            local_data_2: 2,
        }],
        ..Default::default()
    };
    assert!(
        !ebgp.import(&net("10.2.0.0/24"), &both),
        "carries both communities"
    );
    let one = PathAttributes {
        communities: both.communities.clone(),
        ..Default::default()
    };
    assert!(
        ebgp.import(&net("10.2.0.0/24"), &one),
        "every listed community must be carried"
    );
    let path = |asns: &[u32]| PathAttributes {
        as_path: Some(crate::wire::AsPath::sequence(
            asns.iter().map(|a| api::asn::Asn(*a)),
        )),
        ..Default::default()
    };
    assert!(!ebgp.import(&net("10.3.0.0/24"), &path(&[65010, 65020, 65030])));
    assert!(ebgp.import(&net("10.3.0.0/24"), &path(&[65020, 65010])));
    assert!(
        ebgp.import(&net("10.4.0.0/24"), &plain),
        "priority never matches BGP routes"
    );
    // The unconditional V6 rule leaves IPv4 alone and refuses IPv6.
    assert!(!ebgp.import(&net("fd00::/64"), &plain));
}
