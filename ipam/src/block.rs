//! Calico's allocation block: a small CIDR whose addresses are handed out by ordinal.
//!
//! The stored JSON is Calico's `model.AllocationBlock`
//! (`/calico/ipam/v2/assignment/ipv4/block/10.65.79.0-26`): `allocations` has one entry per
//! ordinal, the index of its entry in `attributes` or null when free; `unallocated` lists the
//! free ordinals in the order they are handed out (new ordinals are appended, so a released
//! address is reused last); `sequenceNumber` counts block writes and
//! `sequenceNumberForAllocation` records, per allocated ordinal, the block's sequence number when
//! it was allocated, so a release based on stale information can be refused.
//!
//! Everything here is a pure function of the block: the caller reads the block, calls one
//! operation and writes the block back with compare-and-swap.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Calico reserves addresses of blocks used by Windows nodes under this handle; such
/// allocations do not keep a block from being empty.
pub const WINDOWS_RESERVED_HANDLE: &str = "windows-reserved-ipam-handle";

/// Calico's `blockSize` is 20-32 for IPv4 and 116-128 for IPv6: at most 12 host bits.
const MAX_HOST_BITS: u8 = 12;

/// Prefix of an affinity naming a node (`host:<node>`).
const HOST_AFFINITY_PREFIX: &str = "host:";

/// Errors from block operations and from decoding a stored block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("{ip} is not in block {cidr}")]
    NotInBlock { ip: IpAddr, cidr: BlockCidr },
    #[error("ordinal {ordinal} is not in block {cidr}, which has {size} addresses")]
    NoSuchOrdinal {
        ordinal: usize,
        cidr: BlockCidr,
        size: usize,
    },
    #[error("{ip} is already allocated in block {cidr}")]
    AlreadyAllocated { ip: IpAddr, cidr: BlockCidr },
    #[error("{cidr} is not a valid block CIDR: {reason}")]
    InvalidCidr { cidr: String, reason: String },
    #[error("stored block {cidr} is inconsistent: {reason}")]
    Inconsistent { cidr: BlockCidr, reason: String },
}

/// The CIDR of a block: a network address (no host bits set) with at most 4096 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockCidr(IpNetwork);

impl BlockCidr {
    pub fn new(net: IpNetwork) -> Result<Self, BlockError> {
        let invalid = |reason: String| BlockError::InvalidCidr {
            cidr: net.to_string(),
            reason,
        };
        if net.network() != net.ip() {
            return Err(invalid(format!(
                "host bits are set (the block would be {}/{})",
                net.network(),
                net.prefix()
            )));
        }
        let host_bits = max_prefix(&net) - net.prefix();
        if host_bits > MAX_HOST_BITS {
            return Err(invalid(format!(
                "a block has at most {} addresses (IPv4 /{} or IPv6 /{} and longer)",
                1usize << MAX_HOST_BITS,
                32 - MAX_HOST_BITS,
                128 - MAX_HOST_BITS
            )));
        }
        Ok(Self(net))
    }

    pub fn network(&self) -> IpNetwork {
        self.0
    }

    /// Number of addresses in the block.
    pub fn size(&self) -> usize {
        1usize << (max_prefix(&self.0) - self.0.prefix())
    }

    /// How far into the block `ip` lies, or `None` if it is outside.
    pub fn ordinal_of(&self, ip: IpAddr) -> Option<usize> {
        let ord = match (self.0.network(), ip) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                u128::from(u32::from(ip)).checked_sub(u128::from(u32::from(base)))
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => u128::from(ip).checked_sub(u128::from(base)),
            _ => None,
        }?;
        usize::try_from(ord).ok().filter(|o| *o < self.size())
    }

    /// The address at `ordinal` (0 is the network address), or `None` past the end.
    pub fn ip_of(&self, ordinal: usize) -> Option<IpAddr> {
        if ordinal >= self.size() {
            return None;
        }
        Some(match self.0.network() {
            IpAddr::V4(base) => IpAddr::V4(Ipv4Addr::from(u32::from(base) + ordinal as u32)),
            IpAddr::V6(base) => IpAddr::V6(Ipv6Addr::from(u128::from(base) + ordinal as u128)),
        })
    }
}

fn max_prefix(net: &IpNetwork) -> u8 {
    match net {
        IpNetwork::V4(_) => 32,
        IpNetwork::V6(_) => 128,
    }
}

impl fmt::Display for BlockCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.ip(), self.0.prefix())
    }
}

impl FromStr for BlockCidr {
    type Err = BlockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let net = IpNetwork::from_str(s).map_err(|e| BlockError::InvalidCidr {
            cidr: s.to_string(),
            reason: e.to_string(),
        })?;
        Self::new(net)
    }
}

impl Serialize for BlockCidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlockCidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Metadata shared by the allocations that point at it (Calico's `AllocationAttribute`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationAttribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_id: Option<String>,
    /// Attributes of the owner (`pod`, `namespace`, `node`, `type`, ...).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub secondary: BTreeMap<String, String>,
    /// Written by newer Calico during live migration; kept so a rewrite does not lose it.
    #[serde(
        rename = "alternateOwnerAttrs",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub alternate_owner_attrs: BTreeMap<String, String>,
    /// Set by newer Calico on an allocation released into a cool-down period; such an
    /// allocation is not in use but is not free yet either.
    #[serde(
        rename = "releasedAt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub released_at: Option<String>,
}

impl AllocationAttribute {
    /// The handle, cleaned of the `\r...` tail that a host-local migration once wrote
    /// (projectcalico/cni-plugin#821), as Calico compares handles.
    fn handle(&self) -> Option<&str> {
        self.handle_id.as_deref().map(sanitize_handle)
    }
}

fn sanitize_handle(handle: &str) -> &str {
    handle.split('\r').next().unwrap_or(handle)
}

