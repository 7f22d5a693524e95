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
