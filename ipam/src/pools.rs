//! Which pools a request may draw from, which blocks a pool is made of, and which addresses are
//! reserved: pure functions of the `IPPool`s and `IPReservation`s read from the datastore.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::ippool::{AllowedUse, AssignmentMode, IPPool};
use api::ipreservation::IPReservation;
use ipnetwork::IpNetwork;

use crate::block::BlockCidr;
use crate::error::IpamError;

/// An `IPPool` with its CIDR and block size parsed.
#[derive(Clone, Debug)]
pub struct Pool {
    pub name: String,
    /// The pool's network, host bits cleared.
    pub cidr: IpNetwork,
    pub block_size: u8,
    pub resource: IPPool,
}

impl Pool {
    /// `None` for a pool whose CIDR does not parse (validation keeps such pools out of the
    /// store; one written by hand is ignored rather than failing every request).
    pub fn new(resource: IPPool) -> Option<Pool> {
        let cidr = datastore::key::masked(resource.spec.cidr()?);
        let block_size = resource.spec.effective_block_size()?;
        if block_size < cidr.prefix() || block_size > max_prefix(cidr) {
            return None;
        }
        // A block size Calico would refuse (more than 12 host bits) in a pool written by
        // another tool: ignore the pool rather than fail on it later.
        BlockCidr::new(IpNetwork::new(cidr.network(), block_size).ok()?).ok()?;
        Some(Pool {
            name: resource.metadata.name.clone(),
            cidr,
            block_size,
            resource,
        })
    }

    pub fn version(&self) -> u8 {
        version_of(self.cidr)
    }

    pub fn is_disabled(&self) -> bool {
        self.resource.spec.is_disabled()
    }

    pub fn allows(&self, usage: AllowedUse) -> bool {
        self.resource.spec.effective_allowed_uses().contains(&usage)
    }

    /// `assignmentMode: Manual` pools hand out addresses only when a request names them.
    pub fn is_automatic(&self) -> bool {
        self.resource.spec.assignment_mode != Some(AssignmentMode::Manual)
    }

    /// Whether the pool's `nodeSelector` selects a node with these labels (no selector: every
    /// node).
    pub fn selects_node(&self, labels: &BTreeMap<String, String>) -> bool {
        selects(self.resource.spec.node_selector.as_deref(), labels)
    }

    /// Whether the pool's `namespaceSelector` selects the namespace; a request without a
    /// namespace (a tunnel address) is matched against no labels, as Calico does.
    pub fn selects_namespace(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let none = BTreeMap::new();
        selects(
            self.resource.spec.namespace_selector.as_deref(),
            labels.unwrap_or(&none),
        )
    }

    /// The block of this pool that holds `ip` (which must be in the pool).
    pub fn block_for(&self, ip: IpAddr) -> BlockCidr {
        let net = IpNetwork::new(ip, self.block_size).expect("block size checked in Pool::new");
        BlockCidr::new(datastore::key::masked(net)).expect("block size checked in Pool::new")
    }

    /// Every block of the pool once, starting at an offset seeded by `host`, so that nodes
    /// spread over the pool instead of all racing for its first block (Calico's
    /// `randomBlockGenerator`; our seed is FNV-1a of the host name).
    pub fn blocks_from(&self, host: &str) -> impl Iterator<Item = BlockCidr> + '_ {
        let bits = self.block_size - self.cidr.prefix();
        // At most 2^(128-0) blocks in theory; a pool of more than 2^63 blocks is walked from
        // its seeded start as far as anyone will ever need.
        let count: u128 = if bits >= 127 {
            u128::MAX
        } else {
            1u128 << bits
        };
        let start = u128::from(fnv1a(host.as_bytes())) % count;
        let base = ip_to_u128(self.cidr.network());
        let block_bits = u32::from(max_prefix(self.cidr) - self.block_size);
        let version = self.version();
        let size = self.block_size;
        (0..count).map(move |i| {
            let index = (start + i) % count;
            let addr = u128_to_ip(base + (index << block_bits), version);
            BlockCidr::new(IpNetwork::new(addr, size).expect("valid block prefix"))
                .expect("valid block size")
        })
    }
}

fn selects(selector: Option<&str>, labels: &BTreeMap<String, String>) -> bool {
    match selector.map(str::trim) {
        None | Some("") => true,
        // Validation refuses unparsable selectors on write; one that slipped in selects nothing.
        Some(s) => api::selector::parse(s).is_ok_and(|sel| sel.evaluate(labels)),
    }
}

fn max_prefix(net: IpNetwork) -> u8 {
    if net.is_ipv4() { 32 } else { 128 }
}

