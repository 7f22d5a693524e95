//! The allocator against a real etcd (Debian's etcd-server, started per test by `testutil`):
//! what a node and its pods would see, and what is left in the store.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use api::AnyResource;
use datastore::config::EtcdConfig;
use datastore::etcd::EtcdBackend;
use datastore::{Backend, Client, Key, ListKey};
use ipam::affinity::{AffinityState, BlockAffinity};
use ipam::block::AllocationBlock;
use ipam::handle::Handle;
use ipam::{AssignIpArgs, AutoAssignArgs, Ipam, IpamError, ReleaseOptions};
use testutil::etcd::Etcd;

async fn connect(etcd: &Etcd) -> Arc<dyn Backend> {
    Arc::new(
        EtcdBackend::connect(&EtcdConfig {
            endpoints: etcd.endpoints().to_vec(),
            ..Default::default()
        })
        .await
        .expect("connect to test etcd"),
    )
}

/// Write resources given as YAML documents, as `calicoctl create` would.
async fn create(backend: &Arc<dyn Backend>, yaml: &str) {
    let client = Client::new(backend.clone());
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("yaml");
        if value.is_null() {
            continue;
        }
        let value = serde_json::to_value(value).unwrap();
        let r = AnyResource::from_value(value).expect("valid resource");
        client.create(&r).await.expect("create resource");
    }
}

fn node(name: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: {name}}}\n---\n")
}

fn pool(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: {name}}}\nspec: {spec}\n---\n"
    )
}

async fn blocks(backend: &Arc<dyn Backend>) -> BTreeMap<String, AllocationBlock> {
    backend
        .list(&ListKey::Blocks)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|kv| {
            let b: AllocationBlock = serde_json::from_slice(&kv.value).unwrap();
            (b.cidr().to_string(), b)
        })
        .collect()
}

/// `host -> {cidr: state}` for every affinity in the store.
async fn affinities(
    backend: &Arc<dyn Backend>,
) -> BTreeMap<String, BTreeMap<String, AffinityState>> {
    let mut out: BTreeMap<String, BTreeMap<String, AffinityState>> = BTreeMap::new();
    for kv in backend
        .list(&ListKey::BlockAffinities { host: None })
        .await
        .unwrap()
        .items
    {
        let Key::BlockAffinity { host, cidr } = kv.key else {
            unreachable!()
        };
        let a: BlockAffinity = serde_json::from_slice(&kv.value).unwrap();
        out.entry(host)
            .or_default()
            .insert(cidr.to_string(), a.state);
    }
    out
}

async fn handles(backend: &Arc<dyn Backend>) -> BTreeMap<String, Handle> {
    backend
        .list(&ListKey::Handles)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|kv| {
            let Key::Handle(id) = kv.key else {
                unreachable!()
            };
            (id, serde_json::from_slice(&kv.value).unwrap())
        })
        .collect()
}

/// Every handle's counts equal what the blocks hold under it, and no address is held twice.
async fn assert_consistent(backend: &Arc<dyn Backend>) {
    let blocks = blocks(backend).await;
    let mut counted: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for (cidr, b) in &blocks {
        for (ord, a) in b.allocations().iter().enumerate() {
            if let Some(idx) = a
                && let Some(h) = &b.attributes()[*idx].handle_id
            {
                let _ = ord;
                *counted
                    .entry(h.clone())
                    .or_default()
                    .entry(cidr.clone())
                    .or_default() += 1;
            }
        }
    }
    let stored: BTreeMap<String, BTreeMap<String, u32>> = handles(backend)
        .await
        .into_iter()
        .map(|(id, h)| (id, h.block))
        .collect();
    assert_eq!(stored, counted, "handles disagree with blocks");
}

fn ips(nets: &[ipnetwork::IpNetwork]) -> Vec<String> {
    nets.iter().map(|n| n.to_string()).collect()
}