/// Go writes an empty slice or map as `null`; read that as empty.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The block as stored, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredBlock {
    cidr: BlockCidr,
    #[serde(default)]
    affinity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    affinity_claim_time: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    allocations: Vec<Option<usize>>,
    #[serde(default, deserialize_with = "null_as_default")]
    unallocated: Vec<usize>,
    #[serde(default, deserialize_with = "null_as_default")]
    attributes: Vec<AllocationAttribute>,
    #[serde(rename = "sequenceNumber", default)]
    sequence_number: u64,
    /// Keyed by the ordinal as a string, as Calico stores it.
    #[serde(
        rename = "sequenceNumberForAllocation",
        default,
        deserialize_with = "null_as_default"
    )]
    sequence_number_for_allocation: BTreeMap<usize, u64>,
    #[serde(default)]
    deleted: bool,
    #[serde(
        rename = "hostAffinity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    host_affinity: Option<String>,
}

/// Calico's allocation block. Decoding checks that `allocations` and `unallocated` partition
/// the ordinals and that every allocation names an attribute, so no operation can hand out
/// an address twice or index out of range.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "StoredBlock")]
pub struct AllocationBlock(StoredBlock);

impl Serialize for AllocationBlock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl TryFrom<StoredBlock> for AllocationBlock {
    type Error = BlockError;

    fn try_from(b: StoredBlock) -> Result<Self, Self::Error> {
        let inconsistent = |reason: String| BlockError::Inconsistent {
            cidr: b.cidr,
            reason,
        };
        let size = b.cidr.size();
        if b.allocations.len() != size {
            return Err(inconsistent(format!(
                "{} allocations for {size} addresses",
                b.allocations.len()
            )));
        }
        if let Some((ord, idx)) = b
            .allocations
            .iter()
            .enumerate()
            .find_map(|(o, a)| a.filter(|i| *i >= b.attributes.len()).map(|i| (o, i)))
        {
            return Err(inconsistent(format!(
                "ordinal {ord} refers to attribute {idx}, but there are {}",
                b.attributes.len()
            )));
        }
        let mut seen = BTreeSet::new();
        for &ord in &b.unallocated {
            match b.allocations.get(ord) {
                None => {
                    return Err(inconsistent(format!(
                        "unallocated ordinal {ord} is too big"
                    )));
                }
                Some(Some(_)) => {
                    return Err(inconsistent(format!(
                        "ordinal {ord} is both allocated and unallocated"
                    )));
                }
                Some(None) if !seen.insert(ord) => {
                    return Err(inconsistent(format!("ordinal {ord} is unallocated twice")));
                }
                Some(None) => {}
            }
        }
        let free = b.allocations.iter().filter(|a| a.is_none()).count();
        if free != seen.len() {
            return Err(inconsistent(format!(
                "{} ordinals are neither allocated nor unallocated",
                free - seen.len()
            )));
        }
        Ok(Self(b))
    }
}

/// What [`AllocationBlock::release`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseOutcome {
    /// Addresses freed, in ordinal order (the order they were appended to `unallocated`).
    pub released: Vec<IpAddr>,
    /// Addresses released per handle, for the caller to decrement the handles. Allocations
    /// without a handle are counted in `released` only.
    pub released_by_handle: BTreeMap<String, usize>,
    /// Addresses that were not allocated (or were cooling down); nothing was done.
    pub not_allocated: Vec<IpAddr>,
    /// Addresses whose allocation has a different sequence number than the caller expected:
    /// they were released and re-allocated since the caller looked, so they are kept.
    pub mismatched: Vec<SequenceMismatch>,
}

/// A release refused because the allocation is not the one the caller meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceMismatch {
    pub ip: IpAddr,
    pub expected: u64,
    pub actual: u64,
}

impl AllocationBlock {
    /// A block with every ordinal free, handed out in order 0, 1, ...; sequence number 0.
    /// `affinity` is stored as is, normally `host:<node>`.
    pub fn new(cidr: BlockCidr, affinity: Option<&str>) -> Self {
        let size = cidr.size();
        Self(StoredBlock {
            cidr,
            affinity: affinity.map(str::to_string),
            affinity_claim_time: None,
            allocations: vec![None; size],
            unallocated: (0..size).collect(),
            attributes: Vec::new(),
            sequence_number: 0,
            sequence_number_for_allocation: BTreeMap::new(),
            deleted: false,
            host_affinity: None,
        })
    }

    /// Starts the sequence at `seq`. Calico seeds a new block with the clock in nanoseconds, so
    /// that a block deleted and re-created does not give an address its old sequence number.
    pub fn with_sequence_number(mut self, seq: u64) -> Self {
        self.0.sequence_number = seq;
        self
    }

    pub fn cidr(&self) -> BlockCidr {
        self.0.cidr
    }

    pub fn size(&self) -> usize {
        self.0.allocations.len()
    }

    /// The stored affinity, e.g. `host:node-1`.
    pub fn affinity(&self) -> Option<&str> {
        self.0.affinity.as_deref()
    }

    /// The node of a `host:<node>` affinity.
    pub fn host(&self) -> Option<&str> {
        self.affinity()?.strip_prefix(HOST_AFFINITY_PREFIX)
    }

    /// When the affinity was claimed (RFC 3339, as Kubernetes writes times), if recorded.
    pub fn affinity_claim_time(&self) -> Option<&str> {
        self.0.affinity_claim_time.as_deref()
    }

    pub fn set_affinity_claim_time(&mut self, time: Option<String>) {
        self.0.affinity_claim_time = time;
    }

    /// Calico marks a block deleted before deleting it, so a concurrent writer conflicts.
    /// Drop the block's affinity (and claim time): its addresses stay, nobody owns it.
    pub fn clear_affinity(&mut self) {
        self.0.affinity = None;
        self.0.affinity_claim_time = None;
    }

    pub fn is_deleted(&self) -> bool {
        self.0.deleted
    }

    pub fn mark_deleted(&mut self) {
        self.0.deleted = true;
    }

