//! `calicoctl ipam`: show, check, release, configure and split, with Calico's output.
//!
//! The analysis behind `check` is `ipam::check` (pure); this module reads the datastore,
//! prints, and writes. Calico prints its IPAM tables with go-pretty ([`table::boxed`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use api::cluster_information::ClusterInformation;
use api::ippool::IPPool;
use api::ipreservation::IPReservation;
use api::node::Node;
use api::workload_endpoint::WorkloadEndpoint;
use api::{Resource, ResourceKind};
use datastore::{Client, Error as StoreError, Key, ListKey, ResourceKey, Revision};
use ipam::block::AllocationBlock;
use ipam::check::{self, BlockEntry, CheckReport, HandleEntry, Inventory, ReportMeta};
use ipam::config::IpamConfig;
use ipam::handle::Handle;
use ipam::pools::Pool;
use ipam::{Ipam, ReleaseOptions};
use ipnetwork::IpNetwork;

use crate::commands::{Outcome, Session, client_failure};
use crate::table;

/// The version written into and required of `ipam check` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What was printed so far, and how to end: Calico prints progress on stdout and the error
/// that stops a command on stderr.
struct Printer {
    out: String,
}

impl Printer {
    fn new() -> Self {
        Printer { out: String::new() }
    }
    fn line(&mut self, s: impl AsRef<str>) {
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }
    fn ok(self) -> Outcome {
        Outcome::ok(self.out)
    }
    fn fail(self, e: impl std::fmt::Display) -> Outcome {
        Outcome::fail(self.out, e.to_string())
    }
}

/// calicoctl's `ValidateIP`: an invalid address is reported on stdout, exit status 1.
fn parse_ip(s: &str) -> Result<IpAddr, Outcome> {
    s.parse::<IpAddr>().map_err(|_| Outcome {
        stdout: format!("Error executing command: invalid IP address specified: {s}\n"),
        stderr: String::new(),
        code: 1,
    })
}

async fn connect(session: &mut Session) -> Result<Client, Outcome> {
    session.client().await.map_err(client_failure)
}

async fn cluster_information(client: &Client) -> Result<ClusterInformation, StoreError> {
    client
        .get(&ResourceKey::new(
            ResourceKind::ClusterInformation,
            None,
            "default",
        ))
        .await
}

fn decode_block(value: &[u8]) -> Result<AllocationBlock, String> {
    serde_json::from_slice(value).map_err(|e| e.to_string())
}

/// Every block as stored, in key order, each decoded or with the reason it does not decode.
async fn block_entries(client: &Client) -> Result<Vec<BlockEntry>, StoreError> {
    let listing = client.backend().list(&ListKey::Blocks).await?;
    Ok(listing
        .items
        .into_iter()
        .map(|kv| BlockEntry {
            key: kv.key.to_string(),
            block: decode_block(&kv.value),
        })
        .collect())
}

async fn list<R: Resource>(client: &Client, kind: ResourceKind) -> Result<Vec<R>, StoreError> {
    Ok(client.list::<R>(&ListKey::kind(kind)).await?.0)
}

// ---- show ----

/// `ipam show`'s flags; the first given wins, in Calico's order.
#[derive(Clone, Debug, Default)]
pub struct ShowArgs {
    pub ip: Option<String>,
    pub show_blocks: bool,
    pub show_borrowed: bool,
    pub show_configuration: bool,
}

pub async fn show(session: &mut Session, args: &ShowArgs) -> Outcome {
    let ip = match args.ip.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => match parse_ip(s) {
            Ok(ip) => Some(ip),
            Err(o) => return o,
        },
        None => None,
    };
    let client = match connect(session).await {
        Ok(c) => c,
        Err(o) => return o,
    };
    let result = if let Some(ip) = ip {
        show_ip(&client, ip).await
    } else if args.show_blocks {
        show_utilization(&client, true).await
    } else if args.show_borrowed {
        show_borrowed(&client).await
    } else if args.show_configuration {
        show_configuration(&client).await
    } else {
        show_utilization(&client, false).await
    };
    match result {
        Ok(out) => Outcome::ok(out),
        Err(e) => Outcome::fail(String::new(), e),
    }
}

/// `--ip`: who holds the address, as Calico's `GetAssignmentAttributes` finds it: through the
/// pool that contains it and that pool's block for it.
async fn show_ip(client: &Client, ip: IpAddr) -> Result<String, String> {
    let not_assigned = format!("{ip} is not assigned\n");
    let pools: Vec<Pool> = list::<IPPool>(client, ResourceKind::IPPool)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(Pool::new)
        .collect();
    let Some(pool) = ipam::pools::pool_for_ip(&pools, ip) else {
        return Ok(not_assigned);
    };
    let cidr = pool.block_for(ip);
    let Some(kv) = client
        .backend()
        .get(&Key::Block(cidr.network()))
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(not_assigned);
    };
    let block = decode_block(&kv.value)?;
    let Some(attr) = block.attribute_of(ip) else {
        return Ok(not_assigned);
    };
    if attr.released_at.is_some() {
        return Err(format!("address {ip} is in cooldown"));
    }
    let mut out = format!("IP {ip} is in use\n");
    out.push_str(&format!(
        "Handle ID: {}\n",
        attr.handle_id.as_deref().unwrap_or("<none>")
    ));
    let attrs = |title: &str, m: &BTreeMap<String, String>| {
        let mut s = format!("{title}:\n");
        for (k, v) in m {
            s.push_str(&format!("  {k}: {v}\n"));
        }
        s
    };
    if attr.secondary.is_empty() {
        out.push_str("No Active Owner attributes defined\n");
    } else {
        out.push_str(&attrs("Active Owner Attributes", &attr.secondary));
    }
    if !attr.alternate_owner_attrs.is_empty() {
        out.push_str(&attrs(
            "Alternate Owner Attributes",
            &attr.alternate_owner_attrs,
        ));
    }
    Ok(out)
}