async fn assign(ipam: &Ipam, host: &str, n: usize, handle: &str) -> Result<Vec<String>, IpamError> {
    ipam.auto_assign(&AutoAssignArgs::new(host, n, 0).handle(handle))
        .await
        .map(|a| ips(&a.ipv4))
}

async fn set_strict(ipam: &Ipam, strict: bool) {
    let mut c = ipam.get_config().await.unwrap();
    c.strict_affinity = strict;
    ipam.set_config(&c).await.unwrap();
}

#[tokio::test]
async fn two_nodes_fill_a_small_pool_and_the_second_borrows() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let backend = connect(&etcd).await;
    create(
        &backend,
        &(node("node-a") + &node("node-b") + &pool("small", "{cidr: 10.9.0.0/27, blockSize: 28}")),
    )
    .await;
    let ipam = Ipam::new(backend.clone());

    // node-a takes 20: a whole block and 4 of the second, both affine to it.
    let a = assign(&ipam, "node-a", 20, "a1").await.unwrap();
    assert_eq!(a.len(), 20);
    assert!(a.iter().all(|ip| ip.ends_with("/28")), "{a:?}");
    assert_eq!(
        affinities(&backend).await["node-a"]
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        ["10.9.0.0/28", "10.9.0.16/28"]
    );

    // node-b finds no block to claim and borrows the 12 left in node-a's block.
    let b = assign(&ipam, "node-b", 12, "b1").await.unwrap();
    assert_eq!(b.len(), 12);
    let all: BTreeSet<&String> = a.iter().chain(&b).collect();
    assert_eq!(all.len(), 32, "an address was handed out twice");
    assert!(!affinities(&backend).await.contains_key("node-b"));
    let blocks_now = blocks(&backend).await;
    assert_eq!(blocks_now.len(), 2);
    assert!(blocks_now.values().all(|b| b.host() == Some("node-a")));

    // The pool is full: the error says so, and nothing is left allocated by the attempt.
    let e = assign(&ipam, "node-b", 1, "b2").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "IPAM allocated only 0 of 1 IPv4 addresses; No IPs available in pools: [10.9.0.0/27]"
    );
    assert!(!handles(&backend).await.contains_key("b2"));
    assert_consistent(&backend).await;
}

#[tokio::test]
async fn strict_affinity_forbids_borrowing() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let backend = connect(&etcd).await;
    create(
        &backend,
        &(node("node-a") + &node("node-b") + &pool("small", "{cidr: 10.9.0.0/27, blockSize: 28}")),
    )
    .await;
    let ipam = Ipam::new(backend.clone());
    set_strict(&ipam, true).await;
    assign(&ipam, "node-a", 20, "a1").await.unwrap();
    let before = blocks(&backend).await;

    let e = assign(&ipam, "node-b", 1, "b1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "IPAM allocated only 0 of 1 IPv4 addresses; No more free affine blocks and strict affinity enabled"
    );
    // node-a still has room in its own block.
    assert_eq!(assign(&ipam, "node-a", 12, "a2").await.unwrap().len(), 12);
    assert_ne!(before, blocks(&backend).await);

    // maxBlocksPerHost with strict affinity: a third block is refused.
    let mut c = ipam.get_config().await.unwrap();
    c.max_blocks_per_host = 1;
    ipam.set_config(&c).await.unwrap();
    create(
        &backend,
        &pool("more", "{cidr: 10.9.1.0/24, blockSize: 28}"),
    )
    .await;
    let e = assign(&ipam, "node-a", 1, "a3").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Need to allocate an IPAM block but could not - limit of 1 blocks reached for this node"
    );

    // Calico's refusals of inconsistent configuration, with nothing written.
    let stored = backend.get(&Key::IpamConfig).await.unwrap();
    c.strict_affinity = false;
    assert_eq!(
        ipam.set_config(&c).await.unwrap_err().to_string(),
        "MaxBlocksPerHost requires StrictAffinity to be enabled"
    );
    assert_eq!(backend.get(&Key::IpamConfig).await.unwrap(), stored);
    assert_consistent(&backend).await;
}