    /// The block's write counter: each operation that changes the block adds one, as Calico
    /// does on every block update (so the datastore layer must not add another).
    pub fn sequence_number(&self) -> u64 {
        self.0.sequence_number
    }

    /// Free ordinals, in the order they will be handed out.
    pub fn unallocated(&self) -> &[usize] {
        &self.0.unallocated
    }

    /// Per ordinal, the index into [`Self::attributes`] of an allocation, or `None` if free.
    pub fn allocations(&self) -> &[Option<usize>] {
        &self.0.allocations
    }

    pub fn attributes(&self) -> &[AllocationAttribute] {
        &self.0.attributes
    }

    /// The attribute of the allocation of `ip`, if allocated.
    pub fn attribute_of(&self, ip: IpAddr) -> Option<&AllocationAttribute> {
        let idx = self.0.allocations[self.0.cidr.ordinal_of(ip)?]?;
        self.0.attributes.get(idx)
    }

    pub fn ordinal_of(&self, ip: IpAddr) -> Result<usize, BlockError> {
        self.0.cidr.ordinal_of(ip).ok_or(BlockError::NotInBlock {
            ip,
            cidr: self.0.cidr,
        })
    }

    pub fn ip_of(&self, ordinal: usize) -> Result<IpAddr, BlockError> {
        self.0.cidr.ip_of(ordinal).ok_or(BlockError::NoSuchOrdinal {
            ordinal,
            cidr: self.0.cidr,
            size: self.size(),
        })
    }

    /// Number of allocated ordinals (including any cooling down).
    pub fn in_use(&self) -> usize {
        self.0.allocations.iter().flatten().count()
    }

    /// Number of free ordinals, reserved addresses included.
    pub fn num_free(&self) -> usize {
        self.0.unallocated.len()
    }