/// Addresses as numbers, for counting over ranges of both families.
fn range_of(net: IpNetwork) -> (u128, u128) {
    let (lo, bits) = match net.network() {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32),
        IpAddr::V6(a) => (u128::from(a), 128u32),
    };
    let host_bits = bits - u32::from(net.prefix());
    let span = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (lo, lo.saturating_add(span))
}

/// How many addresses of `within` the union of `ranges` covers.
fn covered(within: (u128, u128), ranges: &[(u128, u128)]) -> u128 {
    let mut clipped: Vec<(u128, u128)> = ranges
        .iter()
        .filter(|(lo, hi)| *hi >= within.0 && *lo <= within.1)
        .map(|(lo, hi)| ((*lo).max(within.0), (*hi).min(within.1)))
        .collect();
    clipped.sort();
    let mut total = 0u128;
    let mut current: Option<(u128, u128)> = None;
    for (lo, hi) in clipped {
        match current {
            Some((clo, chi)) if lo <= chi.saturating_add(1) => current = Some((clo, chi.max(hi))),
            Some((clo, chi)) => {
                total = total.saturating_add(chi - clo).saturating_add(1);
                current = Some((lo, hi));
            }
            None => current = Some((lo, hi)),
        }
    }
    if let Some((clo, chi)) = current {
        total = total.saturating_add(chi - clo).saturating_add(1);
    }
    total
}

/// Calico clamps counts to Go's `int`.
fn clamp(n: u128) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

struct Usage {
    cidr: String,
    capacity: i64,
    in_use: i64,
    reserved: i64,
    free: i64,
}

struct PoolUsage {
    /// `None` for the group of blocks outside every pool (not printed as a row).
    pool: Option<IpNetwork>,
    blocks: Vec<Usage>,
    blocks_ranges: Vec<(u128, u128)>,
}

fn usage_row(kind: &str, u: &Usage) -> Vec<String> {
    let pct = |n: i64| {
        format!(
            "{} ({:.0}%)",
            table::go_g5(n as f64),
            100.0 * n as f64 / u.capacity as f64
        )
    };
    vec![
        kind.to_string(),
        u.cidr.clone(),
        table::go_g5(u.capacity as f64),
        pct(u.in_use),
        pct(u.reserved),
        pct(u.free),
    ]
}

/// The address ranges of the networks of one family.
fn ranges(nets: &[IpNetwork], v4: bool) -> Vec<(u128, u128)> {
    nets.iter()
        .filter(|n| n.is_ipv4() == v4)
        .map(|n| range_of(*n))
        .collect()
}

fn as_number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Calico's `GetUtilization` and `ShowBlockUtilization`: per pool (and with `--show-blocks`
/// per block) the addresses in use, reserved by an IPReservation, and free.
async fn show_utilization(client: &Client, show_blocks: bool) -> Result<String, String> {
    let pools = list::<IPPool>(client, ResourceKind::IPPool)
        .await
        .map_err(|e| e.to_string())?;
    let reservations: Vec<IpNetwork> = list::<IPReservation>(client, ResourceKind::IPReservation)
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .flat_map(|r| r.spec.reserved_cidrs.iter().flatten())
        .filter_map(|c| api::net::parse_cidr_or_ip(c.trim()))
        .collect();
    let mut groups: Vec<PoolUsage> = pools
        .iter()
        .filter_map(|p| api::net::parse_cidr(&p.spec.cidr))
        .map(|c| PoolUsage {
            pool: Some(datastore::key::masked(c)),
            blocks: Vec::new(),
            blocks_ranges: Vec::new(),
        })
        .collect();
    // Calico's catch-all for blocks whose pool is gone is 0.0.0.0/0, so only IPv4 blocks
    // land there.
    groups.push(PoolUsage {
        pool: None,
        blocks: Vec::new(),
        blocks_ranges: Vec::new(),
    });
    let ipam = Ipam::new(client.backend().clone());
    let blocks = ipam.list_blocks().await.map_err(|e| e.to_string())?;
    for b in &blocks {
        let net = b.cidr().network();
        let Some(group) = groups.iter_mut().find(|g| match g.pool {
            Some(p) => {
                p.is_ipv4() == net.is_ipv4()
                    && (p.contains(net.network()) || net.contains(p.network()))
            }
            None => net.is_ipv4(),
        }) else {
            continue;
        };
        let reserved_ranges = ranges(&reservations, net.is_ipv4());
        let is_reserved = |ip: IpAddr| {
            let n = as_number(ip);
            reserved_ranges.iter().any(|(lo, hi)| *lo <= n && n <= *hi)
        };
        let free = b
            .unallocated()
            .iter()
            .filter(|o| b.ip_of(**o).is_ok_and(|ip| !is_reserved(ip)))
            .count();
        let reserved = (0..b.size())
            .filter(|o| b.ip_of(*o).is_ok_and(is_reserved))
            .count();
        let capacity = b.size();
        group.blocks.push(Usage {
            cidr: net.to_string(),
            capacity: capacity as i64,
            in_use: (capacity - b.num_free()) as i64,
            reserved: reserved as i64,
            free: free as i64,
        });
        group.blocks_ranges.push(range_of(net));
    }
    let mut rows = Vec::new();
    for g in &groups {
        if let Some(pool) = g.pool {
            // Capacity and reserved cover the whole pool, blocks or not; free adds the
            // unreserved space no block covers yet.
            let range = range_of(pool);
            let size = (range.1 - range.0).saturating_add(1);
            let reserved_ranges = ranges(&reservations, pool.is_ipv4());
            let mut taken = reserved_ranges.clone();
            taken.extend(g.blocks_ranges.iter().copied());
            let outside = size.saturating_sub(covered(range, &taken));
            let u = Usage {
                cidr: pool.to_string(),
                capacity: clamp(size),
                in_use: g.blocks.iter().map(|b| b.in_use).sum(),
                reserved: clamp(covered(range, &reserved_ranges)),
                free: g
                    .blocks
                    .iter()
                    .map(|b| b.free)
                    .sum::<i64>()
                    .saturating_add(clamp(outside)),
            };
            rows.push(usage_row("IP Pool", &u));
        }
        if show_blocks {
            rows.extend(g.blocks.iter().map(|b| usage_row("Block", b)));
        }
    }
    Ok(table::boxed(
        &[
            "GROUPING",
            "CIDR",
            "IPS TOTAL",
            "IPS IN USE",
            "IPS RESERVED",
            "IPS FREE",
        ],
        &rows,
        &[false, false, true, true, true, true],
    ))
}

