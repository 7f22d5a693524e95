use std::collections::BTreeMap;

use ipam::block::BlockCidr;

use super::*;

fn json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn node(name: &str, cidr: &str, ipip: Option<&str>, vtep: Option<(&str, &str)>) -> Node {
    let mut spec = serde_json::json!({"bgp": {"ipv4Address": cidr}});
    if let Some(t) = ipip {
        spec["bgp"]["ipv4IPIPTunnelAddr"] = t.into();
    }
    if let Some((addr, mac)) = vtep {
        spec["ipv4VXLANTunnelAddr"] = addr.into();
        spec["vxlanTunnelMACAddr"] = mac.into();
    }
    json(
        serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "Node",
        "metadata": {"name": name}, "spec": spec}),
    )
}

fn pool(cidr: &str, spec: serde_json::Value) -> IPPool {
    let mut s = spec;
    s["cidr"] = cidr.into();
    json(
        serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": cidr.replace(['.', '/'], "-")}, "spec": s}),
    )
}

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

fn block(cidr: &str, owner: &str, held: &[(&str, &str)]) -> AllocationBlock {
    let mut b = AllocationBlock::new(
        BlockCidr::new(net(cidr)).unwrap(),
        Some(&format!("host:{owner}")),
    );
    for (ip, node) in held {
        let attrs: BTreeMap<String, String> = [("node".to_string(), node.to_string())].into();
        b.assign(ip.parse().unwrap(), Some("h"), &attrs).unwrap();
    }
    b
}

fn workload(node: &str, iface: &str, ip: &str) -> WorkloadEndpoint {
    json(
        serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
        "metadata": {"name": format!("{node}-k8s-pod-eth0"), "namespace": "default"},
        "spec": {"node": node, "interfaceName": iface, "ipNetworks": [ip]}}),
    )
}

/// Three nodes: a (us) and b on 10.0.0.0/24, c on 10.1.0.0/24. Blocks: a's 10.65.0.0/26,
/// b's 10.65.1.0/26 (holding 10.65.1.7 for a pod on c), c's 10.65.2.0/26.
struct World {
    nodes: Vec<Node>,
    pools: Vec<IPPool>,
    blocks: BTreeMap<IpNetwork, AllocationBlock>,
    affinities: BTreeMap<IpNetwork, BlockAffinity>,
    workloads: Vec<WorkloadEndpoint>,
}

fn world(pool_spec: serde_json::Value) -> World {
    let mut blocks = BTreeMap::new();
    blocks.insert(
        net("10.65.0.0/26"),
        block("10.65.0.0/26", "a", &[("10.65.0.1", "a")]),
    );
    blocks.insert(
        net("10.65.1.0/26"),
        block("10.65.1.0/26", "b", &[("10.65.1.7", "c")]),
    );
    blocks.insert(net("10.65.2.0/26"), block("10.65.2.0/26", "c", &[]));
    let mut affinities = BTreeMap::new();
    affinities.insert(
        net("10.65.0.0/26"),
        json(serde_json::json!({"state": "confirmed"})),
    );
    World {
        nodes: vec![
            node(
                "a",
                "10.0.0.1/24",
                Some("10.65.0.0"),
                Some(("10.65.0.2", "66:00:00:00:00:0a")),
            ),
            node(
                "b",
                "10.0.0.2/24",
                Some("10.65.1.0"),
                Some(("10.65.1.2", "66:00:00:00:00:0b")),
            ),
            node(
                "c",
                "10.1.0.3/24",
                Some("10.65.2.0"),
                Some(("10.65.2.2", "66:00:00:00:00:0c")),
            ),
        ],
        pools: vec![pool("10.65.0.0/16", pool_spec)],
        blocks,
        affinities,
        workloads: vec![
            workload("a", "cali1234567890a", "10.65.0.1/32"),
            workload("b", "cali0", "10.65.1.1/32"),
        ],
    }
}

impl World {
    fn calc(&self) -> Dataplane {
        calculate(&Inputs {
            node: "a",
            nodes: &self.nodes,
            pools: &self.pools,
            blocks: &self.blocks,
            affinities: &self.affinities,
            workloads: &self.workloads,
        })
    }
}

fn via(gw: &str, dev: Option<&str>) -> Target {
    Target::Via {
        gateway: gw.parse().unwrap(),
        device: dev.map(str::to_string),
        onlink: dev.is_some(),
    }
}

fn routes(pairs: &[(&str, Target)]) -> BTreeMap<IpNetwork, Target> {
    pairs.iter().map(|(n, t)| (net(n), t.clone())).collect()
}