    /// True when nothing is allocated but Calico's Windows reservations: the block can be
    /// released.
    pub fn is_empty(&self) -> bool {
        self.0.allocations.iter().flatten().all(|&idx| {
            self.0.attributes[idx]
                .handle_id
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(WINDOWS_RESERVED_HANDLE))
        })
    }

    /// The sequence number `ip` was allocated at, or `None` if it is not allocated here. An
    /// allocation from before Calico recorded sequence numbers reads as 0, as in Calico.
    pub fn sequence_number_of(&self, ip: IpAddr) -> Option<u64> {
        let ord = self.0.cidr.ordinal_of(ip)?;
        self.0.allocations[ord]?;
        Some(self.recorded_sequence(ord))
    }

    fn recorded_sequence(&self, ord: usize) -> u64 {
        self.0
            .sequence_number_for_allocation
            .get(&ord)
            .copied()
            .unwrap_or(0)
    }

    /// Allocates up to `num` addresses from the head of `unallocated`, in order. Ordinals whose
    /// address is `reserved` (IPReservations) are skipped and stay where they are. Returns
    /// fewer than `num` addresses when the block runs out.
    pub fn auto_assign(
        &mut self,
        num: usize,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
        reserved: impl Fn(IpAddr) -> bool,
    ) -> Vec<IpAddr> {
        let mut ips = Vec::new();
        let mut attr_idx = None;
        let free = std::mem::take(&mut self.0.unallocated);
        let mut kept = Vec::with_capacity(free.len());
        for ord in free {
            let ip = self.ip_at(ord);
            if ips.len() >= num || reserved(ip) {
                kept.push(ord);
                continue;
            }
            let idx = *attr_idx.get_or_insert_with(|| self.find_or_add_attribute(handle, attrs));
            self.take_ordinal(ord, idx);
            ips.push(ip);
        }
        self.0.unallocated = kept;
        if !ips.is_empty() {
            self.0.sequence_number += 1;
        }
        ips
    }

    /// Allocates the specific address `ip`, whether or not it is reserved (the caller decides).
    pub fn assign(
        &mut self,
        ip: IpAddr,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> Result<(), BlockError> {
        let ord = self.ordinal_of(ip)?;
        if self.0.allocations[ord].is_some() {
            return Err(BlockError::AlreadyAllocated {
                ip,
                cidr: self.0.cidr,
            });
        }
        let idx = self.find_or_add_attribute(handle, attrs);
        self.take_ordinal(ord, idx);
        self.0.unallocated.retain(|&o| o != ord);
        self.0.sequence_number += 1;
        Ok(())
    }

    /// Releases addresses, each with the sequence number the caller saw it allocated at, if
    /// known. Fails, changing nothing, if any address is outside the block. An address listed
    /// twice counts once (the last expectation wins). Freed ordinals go to the tail of
    /// `unallocated` in ordinal order.
    pub fn release(&mut self, ips: &[(IpAddr, Option<u64>)]) -> Result<ReleaseOutcome, BlockError> {
        let mut requests = BTreeMap::new();
        for &(ip, expected) in ips {
            requests.insert(self.ordinal_of(ip)?, (ip, expected));
        }
        let mut out = ReleaseOutcome::default();
        for (ord, (ip, expected)) in requests {
            let attr = match self.0.allocations[ord] {
                Some(idx) if self.0.attributes[idx].released_at.is_none() => {
                    &self.0.attributes[idx]
                }
                _ => {
                    out.not_allocated.push(ip);
                    continue;
                }
            };
            let actual = self.recorded_sequence(ord);
            if let Some(expected) = expected.filter(|e| *e != actual) {
                out.mismatched.push(SequenceMismatch {
                    ip,
                    expected,
                    actual,
                });
                continue;
            }
            if let Some(h) = attr.handle().filter(|h| !h.is_empty()) {
                *out.released_by_handle.entry(h.to_string()).or_default() += 1;
            }
            self.free_ordinal(ord);
            out.released.push(ip);
        }
        if !out.released.is_empty() {
            self.remove_unused_attributes();
            self.0.sequence_number += 1;
        }
        Ok(out)
    }

    /// Releases every address allocated to `handle`; returns how many.
    pub fn release_by_handle(&mut self, handle: &str) -> usize {
        let ords = self.ordinals_by_handle(handle);
        for &ord in &ords {
            self.free_ordinal(ord);
        }
        if !ords.is_empty() {
            self.remove_unused_attributes();
            self.0.sequence_number += 1;
        }
        ords.len()
    }

    /// Addresses allocated to `handle`, in ordinal order.
    pub fn ips_by_handle(&self, handle: &str) -> Vec<IpAddr> {
        self.ordinals_by_handle(handle)
            .into_iter()
            .map(|o| self.ip_at(o))
            .collect()
    }

    pub fn count_by_handle(&self, handle: &str) -> usize {
        self.ordinals_by_handle(handle).len()
    }

    fn ordinals_by_handle(&self, handle: &str) -> Vec<usize> {
        self.0
            .allocations
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_some_and(|i| self.0.attributes[i].handle() == Some(handle)))
            .map(|(o, _)| o)
            .collect()
    }

    /// Ordinals are in range by construction (new, or checked on decode).
    fn ip_at(&self, ord: usize) -> IpAddr {
        self.0.cidr.ip_of(ord).expect("ordinal within the block")
    }

    /// Records an allocation at the current sequence number; the block's write (this
    /// operation's increment) comes after, as in Calico.
    fn take_ordinal(&mut self, ord: usize, attr_idx: usize) {
        self.0.allocations[ord] = Some(attr_idx);
        self.0
            .sequence_number_for_allocation
            .insert(ord, self.0.sequence_number);
    }

    fn free_ordinal(&mut self, ord: usize) {
        self.0.allocations[ord] = None;
        self.0.unallocated.push(ord);
        self.0.sequence_number_for_allocation.remove(&ord);
    }

    /// Identical handle and attributes share one entry.
    fn find_or_add_attribute(
        &mut self,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> usize {
        let wanted = AllocationAttribute {
            handle_id: handle.map(str::to_string),
            secondary: attrs.clone(),
            ..Default::default()
        };
        if let Some(idx) = self.0.attributes.iter().position(|a| *a == wanted) {
            return idx;
        }
        self.0.attributes.push(wanted);
        self.0.attributes.len() - 1
    }

    /// Drops attributes no allocation refers to and renumbers the rest, keeping their order.
    fn remove_unused_attributes(&mut self) {
        let mut used = vec![false; self.0.attributes.len()];
        for &idx in self.0.allocations.iter().flatten() {
            used[idx] = true;
        }
        if used.iter().all(|u| *u) {
            return;
        }
        let mut renumber = vec![None; used.len()];
        let kept = (0..used.len()).filter(|&old| used[old]);
        for (new, old) in kept.enumerate() {
            renumber[old] = Some(new);
        }
        let mut old = 0;
        self.0.attributes.retain(|_| {
            old += 1;
            used[old - 1]
        });
        for a in self.0.allocations.iter_mut().flatten() {
            *a = renumber[*a].expect("a used attribute is kept");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn block(cidr: &str) -> AllocationBlock {
        AllocationBlock::new(cidr.parse().unwrap(), Some("host:node-1"))
    }

    fn pod(name: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("namespace".to_string(), "default".to_string()),
            ("node".to_string(), "node-1".to_string()),
            ("pod".to_string(), name.to_string()),
        ])
    }

    fn none(_: IpAddr) -> bool {
        false
    }

    /// A /30 as Calico writes it, after one auto-assign on a block created at sequence 2.
    fn calico_json() -> serde_json::Value {
        json!({
            "cidr": "10.0.0.0/30",
            "affinity": "host:node-1",
            "affinity_claim_time": "2024-05-01T10:00:00Z",
            "allocations": [0, null, null, null],
            "unallocated": [1, 2, 3],
            "attributes": [{
                "handle_id": "k8s-pod-network.abc",
                "secondary": {"namespace": "default", "node": "node-1", "pod": "web-0"}
            }],
            "sequenceNumber": 3,
            "sequenceNumberForAllocation": {"0": 2},
            "deleted": false
        })
    }

    #[test]
    fn calico_json_round_trips() {
        let stored = calico_json();
        let b: AllocationBlock = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(b.cidr().to_string(), "10.0.0.0/30");
        assert_eq!(b.host(), Some("node-1"));
        assert_eq!(b.affinity_claim_time(), Some("2024-05-01T10:00:00Z"));
        assert_eq!(b.in_use(), 1);
        assert_eq!(b.sequence_number_of(ip("10.0.0.0")), Some(2));
        assert_eq!(b.ips_by_handle("k8s-pod-network.abc"), vec![ip("10.0.0.0")]);
        assert_eq!(serde_json::to_value(&b).unwrap(), stored);
    }

    #[test]
    fn our_operations_write_calico_json() {
        let mut b = block("10.0.0.0/30").with_sequence_number(2);
        b.set_affinity_claim_time(Some("2024-05-01T10:00:00Z".to_string()));
        let ips = b.auto_assign(1, Some("k8s-pod-network.abc"), &pod("web-0"), none);
        assert_eq!(ips, vec![ip("10.0.0.0")]);
        assert_eq!(serde_json::to_value(&b).unwrap(), calico_json());
    }

    #[test]
    fn reads_go_nulls_old_fields_and_ignores_unknown_ones() {
        let b: AllocationBlock = serde_json::from_value(json!({
            "cidr": "fd00::/126",
            "affinity": null,
            "hostAffinity": "node-2",
            "allocations": [null, null, null, null],
            "unallocated": [3, 2, 1, 0],
            "attributes": null,
            "sequenceNumberForAllocation": null,
            "somethingNewer": {"x": 1}
        }))
        .unwrap();
        assert_eq!(b.host(), None);
        assert_eq!(b.sequence_number(), 0);
        assert!(!b.is_deleted());
        assert_eq!(b.unallocated(), &[3, 2, 1, 0]);
        let out = serde_json::to_value(&b).unwrap();
        assert_eq!(out["hostAffinity"], "node-2");
        assert_eq!(out["affinity"], serde_json::Value::Null);
        assert!(out.get("somethingNewer").is_none());
    }

    #[test]
    fn keeps_newer_calico_attribute_fields() {
        let mut v = calico_json();
        v["attributes"][0]["alternateOwnerAttrs"] = json!({"pod": "web-0-target"});
        v["attributes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"releasedAt": "2024-05-01T11:00:00Z"}));
        v["allocations"] = json!([0, 1, null, null]);
        v["unallocated"] = json!([2, 3]);
        let mut b: AllocationBlock = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&b).unwrap(), v);
        // Cooling down: neither free nor releasable again.
        let out = b.release(&[(ip("10.0.0.1"), None)]).unwrap();
        assert_eq!(out.not_allocated, vec![ip("10.0.0.1")]);
        assert!(!b.unallocated().contains(&1));
    }

    #[test]
    fn rejects_inconsistent_blocks() {
        let cases = [
            (
                json!([0, null, null]),
                json!([1, 2]),
                "3 allocations for 4 addresses",
            ),
            (
                json!([1, null, null, null]),
                json!([1, 2, 3]),
                "refers to attribute 1",
            ),
            (
                json!([0, null, null, null]),
                json!([0, 1, 2, 3]),
                "both allocated",
            ),
            (
                json!([0, null, null, null]),
                json!([1, 1, 2, 3]),
                "unallocated twice",
            ),
            (
                json!([0, null, null, null]),
                json!([1, 2]),
                "1 ordinals are neither",
            ),
            (
                json!([0, null, null, null]),
                json!([1, 2, 7]),
                "7 is too big",
            ),
        ];
        for (allocations, unallocated, msg) in cases {
            let mut v = calico_json();
            v["allocations"] = allocations;
            v["unallocated"] = unallocated;
            let err = serde_json::from_value::<AllocationBlock>(v).unwrap_err();
            assert!(err.to_string().contains(msg), "{err} lacks {msg:?}");
            assert!(err.to_string().contains("block 10.0.0.0/30"), "{err}");
        }
    }

    #[test]
    fn block_cidr_checks() {
        assert_eq!("10.0.0.0/26".parse::<BlockCidr>().unwrap().size(), 64);
        assert_eq!("fd00:1::/122".parse::<BlockCidr>().unwrap().size(), 64);
        assert_eq!("10.0.0.7/32".parse::<BlockCidr>().unwrap().size(), 1);
        let err = "10.0.0.5/26".parse::<BlockCidr>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "10.0.0.5/26 is not a valid block CIDR: host bits are set (the block would be \
             10.0.0.0/26)"
        );
        assert!("10.0.0.0/16".parse::<BlockCidr>().is_err());
        assert!("fd00::/64".parse::<BlockCidr>().is_err());
        assert!("10.0.0.0/33".parse::<BlockCidr>().is_err());
    }

    #[test]
    fn new_block_is_all_free_in_order() {
        let b = block("10.0.0.0/26");
        assert_eq!(b.size(), 64);
        assert_eq!(b.unallocated(), (0..64).collect::<Vec<_>>());
        assert_eq!(b.num_free(), 64);
        assert_eq!(b.in_use(), 0);
        assert!(b.is_empty());
        assert_eq!(b.sequence_number(), 0);
        assert_eq!(b.affinity(), Some("host:node-1"));
        assert_eq!(
            AllocationBlock::new("10.0.0.0/26".parse().unwrap(), None).host(),
            None
        );
    }

    #[test]
    fn ordinals_and_addresses_v4_and_v6() {
        let b4 = block("10.0.0.64/26");
        assert_eq!(b4.ordinal_of(ip("10.0.0.64")), Ok(0));
        assert_eq!(b4.ordinal_of(ip("10.0.0.127")), Ok(63));
        assert_eq!(b4.ip_of(5), Ok(ip("10.0.0.69")));
        assert_eq!(
            b4.ordinal_of(ip("10.0.1.5")).unwrap_err().to_string(),
            "10.0.1.5 is not in block 10.0.0.64/26"
        );
        assert!(b4.ordinal_of(ip("10.0.0.63")).is_err());
        assert!(b4.ordinal_of(ip("::a00:40")).is_err());
        assert_eq!(
            b4.ip_of(64).unwrap_err().to_string(),
            "ordinal 64 is not in block 10.0.0.64/26, which has 64 addresses"
        );

        let b6 = block("fd00:1::40/122");
        assert_eq!(b6.ordinal_of(ip("fd00:1::7f")), Ok(63));
        assert_eq!(b6.ip_of(1), Ok(ip("fd00:1::41")));
        assert!(b6.ordinal_of(ip("fd00:1::80")).is_err());
        assert!(b6.ordinal_of(ip("10.0.0.64")).is_err());
    }

    #[test]
    fn auto_assign_pops_the_head_and_records_sequence_numbers() {
        let mut b = block("fd00:1::/122");
        let ips = b.auto_assign(3, Some("h1"), &pod("a"), none);
        assert_eq!(ips, vec![ip("fd00:1::"), ip("fd00:1::1"), ip("fd00:1::2")]);
        assert_eq!(b.sequence_number(), 1);
        assert!(ips.iter().all(|&i| b.sequence_number_of(i) == Some(0)));
        assert_eq!(b.unallocated()[0], 3);
        assert_eq!(b.num_free(), 61);

        let more = b.auto_assign(1, Some("h1"), &pod("a"), none);
        assert_eq!(more, vec![ip("fd00:1::3")]);
        assert_eq!(b.sequence_number_of(more[0]), Some(1));
        assert_eq!(
            b.attributes().len(),
            1,
            "same handle and attributes share an entry"
        );
        b.auto_assign(1, Some("h1"), &pod("b"), none);
        b.auto_assign(1, None, &BTreeMap::new(), none);
        assert_eq!(b.attributes().len(), 3);
        assert_eq!(b.attributes()[2], AllocationAttribute::default());
        assert_eq!(b.count_by_handle("h1"), 5);
        assert_eq!(b.in_use(), 6);
    }

    #[test]
    fn auto_assign_skips_reserved_addresses_and_keeps_them_in_place() {
        let mut b = block("10.0.0.0/28");
        let reserved = |a: IpAddr| a == ip("10.0.0.0") || a == ip("10.0.0.2");
        let ips = b.auto_assign(2, Some("h"), &BTreeMap::new(), reserved);
        assert_eq!(ips, vec![ip("10.0.0.1"), ip("10.0.0.3")]);
        assert_eq!(&b.unallocated()[..3], &[0, 2, 4]);
        let all = b.auto_assign(100, Some("h"), &BTreeMap::new(), reserved);
        assert_eq!(all.len(), 12);
        assert_eq!(b.unallocated(), &[0, 2]);
        assert!(
            b.auto_assign(1, Some("h"), &BTreeMap::new(), reserved)
                .is_empty()
        );
        assert_eq!(
            b.sequence_number(),
            2,
            "a write that allocates nothing is not a write"
        );
    }

    #[test]
    fn auto_assign_of_an_exhausted_block_returns_what_there_is() {
        let mut b = block("10.0.0.0/30");
        assert_eq!(
            b.auto_assign(10, Some("h"), &BTreeMap::new(), none).len(),
            4
        );
        assert!(
            b.auto_assign(1, Some("h"), &BTreeMap::new(), none)
                .is_empty()
        );
        assert_eq!(b.num_free(), 0);
    }

    #[test]
    fn assign_a_specific_address() {
        let mut b = block("10.0.0.0/26");
        b.assign(ip("10.0.0.9"), Some("h"), &pod("a")).unwrap();
        assert!(!b.unallocated().contains(&9));
        assert_eq!(b.sequence_number_of(ip("10.0.0.9")), Some(0));
        assert_eq!(b.sequence_number(), 1);
        assert_eq!(b.attribute_of(ip("10.0.0.9")).unwrap().secondary, pod("a"));
        assert_eq!(
            b.assign(ip("10.0.0.9"), Some("other"), &pod("b"))
                .unwrap_err()
                .to_string(),
            "10.0.0.9 is already allocated in block 10.0.0.0/26"
        );
        assert_eq!(
            b.assign(ip("10.0.1.5"), Some("h"), &pod("a")),
            Err(BlockError::NotInBlock {
                ip: ip("10.0.1.5"),
                cidr: b.cidr()
            })
        );
        assert_eq!(b.sequence_number(), 1);
        assert_eq!(b.attributes().len(), 1);
        // Auto-assign skips the taken ordinal.
        let ips = b.auto_assign(10, Some("h"), &pod("a"), none);
        assert!(!ips.contains(&ip("10.0.0.9")));
    }

    #[test]
    fn release_frees_to_the_tail_and_counts_handles() {
        let mut b = block("10.0.0.0/29");
        let a = b.auto_assign(2, Some("h1"), &pod("a"), none);
        let c = b.auto_assign(1, Some("h2"), &pod("c"), none);
        let out = b
            .release(&[(c[0], Some(1)), (a[1], None), (a[1], None)])
            .unwrap();
        assert_eq!(out.released, vec![a[1], c[0]]);
        assert_eq!(
            out.released_by_handle,
            BTreeMap::from([("h1".to_string(), 1), ("h2".to_string(), 1)])
        );
        assert!(out.not_allocated.is_empty() && out.mismatched.is_empty());
        assert_eq!(b.unallocated(), &[3, 4, 5, 6, 7, 1, 2]);
        assert_eq!(b.sequence_number(), 3);
        assert_eq!(b.sequence_number_of(a[1]), None);
        assert_eq!(b.attributes().len(), 1, "h2's attribute is no longer used");
        assert_eq!(b.allocations()[0], Some(0));
        assert_eq!(b.count_by_handle("h1"), 1);
    }

    #[test]
    fn release_renumbers_the_remaining_attributes() {
        let mut b = block("10.0.0.0/29");
        b.auto_assign(1, Some("h1"), &pod("a"), none);
        b.auto_assign(1, Some("h2"), &pod("b"), none);
        b.auto_assign(1, Some("h3"), &pod("c"), none);
        b.release(&[(ip("10.0.0.1"), None)]).unwrap();
        assert_eq!(b.allocations()[..3], [Some(0), None, Some(1)]);
        assert_eq!(b.attributes()[1].handle_id.as_deref(), Some("h3"));
        assert_eq!(b.ips_by_handle("h3"), vec![ip("10.0.0.2")]);
    }

    #[test]
    fn release_of_an_unallocated_address_is_reported_not_an_error() {
        let mut b = block("10.0.0.0/29");
        b.auto_assign(1, Some("h"), &pod("a"), none);
        let before = b.clone();
        let out = b
            .release(&[(ip("10.0.0.5"), None), (ip("10.0.0.6"), Some(0))])
            .unwrap();
        assert_eq!(out.not_allocated, vec![ip("10.0.0.5"), ip("10.0.0.6")]);
        assert!(out.released.is_empty());
        assert_eq!(b, before, "nothing written");
    }

    #[test]
    fn release_with_a_stale_sequence_number_keeps_the_allocation() {
        let mut b = block("10.0.0.0/29");
        let first = b.auto_assign(1, Some("old"), &pod("a"), none)[0];
        let seen = b.sequence_number_of(first).unwrap();
        b.release(&[(first, Some(seen))]).unwrap();
        // Re-allocated to someone else since the stale caller looked.
        b.assign(first, Some("new"), &pod("b")).unwrap();
        let now = b.sequence_number_of(first).unwrap();
        assert_ne!(now, seen);
        let before = b.clone();
        let out = b.release(&[(first, Some(seen))]).unwrap();
        assert_eq!(
            out.mismatched,
            vec![SequenceMismatch {
                ip: first,
                expected: seen,
                actual: now
            }]
        );
        assert!(out.released.is_empty());
        assert_eq!(b, before);
        assert_eq!(b.ips_by_handle("new"), vec![first]);
    }

    #[test]
    fn release_outside_the_block_changes_nothing() {
        let mut b = block("10.0.0.0/29");
        let a = b.auto_assign(1, Some("h"), &pod("a"), none)[0];
        let before = b.clone();
        let err = b.release(&[(a, None), (ip("10.0.1.5"), None)]).unwrap_err();
        assert_eq!(err.to_string(), "10.0.1.5 is not in block 10.0.0.0/29");
        assert_eq!(b, before);
    }

    #[test]
    fn release_by_handle_frees_all_of_a_handle() {
        let mut b = block("10.0.0.0/29");
        b.auto_assign(2, Some("h1"), &pod("a"), none);
        b.auto_assign(1, Some("h2"), &pod("b"), none);
        b.assign(ip("10.0.0.6"), Some("h1"), &pod("other")).unwrap();
        assert_eq!(b.count_by_handle("h1"), 3);
        assert_eq!(
            b.ips_by_handle("h1"),
            vec![ip("10.0.0.0"), ip("10.0.0.1"), ip("10.0.0.6")]
        );
        assert_eq!(b.release_by_handle("h1"), 3);
        assert_eq!(b.count_by_handle("h1"), 0);
        assert_eq!(b.unallocated(), &[3, 4, 5, 7, 0, 1, 6]);
        assert_eq!(b.attributes().len(), 1);
        assert_eq!(b.allocations()[2], Some(0));
        let seq = b.sequence_number();
        assert_eq!(b.release_by_handle("h1"), 0);
        assert_eq!(b.sequence_number(), seq);
    }

    #[test]
    fn handles_are_matched_without_a_carriage_return_tail() {
        let mut b = block("10.0.0.0/30");
        b.auto_assign(
            1,
            Some("k8s-pod-network.abc\r\neth0"),
            &BTreeMap::new(),
            none,
        );
        assert_eq!(b.count_by_handle("k8s-pod-network.abc"), 1);
        let out = b.release(&[(ip("10.0.0.0"), None)]).unwrap();
        assert_eq!(out.released_by_handle["k8s-pod-network.abc"], 1);
    }

    #[test]
    fn windows_reservations_do_not_make_a_block_busy() {
        let mut b = block("10.0.0.0/30");
        b.assign(
            ip("10.0.0.0"),
            Some(WINDOWS_RESERVED_HANDLE),
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(b.is_empty());
        assert_eq!(b.in_use(), 1);
        b.auto_assign(1, Some("pod"), &BTreeMap::new(), none);
        assert!(!b.is_empty());
    }

    #[test]
    fn deleted_flag() {
        let mut b = block("10.0.0.0/30");
        b.mark_deleted();
        assert!(b.is_deleted());
        assert_eq!(serde_json::to_value(&b).unwrap()["deleted"], true);
    }
}