/// `--show-borrowed`: addresses assigned to a node other than the block's (Calico's
/// `ShowBorrowedDetails`). Allocations that name no node cannot be classified and are counted.
async fn show_borrowed(client: &Client) -> Result<String, String> {
    let ipam = Ipam::new(client.backend().clone());
    let blocks = ipam.list_blocks().await.map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut unclassified = 0;
    for b in &blocks {
        let owner = match b.affinity() {
            None => "",
            Some(a) => match a.split(':').collect::<Vec<_>>().as_slice() {
                [_, node] => node,
                [first, ..] => first,
                [] => "",
            },
        };
        for (ord, idx) in b.allocations().iter().enumerate() {
            let Some(idx) = idx else { continue };
            let Some(attr) = b.attributes().get(*idx) else {
                continue;
            };
            let Some(node) = attr.secondary.get("node") else {
                unclassified += 1;
                continue;
            };
            if node == owner {
                continue;
            }
            let Ok(ip) = b.ip_of(ord) else { continue };
            let ns = attr.secondary.get("namespace").cloned().unwrap_or_default();
            let (kind, to) = if let Some(vmi) = attr.secondary.get("vmi-name") {
                ("vmi".to_string(), format!("{ns}/{vmi}"))
            } else if let Some(pod) = attr.secondary.get("pod") {
                ("pod".to_string(), format!("{ns}/{pod}"))
            } else if let Some(t) = attr.secondary.get("type") {
                (t.clone(), String::new())
            } else {
                (String::new(), String::new())
            };
            rows.push(vec![
                ip.to_string(),
                node.clone(),
                b.cidr().to_string(),
                owner.to_string(),
                kind,
                to,
            ]);
        }
    }
    let mut out = table::boxed(
        &[
            "IP",
            "BORROWING-NODE",
            "BLOCK",
            "BLOCK OWNER",
            "TYPE",
            "ALLOCATED-TO",
        ],
        &rows,
        &[],
    );
    if unclassified != 0 {
        out.push_str(&format!(
            "\nNote: found {unclassified} IP allocations without an explicit node association. \
             Unable to determine if they are borrowed.\n"
        ));
    }
    Ok(out)
}

/// `--show-configuration`: the settings in effect, one row per field as Calico lists its
/// `IPAMConfig` struct.
async fn show_configuration(client: &Client) -> Result<String, String> {
    let ipam = Ipam::new(client.backend().clone());
    let c = ipam.get_config().await.map_err(|e| format!("error: {e}"))?;
    let rows = vec![
        vec!["StrictAffinity".into(), c.strict_affinity.to_string()],
        vec![
            "AutoAllocateBlocks".into(),
            c.auto_allocate_blocks.to_string(),
        ],
        vec!["MaxBlocksPerHost".into(), c.max_blocks_per_host.to_string()],
    ];
    Ok(table::boxed(&["PROPERTY", "VALUE"], &rows, &[]))
}

// ---- check ----

#[derive(Clone, Debug, Default)]
pub struct CheckArgs {
    pub show_all_ips: bool,
    pub show_problem_ips: bool,
    /// `-o`: where to write the report.
    pub output: Option<String>,
}

