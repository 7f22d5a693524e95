//! `calicoctl ipam check` as pure code: what the IPAM state says against what the cluster uses.
//!
//! Input is everything the check reads ([`Inventory`]: blocks as stored, handles, affinities,
//! WorkloadEndpoints, Nodes, IPPools and the clock); output is a [`Check`]: every allocation
//! with its owners, and each kind of problem Calico's `ipam check` looks for (leaked addresses,
//! addresses in use without an allocation or outside every active pool, handles without
//! addresses, handles named by blocks that do not exist, invalid blocks), plus two Calico does
//! not report: handle counts that disagree with the blocks, and blocks affine to nodes that no
//! longer exist. [`CheckReport`] is the machine-readable report Calico writes with `-o`.
//!
//! Nothing here does I/O; calicoctl reads the datastore, calls [`check`] and prints.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use api::ippool::IPPool;
use api::node::Node;
use api::workload_endpoint::WorkloadEndpoint;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::allocator::tunnel_addresses;
use crate::block::{AllocationAttribute, AllocationBlock, BlockCidr, WINDOWS_RESERVED_HANDLE};
use crate::handle::Handle;

/// One stored block: its key as Calico prints it (`BlockKey(cidr=...)`), and the block, or why
/// it does not decode.
#[derive(Clone, Debug)]
pub struct BlockEntry {
    pub key: String,
    pub block: Result<AllocationBlock, String>,
}

/// One stored handle: its ID, the revision it was read at, and its value if it decodes.
#[derive(Clone, Debug)]
pub struct HandleEntry {
    pub id: String,
    pub revision: String,
    pub handle: Option<Handle>,
}

/// What the check reads.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub blocks: Vec<BlockEntry>,
    pub handles: Vec<HandleEntry>,
    /// Block affinities by node (`/calico/ipam/v2/host/<node>/...`).
    pub affinities: Vec<(String, BlockCidr)>,
    pub workload_endpoints: Vec<WorkloadEndpoint>,
    pub nodes: Vec<Node>,
    pub pools: Vec<IPPool>,
    /// Now, for `releasedAt` in the future (a sign of clock skew).
    pub now: chrono::DateTime<chrono::Utc>,
}

/// An allocated address, with what the cluster says about it (Calico's report entry; the JSON
/// field names are Calico's).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub handle: String,
    #[serde(
        rename = "sequenceNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sequence_number: Option<u64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(
        rename = "creationTimestamp",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub creation_timestamp: String,
    /// Used by a workload or node: not to be released.
    #[serde(rename = "inUse", default)]
    pub in_use: bool,
    /// From a block affine to another node (or to none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub borrowed: bool,
    /// Released into a cool-down period: neither in use nor leaked.
    #[serde(
        rename = "coolingDown",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub cooling_down: bool,
    /// Who uses the address (`Node(name)`, `Workload(ns/name)`); Go writes none as `null`.
    #[serde(default)]
    pub owners: Option<Vec<String>>,
    /// The allocation's attributes as Calico prints them (`Main:<handle> Extra:k=v,...`).
    #[serde(skip)]
    pub attrs: String,
}

/// A handle in the report (Calico's `HandleInfo`, with its Go field names).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HandleInfo {
    #[serde(rename = "ID")]
    pub id: String,
    /// Kubernetes UID; etcd handles have none.
    #[serde(rename = "UID", default)]
    pub uid: Option<String>,
    #[serde(rename = "Revision")]
    pub revision: String,
}

/// The report `ipam check -o FILE` writes and `ipam release --from-report FILE` reads
/// (Calico's `CheckReport`: same fields, same order).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    pub version: String,
    #[serde(rename = "clusterGUID")]
    pub cluster_guid: String,
    #[serde(rename = "datastoreLocked")]
    pub datastore_locked: bool,
    #[serde(rename = "clusterInformationRevision")]
    pub cluster_info_revision: String,
    #[serde(rename = "clusterType")]
    pub cluster_type: String,
    pub allocations: BTreeMap<String, Vec<Allocation>>,
    #[serde(
        rename = "leakedHandles",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub leaked_handles: Vec<HandleInfo>,
}