#[cfg(test)]
mod properties {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    const HANDLES: [&str; 3] = ["h0", "h1", "h2"];
    const SIZE: usize = 16;

    #[derive(Debug, Clone)]
    enum Seq {
        Unchecked,
        Current,
        Stale,
    }

    #[derive(Debug, Clone)]
    enum Op {
        AutoAssign(usize, Option<usize>),
        Assign(usize, Option<usize>),
        Release(Vec<(usize, Seq)>),
        ReleaseByHandle(usize),
    }

    fn handle() -> impl Strategy<Value = Option<usize>> {
        proptest::option::of(0..HANDLES.len())
    }

    fn op() -> impl Strategy<Value = Op> {
        let seq = prop_oneof![Just(Seq::Unchecked), Just(Seq::Current), Just(Seq::Stale)];
        prop_oneof![
            3 => (0..6usize, handle()).prop_map(|(n, h)| Op::AutoAssign(n, h)),
            1 => (0..SIZE, handle()).prop_map(|(o, h)| Op::Assign(o, h)),
            3 => prop::collection::vec((0..SIZE, seq), 0..5).prop_map(Op::Release),
            1 => (0..HANDLES.len()).prop_map(Op::ReleaseByHandle),
        ]
    }

    fn new_block(v6: bool) -> AllocationBlock {
        let cidr = if v6 { "fd00:5::10/124" } else { "10.1.2.16/28" };
        AllocationBlock::new(cidr.parse().unwrap(), Some("host:n"))
    }