/// Go's `json.MarshalIndent`: two-space indent, and `<`, `>`, `&`, U+2028, U+2029 escaped.
fn go_json(report: &CheckReport) -> Result<String, String> {
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    Ok(text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029"))
}

async fn inventory(client: &Client) -> Result<Inventory, String> {
    let blocks = block_entries(client)
        .await
        .map_err(|e| format!("failed to list IPAM blocks: {e}"))?;
    let pools = list::<IPPool>(client, ResourceKind::IPPool)
        .await
        .map_err(|e| format!("failed to load IP pools: {e}"))?;
    let nodes = list::<Node>(client, ResourceKind::Node)
        .await
        .map_err(|e| format!("failed to list nodes: {e}"))?;
    let workload_endpoints = list::<WorkloadEndpoint>(client, ResourceKind::WorkloadEndpoint)
        .await
        .map_err(|e| format!("failed to list workload endpoints: {e}"))?;
    let handles = client
        .backend()
        .list(&ListKey::Handles)
        .await
        .map_err(|e| format!("failed to list handles: {e}"))?
        .items
        .into_iter()
        .filter_map(|kv| match &kv.key {
            Key::Handle(id) => Some(HandleEntry {
                id: id.clone(),
                revision: kv.revision.to_string(),
                handle: serde_json::from_slice::<Handle>(&kv.value).ok(),
            }),
            _ => None,
        })
        .collect();
    let affinities = client
        .backend()
        .list(&ListKey::BlockAffinities { host: None })
        .await
        .map_err(|e| format!("failed to list block affinities: {e}"))?
        .items
        .into_iter()
        .filter_map(|kv| match kv.key {
            Key::BlockAffinity { host, cidr } => {
                ipam::block::BlockCidr::new(cidr).ok().map(|c| (host, c))
            }
            _ => None,
        })
        .collect();
    Ok(Inventory {
        blocks,
        handles,
        affinities,
        workload_endpoints,
        nodes,
        pools,
        now: chrono::Utc::now(),
    })
}

/// `ipam check`: Calico's report of IPAM against what the cluster uses.
pub async fn check(session: &mut Session, args: &CheckArgs) -> Outcome {
    let client = match connect(session).await {
        Ok(c) => c,
        Err(o) => return o,
    };
    let show_all = args.show_all_ips;
    let show_problems = args.show_all_ips || args.show_problem_ips;
    let mut p = Printer::new();
    p.line("Checking IPAM for inconsistencies...");
    p.line("");
    let info = match cluster_information(&client).await {
        Ok(i) => i,
        Err(e) => return p.fail(e),
    };
    let inv = match inventory(&client).await {
        Ok(i) => i,
        Err(e) => return p.fail(e),
    };
    let c = check::check(&inv);

    p.line("Loading all IPAM blocks...");
    p.line(format!("Found {} IPAM blocks.", inv.blocks.len()));
    for b in &c.blocks {
        p.line(format!(
            " IPAM block {} affinity={}:",
            b.cidr,
            b.affinity.as_deref().unwrap_or("<none>")
        ));
        if show_all {
            for (ip, attrs) in &b.allocations {
                p.line(format!("  {ip} allocated; attrs {attrs}"));
            }
        }
    }
    p.line(format!(
        "IPAM blocks record {} allocations.",
        c.num_allocations
    ));
    p.line("");

    p.line("Loading all IPAM pools...");
    for cidr in &c.active_pools {
        p.line(format!("  {cidr}"));
    }
    p.line(format!("Found {} active IP pools.", c.active_pools.len()));
    p.line("");

    let (node_records, wep_records): (Vec<_>, Vec<_>) = c
        .in_use_records
        .iter()
        .filter(|(_, owner)| owner != "Reserved for Windows")
        .partition(|(_, owner)| owner.starts_with("Node("));
    p.line("Loading all nodes.");
    if show_all {
        for (ip, owner) in &node_records {
            p.line(format!("  {ip} belongs to {owner}"));
        }
    }
    p.line(format!("Found {} node tunnel IPs.", c.num_node_ips));
    p.line("");

    // There are no Kubernetes Services to read here, so no load balancer addresses either.
    p.line("Loading all service load balancer IPs.");
    p.line("No configuration for LoadBalancer kubecontroller found, skipping service check");
    p.line("");

    p.line("Loading all workload endpoints.");
    if show_all {
        for (ip, owner) in &wep_records {
            p.line(format!("  {ip} belongs to {owner}"));
        }
    }
    p.line(format!("Found {} workload IPs.", c.num_workload_ips));
    p.line(format!(
        "Workloads and nodes are using {} IPs.",
        c.num_in_use
    ));
    p.line("");

    p.line("Loading all handles");
    const TOP_NODES: usize = 20;
    p.line(format!(
        "Looking for top (up to {TOP_NODES}) nodes by allocations..."
    ));
    for (node, n) in c.allocations_by_node.iter().take(TOP_NODES) {
        p.line(format!("  {node} has {n} allocations"));
    }
    if let Some((_, most)) = c.allocations_by_node.first() {
        let median = c.allocations_by_node[c.allocations_by_node.len() / 2].1;
        p.line(format!(
            "Node with most allocations has {most}; median is {median}"
        ));
    }
    p.line("");

    p.line("Scanning for IPs that are allocated but not actually in use...");
    if show_problems {
        for ip in &c.leaked {
            for a in c.allocations.get(ip).into_iter().flatten() {
                p.line(format!("  {ip} leaked; attrs {}", a.attrs));
            }
        }
    }
    p.line(format!(
        "Found {} IPs that are allocated in IPAM but not actually in use.",
        c.leaked.len()
    ));

    p.line("Scanning for IPs that are in use by a workload or node but not allocated in IPAM...");
    if show_problems {
        for ip in &c.multiple_owners {
            p.line(format!("  {ip} has multiple owners."));
        }
        for u in &c.not_in_pool {
            for owner in &u.owners {
                p.line(format!(
                    "  {} in use by {owner} is not in any active IP pool.",
                    u.ip
                ));
            }
        }
        for u in &c.not_allocated {
            for owner in &u.owners {
                p.line(format!(
                    "  {} in use by {owner} and in active IPAM pool but has no IPAM allocation.",
                    u.ip
                ));
            }
        }
    }
    p.line(format!(
        "Found {} in-use IPs that are not in active IP pools.",
        c.not_in_pool.len()
    ));
    p.line(format!(
        "Found {} in-use IPs that are in active IP pools but have no corresponding IPAM allocation.",
        c.not_allocated.len()
    ));
    p.line("");

    p.line("Scanning for IPAM handles with no matching IPs...");
    if show_all {
        for h in &c.leaked_handles {
            p.line(format!("  {} doesn't have any active IPs.", h.id));
        }
    }
    p.line(format!(
        "Found {} handles with no matching IPs (and {} handles with matches).",
        c.leaked_handles.len(),
        c.good_handles
    ));

    p.line("Scanning for IPs with missing handle...");
    if show_problems {
        for h in &c.missing_handles {
            p.line(format!("  {h} is in use in a block but doesn't exist."));
        }
    }
    p.line(format!(
        "Found {} handles mentioned in blocks with no matching handle resource.",
        c.missing_handles.len()
    ));

    p.line("Validating IPAMBlock structures...");
    for (key, why) in &c.invalid_blocks {
        p.line(format!("  IPAMBlock {key} is invalid: {why}"));
    }
    p.line(format!(
        "Found {} invalid IPAMBlocks.",
        c.invalid_blocks.len()
    ));

    // Not in Calico's check: handle counts against the blocks, and blocks of removed nodes.
    p.line("Scanning for IPAM handles whose counts disagree with their blocks...");
    if show_problems {
        for m in &c.handle_mismatches {
            p.line(format!(
                "  {} records {} addresses in block {}, which holds {}.",
                m.handle, m.recorded, m.block, m.actual
            ));
        }
    }
    let mismatched: BTreeSet<&str> = c
        .handle_mismatches
        .iter()
        .map(|m| m.handle.as_str())
        .collect();
    p.line(format!(
        "Found {} handles whose counts disagree with their blocks.",
        mismatched.len()
    ));
    p.line("Scanning for IPAM blocks affine to nodes that no longer exist...");
    if show_problems {
        for o in &c.orphaned_blocks {
            p.line(format!(
                "  {} is affine to node {}, which does not exist.",
                o.cidr, o.node
            ));
        }
    }
    p.line(format!(
        "Found {} IPAM blocks affine to nodes that no longer exist.",
        c.orphaned_blocks.len()
    ));

    p.line(format!("Check complete; found {} problems.", c.problems()));

    if let Some(path) = args.output.as_deref().filter(|s| !s.is_empty()) {
        let report = c.report(ReportMeta {
            version: VERSION.to_string(),
            cluster_guid: info.spec.cluster_guid.clone().unwrap_or_default(),
            datastore_locked: info.spec.datastore_ready == Some(false),
            cluster_info_revision: info.metadata.resource_version.clone().unwrap_or_default(),
            cluster_type: info.spec.cluster_type.clone().unwrap_or_default(),
        });
        let written = go_json(&report)
            .and_then(|text| std::fs::write(path, text).map_err(|e| format!("{path}: {e}")));
        if let Err(e) = written {
            return p.fail(format!("failed to write the report: {e}"));
        }
    }
    p.ok()
}

// ---- release ----

#[derive(Clone, Debug, Default)]
pub struct ReleaseArgs {
    pub ip: Option<String>,
    pub from_report: Vec<String>,
    pub force: bool,
}

pub async fn release(session: &mut Session, args: &ReleaseArgs) -> Outcome {
    if !args.from_report.is_empty() {
        let client = match connect(session).await {
            Ok(c) => c,
            Err(o) => return o,
        };
        let mut p = Printer::new();
        if let Err(e) = release_from_reports(&client, &mut p, args).await {
            return p.fail(e);
        }
        p.line("You may now unlock the data store.");
        return p.ok();
    }
    let Some(ip) = args.ip.as_deref().filter(|s| !s.is_empty()) else {
        return Outcome::ok(String::new());
    };
    let ip = match parse_ip(ip) {
        Ok(ip) => ip,
        Err(o) => return o,
    };
    let client = match connect(session).await {
        Ok(c) => c,
        Err(o) => return o,
    };
    let ipam = Ipam::new(client.backend().clone());
    match ipam.release_ips(&[ReleaseOptions::ip(ip)]).await {
        Err(e) => Outcome::fail(String::new(), format!("error: {e}")),
        Ok(r) if !r.not_allocated.is_empty() => {
            Outcome::fail(String::new(), format!("IP address {ip} is not assigned"))
        }
        Ok(_) => Outcome::ok(format!("Successfully released IP address {ip}\n")),
    }
}

/// Only what every report calls leaked (and, for handles, at the same revision): Calico's
/// `mergeReports`.
fn merge_reports(
    reports: &[CheckReport],
) -> (
    BTreeMap<String, ReleaseOptions>,
    BTreeMap<String, check::HandleInfo>,
) {
    let mut ips: Option<BTreeMap<String, ReleaseOptions>> = None;
    let mut handles: Option<BTreeMap<String, check::HandleInfo>> = None;
    for r in reports {
        let mut merged = BTreeMap::new();
        for a in r.allocations.values().flatten() {
            if a.in_use || a.cooling_down {
                continue;
            }
            if ips.as_ref().is_some_and(|prev| !prev.contains_key(&a.ip)) {
                continue;
            }
            let Ok(address) = a.ip.parse::<IpAddr>() else {
                continue;
            };
            // The sequence number alone says whether the allocation is still the one the
            // report saw (any re-allocation changes it), and a mismatch is reported as Calico
            // reports it; our allocator would call a re-allocation under another handle "not
            // allocated" before looking at the sequence number. Without a sequence number the
            // handle is the check.
            let handle_id = match a.sequence_number {
                Some(_) => None,
                None => Some(a.handle.clone()).filter(|h| !h.is_empty()),
            };
            merged.insert(
                a.ip.clone(),
                ReleaseOptions {
                    address,
                    handle_id,
                    sequence_number: a.sequence_number,
                },
            );
        }
        ips = Some(merged);
        let mut merged = BTreeMap::new();
        for h in &r.leaked_handles {
            let keep = match &handles {
                None => true,
                Some(prev) => prev
                    .get(&h.id)
                    .is_some_and(|old| old.revision == h.revision),
            };
            if keep {
                merged.insert(h.id.clone(), h.clone());
            }
        }
        handles = Some(merged);
    }
    (ips.unwrap_or_default(), handles.unwrap_or_default())
}

async fn release_from_reports(
    client: &Client,
    p: &mut Printer,
    args: &ReleaseArgs,
) -> Result<(), String> {
    let info = cluster_information(client)
        .await
        .map_err(|e| e.to_string())?;
    let current = info.metadata.resource_version.clone().unwrap_or_default();
    let guid = info.spec.cluster_guid.clone().unwrap_or_default();
    let mut found_current = false;
    let mut reports = Vec::new();
    for file in &args.from_report {
        let text = std::fs::read(file).map_err(|e| format!("open {file}: {e}"))?;
        let r: CheckReport = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
        if r.cluster_guid != guid {
            return Err(format!(
                "cluster does not match the provided report ({file}): mismatched cluster GUID. \
                 Refusing to release"
            ));
        }
        if r.version != VERSION {
            if !args.force {
                return Err(format!(
                    "the provided report ({file}) was produced using a different version ({}) \
                     of calicoctl. Refusing to release",
                    r.version
                ));
            }
            p.line(
                "WARNING: Report was produced using a different version of calicoctl. \
                 Ignoring due to --force option",
            );
        }
        if r.cluster_info_revision == current {
            found_current = true;
        }
        reports.push(r);
    }
    if !found_current {
        return Err(
            "the provided reports are all stale - at least one should be up-to-date. \
                    Please generate a new report while the data store is locked and try again"
                .into(),
        );
    }
    if info.spec.datastore_ready != Some(false) {
        if !args.force {
            return Err(
                "data store is not locked. Either lock the data store, or re-run with --force"
                    .into(),
            );
        }
        p.line("WARNING: Data store is not locked. Ignoring due to --force option");
    }
    let (ips, handles) = merge_reports(&reports);
    let ipam = Ipam::new(client.backend().clone());
    if ips.is_empty() {
        p.line("Report didn't contain any leaked IPs to clean up.");
    } else {
        let opts: Vec<ReleaseOptions> = ips.into_values().collect();
        p.line(format!("Releasing {} old IPs...", opts.len()));
        let failure = |e: &dyn std::fmt::Display| {
            format!(
                "An error occurred while releasing some IPs: {e}.  Problems are often caused by \
                 an out-of-date IPAM report.  Try regenerating the IPAM report and retry."
            )
        };
        match ipam.release_ips(&opts).await {
            Err(e) => p.line(failure(&e)),
            Ok(r) => {
                // Calico refuses the release of a block with a re-used address as a whole; we
                // release the others and name the first re-used one the same way.
                if let Some(m) = r.mismatched.first() {
                    p.line(failure(&format!("update conflict: {}", m.ip)));
                }
                if r.mismatched.is_empty() || !r.released.is_empty() {
                    p.line(format!("Released {} IPs successfully", r.released.len()));
                }
                if !r.not_allocated.is_empty() {
                    p.line(format!(
                        "{} addresses marked as leaked in the report had already been cleaned up.",
                        r.not_allocated.len()
                    ));
                }
            }
        }
    }
    if handles.is_empty() {
        p.line("Report didn't contain any handles to clean up.");
    } else {
        p.line(format!("Deleting {} handles...", handles.len()));
        p.line("Key: '.' = Deleted OK; 'x' = skip, handle missing/changed.");
        let (mut released, mut skipped, mut errors) = (0, 0, 0);
        for h in handles.values() {
            // Only the handle as the report saw it: a changed revision means it is in use again.
            let result = match h.revision.parse::<Revision>() {
                Ok(rev) => client
                    .backend()
                    .delete(&Key::Handle(h.id.clone()), Some(rev))
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    released += 1;
                    p.out.push('.');
                }
                Err(
                    StoreError::NotFound(_)
                    | StoreError::Conflict(_)
                    | StoreError::InvalidRevision(_),
                ) => {
                    skipped += 1;
                    p.out.push('x');
                }
                Err(e) => {
                    errors += 1;
                    p.out
                        .push_str(&format!("\nDeleting handle {} failed: {e}.\n", h.id));
                }
            }
        }
        p.line("");
        p.line(format!(
            "Released {released} handles; {skipped} skipped; {errors} errors."
        ));
    }
    Ok(())
}