/// A block as the check walked it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSeen {
    pub cidr: String,
    /// The stored affinity (`host:<node>`), if any.
    pub affinity: Option<String>,
    /// Its allocations, in ordinal order: `(ip, attrs)` as printed.
    pub allocations: Vec<(String, String)>,
}

/// An address in use by the cluster and who uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InUse {
    pub ip: String,
    pub owners: Vec<String>,
}

/// A handle whose count for a block is not what the block holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleMismatch {
    pub handle: String,
    pub block: String,
    pub recorded: u32,
    pub actual: u32,
}

/// A block affine to a node that does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanedBlock {
    pub cidr: String,
    pub node: String,
}

/// What the check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Check {
    /// Decodable blocks in the order given.
    pub blocks: Vec<BlockSeen>,
    pub num_allocations: usize,
    /// CIDRs of the enabled pools.
    pub active_pools: Vec<String>,
    /// Every in-use record in the order found: `(ip, owner)` (nodes first, then workloads).
    pub in_use_records: Vec<(String, String)>,
    pub num_node_ips: usize,
    pub num_workload_ips: usize,
    /// Distinct addresses in use.
    pub num_in_use: usize,
    /// Every allocation by address.
    pub allocations: BTreeMap<String, Vec<Allocation>>,
    /// Nodes by number of allocations, most first (ties by name).
    pub allocations_by_node: Vec<(String, usize)>,
    /// Addresses used by more than one owner.
    pub multiple_owners: Vec<String>,
    /// Allocated, not in use, not cooling down.
    pub leaked: Vec<String>,
    /// In use, not allocated, outside every enabled pool.
    pub not_in_pool: Vec<InUse>,
    /// In use, in an enabled pool, not allocated.
    pub not_allocated: Vec<InUse>,
    /// Handles no allocation refers to.
    pub leaked_handles: Vec<HandleInfo>,
    pub good_handles: usize,
    /// Handles allocations refer to that are not stored.
    pub missing_handles: Vec<String>,
    /// `(key, why)` of blocks that are not consistent.
    pub invalid_blocks: Vec<(String, String)>,
    pub handle_mismatches: Vec<HandleMismatch>,
    pub orphaned_blocks: Vec<OrphanedBlock>,
}

impl Check {
    /// Problems as Calico counts them (handles missing from the store are reported but not
    /// counted, as in Calico), plus handles whose counts disagree with the blocks and blocks
    /// affine to nodes that no longer exist.
    pub fn problems(&self) -> usize {
        let mismatched_handles: BTreeSet<&str> = self
            .handle_mismatches
            .iter()
            .map(|m| m.handle.as_str())
            .collect();
        self.leaked.len()
            + self.not_in_pool.len()
            + self.not_allocated.len()
            + self.leaked_handles.len()
            + self.invalid_blocks.len()
            + mismatched_handles.len()
            + self.orphaned_blocks.len()
    }

    /// The report for `-o`, with the cluster's metadata filled in by the caller.
    pub fn report(&self, meta: ReportMeta) -> CheckReport {
        CheckReport {
            version: meta.version,
            cluster_guid: meta.cluster_guid,
            datastore_locked: meta.datastore_locked,
            cluster_info_revision: meta.cluster_info_revision,
            cluster_type: meta.cluster_type,
            allocations: self.allocations.clone(),
            leaked_handles: self.leaked_handles.clone(),
        }
    }
}

/// What a report says about the cluster it was made on.
#[derive(Clone, Debug, Default)]
pub struct ReportMeta {
    pub version: String,
    pub cluster_guid: String,
    pub datastore_locked: bool,
    pub cluster_info_revision: String,
    pub cluster_type: String,
}

/// Calico's `formatAttrs`: `Main:<handle or <none>> Extra:k=v,...[ Alternate:k=v,...]`.
pub fn format_attrs(a: &AllocationAttribute) -> String {
    let kvs = |m: &BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut s = format!(
        "Main:{} Extra:{}",
        a.handle_id.as_deref().unwrap_or("<none>"),
        kvs(&a.secondary)
    );
    if !a.alternate_owner_attrs.is_empty() {
        s.push_str(&format!(" Alternate:{}", kvs(&a.alternate_owner_attrs)));
    }
    s
}