    /// What the block must look like: the free queue in order and the owner of each allocation.
    struct Model {
        free: VecDeque<usize>,
        owner: BTreeMap<usize, Option<usize>>,
    }

    impl Model {
        fn free_ordinal(&mut self, ord: usize) {
            self.owner.remove(&ord);
            self.free.push_back(ord);
        }
    }

    fn check_invariants(b: &AllocationBlock, m: &Model) -> Result<(), TestCaseError> {
        prop_assert_eq!(b.unallocated(), m.free.iter().copied().collect::<Vec<_>>());
        let mut in_unallocated = [0; SIZE];
        for &o in b.unallocated() {
            in_unallocated[o] += 1;
        }
        for (o, alloc) in b.allocations().iter().enumerate() {
            let expected = usize::from(alloc.is_none());
            prop_assert_eq!(in_unallocated[o], expected, "ordinal {} not partitioned", o);
            prop_assert_eq!(alloc.is_some(), m.owner.contains_key(&o));
        }
        let mut counted = 0;
        for (h, name) in HANDLES.iter().enumerate() {
            let want = m.owner.values().filter(|o| **o == Some(h)).count();
            prop_assert_eq!(b.count_by_handle(name), want);
            prop_assert_eq!(b.ips_by_handle(name).len(), want);
            counted += want;
        }
        let unhandled = m.owner.values().filter(|o| o.is_none()).count();
        prop_assert_eq!(counted + unhandled + b.num_free(), SIZE);
        prop_assert_eq!(b.in_use(), m.owner.len());
        let used: BTreeSet<usize> = b.allocations().iter().flatten().copied().collect();
        prop_assert_eq!(used, (0..b.attributes().len()).collect::<BTreeSet<_>>());
        Ok(())
    }