// ---- configure ----

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `ipam configure --strictaffinity=true|false --max-blocks-per-host=N`: change the given
/// settings, keep the others.
pub async fn configure(
    session: &mut Session,
    strict_affinity: Option<&str>,
    max_blocks: Option<&str>,
) -> Outcome {
    let strict = match strict_affinity.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match parse_go_bool(s) {
            Some(b) => Some(b),
            None => {
                return Outcome::fail(
                    String::new(),
                    "invalid value. Use true or false to set strictaffinity",
                );
            }
        },
    };
    // A negative limit means nothing to Calico's allocator either; it is refused here.
    let max = match max_blocks.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                return Outcome::fail(
                    String::new(),
                    "invalid value for maxblockhost. Use a valid number",
                );
            }
        },
    };
    if strict.is_none() && max.is_none() {
        return Outcome::fail(
            String::new(),
            "at least one configuration option must be specified",
        );
    }
    let client = match connect(session).await {
        Ok(c) => c,
        Err(o) => return o,
    };
    let ipam = Ipam::new(client.backend().clone());
    let mut config: IpamConfig = match ipam.get_config().await {
        Ok(c) => c,
        Err(e) => return Outcome::fail(String::new(), format!("error: {e}")),
    };
    if let Some(s) = strict {
        config.strict_affinity = s;
    }
    if let Some(m) = max {
        config.max_blocks_per_host = m;
    }
    if let Err(e) = ipam.set_config(&config).await {
        return Outcome::fail(String::new(), format!("error: {e}"));
    }
    let mut out = String::new();
    if let Some(s) = strict {
        out.push_str(&format!("Successfully set StrictAffinity to: {s}\n"));
    }
    if let Some(m) = max {
        out.push_str(&format!("Successfully set MaxBlocksPerHost to: {m}\n"));
    }
    Outcome::ok(out)
}