pub fn version_of(net: IpNetwork) -> u8 {
    if net.is_ipv4() { 4 } else { 6 }
}

pub fn ip_version(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 4 } else { 6 }
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn u128_to_ip(n: u128, version: u8) -> IpAddr {
    if version == 4 {
        IpAddr::V4(std::net::Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(n))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What one request asks of the pools.
#[derive(Clone, Debug)]
pub struct PoolRequest<'a> {
    pub version: u8,
    /// Pools named by the request, by name or CIDR; empty: any automatic pool.
    pub requested: &'a [String],
    pub node_labels: &'a BTreeMap<String, String>,
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    pub usage: AllowedUse,
    pub host: &'a str,
}

/// The pools a request may use, in Calico's order of decisions: requested pools must exist and
/// be enabled and are used whatever their selectors (Calico keeps this for compatibility);
/// otherwise enabled `Automatic` pools whose node and namespace selectors match; then only
/// those allowing the intended use.
pub fn select_pools<'p>(
    pools: &'p [Pool],
    req: &PoolRequest<'_>,
) -> Result<Vec<&'p Pool>, IpamError> {
    let enabled: Vec<&Pool> = pools.iter().filter(|p| !p.is_disabled()).collect();
    let candidates: Vec<&Pool> = if req.requested.is_empty() {
        enabled
            .iter()
            .copied()
            .filter(|p| p.version() == req.version)
            .filter(|p| p.is_automatic())
            .filter(|p| p.selects_node(req.node_labels))
            .filter(|p| p.selects_namespace(req.namespace_labels))
            .collect()
    } else {
        let mut chosen = Vec::new();
        for want in req.requested {
            let pool =
                find_pool(&enabled, want).ok_or_else(|| IpamError::PoolNotFound(want.clone()))?;
            if pool.version() != req.version {
                return Err(IpamError::PoolWrongFamily {
                    want: req.version,
                    got: pool.version(),
                });
            }
            if !chosen.iter().any(|c: &&Pool| c.name == pool.name) {
                chosen.push(pool);
            }
        }
        chosen
    };
    if candidates.is_empty() {
        return Err(IpamError::NoPoolsForNode(req.host.to_string()));
    }
    let allowed: Vec<&Pool> = candidates
        .into_iter()
        .filter(|p| p.allows(req.usage))
        .collect();
    if allowed.is_empty() {
        return Err(IpamError::NoQualifiedPool(format!("{:?}", req.usage)));
    }
    Ok(allowed)
}

/// A pool named by name, or by its CIDR (in any spelling that masks to the same network).
fn find_pool<'p>(pools: &[&'p Pool], want: &str) -> Option<&'p Pool> {
    if let Some(p) = pools.iter().find(|p| p.name == want) {
        return Some(p);
    }
    let net = api::net::parse_cidr(want).map(datastore::key::masked)?;
    pools.iter().copied().find(|p| p.cidr == net)
}

/// The pool holding `ip`, among all pools (enabled or not).
pub fn pool_for_ip(pools: &[Pool], ip: IpAddr) -> Option<&Pool> {
    pools.iter().find(|p| p.cidr.contains(ip))
}

/// Addresses no request may be handed (`IPReservation.spec.reservedCIDRs`).
#[derive(Clone, Debug, Default)]
pub struct Reservations(Vec<IpNetwork>);