#[tokio::test]
async fn a_restarted_node_finds_its_blocks_and_a_deleted_node_releases_them() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let backend = connect(&etcd).await;
    create(
        &backend,
        &(node("node-a") + &pool("p", "{cidr: 10.20.0.0/16}")),
    )
    .await;
    let first = assign(&Ipam::new(backend.clone()), "node-a", 70, "a1")
        .await
        .unwrap();
    let claimed = affinities(&backend).await;
    assert_eq!(
        claimed["node-a"].len(),
        2,
        "70 addresses need two /26 blocks"
    );
    assert!(
        claimed["node-a"]
            .values()
            .all(|s| *s == AffinityState::Confirmed)
    );

    // A restart: a new process, a new connection; the same blocks serve it.
    drop(backend);
    let backend = connect(&etcd).await;
    let ipam = Ipam::new(backend.clone());
    let more = assign(&ipam, "node-a", 5, "a2").await.unwrap();
    assert_eq!(affinities(&backend).await, claimed);
    let blocks_of: BTreeSet<String> = claimed["node-a"].keys().cloned().collect();
    for ip in &more {
        let ip: IpAddr = ip.split('/').next().unwrap().parse().unwrap();
        assert!(
            blocks_of
                .iter()
                .any(|b| b.parse::<ipnetwork::IpNetwork>().unwrap().contains(ip)),
            "{ip} not from node-a's blocks"
        );
    }

    // Release all of a2 and a1 but one address, then delete the Node: the block still holding
    // an address loses its affinity, the empty one goes.
    assert_eq!(ipam.release_by_handle("a2").await.unwrap(), 5);
    let keep: IpAddr = first[0].split('/').next().unwrap().parse().unwrap();
    let rest: Vec<ReleaseOptions> = first[1..]
        .iter()
        .map(|s| ReleaseOptions::ip(s.split('/').next().unwrap().parse().unwrap()))
        .collect();
    let r = ipam.release_ips(&rest).await.unwrap();
    assert_eq!(r.released.len(), 69);
    let reclaimed = ipam.release_node("node-a").await.unwrap();
    assert_eq!(reclaimed.affinities.len(), 2);
    assert!(affinities(&backend).await.is_empty());
    let left = blocks(&backend).await;
    assert_eq!(left.len(), 1, "the empty block is deleted");
    let b = left.values().next().unwrap();
    assert_eq!(b.affinity(), None);
    assert!(b.cidr().network().contains(keep));
    // Releasing the last address of an unowned block deletes the block.
    ipam.release_ips(&[ReleaseOptions::ip(keep)]).await.unwrap();
    assert!(blocks(&backend).await.is_empty());
    assert!(handles(&backend).await.is_empty());
}