// ---- split ----

/// Calico's `splitCIDR`: `parts` (a power of two, at least 2) equal consecutive CIDRs.
pub fn split_cidr(cidr: &str, parts: i64) -> Result<Vec<IpNetwork>, String> {
    if parts < 2 || parts.count_ones() != 1 {
        return Err(format!(
            "number to split CIDR into is not a valid power of 2: {parts}"
        ));
    }
    let power = parts.trailing_zeros();
    let net = api::net::parse_cidr(cidr)
        .ok_or_else(|| format!("error reading CIDR {cidr} before attempting to split it"))?;
    let net = datastore::key::masked(net);
    let bits: u32 = if net.is_ipv4() { 32 } else { 128 };
    let ones = u32::from(net.prefix());
    if ones + power > bits {
        return Err(format!(
            "the CIDR {cidr} is not large enough to be split into {parts} parts"
        ));
    }
    let new_prefix = ones + power;
    let step: u128 = 1u128 << (bits - new_prefix);
    let base = as_number(net.network());
    let mut out = Vec::new();
    for i in 0..parts as u128 {
        let n = base + i * step;
        let ip = match net {
            IpNetwork::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(
                u32::try_from(n).map_err(|e| e.to_string())?,
            )),
            IpNetwork::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(n)),
        };
        let prefix = u8::try_from(new_prefix).map_err(|e| e.to_string())?;
        out.push(IpNetwork::new(ip, prefix).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// `ipam split N --cidr=C | --name=P`: replace a pool by N pools of its CIDR, as Calico does:
/// only while the datastore is locked; the old pool is disabled, the new ones are created
/// (overlapping it, so without the overlap check), then the old one is deleted. Unlike Calico,
/// the split is worked out and the new pools validated before anything is written.
pub async fn split(
    session: &mut Session,
    number: &str,
    cidr: Option<&str>,
    name: Option<&str>,
) -> Outcome {
    let fail = |e: String| Outcome::fail(String::new(), e);
    let parts: i64 = match number.parse() {
        Ok(n) => n,
        Err(_) => {
            return fail(format!(
                "error reading number to split IP pools into. {number} is not a valid number: \
                 strconv.Atoi: parsing \"{number}\": invalid syntax"
            ));
        }
    };
    let cidr = cidr.unwrap_or("");
    let name = name.unwrap_or("");
    if cidr.is_empty() && name.is_empty() {
        return fail(
            "no name or CIDR provided. Provide a name or CIDR to denote the IP pool to split"
                .into(),
        );
    }
    let client = match connect(session).await {
        Ok(c) => c,
        Err(o) => return o,
    };
    match cluster_information(&client).await {
        Err(e) => {
            return fail(format!(
                "error while checking if datastore was locked: error retrieving \
                 ClusterInformation: {e}"
            ));
        }
        Ok(info) if info.spec.datastore_ready != Some(false) => {
            return fail(
                "datastore is not locked. Run the `calicoctl datastore migrate lock` command in \
                 order split the IP pools"
                    .into(),
            );
        }
        Ok(_) => {}
    }
    let old = if !name.is_empty() {
        match client
            .get::<IPPool>(&ResourceKey::new(ResourceKind::IPPool, None, name))
            .await
        {
            Ok(p) => Some(p),
            Err(e) => return fail(format!("unable to find IP pool with name {name}: {e}")),
        }
    } else {
        match list::<IPPool>(&client, ResourceKind::IPPool).await {
            Ok(pools) => pools.into_iter().rfind(|p| p.spec.cidr == cidr),
            Err(_) => {
                return fail(format!(
                    "unable to list IP pools to find the pool specified by {cidr}"
                ));
            }
        }
    };
    let Some(mut old) = old else {
        return fail(format!(
            "unable to find IP pool {name} covering the specified CIDR {cidr}"
        ));
    };
    let old_name = old.metadata.name.clone();
    let cidrs = match split_cidr(&old.spec.cidr, parts) {
        Ok(c) => c,
        Err(e) => {
            return fail(format!(
                "error splitting the CIDR {} into {parts} CIDRs: {e}",
                old.spec.cidr
            ));
        }
    };
    let mut new_pools = Vec::new();
    for (i, c) in cidrs.iter().enumerate() {
        let mut pool = old.clone();
        let mut new_name = format!("split-{old_name}-{i}");
        if new_name.len() > 253 {
            let cut = (0..=245.min(old_name.len()))
                .rev()
                .find(|n| old_name.is_char_boundary(*n))
                .unwrap_or(0);
            new_name = format!("split-{}-{i}", &old_name[..cut]);
        }
        pool.metadata = api::ObjectMeta {
            name: new_name,
            labels: old.metadata.labels.clone(),
            annotations: old.metadata.annotations.clone(),
            uid: Some(uuid::Uuid::new_v4().to_string()),
            creation_timestamp: Some(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            ..Default::default()
        };
        pool.spec.cidr = c.to_string();
        pool.spec.disabled = None;
        pool.apply_defaults();
        if let Err(e) = pool.validate() {
            return fail(format!(
                "error using unsafe create to make split pool with cidr {c}: {e}"
            ));
        }
        new_pools.push(pool);
    }
    old.spec.disabled = Some(true);
    let old = match client.update(&old).await {
        Ok(p) => p,
        Err(_) => return fail(format!("error disabling IP pool {cidr}")),
    };
    for pool in &new_pools {
        let key = ResourceKey::new(ResourceKind::IPPool, None, &pool.metadata.name);
        let created = match datastore::codec::encode(pool) {
            Ok(bytes) => client
                .backend()
                .create(&Key::Resource(key), bytes, None)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = created {
            return fail(format!(
                "error using unsafe create to make split pool with cidr {}: {e}",
                pool.spec.cidr
            ));
        }
    }
    let old_key = ResourceKey::new(ResourceKind::IPPool, None, &old_name);
    let revision = old
        .metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse::<Revision>().ok());
    if let Err(e) = client.delete::<IPPool>(&old_key, revision).await {
        return fail(format!(
            "error removing the IP pool that was split {old_name}: {e}"
        ));
    }
    // Calico's messages, missing newlines included.
    let mut out = format!("IP Pool {old_name} was successfully split into {parts} smaller pools.");
    for pool in &new_pools {
        out.push_str(&format!(
            "Created {} with CIDR {}.\n",
            pool.metadata.name, pool.spec.cidr
        ));
    }
    out.push_str("Please refer to the documentation for final steps.");
    Outcome::ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_as_calico() {
        let got: Vec<String> = split_cidr("10.0.1.0/24", 4)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "10.0.1.0/26",
                "10.0.1.64/26",
                "10.0.1.128/26",
                "10.0.1.192/26"
            ]
        );
        assert_eq!(
            split_cidr("10.0.1.0/24", 3).unwrap_err(),
            "number to split CIDR into is not a valid power of 2: 3"
        );
        assert_eq!(
            split_cidr("10.0.1.0/24", 1).unwrap_err(),
            "number to split CIDR into is not a valid power of 2: 1"
        );
        assert_eq!(
            split_cidr("10.0.1.0/24", 512).unwrap_err(),
            "the CIDR 10.0.1.0/24 is not large enough to be split into 512 parts"
        );
        let v6: Vec<String> = split_cidr("fd00::/64", 2)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(v6, ["fd00::/65", "fd00::8000:0:0:0/65"]);
    }

    #[test]
    fn coverage_counts_a_union() {
        let r = |s: &str| range_of(s.parse().unwrap());
        let pool = r("10.0.0.0/24");
        assert_eq!(covered(pool, &[r("10.0.0.0/26"), r("10.0.0.10/32")]), 64);
        assert_eq!(covered(pool, &[r("10.0.0.0/26"), r("10.0.0.64/26")]), 128);
        assert_eq!(covered(pool, &[r("10.0.0.0/16")]), 256);
        assert_eq!(covered(r("::/0"), &[r("::/0")]), u128::MAX);
    }
}