    proptest! {
        /// Random operations against a model of the free queue and the owners: nothing is handed
        /// out twice, freed ordinals are reused first-in first-out, handle counts add up, and
        /// `allocations`/`unallocated` partition the ordinals throughout.
        #[test]
        fn block_matches_its_model(
            v6 in any::<bool>(),
            reserved in prop::collection::btree_set(0..SIZE, 0..3),
            ops in prop::collection::vec(op(), 1..40),
        ) {
            let mut b = new_block(v6);
            let mut m = Model { free: (0..SIZE).collect(), owner: BTreeMap::new() };
            let cidr = b.cidr();
            let is_reserved = |ip: IpAddr| reserved.contains(&cidr.ordinal_of(ip).unwrap());
            let attrs = BTreeMap::new();
            for op in ops {
                match op {
                    Op::AutoAssign(n, h) => {
                        let got = b.auto_assign(n, h.map(|h| HANDLES[h]), &attrs, is_reserved);
                        let want: Vec<usize> = m.free.iter().copied()
                            .filter(|o| !reserved.contains(o)).take(n).collect();
                        let got: Vec<usize> =
                            got.into_iter().map(|ip| cidr.ordinal_of(ip).unwrap()).collect();
                        prop_assert_eq!(&got, &want);
                        for o in got {
                            prop_assert!(m.owner.insert(o, h).is_none(), "{} handed out twice", o);
                        }
                        m.free.retain(|o| !want.contains(o));
                    }
                    Op::Assign(o, h) => {
                        let ip = b.ip_of(o).unwrap();
                        let res = b.assign(ip, h.map(|h| HANDLES[h]), &attrs);
                        if let std::collections::btree_map::Entry::Vacant(e) = m.owner.entry(o) {
                            prop_assert!(res.is_ok());
                            e.insert(h);
                            m.free.retain(|f| *f != o);
                        } else {
                            let is_already = matches!(res, Err(BlockError::AlreadyAllocated { .. }));
                            prop_assert!(is_already, "{} handed out twice", o);
                        }
                    }
                    Op::Release(reqs) => {
                        let mut want: BTreeMap<usize, Option<u64>> = BTreeMap::new();
                        let mut args = Vec::new();
                        for (o, seq) in reqs {
                            let ip = b.ip_of(o).unwrap();
                            let current = b.sequence_number_of(ip);
                            let expected = match seq {
                                Seq::Unchecked => None,
                                Seq::Current => Some(current.unwrap_or(0)),
                                Seq::Stale => Some(current.unwrap_or(0) + 1000),
                            };
                            want.insert(o, expected);
                            args.push((ip, expected));
                        }
                        let out = b.release(&args).unwrap();
                        let mut by_handle: BTreeMap<String, usize> = BTreeMap::new();
                        let (mut released, mut not_allocated, mut mismatched) =
                            (vec![], vec![], vec![]);
                        for (o, expected) in want {
                            match m.owner.get(&o) {
                                None => not_allocated.push(o),
                                Some(_) if matches!(expected, Some(e) if e >= 1000) => {
                                    mismatched.push(o)
                                }
                                Some(&h) => {
                                    if let Some(h) = h {
                                        *by_handle.entry(HANDLES[h].to_string()).or_default() += 1;
                                    }
                                    released.push(o);
                                    m.free_ordinal(o);
                                }
                            }
                        }
                        let ords = |ips: Vec<IpAddr>| -> Vec<usize> {
                            ips.into_iter().map(|ip| b.cidr().ordinal_of(ip).unwrap()).collect()
                        };
                        prop_assert_eq!(ords(out.released), released);
                        prop_assert_eq!(ords(out.not_allocated), not_allocated);
                        prop_assert_eq!(ords(out.mismatched.iter().map(|x| x.ip).collect()), mismatched);
                        prop_assert_eq!(out.released_by_handle, by_handle);
                    }
                    Op::ReleaseByHandle(h) => {
                        let mine: Vec<usize> = m.owner.iter()
                            .filter(|(_, o)| **o == Some(h)).map(|(k, _)| *k).collect();
                        prop_assert_eq!(b.release_by_handle(HANDLES[h]), mine.len());
                        for o in mine {
                            m.free_ordinal(o);
                        }
                    }
                }
                check_invariants(&b, &m)?;
                let round_trip: AllocationBlock =
                    serde_json::from_value(serde_json::to_value(&b).unwrap()).unwrap();
                prop_assert_eq!(&round_trip, &b);
            }
        }

        /// Once the initially free addresses are used up, auto-assign hands back the released
        /// ones in the order they were released.
        #[test]
        fn released_addresses_come_back_first_in_first_out(
            v6 in any::<bool>(),
            (taken, release_order) in (1..=SIZE).prop_flat_map(|k| {
                (Just(k), prop::sample::subsequence((0..k).collect::<Vec<_>>(), 0..=k)
                    .prop_shuffle())
            }),
        ) {
            let mut b = new_block(v6);
            let attrs = BTreeMap::new();
            b.auto_assign(taken, Some("h"), &attrs, |_| false);
            for &o in &release_order {
                let ip = b.ip_of(o).unwrap();
                let seq = b.sequence_number_of(ip);
                let out = b.release(&[(ip, seq)]).unwrap();
                prop_assert_eq!(out.released, vec![ip]);
            }
            let next = b.auto_assign(SIZE, Some("h"), &attrs, |_| false);
            let want: Vec<IpAddr> = (taken..SIZE).chain(release_order.iter().copied())
                .map(|o| b.ip_of(o).unwrap()).collect();
            prop_assert_eq!(next, want);
            prop_assert_eq!(b.num_free(), 0);
        }
    }
}