#[tokio::test]
async fn assign_release_and_their_errors() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let backend = connect(&etcd).await;
    create(
        &backend,
        &(node("n1")
            + &node("n2")
            + &pool("p", "{cidr: 10.30.0.0/24}")
            + &pool("off", "{cidr: 10.31.0.0/24, disabled: true}")
            + &pool("tun", "{cidr: 10.32.0.0/24, allowedUses: [Tunnel]}")
            + &pool("one", "{cidr: 10.33.0.0/26}")
            + "apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: r}\nspec: {reservedCIDRs: [10.33.0.0/30]}\n"),
    )
    .await;
    let ipam = Ipam::new(backend.clone());
    let args = |ip: &str, host: &str| AssignIpArgs {
        ip: ip.parse().unwrap(),
        handle_id: Some(format!("h-{ip}")),
        attrs: BTreeMap::new(),
        hostname: host.to_string(),
        intended_use: Some(api::ippool::AllowedUse::Workload),
    };

    ipam.assign_ip(&args("10.30.0.77", "n1")).await.unwrap();
    assert_eq!(
        ipam.assign_ip(&args("10.30.0.77", "n2"))
            .await
            .unwrap_err()
            .to_string(),
        "The provided IP address 10.30.0.77 is already assigned"
    );
    assert_eq!(
        ipam.assign_ip(&args("192.0.2.1", "n1"))
            .await
            .unwrap_err()
            .to_string(),
        "The provided IP address 192.0.2.1 is not in a configured pool"
    );
    assert_eq!(
        ipam.assign_ip(&args("10.31.0.1", "n1"))
            .await
            .unwrap_err()
            .to_string(),
        "IP address 10.31.0.1 is in IP pool \"off\", which is disabled"
    );
    assert_eq!(
        ipam.assign_ip(&args("10.32.0.1", "n1"))
            .await
            .unwrap_err()
            .to_string(),
        "IP address 10.32.0.1 is in IP pool \"tun\", which is not allowed for use \"Workload\" (allowedUses: [Tunnel])"
    );
    // The block of 10.30.0.77 is n1's now.
    assert_eq!(
        affinities(&backend).await["n1"]
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        ["10.30.0.64/26"]
    );

    // Auto-assign never hands out reserved addresses: the one-block pool has 60 to give.
    let mut from_one = AutoAssignArgs::new("n2", 60, 0).handle("w");
    from_one.ipv4_pools = vec!["10.33.0.0/26".into()];
    let got = ipam.auto_assign(&from_one).await.unwrap();
    let reserved: Vec<String> = (0..4).map(|i| format!("10.33.0.{i}/26")).collect();
    assert!(
        got.ipv4
            .iter()
            .all(|ip| !reserved.contains(&ip.to_string())),
        "{got:?}"
    );
    from_one.num4 = 1;
    from_one.handle_id = Some("w2".into());
    assert_eq!(
        ipam.auto_assign(&from_one).await.unwrap_err().to_string(),
        "IPAM allocated only 0 of 1 IPv4 addresses; No IPs available in pools: [10.33.0.0/26]"
    );
    let mut tunnel = AutoAssignArgs::new("n1", 1, 0).handle("ipip-tunnel-addr-n1");
    tunnel.intended_use = api::ippool::AllowedUse::Tunnel;
    tunnel.ipv4_pools = vec!["tun".into()];
    let t = ipam.auto_assign(&tunnel).await.unwrap();
    assert!(t.ipv4[0].to_string().starts_with("10.32.0."), "{t:?}");

    // Release: an unallocated address is reported, not an error; a stale sequence number
    // and a wrong handle keep the allocation.
    let ip77: IpAddr = "10.30.0.77".parse().unwrap();
    let seq = blocks(&backend).await["10.30.0.64/26"]
        .sequence_number_of(ip77)
        .unwrap();
    let r = ipam
        .release_ips(&[
            ReleaseOptions {
                address: ip77,
                handle_id: None,
                sequence_number: Some(seq + 1),
            },
            ReleaseOptions::ip("10.30.0.78".parse().unwrap()),
        ])
        .await
        .unwrap();
    assert!(r.released.is_empty());
    assert_eq!(r.not_allocated, ["10.30.0.78".parse::<IpAddr>().unwrap()]);
    assert_eq!(r.mismatched.len(), 1);
    let r = ipam
        .release_ips(&[ReleaseOptions {
            address: ip77,
            handle_id: Some("someone-else".into()),
            sequence_number: None,
        }])
        .await
        .unwrap();
    assert_eq!(r.not_allocated, [ip77]);
    assert_eq!(ipam.ips_by_handle("h-10.30.0.77").await.unwrap(), [ip77]);
    let r = ipam
        .release_ips(&[ReleaseOptions {
            address: ip77,
            handle_id: Some("h-10.30.0.77".into()),
            sequence_number: Some(seq),
        }])
        .await
        .unwrap();
    assert_eq!(r.released, [ip77]);
    assert!(!handles(&backend).await.contains_key("h-10.30.0.77"));
    assert_eq!(ipam.release_by_handle("no-such-handle").await.unwrap(), 0);
    assert_consistent(&backend).await;
}