fn local() -> [(&'static str, Target); 2] {
    [
        (
            "10.65.0.1/32",
            Target::Workload {
                interface: "cali1234567890a".into(),
            },
        ),
        ("10.65.0.0/26", Target::Blackhole),
    ]
}

#[test]
fn routes_for_each_pool_mode() {
    let tunl0 = Some(IPIP_DEVICE);
    let vx = Some(VXLAN_DEVICE);
    // (pool spec, route to b's block, to c's block, to the address c borrowed from b)
    let cases = [
        (
            serde_json::json!({"ipipMode": "Always"}),
            via("10.0.0.2", tunl0),
            via("10.1.0.3", tunl0),
            via("10.1.0.3", tunl0),
        ),
        (
            serde_json::json!({"ipipMode": "CrossSubnet"}),
            via("10.0.0.2", None),
            via("10.1.0.3", tunl0),
            via("10.1.0.3", tunl0),
        ),
        (
            serde_json::json!({"vxlanMode": "Always"}),
            via("10.65.1.2", vx),
            via("10.65.2.2", vx),
            via("10.65.2.2", vx),
        ),
        (
            serde_json::json!({"vxlanMode": "CrossSubnet"}),
            via("10.0.0.2", None),
            via("10.65.2.2", vx),
            via("10.65.2.2", vx),
        ),
    ];
    for (spec, to_b, to_c, borrowed) in cases {
        let dp = world(spec.clone()).calc();
        let [w, bh] = local();
        assert_eq!(
            dp.routes,
            routes(&[
                w,
                bh,
                ("10.65.1.0/26", to_b),
                ("10.65.2.0/26", to_c),
                ("10.65.1.7/32", borrowed)
            ]),
            "{spec}"
        );
    }
}

#[test]
fn no_encap_pools_leave_remote_routes_to_bgp() {
    let dp = world(serde_json::json!({"ipipMode": "Never", "vxlanMode": "Never"})).calc();
    assert_eq!(dp.routes, routes(&local()));
    assert_eq!((dp.ipip, dp.vxlan), (None, None));
}

#[test]
fn tunnel_devices_and_vteps() {
    let dp = world(serde_json::json!({"ipipMode": "Always"})).calc();
    assert_eq!(
        dp.ipip,
        Some(Ipip {
            address: "10.65.0.0".parse().unwrap()
        })
    );
    assert!(dp.vxlan.is_none() && dp.vteps.is_empty());
    let dp = world(serde_json::json!({"vxlanMode": "Always"})).calc();
    assert_eq!(
        dp.vxlan,
        Some(Vxlan {
            address: "10.65.0.2".parse().unwrap(),
            mac: "66:00:00:00:00:0a".into(),
            local: "10.0.0.1".parse().unwrap()
        })
    );
    let vteps: Vec<(String, String)> = dp
        .vteps
        .iter()
        .map(|v| (v.node.clone(), v.node_ip.to_string()))
        .collect();
    assert_eq!(
        vteps,
        [
            ("b".to_string(), "10.0.0.2".to_string()),
            ("c".to_string(), "10.1.0.3".to_string())
        ]
    );
}

#[test]
fn a_node_address_change_moves_its_routes() {
    let mut w = world(serde_json::json!({"ipipMode": "Always"}));
    w.nodes[1] = node("b", "10.0.0.22/24", None, None);
    let dp = w.calc();
    assert_eq!(
        dp.routes[&net("10.65.1.0/26")],
        via("10.0.0.22", Some(IPIP_DEVICE))
    );
}

#[test]
fn deleting_or_disabling_the_pool_removes_its_routes() {
    let mut w = world(serde_json::json!({"ipipMode": "Always"}));
    w.pools.clear();
    let dp = w.calc();
    // Only the workload route stays: it is the pod's, whatever the pools.
    assert_eq!(dp.routes, routes(&[local()[0].clone()]));
    let w = world(serde_json::json!({"ipipMode": "Always", "disabled": true}));
    assert_eq!(w.calc().routes, routes(&[local()[0].clone()]));
}

#[test]
fn nat_outgoing_pools() {
    let mut w = world(serde_json::json!({"natOutgoing": true}));
    w.pools.push(pool("10.66.0.0/16", serde_json::json!({})));
    let dp = w.calc();
    assert_eq!(dp.nat_outgoing, [net("10.65.0.0/16")]);
    assert_eq!(dp.all_pools, [net("10.65.0.0/16"), net("10.66.0.0/16")]);
}