impl Reservations {
    pub fn new(reservations: &[IPReservation]) -> Self {
        Reservations(
            reservations
                .iter()
                .flat_map(|r| r.spec.networks())
                .map(datastore::key::masked)
                .collect(),
        )
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// Whether every address of `block` is reserved (then the block is not worth claiming).
    pub fn covers(&self, block: BlockCidr) -> bool {
        let b = block.network();
        self.0.iter().any(|n| api::net::within(n, &b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, yaml: &str) -> Pool {
        let mut value: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
        value["apiVersion"] = "projectcalico.org/v3".into();
        value["kind"] = "IPPool".into();
        value["metadata"] = serde_json::json!({ "name": name });
        Pool::new(serde_json::from_value(value).unwrap()).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req<'a>(
        requested: &'a [String],
        node: &'a BTreeMap<String, String>,
        usage: AllowedUse,
    ) -> PoolRequest<'a> {
        PoolRequest {
            version: 4,
            requested,
            node_labels: node,
            namespace_labels: None,
            usage,
            host: "n1",
        }
    }

    #[test]
    fn blocks_cover_the_pool_once_from_a_host_seeded_start() {
        let p = pool("p", "spec: {cidr: 10.0.0.0/24, blockSize: 26}");
        let a: Vec<String> = p.blocks_from("node-a").map(|b| b.to_string()).collect();
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "10.0.0.0/26",
                "10.0.0.128/26",
                "10.0.0.192/26",
                "10.0.0.64/26"
            ]
        );
        // Same host, same order; the walk wraps around the pool.
        let again: Vec<String> = p.blocks_from("node-a").map(|b| b.to_string()).collect();
        assert_eq!(a, again);
        let starts: std::collections::BTreeSet<String> = (0..20)
            .map(|i| {
                p.blocks_from(&format!("node-{i}"))
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(
            starts.len() > 1,
            "every host starts at the same block: {starts:?}"
        );
    }

    #[test]
    fn v6_blocks_are_122s() {
        let p = pool("p6", "spec: {cidr: 'fd00:1::/120'}");
        assert_eq!(p.block_size, 122);
        let mut b: Vec<String> = p.blocks_from("x").map(|b| b.to_string()).collect();
        b.sort();
        assert_eq!(
            b,
            [
                "fd00:1::/122",
                "fd00:1::40/122",
                "fd00:1::80/122",
                "fd00:1::c0/122"
            ]
        );
        assert_eq!(
            p.block_for("fd00:1::85".parse().unwrap()).to_string(),
            "fd00:1::80/122"
        );
    }

    #[test]
    fn selection_follows_calico() {
        let pools = vec![
            pool("a", "spec: {cidr: 10.1.0.0/16, nodeSelector: rack == 'r1'}"),
            pool("b", "spec: {cidr: 10.2.0.0/16, disabled: true}"),
            pool("c", "spec: {cidr: 10.3.0.0/16, assignmentMode: Manual}"),
            pool("d", "spec: {cidr: 10.4.0.0/16, allowedUses: [Tunnel]}"),
            pool("e", "spec: {cidr: 'fd00::/64'}"),
        ];
        let r1 = labels(&[("rack", "r1")]);
        let r2 = labels(&[("rack", "r2")]);
        let names = |v: Vec<&Pool>| v.iter().map(|p| p.name.clone()).collect::<Vec<_>>();

        let none: Vec<String> = vec![];
        assert_eq!(
            names(select_pools(&pools, &req(&none, &r1, AllowedUse::Workload)).unwrap()),
            ["a"]
        );
        assert_eq!(
            names(select_pools(&pools, &req(&none, &r1, AllowedUse::Tunnel)).unwrap()),
            ["a", "d"]
        );
        // r2: only d selects it, and d is for tunnels.
        let e = select_pools(&pools, &req(&none, &r2, AllowedUse::Workload)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot find a qualified ippool, no pools match the required use (Workload)"
        );
        // Asked for by name or CIDR: manual pools and selectors no longer matter.
        let asked = vec!["c".to_string(), "10.1.0.0/16".to_string()];
        assert_eq!(
            names(select_pools(&pools, &req(&asked, &r2, AllowedUse::Workload)).unwrap()),
            ["c", "a"]
        );
        let disabled = vec!["b".to_string()];
        assert_eq!(
            select_pools(&pools, &req(&disabled, &r1, AllowedUse::Workload))
                .unwrap_err()
                .to_string(),
            "the given pool (b) does not exist, or is not enabled"
        );
        let v6 = vec!["e".to_string()];
        assert!(matches!(
            select_pools(&pools, &req(&v6, &r1, AllowedUse::Workload)),
            Err(IpamError::PoolWrongFamily { want: 4, got: 6 })
        ));
        let only_disabled = vec![pools[1].clone()];
        assert_eq!(
            select_pools(&only_disabled, &req(&none, &r1, AllowedUse::Workload))
                .unwrap_err()
                .to_string(),
            "no configured Calico pools for node n1"
        );
    }

    #[test]
    fn a_pool_with_a_block_size_calico_refuses_is_ignored() {
        let value = serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
            "metadata": {"name": "wide"},
            "spec": {"cidr": "10.0.0.0/8", "blockSize": 16}
        });
        assert!(Pool::new(serde_json::from_value(value).unwrap()).is_none());
    }

    #[test]
    fn reservations() {
        let r: IPReservation = serde_json::from_value(serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "IPReservation",
            "metadata": {"name": "r"},
            "spec": {"reservedCIDRs": ["10.0.0.5", "10.0.1.0/25"]}
        }))
        .unwrap();
        let r = Reservations::new(&[r]);
        assert!(r.contains("10.0.0.5".parse().unwrap()));
        assert!(!r.contains("10.0.0.6".parse().unwrap()));
        assert!(r.covers("10.0.1.64/26".parse().unwrap()));
        assert!(!r.covers("10.0.1.128/26".parse().unwrap()));
        assert!(!r.covers("10.0.0.0/26".parse().unwrap()));
    }
}