#[tokio::test]
async fn ipv6_blocks_selectors_and_manual_pools() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let backend = connect(&etcd).await;
    create(
        &backend,
        &("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: r1, labels: {rack: r1}}\n---\n".to_string()
            + &node("r2")
            + &pool("v4", "{cidr: 10.40.0.0/24, nodeSelector: rack == 'r1'}")
            + &pool("v4-manual", "{cidr: 10.41.0.0/24, assignmentMode: Manual}")
            + &pool("v6", "{cidr: 'fd00:40::/120'}")),
    )
    .await;
    let ipam = Ipam::new(backend.clone());
    let got = ipam
        .auto_assign(&AutoAssignArgs::new("r1", 1, 2).handle("dual"))
        .await
        .unwrap();
    assert!(got.ipv4[0].to_string().starts_with("10.40.0."));
    assert_eq!(got.ipv6.len(), 2);
    assert!(got.ipv6.iter().all(|n| n.prefix() == 122), "{got:?}");
    assert_eq!(
        handles(&backend).await["dual"].total(),
        3,
        "one handle for both families"
    );

    // r2: the only automatic v4 pool does not select it; the manual pool only when named.
    let e = ipam
        .auto_assign(&AutoAssignArgs::new("r2", 1, 1).handle("r2"))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "no configured Calico pools for node r2");
    assert!(!handles(&backend).await.contains_key("r2"));
    let mut named = AutoAssignArgs::new("r2", 1, 0).handle("r2");
    named.ipv4_pools = vec!["v4-manual".into()];
    let got = ipam.auto_assign(&named).await.unwrap();
    assert!(got.ipv4[0].to_string().starts_with("10.41.0."));

    // A node that does not exist cannot be given workload addresses.
    let e = ipam
        .auto_assign(&AutoAssignArgs::new("ghost", 1, 0))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ghost"), "{e}");
    assert_consistent(&backend).await;
}

#[tokio::test]
async fn an_interrupted_claim_is_finished_by_the_next_request() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let backend = connect(&etcd).await;
    create(&backend, &(node("n1") + &pool("p", "{cidr: 10.50.0.0/24}"))).await;
    // A claim that stopped after phase one: a pending affinity and no block.
    let key = Key::BlockAffinity {
        host: "n1".into(),
        cidr: "10.50.0.128/26".parse().unwrap(),
    };
    backend
        .create(
            &key,
            serde_json::to_vec(&BlockAffinity::pending()).unwrap(),
            None,
        )
        .await
        .unwrap();
    let ipam = Ipam::new(backend.clone());
    let got = assign(&ipam, "n1", 1, "h").await.unwrap();
    assert_eq!(got, ["10.50.0.128/26"]);
    assert_eq!(
        affinities(&backend).await["n1"],
        BTreeMap::from([("10.50.0.128/26".to_string(), AffinityState::Confirmed)])
    );

    // An affinity whose block is someone else's is stale: it is removed, not used.
    let stale = Key::BlockAffinity {
        host: "n2".into(),
        cidr: "10.50.0.128/26".parse().unwrap(),
    };
    create(&backend, &node("n2")).await;
    backend
        .create(
            &stale,
            serde_json::to_vec(&BlockAffinity::default()).unwrap(),
            None,
        )
        .await
        .unwrap();
    let got = assign(&ipam, "n2", 1, "h2").await.unwrap();
    assert!(!got[0].starts_with("10.50.0.1"), "{got:?}");
    assert!(backend.get(&stale).await.unwrap().is_none());

    // Orphans: a node that is gone leaves an empty block; reclaiming releases it.
    ipam.release_by_handle("h2").await.unwrap();
    let client = Client::new(backend.clone());
    client
        .delete::<api::node::Node>(
            &datastore::ResourceKey::new(api::ResourceKind::Node, None, "n2"),
            None,
        )
        .await
        .unwrap();
    let r = ipam.reclaim_orphaned_blocks().await.unwrap();
    assert_eq!(r.affinities.len(), 1);
    assert_eq!(r.affinities[0].0, "n2");
    assert!(!affinities(&backend).await.contains_key("n2"));
    assert_consistent(&backend).await;
}