/// An address as Calico normalises it (`10.0.0.1/32` and `10.0.0.1` are the same).
fn normalise(addr: &str) -> Option<String> {
    api::net::parse_cidr_or_ip(addr.trim()).map(|n| n.ip().to_string())
}

/// The checks Calico's `validateBlock` makes that decoding a block does not: every attribute
/// is used, and no allocation was released in the future.
fn validate_block(b: &AllocationBlock, now: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    let used: BTreeSet<usize> = b.allocations().iter().flatten().copied().collect();
    for (i, attr) in b.attributes().iter().enumerate() {
        if !used.contains(&i) {
            return Err(format!(
                "attribute index {i} exists but is not indexed by an allocation"
            ));
        }
        if let Some(at) = &attr.released_at
            && chrono::DateTime::parse_from_rfc3339(at).is_ok_and(|t| t > now)
        {
            return Err(format!(
                "attribute index {i} has releasedAt in the future, suggesting clock skew"
            ));
        }
    }
    Ok(())
}

/// Check IPAM against the cluster.
pub fn check(inv: &Inventory) -> Check {
    let mut out = Check::default();
    let mut by_node: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_use: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_use_order: Vec<String> = Vec::new();
    // handle -> block -> addresses the blocks hold for it.
    let mut handle_use: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();

    let mut record_in_use = |out: &mut Check, ip: String, owner: String| {
        out.in_use_records.push((ip.clone(), owner.clone()));
        if let Some(allocs) = out.allocations.get_mut(&ip) {
            for a in allocs {
                a.in_use = true;
                a.owners.get_or_insert_with(Vec::new).push(owner.clone());
            }
        }
        let owners = in_use.entry(ip.clone()).or_default();
        if owners.is_empty() {
            in_use_order.push(ip);
        }
        owners.push(owner);
    };

    for entry in &inv.blocks {
        let b = match &entry.block {
            Ok(b) => b,
            Err(why) => {
                out.invalid_blocks.push((entry.key.clone(), why.clone()));
                continue;
            }
        };
        if let Err(why) = validate_block(b, inv.now) {
            out.invalid_blocks.push((entry.key.clone(), why));
        }
        let cidr = b.cidr().to_string();
        let block_host = b
            .affinity()
            .and_then(|a| a.strip_prefix("host:"))
            .unwrap_or("")
            .to_string();
        let mut seen = BlockSeen {
            cidr: cidr.clone(),
            affinity: b.affinity().map(str::to_string),
            allocations: Vec::new(),
        };
        for (ord, idx) in b.allocations().iter().enumerate() {
            let Some(idx) = idx else { continue };
            let Ok(addr) = b.ip_of(ord) else { continue };
            let ip = addr.to_string();
            out.num_allocations += 1;
            let attr = b.attributes().get(*idx);
            let mut alloc = Allocation {
                ip: ip.clone(),
                handle: String::new(),
                sequence_number: b.sequence_number_of(addr),
                pod: String::new(),
                namespace: String::new(),
                node: block_host.clone(),
                kind: String::new(),
                creation_timestamp: String::new(),
                in_use: false,
                borrowed: false,
                cooling_down: false,
                owners: None,
                attrs: attr.map(format_attrs).unwrap_or_else(|| "<missing>".into()),
            };
            let mut windows = false;
            if let Some(a) = attr {
                match a.handle_id.as_deref() {
                    Some(h) if h.eq_ignore_ascii_case(WINDOWS_RESERVED_HANDLE) => windows = true,
                    Some(h) => {
                        alloc.handle = h.to_string();
                        *handle_use
                            .entry(h.to_string())
                            .or_default()
                            .entry(cidr.clone())
                            .or_default() += 1;
                    }
                    None => {}
                }
                alloc.cooling_down = a.released_at.is_some();
                let get = |k: &str| a.secondary.get(k).filter(|v| !v.is_empty()).cloned();
                if let Some(n) = get("node") {
                    alloc.node = n;
                }
                alloc.pod = get("pod").unwrap_or_default();
                alloc.namespace = get("namespace").unwrap_or_default();
                alloc.kind = get("type").unwrap_or_default();
                alloc.creation_timestamp = get("timestamp").unwrap_or_default();
            }
            alloc.borrowed = alloc.node != block_host;
            seen.allocations.push((ip.clone(), alloc.attrs.clone()));
            *by_node.entry(alloc.node.clone()).or_default() += 1;
            out.allocations.entry(ip.clone()).or_default().push(alloc);
            if windows {
                record_in_use(&mut out, ip, "Reserved for Windows".into());
            }
        }
        out.blocks.push(seen);
    }

    for p in &inv.pools {
        if p.spec.is_disabled() {
            continue;
        }
        out.active_pools.push(p.spec.cidr.clone());
    }
    let active: Vec<IpNetwork> = inv
        .pools
        .iter()
        .filter(|p| !p.spec.is_disabled())
        .filter_map(|p| api::net::parse_cidr(&p.spec.cidr))
        .collect();

    for n in &inv.nodes {
        for (ip, _) in tunnel_addresses(n) {
            record_in_use(
                &mut out,
                ip.to_string(),
                format!("Node({})", n.metadata.name),
            );
            out.num_node_ips += 1;
        }
    }
    for w in &inv.workload_endpoints {
        for net in w.spec.ip_networks.iter().flatten() {
            let Some(ip) = normalise(net) else { continue };
            let ns = w.metadata.namespace.as_deref().unwrap_or("");
            record_in_use(&mut out, ip, format!("Workload({ns}/{})", w.metadata.name));
            out.num_workload_ips += 1;
        }
    }
    out.num_in_use = in_use.len();

    let mut nodes: Vec<(String, usize)> = by_node.into_iter().collect();
    nodes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.allocations_by_node = nodes;

    for (ip, allocs) in &out.allocations {
        if in_use.contains_key(ip) || allocs.iter().any(|a| a.cooling_down) {
            continue;
        }
        out.leaked.push(ip.clone());
    }

    for ip in &in_use_order {
        let owners = &in_use[ip];
        if owners.len() > 1 {
            out.multiple_owners.push(ip.clone());
        }
        if out.allocations.contains_key(ip) {
            continue;
        }
        let entry = InUse {
            ip: ip.clone(),
            owners: owners.clone(),
        };
        let in_pool = ip
            .parse::<IpAddr>()
            .is_ok_and(|addr| active.iter().any(|c| c.contains(addr)));
        if in_pool {
            out.not_allocated.push(entry);
        } else {
            out.not_in_pool.push(entry);
        }
    }

    let stored: BTreeSet<&str> = inv.handles.iter().map(|h| h.id.as_str()).collect();
    for h in &inv.handles {
        let Some(actual) = handle_use.get(&h.id) else {
            out.leaked_handles.push(HandleInfo {
                id: h.id.clone(),
                uid: None,
                revision: h.revision.clone(),
            });
            continue;
        };
        out.good_handles += 1;
        let Some(recorded) = &h.handle else { continue };
        let blocks: BTreeSet<&String> = recorded.block.keys().chain(actual.keys()).collect();
        for block in blocks {
            let r = recorded.block.get(block).copied().unwrap_or(0);
            let a = actual.get(block).copied().unwrap_or(0);
            if r != a {
                out.handle_mismatches.push(HandleMismatch {
                    handle: h.id.clone(),
                    block: block.clone(),
                    recorded: r,
                    actual: a,
                });
            }
        }
    }
    out.missing_handles = handle_use
        .keys()
        .filter(|h| !stored.contains(h.as_str()))
        .cloned()
        .collect();

    let node_names: BTreeSet<&str> = inv.nodes.iter().map(|n| n.metadata.name.as_str()).collect();
    let mut orphans: BTreeMap<(String, String), ()> = BTreeMap::new();
    for b in inv.blocks.iter().filter_map(|e| e.block.as_ref().ok()) {
        if let Some(host) = b.host()
            && !node_names.contains(host)
        {
            orphans.insert((b.cidr().to_string(), host.to_string()), ());
        }
    }
    for (host, cidr) in &inv.affinities {
        if !node_names.contains(host.as_str()) {
            orphans.insert((cidr.to_string(), host.clone()), ());
        }
    }
    out.orphaned_blocks = orphans
        .into_keys()
        .map(|(cidr, node)| OrphanedBlock { cidr, node })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::AllocationBlock;

    fn block(cidr: &str, host: Option<&str>) -> AllocationBlock {
        let cidr: BlockCidr = cidr.parse().unwrap();
        AllocationBlock::new(cidr, host.map(|h| format!("host:{h}")).as_deref())
    }

    fn assign(b: &mut AllocationBlock, ip: &str, handle: &str, attrs: &[(&str, &str)]) {
        let attrs: BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        b.assign(ip.parse().unwrap(), Some(handle), &attrs).unwrap();
    }

    fn node(name: &str, ipip: Option<&str>) -> Node {
        let mut v = serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "Node",
            "metadata": {"name": name}, "spec": {}
        });
        if let Some(ip) = ipip {
            v["spec"]["bgp"] = serde_json::json!({"ipv4IPIPTunnelAddr": ip});
        }
        serde_json::from_value(v).unwrap()
    }

    fn wep(ns: &str, name: &str, node: &str, nets: &[&str]) -> WorkloadEndpoint {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"node": node, "ipNetworks": nets}
        }))
        .unwrap()
    }

    fn pool(cidr: &str, disabled: bool) -> IPPool {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
            "metadata": {"name": "p"}, "spec": {"cidr": cidr, "disabled": disabled}
        }))
        .unwrap()
    }

    fn handle(id: &str, blocks: &[(&str, u32)]) -> HandleEntry {
        HandleEntry {
            id: id.into(),
            revision: "7".into(),
            handle: Some(Handle {
                block: blocks.iter().map(|(b, n)| (b.to_string(), *n)).collect(),
                deleted: false,
            }),
        }
    }

    fn entry(b: AllocationBlock) -> BlockEntry {
        BlockEntry {
            key: format!("BlockKey(cidr={})", b.cidr()),
            block: Ok(b),
        }
    }

    /// A consistent cluster: two workloads, one tunnel address, handles matching.
    fn clean() -> Inventory {
        let mut b = block("10.0.0.0/30", Some("n1"));
        assign(
            &mut b,
            "10.0.0.0",
            "k8s-pod-network.a",
            &[("node", "n1"), ("pod", "a"), ("namespace", "ns")],
        );
        assign(
            &mut b,
            "10.0.0.1",
            "ipip-tunnel-addr-n1",
            &[("node", "n1"), ("type", "ipipTunnelAddress")],
        );
        let mut b2 = block("10.0.0.4/30", Some("n1"));
        assign(
            &mut b2,
            "10.0.0.4",
            "k8s-pod-network.b",
            &[("node", "n2"), ("pod", "b"), ("namespace", "ns")],
        );
        Inventory {
            blocks: vec![entry(b), entry(b2)],
            handles: vec![
                handle("k8s-pod-network.a", &[("10.0.0.0/30", 1)]),
                handle("ipip-tunnel-addr-n1", &[("10.0.0.0/30", 1)]),
                handle("k8s-pod-network.b", &[("10.0.0.4/30", 1)]),
            ],
            affinities: vec![
                ("n1".into(), "10.0.0.0/30".parse().unwrap()),
                ("n1".into(), "10.0.0.4/30".parse().unwrap()),
            ],
            workload_endpoints: vec![
                wep("ns", "n1-k8s-a-eth0", "n1", &["10.0.0.0/32"]),
                wep("ns", "n2-k8s-b-eth0", "n2", &["10.0.0.4/32"]),
            ],
            nodes: vec![node("n1", Some("10.0.0.1")), node("n2", None)],
            pools: vec![pool("10.0.0.0/24", false)],
            now: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_consistent_cluster_has_no_problems() {
        let c = check(&clean());
        assert_eq!(c.problems(), 0, "{c:#?}");
        assert_eq!(c.num_allocations, 3);
        assert_eq!(c.num_node_ips, 1);
        assert_eq!(c.num_workload_ips, 2);
        assert_eq!(c.num_in_use, 3);
        assert_eq!(c.good_handles, 3);
        assert_eq!(c.active_pools, vec!["10.0.0.0/24".to_string()]);
        let a = &c.allocations["10.0.0.4"][0];
        assert!(a.in_use && a.borrowed, "n2 uses an address of n1's block");
        assert_eq!(
            a.owners,
            Some(vec!["Workload(ns/n2-k8s-b-eth0)".to_string()])
        );
        assert_eq!(
            c.allocations["10.0.0.1"][0].owners,
            Some(vec!["Node(n1)".to_string()])
        );
        assert_eq!(
            c.allocations_by_node,
            vec![("n1".to_string(), 2), ("n2".to_string(), 1)]
        );
    }

    #[test]
    fn finds_each_kind_of_problem() {
        let mut inv = clean();
        // Leaked: allocated, nobody uses it.
        if let Ok(b) = &mut inv.blocks[0].block {
            assign(b, "10.0.0.2", "k8s-pod-network.gone", &[("node", "n1")]);
        }
        inv.handles
            .push(handle("k8s-pod-network.gone", &[("10.0.0.0/30", 1)]));
        // In use in a pool without an allocation, and in use outside every pool.
        inv.workload_endpoints
            .push(wep("ns", "c", "n1", &["10.0.0.9/32", "192.168.1.1"]));
        // A handle with no addresses, and one whose count is wrong.
        inv.handles.push(handle("k8s-pod-network.empty", &[]));
        inv.handles[0] = handle("k8s-pod-network.a", &[("10.0.0.0/30", 2)]);
        // A block affine to a node that is gone.
        inv.blocks.push(entry(block("10.0.0.8/30", Some("n9"))));
        inv.affinities
            .push(("n9".into(), "10.0.0.8/30".parse().unwrap()));

        let c = check(&inv);
        assert_eq!(c.leaked, vec!["10.0.0.2".to_string()]);
        assert_eq!(c.not_allocated.len(), 1);
        assert_eq!(c.not_allocated[0].ip, "10.0.0.9");
        assert_eq!(
            c.not_allocated[0].owners,
            vec!["Workload(ns/c)".to_string()]
        );
        assert_eq!(c.not_in_pool[0].ip, "192.168.1.1");
        assert_eq!(
            c.leaked_handles,
            vec![HandleInfo {
                id: "k8s-pod-network.empty".into(),
                uid: None,
                revision: "7".into()
            }]
        );
        assert_eq!(
            c.handle_mismatches,
            vec![HandleMismatch {
                handle: "k8s-pod-network.a".into(),
                block: "10.0.0.0/30".into(),
                recorded: 2,
                actual: 1
            }]
        );
        assert_eq!(
            c.orphaned_blocks,
            vec![OrphanedBlock {
                cidr: "10.0.0.8/30".into(),
                node: "n9".into()
            }]
        );
        assert_eq!(c.problems(), 6);
        let leaked = &c.allocations["10.0.0.2"][0];
        assert!(!leaked.in_use);
        assert_eq!(leaked.owners, None);
        assert_eq!(leaked.attrs, "Main:k8s-pod-network.gone Extra:node=n1");
    }

    #[test]
    fn handles_named_by_blocks_but_not_stored_are_reported_not_counted() {
        let mut inv = clean();
        inv.handles.retain(|h| h.id != "k8s-pod-network.b");
        let c = check(&inv);
        assert_eq!(c.missing_handles, vec!["k8s-pod-network.b".to_string()]);
        assert_eq!(c.problems(), 0, "Calico does not count missing handles");
    }

    #[test]
    fn cooling_down_and_windows_reserved_addresses_are_not_leaks() {
        let mut inv = clean();
        if let Ok(b) = &mut inv.blocks[0].block {
            assign(b, "10.0.0.2", WINDOWS_RESERVED_HANDLE, &[]);
            assign(b, "10.0.0.3", "k8s-pod-network.cool", &[]);
        }
        inv.handles
            .push(handle("k8s-pod-network.cool", &[("10.0.0.0/30", 1)]));
        // Mark 10.0.0.3 as released into cool-down, through the stored JSON.
        if let Ok(b) = &inv.blocks[0].block {
            let mut v = serde_json::to_value(b).unwrap();
            let idx = v["allocations"][3].as_u64().unwrap() as usize;
            v["attributes"][idx]["releasedAt"] = "2020-01-01T00:00:00Z".into();
            inv.blocks[0].block = Ok(serde_json::from_value(v).unwrap());
        }
        let c = check(&inv);
        assert!(c.leaked.is_empty(), "{:?}", c.leaked);
        assert!(c.allocations["10.0.0.3"][0].cooling_down);
        assert!(c.allocations["10.0.0.2"][0].in_use);
        assert_eq!(c.problems(), 0);
    }

    #[test]
    fn invalid_blocks_are_reported() {
        let mut inv = clean();
        inv.blocks.push(BlockEntry {
            key: "BlockKey(cidr=10.0.0.12/30)".into(),
            block: Err("ordinal 0 is both allocated and unallocated".into()),
        });
        if let Ok(b) = &inv.blocks[0].block {
            let mut v = serde_json::to_value(b).unwrap();
            v["attributes"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"handle_id": "stray"}));
            inv.blocks[0].block = Ok(serde_json::from_value(v).unwrap());
        }
        let c = check(&inv);
        assert_eq!(
            c.invalid_blocks,
            vec![
                (
                    "BlockKey(cidr=10.0.0.0/30)".to_string(),
                    "attribute index 2 exists but is not indexed by an allocation".to_string()
                ),
                (
                    "BlockKey(cidr=10.0.0.12/30)".to_string(),
                    "ordinal 0 is both allocated and unallocated".to_string()
                ),
            ]
        );
        assert_eq!(c.problems(), 2);
    }

    #[test]
    fn disabled_pools_are_not_active() {
        let mut inv = clean();
        inv.pools = vec![pool("10.0.0.0/24", true)];
        inv.workload_endpoints
            .push(wep("ns", "c", "n1", &["10.0.0.9/32"]));
        let c = check(&inv);
        assert!(c.active_pools.is_empty());
        assert_eq!(c.not_in_pool.len(), 1);
        assert!(c.not_allocated.is_empty());
    }

    #[test]
    fn report_json_is_calicos() {
        let mut inv = clean();
        if let Ok(b) = &mut inv.blocks[0].block {
            assign(b, "10.0.0.2", "k8s-pod-network.gone", &[("node", "n1")]);
        }
        inv.handles.push(handle("k8s-pod-network.empty", &[]));
        let c = check(&inv);
        let r = c.report(ReportMeta {
            version: "v1".into(),
            cluster_guid: "g".into(),
            datastore_locked: true,
            cluster_info_revision: "5".into(),
            cluster_type: "".into(),
        });
        // Field order is Calico's struct order.
        let text = serde_json::to_string(&r).unwrap();
        let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
        let order = [
            "version",
            "clusterGUID",
            "datastoreLocked",
            "clusterInformationRevision",
            "clusterType",
            "allocations",
            "leakedHandles",
        ];
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        let v = serde_json::to_value(&r).unwrap();
        let seq = inv.blocks[0]
            .block
            .as_ref()
            .unwrap()
            .sequence_number_of("10.0.0.2".parse().unwrap())
            .unwrap();
        assert_eq!(
            v["allocations"]["10.0.0.2"],
            serde_json::json!([{
                "ip": "10.0.0.2", "handle": "k8s-pod-network.gone", "sequenceNumber": seq,
                "node": "n1", "inUse": false, "owners": null
            }])
        );
        assert_eq!(
            v["leakedHandles"],
            serde_json::json!([{"ID": "k8s-pod-network.empty", "UID": null, "Revision": "7"}])
        );
        let back: CheckReport = serde_json::from_value(v).unwrap();
        assert_eq!(back.allocations["10.0.0.2"][0].sequence_number, Some(seq));
    }
}
