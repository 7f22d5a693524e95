//! The datastore-facing allocator: Calico's IPAM operations over a [`Backend`].
//!
//! Every write is compare-and-swap against the revision read, and every operation retries on a
//! lost race (up to [`RETRIES`] times, as Calico's `datastoreRetries`) on fresh state. A block
//! and the handles it changes are written in one transaction ([`Backend::commit`]), so a handle
//! count can never disagree with the blocks, whatever fails in between.
//!
//! Claiming a block is Calico's two-phase affinity: create the affinity `pending`, create the
//! block (which fails if anyone else got it first), then confirm the affinity. A crash at any
//! point leaves either a pending affinity (ignored by readers, reused or cleaned up by the next
//! attempt) or a block whose affinity the next attempt confirms.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use api::ippool::{AllowedUse, IPPool};
use api::ipreservation::IPReservation;
use api::node::Node;
use datastore::{
    Backend, Client, Condition, Key, KvPair, ListKey, Listing, Read, ReadResult, ResourceKey,
    Revision, Write,
};
use ipnetwork::IpNetwork;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, info, warn};

use crate::affinity::{AffinityState, BlockAffinity};
use crate::block::{AllocationBlock, BlockCidr, SequenceMismatch};
use crate::config::IpamConfig;
use crate::error::IpamError;
use crate::handle::Handle;
use crate::pools::{self, Pool, PoolRequest, Reservations};

/// How many times an operation is retried after losing a compare-and-swap race (Calico's
/// `datastoreRetries`).
pub const RETRIES: usize = 100;

/// Calico's safeguard when neither the request nor `IPAMConfiguration` limits blocks per host.
pub const DEFAULT_MAX_BLOCKS_PER_HOST: u32 = 20;

/// An empty block affine to another node is taken over only after it has been claimed this long
/// (Calico's `EmptyBlockMinReclaimAge`), so a block just claimed is not stolen before its first
/// address is written.
pub const EMPTY_BLOCK_MIN_RECLAIM_AGE: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Handles read ahead of a block write (together with other reads, to save a round trip);
/// each is used once, so a retry reads afresh.
type Prefetched = BTreeMap<String, Option<Stored<Handle>>>;

/// A stored value and the revision it was read at.
#[derive(Clone, Debug)]
struct Stored<T> {
    value: T,
    revision: Revision,
}

/// What `auto_assign` is asked for (Calico's `AutoAssignArgs`).
#[derive(Clone, Debug)]
pub struct AutoAssignArgs {
    pub num4: usize,
    pub num6: usize,
    /// The handle the addresses are recorded under (`k8s-pod-network.<containerID>`, ...).
    pub handle_id: Option<String>,
    /// Stored with the allocation (`namespace`, `pod`, `node`, ...).
    pub attrs: BTreeMap<String, String>,
    pub hostname: String,
    /// Pools to use, by name or CIDR; empty: every automatic pool that selects the node.
    pub ipv4_pools: Vec<String>,
    pub ipv6_pools: Vec<String>,
    /// A per-request block limit; 0: `IPAMConfiguration`'s, else 20.
    pub max_blocks_per_host: u32,
    pub intended_use: AllowedUse,
    /// The labels of the workload's namespace, for pools' `namespaceSelector`; `None` when
    /// there is no namespace (tunnel addresses).
    pub namespace_labels: Option<BTreeMap<String, String>>,
}

impl AutoAssignArgs {
    /// A request for workload addresses on `hostname`.
    pub fn new(hostname: &str, num4: usize, num6: usize) -> Self {
        AutoAssignArgs {
            num4,
            num6,
            handle_id: None,
            attrs: BTreeMap::new(),
            hostname: hostname.to_string(),
            ipv4_pools: Vec::new(),
            ipv6_pools: Vec::new(),
            max_blocks_per_host: 0,
            intended_use: AllowedUse::Workload,
            namespace_labels: None,
        }
    }

    pub fn handle(mut self, handle: &str) -> Self {
        self.handle_id = Some(handle.to_string());
        self
    }
}

/// The addresses `auto_assign` handed out, each with its block's prefix length (as Calico
/// returns them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assigned {
    pub ipv4: Vec<IpNetwork>,
    pub ipv6: Vec<IpNetwork>,
}

/// What `assign_ip` is asked for (Calico's `AssignIPArgs`).
#[derive(Clone, Debug)]
pub struct AssignIpArgs {
    pub ip: IpAddr,
    pub handle_id: Option<String>,
    pub attrs: BTreeMap<String, String>,
    pub hostname: String,
    /// When given, the address's pool must allow this use.
    pub intended_use: Option<AllowedUse>,
}

/// One address to release (Calico's `ReleaseOptions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseOptions {
    pub address: IpAddr,
    /// Release only if the address is allocated to this handle.
    pub handle_id: Option<String>,
    /// Release only if the allocation is still the one made at this block sequence number.
    pub sequence_number: Option<u64>,
}

impl ReleaseOptions {
    pub fn ip(address: IpAddr) -> Self {
        ReleaseOptions {
            address,
            handle_id: None,
            sequence_number: None,
        }
    }
}

/// What `release_ips` did: an address that was not allocated (or not to the handle given) is
/// reported, not an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub released: Vec<IpAddr>,
    pub not_allocated: Vec<IpAddr>,
    /// Allocations that changed since the caller read them (sequence number check).
    pub mismatched: Vec<SequenceMismatch>,
}

/// What cleaning up after a node did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Affinities released (the blocks deleted if empty, else kept without affinity).
    pub affinities: Vec<(String, BlockCidr)>,
}

/// Calico's IPAM client over one datastore.
#[derive(Clone)]
pub struct Ipam {
    backend: Arc<dyn Backend>,
    client: Client,
}

/// How claiming a block for a pending affinity ended. (Short-lived, so the size difference
/// between variants does not matter.)
#[allow(clippy::large_enum_variant)]
enum Claim {
    Claimed(Stored<AllocationBlock>),
    /// Someone else's block: our affinity is gone, pick another block.
    TakenByOther,
}

/// Why an affinity was not released.
#[derive(Debug)]
enum AffinityRelease {
    Gone,
    NotOurs,
    NotEmpty,
    Moved,
    Failed(IpamError),
}

impl From<IpamError> for AffinityRelease {
    fn from(e: IpamError) -> Self {
        AffinityRelease::Failed(e)
    }
}

impl From<datastore::Error> for AffinityRelease {
    fn from(e: datastore::Error) -> Self {
        AffinityRelease::Failed(e.into())
    }
}

fn affinity_of(host: &str) -> String {
    format!("host:{host}")
}

fn block_key(cidr: BlockCidr) -> Key {
    Key::Block(cidr.network())
}

fn affinity_key(host: &str, cidr: BlockCidr) -> Key {
    Key::BlockAffinity {
        host: host.to_string(),
        cidr: cidr.network(),
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("IPAM values serialize")
}

fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Free addresses of a block that a request may be given (reserved ones excluded).
fn usable_free(block: &AllocationBlock, reservations: &Reservations) -> usize {
    block
        .unallocated()
        .iter()
        .filter(|o| block.ip_of(**o).is_ok_and(|ip| !reservations.contains(ip)))
        .count()
}

/// What an assignment reads before it writes (see [`Ipam::snapshot`]).
struct Snapshot {
    config: IpamConfig,
    pools: Vec<Pool>,
    reservations: Reservations,
    affinities: Listing,
    node: Option<Node>,
    /// `Some` when a handle was asked for: what is stored under it, if anything.
    handle: Option<Option<Stored<Handle>>>,
}

fn ipam_configuration_key() -> Key {
    Key::Resource(ResourceKey::new(
        api::ResourceKind::IPAMConfiguration,
        None,
        api::ipam_config::IPAM_CONFIG_NAME,
    ))
}

fn stored<T: DeserializeOwned>(kv: Option<KvPair>) -> Result<Option<Stored<T>>, IpamError> {
    match kv {
        None => Ok(None),
        Some(kv) => Ok(Some(Stored {
            value: serde_json::from_slice(&kv.value).map_err(|e| IpamError::corrupt(&kv.key, e))?,
            revision: kv.revision,
        })),
    }
}

fn get_result(r: Option<ReadResult>) -> Option<KvPair> {
    match r {
        Some(ReadResult::Get(kv)) => kv,
        _ => None,
    }
}

fn list_result(r: Option<ReadResult>) -> Listing {
    match r {
        Some(ReadResult::List(l)) => l,
        _ => Listing::default(),
    }
}

/// Resources of a listing; one that does not decode is logged and left out, as the datastore
/// client does, so one bad entry cannot stop every assignment.
fn decode_list<R: api::Resource>(listing: &Listing) -> Vec<R> {
    listing
        .items
        .iter()
        .filter_map(|kv| match datastore::codec::decode::<R>(kv) {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(key = %kv.key, error = %e, "skipping undecodable resource");
                None
            }
        })
        .collect()
}

fn pools_from(listing: &Listing) -> Vec<Pool> {
    decode_list::<IPPool>(listing)
        .into_iter()
        .filter_map(Pool::new)
        .collect()
}

/// `/calico/ipam/v2/config` if present, else the `IPAMConfiguration` resource, else defaults.
fn config_from(v2: Option<KvPair>, v3: Option<KvPair>) -> Result<IpamConfig, IpamError> {
    if let Some(c) = stored::<IpamConfig>(v2)? {
        return Ok(c.value);
    }
    let Some(kv) = v3 else {
        return Ok(IpamConfig::default());
    };
    let r = datastore::codec::decode::<api::ipam_config::IPAMConfiguration>(&kv)?;
    Ok(IpamConfig {
        strict_affinity: r.spec.strict_affinity(),
        auto_allocate_blocks: r.spec.auto_allocate_blocks(),
        max_blocks_per_host: r
            .spec
            .max_blocks_per_host
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(0),
    })
}

impl Ipam {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Ipam {
            client: Client::new(backend.clone()),
            backend,
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    // ---- typed reads and writes ----

    async fn read<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<Stored<T>>, IpamError> {
        stored(self.backend.get(key).await?)
    }

    async fn read_block(
        &self,
        cidr: BlockCidr,
    ) -> Result<Option<Stored<AllocationBlock>>, IpamError> {
        self.read(&block_key(cidr)).await
    }

    /// Every block, decoded; an undecodable one is logged and skipped so that one bad entry
    /// cannot stop allocation everywhere.
    pub async fn list_blocks(&self) -> Result<Vec<AllocationBlock>, IpamError> {
        let listing = self.backend.list(&ListKey::Blocks).await?;
        Ok(listing
            .items
            .into_iter()
            .filter_map(|kv| match serde_json::from_slice(&kv.value) {
                Ok(b) => Some(b),
                Err(e) => {
                    warn!(key = %kv.key, error = %e, "skipping undecodable IPAM block");
                    None
                }
            })
            .collect())
    }

    async fn pools(&self) -> Result<Vec<Pool>, IpamError> {
        let listing = self
            .backend
            .list(&ListKey::kind(api::ResourceKind::IPPool))
            .await?;
        Ok(pools_from(&listing))
    }

    async fn node(&self, name: &str) -> Result<Option<Node>, IpamError> {
        let key = ResourceKey::new(api::ResourceKind::Node, None, name);
        match self.client.get::<Node>(&key).await {
            Ok(n) => Ok(Some(n)),
            Err(datastore::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Everything an assignment on `host` reads before it writes, in one request at one
    /// revision: the IPAM configuration, pools, reservations, the host's affinities, its Node
    /// and the handle.
    async fn snapshot(
        &self,
        host: &str,
        handle: Option<&str>,
        want_node: bool,
    ) -> Result<Snapshot, IpamError> {
        let mut reads = vec![
            Read::Get(Key::IpamConfig),
            Read::Get(ipam_configuration_key()),
            Read::List(ListKey::kind(api::ResourceKind::IPPool)),
            Read::List(ListKey::kind(api::ResourceKind::IPReservation)),
            Read::List(ListKey::BlockAffinities {
                host: Some(host.to_string()),
            }),
        ];
        if want_node {
            reads.push(Read::Get(Key::Resource(ResourceKey::new(
                api::ResourceKind::Node,
                None,
                host,
            ))));
        }
        if let Some(h) = handle {
            reads.push(Read::Get(Key::Handle(h.to_string())));
        }
        let mut r = self.backend.read_batch(&reads).await?.into_iter();
        let config = config_from(get_result(r.next()), get_result(r.next()))?;
        let pools = pools_from(&list_result(r.next()));
        let reservations = Reservations::new(&decode_list::<IPReservation>(&list_result(r.next())));
        let affinities = list_result(r.next());
        let node = match get_result(if want_node { r.next() } else { None }) {
            Some(kv) => Some(datastore::codec::decode::<Node>(&kv)?),
            None => None,
        };
        let handle = match handle {
            Some(_) => Some(stored(get_result(r.next()))?),
            None => None,
        };
        Ok(Snapshot {
            config,
            pools,
            reservations,
            affinities,
            node,
            handle,
        })
    }

    // ---- configuration ----

    /// The IPAM configuration in effect: `/calico/ipam/v2/config` as Calico's IPAM reads it,
    /// else the `IPAMConfiguration` resource `default` (written by `calicoctl apply`), else
    /// Calico's defaults (borrowing allowed, blocks allocated automatically).
    pub async fn get_config(&self) -> Result<IpamConfig, IpamError> {
        let mut r = self
            .backend
            .read_batch(&[
                Read::Get(Key::IpamConfig),
                Read::Get(ipam_configuration_key()),
            ])
            .await?
            .into_iter();
        config_from(get_result(r.next()), get_result(r.next()))
    }

    /// Set the IPAM configuration, refusing what Calico refuses. Written to
    /// `/calico/ipam/v2/config` with compare-and-swap.
    pub async fn set_config(&self, config: &IpamConfig) -> Result<(), IpamError> {
        if !config.strict_affinity && !config.auto_allocate_blocks {
            return Err(IpamError::NoAllocationPossible);
        }
        if config.max_blocks_per_host > 0 && !config.strict_affinity {
            return Err(IpamError::MaxBlocksNeedsStrictAffinity);
        }
        for _ in 0..RETRIES {
            let result = match self.backend.get(&Key::IpamConfig).await? {
                None => self
                    .backend
                    .create(&Key::IpamConfig, to_json(config), None)
                    .await
                    .map(|_| ()),
                Some(kv) => self
                    .backend
                    .update(&Key::IpamConfig, to_json(config), kv.revision)
                    .await
                    .map(|_| ()),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if crate::error::lost_race(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(IpamError::TooManyRetries)
    }

    // ---- writing a block with its handles ----

    /// Write `new` over the block read as `old` (or delete it when `new` is `None`) and apply
    /// `deltas` to the handles, all in one transaction that fails if any of them moved.
    async fn commit_block(
        &self,
        old: &Stored<AllocationBlock>,
        new: Option<&AllocationBlock>,
        deltas: &BTreeMap<String, i64>,
        prefetched: &mut Prefetched,
    ) -> Result<(), IpamError> {
        let cidr = old.value.cidr();
        let bkey = block_key(cidr);
        let mut conditions = vec![Condition::At(bkey.clone(), old.revision)];
        let mut writes = vec![match new {
            Some(b) => Write::Put(bkey, to_json(b)),
            None => Write::Delete(bkey),
        }];
        let block_name = cidr.to_string();
        for (id, delta) in deltas.iter().filter(|(_, d)| **d != 0) {
            let hkey = Key::Handle(id.clone());
            let stored = match prefetched.remove(id) {
                Some(s) => s,
                None => self.read::<Handle>(&hkey).await?,
            };
            let mut handle = stored.as_ref().map(|s| s.value.clone()).unwrap_or_default();
            if *delta > 0 {
                handle.increment(&block_name, *delta as u32);
            } else {
                let n = delta.unsigned_abs() as u32;
                if let Err(e) = handle.decrement(&block_name, n) {
                    // The handle undercounts (written by a client that lost an update): the
                    // block is the truth, so drop the block from the handle.
                    warn!(handle = %id, error = %e, "handle count disagrees with block");
                    handle.block.remove(&block_name);
                }
            }
            match &stored {
                Some(s) => conditions.push(Condition::At(hkey.clone(), s.revision)),
                None => conditions.push(Condition::Absent(hkey.clone())),
            }
            if handle.is_empty() {
                if stored.is_some() {
                    writes.push(Write::Delete(hkey));
                }
            } else {
                writes.push(Write::Put(hkey, to_json(&handle)));
            }
        }
        self.backend.commit(&conditions, writes).await?;
        Ok(())
    }

    // ---- affinities ----

    /// Create a pending affinity for `host` on `cidr`, or take over an existing unconfirmed one.
    async fn pending_affinity(
        &self,
        host: &str,
        cidr: BlockCidr,
    ) -> Result<Stored<BlockAffinity>, IpamError> {
        let key = affinity_key(host, cidr);
        let pending = BlockAffinity::pending();
        match self.backend.create(&key, to_json(&pending), None).await {
            Ok(revision) => Ok(Stored {
                value: pending,
                revision,
            }),
            Err(datastore::Error::AlreadyExists(_)) => {
                let Some(existing) = self.read::<BlockAffinity>(&key).await? else {
                    return Err(datastore::Error::Conflict(key).into());
                };
                if existing.value.is_confirmed() {
                    return Ok(existing);
                }
                let revision = self
                    .backend
                    .update(&key, to_json(&pending), existing.revision)
                    .await?;
                Ok(Stored {
                    value: pending,
                    revision,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn set_affinity_state(
        &self,
        host: &str,
        cidr: BlockCidr,
        aff: &Stored<BlockAffinity>,
        state: AffinityState,
    ) -> Result<Stored<BlockAffinity>, IpamError> {
        let value = BlockAffinity {
            state,
            deleted: false,
        };
        let revision = self
            .backend
            .update(&affinity_key(host, cidr), to_json(&value), aff.revision)
            .await?;
        Ok(Stored { value, revision })
    }

    /// Phase two of a claim: create the block for a pending affinity, then confirm it. If the
    /// block exists already and is ours (an earlier attempt got this far) just confirm; if it is
    /// someone else's, drop our affinity.
    async fn claim_block(
        &self,
        host: &str,
        cidr: BlockCidr,
        aff: Stored<BlockAffinity>,
    ) -> Result<Claim, IpamError> {
        let mut block = AllocationBlock::new(cidr, Some(&affinity_of(host)));
        block.set_affinity_claim_time(Some(now_rfc3339()));
        let stored = match self
            .backend
            .create(&block_key(cidr), to_json(&block), None)
            .await
        {
            Ok(revision) => Stored {
                value: block,
                revision,
            },
            Err(datastore::Error::AlreadyExists(_)) => {
                let Some(existing) = self.read_block(cidr).await? else {
                    return Err(datastore::Error::Conflict(block_key(cidr)).into());
                };
                if existing.value.host() != Some(host) {
                    debug!(%host, %cidr, "block claimed by another node first");
                    let _ = self
                        .backend
                        .delete(&affinity_key(host, cidr), Some(aff.revision))
                        .await;
                    return Ok(Claim::TakenByOther);
                }
                existing
            }
            Err(e) => return Err(e.into()),
        };
        if !aff.value.is_confirmed() {
            self.set_affinity_state(host, cidr, &aff, AffinityState::Confirmed)
                .await?;
        }
        info!(%host, %cidr, "claimed block");
        Ok(Claim::Claimed(stored))
    }

    /// The block an affinity of `host` points at, confirming the affinity or creating the
    /// block as needed (Calico's `getBlockFromAffinity`). `None`: the affinity was stale (the
    /// block belongs to someone else) and has been deleted.
    async fn block_from_affinity(
        &self,
        host: &str,
        cidr: BlockCidr,
        aff: Stored<BlockAffinity>,
        read_ahead: Option<Option<Stored<AllocationBlock>>>,
    ) -> Result<Option<Stored<AllocationBlock>>, IpamError> {
        let block = match read_ahead {
            Some(b) => b,
            None => self.read_block(cidr).await?,
        };
        let Some(block) = block else {
            let aff = self
                .set_affinity_state(host, cidr, &aff, AffinityState::Pending)
                .await?;
            return match self.claim_block(host, cidr, aff).await? {
                Claim::Claimed(b) => Ok(Some(b)),
                Claim::TakenByOther => Ok(None),
            };
        };
        if block.value.host() != Some(host) {
            warn!(%host, %cidr, owner = ?block.value.affinity(), "deleting stale affinity");
            self.backend
                .delete(&affinity_key(host, cidr), Some(aff.revision))
                .await?;
            return Ok(None);
        }
        if aff.value.is_confirmed() {
            return Ok(Some(block));
        }
        // Pending (an interrupted claim) or pendingDeletion (an interrupted release): write
        // the block to bump its revision, so anyone acting on the old one loses, then confirm.
        let aff = self
            .set_affinity_state(host, cidr, &aff, AffinityState::Pending)
            .await?;
        let seq = block.value.sequence_number() + 1;
        let bumped = block.value.clone().with_sequence_number(seq);
        let revision = self
            .backend
            .update(&block_key(cidr), to_json(&bumped), block.revision)
            .await?;
        self.set_affinity_state(host, cidr, &aff, AffinityState::Confirmed)
            .await?;
        Ok(Some(Stored {
            value: bumped,
            revision,
        }))
    }

    /// Release `host`'s affinity for `cidr`: the block is deleted if empty, otherwise kept
    /// without affinity (its addresses stay allocated). Block and affinity change in one
    /// transaction.
    async fn release_affinity(
        &self,
        host: &str,
        cidr: BlockCidr,
        require_empty: bool,
        required_sequence: Option<u64>,
    ) -> Result<(), AffinityRelease> {
        let akey = affinity_key(host, cidr);
        let Some(aff) = self.read::<BlockAffinity>(&akey).await? else {
            return Err(AffinityRelease::Gone);
        };
        let Some(block) = self.read_block(cidr).await? else {
            // A dangling affinity (its block was never created, or deleted by hand).
            self.backend.delete(&akey, Some(aff.revision)).await?;
            return Ok(());
        };
        if required_sequence.is_some_and(|s| s != block.value.sequence_number()) {
            return Err(AffinityRelease::Moved);
        }
        if block.value.host() != Some(host) {
            let _ = self.backend.delete(&akey, Some(aff.revision)).await;
            return Err(AffinityRelease::NotOurs);
        }
        let empty = block.value.is_empty();
        if require_empty && !empty {
            return Err(AffinityRelease::NotEmpty);
        }
        let bkey = block_key(cidr);
        let block_write = if empty {
            Write::Delete(bkey.clone())
        } else {
            let mut b = block.value.clone();
            b.clear_affinity();
            let seq = b.sequence_number() + 1;
            Write::Put(bkey.clone(), to_json(&b.with_sequence_number(seq)))
        };
        self.backend
            .commit(
                &[
                    Condition::At(akey.clone(), aff.revision),
                    Condition::At(bkey, block.revision),
                ],
                vec![block_write, Write::Delete(akey)],
            )
            .await?;
        info!(%host, %cidr, "released block affinity");
        Ok(())
    }

    /// Release every affinity `host` holds (Calico's `ReleaseHostAffinities`); with
    /// `must_be_empty`, only those of empty blocks.
    pub async fn release_host_affinities(
        &self,
        host: &str,
        must_be_empty: bool,
    ) -> Result<Reclaimed, IpamError> {
        let listing = self
            .backend
            .list(&ListKey::BlockAffinities {
                host: Some(host.to_string()),
            })
            .await?;
        let mut out = Reclaimed::default();
        for kv in listing.items {
            let Key::BlockAffinity { cidr, .. } = kv.key else {
                continue;
            };
            let cidr = BlockCidr::new(cidr)?;
            if self
                .release_affinity_retrying(host, cidr, must_be_empty)
                .await?
            {
                out.affinities.push((host.to_string(), cidr));
            }
        }
        Ok(out)
    }

    async fn release_affinity_retrying(
        &self,
        host: &str,
        cidr: BlockCidr,
        must_be_empty: bool,
    ) -> Result<bool, IpamError> {
        for _ in 0..RETRIES {
            match self.release_affinity(host, cidr, must_be_empty, None).await {
                Ok(()) => return Ok(true),
                Err(
                    AffinityRelease::Gone | AffinityRelease::NotOurs | AffinityRelease::NotEmpty,
                ) => {
                    return Ok(false);
                }
                Err(AffinityRelease::Moved) => continue,
                Err(AffinityRelease::Failed(e)) if e.is_conflict() => continue,
                Err(AffinityRelease::Failed(e)) => return Err(e),
            }
        }
        Err(IpamError::TooManyRetries)
    }

    /// What deleting a Node does to IPAM in Calico: release the addresses of its workload
    /// endpoints and its tunnel addresses, then every affinity it holds (blocks still holding
    /// addresses lose their affinity; empty ones are deleted).
    pub async fn release_node(&self, node: &str) -> Result<Reclaimed, IpamError> {
        let mut ips = Vec::new();
        let (weps, _) = self
            .client
            .list::<api::workload_endpoint::WorkloadEndpoint>(&ListKey::Resources {
                kind: api::ResourceKind::WorkloadEndpoint,
                namespace: None,
            })
            .await?;
        for wep in weps.iter().filter(|w| w.spec.node.as_deref() == Some(node)) {
            ips.extend(
                wep.spec
                    .ip_networks
                    .iter()
                    .flatten()
                    .filter_map(|n| api::net::parse_cidr_or_ip(n))
                    .map(|n| n.ip()),
            );
        }
        if let Some(n) = self.node(node).await? {
            ips.extend(tunnel_addresses(&n).into_iter().map(|(ip, _)| ip));
        }
        if !ips.is_empty() {
            let opts: Vec<ReleaseOptions> = ips.into_iter().map(ReleaseOptions::ip).collect();
            self.release_ips(&opts).await?;
        }
        self.release_host_affinities(node, false).await
    }

    /// Release the affinities of nodes that no longer exist, for blocks that are empty (Calico's
    /// IPAM garbage collection of orphaned blocks; blocks with addresses are left for the
    /// addresses' owners to release).
    pub async fn reclaim_orphaned_blocks(&self) -> Result<Reclaimed, IpamError> {
        let (nodes, _) = self
            .client
            .list::<Node>(&ListKey::kind(api::ResourceKind::Node))
            .await?;
        let nodes: BTreeSet<String> = nodes.into_iter().map(|n| n.metadata.name).collect();
        let listing = self
            .backend
            .list(&ListKey::BlockAffinities { host: None })
            .await?;
        let mut out = Reclaimed::default();
        for kv in listing.items {
            let Key::BlockAffinity { host, cidr } = kv.key else {
                continue;
            };
            if nodes.contains(&host) {
                continue;
            }
            let cidr = BlockCidr::new(cidr)?;
            if self.release_affinity_retrying(&host, cidr, true).await? {
                out.affinities.push((host, cidr));
            }
        }
        Ok(out)
    }

    // ---- auto-assign ----

    /// Assign `num4` IPv4 and `num6` IPv6 addresses to `hostname` (Calico's `AutoAssign`). All
    /// or nothing: if a family cannot be served in full, whatever was assigned is released
    /// again and the error says how far it got.
    pub async fn auto_assign(&self, args: &AutoAssignArgs) -> Result<Assigned, IpamError> {
        let mut out = Assigned::default();
        if args.num4 > 0 {
            out.ipv4 = self
                .auto_assign_family(args, 4, args.num4, &args.ipv4_pools)
                .await?;
        }
        if args.num6 > 0 {
            match self
                .auto_assign_family(args, 6, args.num6, &args.ipv6_pools)
                .await
            {
                Ok(v6) => out.ipv6 = v6,
                Err(e) => {
                    self.undo(&out.ipv4).await;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    async fn undo(&self, ips: &[IpNetwork]) {
        if ips.is_empty() {
            return;
        }
        let opts: Vec<ReleaseOptions> = ips.iter().map(|n| ReleaseOptions::ip(n.ip())).collect();
        if let Err(e) = self.release_ips(&opts).await {
            warn!(error = %e, ?ips, "failed to release addresses of a failed assignment");
        }
    }

    async fn auto_assign_family(
        &self,
        args: &AutoAssignArgs,
        version: u8,
        num: usize,
        requested: &[String],
    ) -> Result<Vec<IpNetwork>, IpamError> {
        let host = args.hostname.as_str();
        let Snapshot {
            config,
            pools: all_pools,
            reservations,
            affinities,
            node,
            handle,
        } = self
            .snapshot(
                host,
                args.handle_id.as_deref(),
                args.intended_use != AllowedUse::LoadBalancer,
            )
            .await?;
        let node_labels = match (&node, args.intended_use) {
            (Some(n), _) => n.metadata.labels().clone(),
            (None, AllowedUse::LoadBalancer) => BTreeMap::new(),
            (None, _) => {
                return Err(datastore::Error::NotFound(Key::Resource(ResourceKey::new(
                    api::ResourceKind::Node,
                    None,
                    host,
                )))
                .into());
            }
        };
        let request = PoolRequest {
            version,
            requested,
            node_labels: &node_labels,
            namespace_labels: args.namespace_labels.as_ref(),
            usage: args.intended_use,
            host,
        };
        let pools = pools::select_pools(&all_pools, &request)?;

        // The node's blocks of this family in the pools we may use; its empty blocks in pools
        // that no longer select it are released, as Calico does.
        let mut affine = Vec::new();
        let mut listed = BTreeMap::new();
        for kv in &affinities.items {
            let Key::BlockAffinity { cidr, .. } = &kv.key else {
                continue;
            };
            if let (Ok(c), Ok(value)) = (BlockCidr::new(*cidr), serde_json::from_slice(&kv.value)) {
                listed.insert(
                    c,
                    Stored {
                        value,
                        revision: kv.revision,
                    },
                );
            }
            if pools::version_of(*cidr) != version {
                continue;
            }
            let Ok(cidr) = BlockCidr::new(*cidr) else {
                continue;
            };
            if pools.iter().any(|p| p.cidr.contains(cidr.network().ip())) {
                affine.push(cidr);
            } else if all_pools.iter().any(|p| {
                !p.is_disabled()
                    && p.cidr.contains(cidr.network().ip())
                    && !p.selects_node(&node_labels)
            }) {
                // Calico releases an empty block whose pool no longer selects the node (its
                // nodeSelector changed); blocks of deleted or disabled pools are left alone.
                let _ = self.release_affinity(host, cidr, true, None).await;
            }
        }
        let owned = affine.len() as u32;

        // The host's blocks, all in one request: Calico reads them one by one until it finds
        // room, which costs a round trip per full block.
        let blocks_read: BTreeMap<BlockCidr, Option<Stored<AllocationBlock>>> = if affine.is_empty()
        {
            BTreeMap::new()
        } else {
            let reads: Vec<Read> = affine.iter().map(|c| Read::Get(block_key(*c))).collect();
            let mut out = BTreeMap::new();
            for (cidr, r) in affine.iter().zip(self.backend.read_batch(&reads).await?) {
                out.insert(*cidr, stored(get_result(Some(r)))?);
            }
            out
        };

        let limit = match (args.max_blocks_per_host, config.max_blocks_per_host) {
            (r, g) if r > 0 && g > 0 => r.min(g),
            (0, 0) => DEFAULT_MAX_BLOCKS_PER_HOST,
            (0, g) => g,
            (r, _) => r,
        };

        let mut state = AssignState {
            ipam: self,
            host,
            version,
            pools: &pools,
            reservations: &reservations,
            config: &config,
            remaining_affine: affine.into(),
            owned,
            limit,
            handle: args.handle_id.as_deref(),
            attrs: &args.attrs,
            assigned: Vec::new(),
            msgs: Vec::new(),
            listed,
            blocks_read,
            prefetched: args
                .handle_id
                .iter()
                .map(|h| (h.clone(), handle.clone().flatten()))
                .collect(),
        };
        let result = state.run(num).await;
        let assigned = std::mem::take(&mut state.assigned);
        let msgs = std::mem::take(&mut state.msgs);
        match result {
            Ok(()) if assigned.len() >= num => {
                debug!(%host, ?assigned, "auto-assigned");
                Ok(assigned)
            }
            Ok(()) => {
                self.undo(&assigned).await;
                Err(IpamError::Exhausted {
                    assigned: assigned.len(),
                    requested: num,
                    version,
                    detail: msgs,
                })
            }
            Err(e) => {
                self.undo(&assigned).await;
                Err(e)
            }
        }
    }

    /// Assign up to `num` addresses from one block, retrying on fresh state after a lost race.
    /// Empty when the block is full, gone, or (with `affine_only`) not `host`'s.
    #[allow(clippy::too_many_arguments)]
    async fn assign_from_block(
        &self,
        cidr: BlockCidr,
        mut block: Option<Stored<AllocationBlock>>,
        num: usize,
        host: &str,
        affine_only: bool,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
        reservations: &Reservations,
        prefetched: &mut Prefetched,
    ) -> Result<Vec<IpNetwork>, IpamError> {
        for _ in 0..RETRIES {
            let current = match block.take() {
                Some(b) => b,
                None => match self.read_block(cidr).await? {
                    Some(b) => b,
                    None => return Ok(Vec::new()),
                },
            };
            if affine_only && current.value.host() != Some(host) {
                return Ok(Vec::new());
            }
            let mut next = current.value.clone();
            let ips = next.auto_assign(num, handle, attrs, |ip| reservations.contains(ip));
            if ips.is_empty() {
                return Ok(Vec::new());
            }
            let mut deltas = BTreeMap::new();
            if let Some(h) = handle {
                deltas.insert(h.to_string(), ips.len() as i64);
            }
            match self
                .commit_block(&current, Some(&next), &deltas, prefetched)
                .await
            {
                Ok(()) => {
                    let prefix = cidr.network().prefix();
                    return Ok(ips
                        .into_iter()
                        .map(|ip| IpNetwork::new(ip, prefix).expect("block prefix"))
                        .collect());
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::TooManyRetries)
    }

    /// Find a block `host` may claim in `pools`: one nobody has, one of its own with room
    /// (claimed meanwhile by a concurrent request on the same host), or an empty block of
    /// another node claimed over a minute ago, whose affinity is then released. (Calico's
    /// `findUsableBlock`.)
    async fn find_usable_block(
        &self,
        host: &str,
        pools: &[&Pool],
        reservations: &Reservations,
    ) -> Result<Option<BlockCidr>, IpamError> {
        let blocks = self.list_blocks().await?;
        let existing: BTreeMap<BlockCidr, &AllocationBlock> =
            blocks.iter().map(|b| (b.cidr(), b)).collect();
        let mine = affinity_of(host);
        let mut empties = Vec::new();
        for pool in pools {
            // The walk stops at the first block nobody has, so even a huge IPv6 pool is cheap
            // until it is nearly full.
            for cidr in pool.blocks_from(host) {
                if reservations.covers(cidr) {
                    continue;
                }
                let Some(b) = existing.get(&cidr) else {
                    return Ok(Some(cidr));
                };
                let free = usable_free(b, reservations);
                if b.affinity() == Some(mine.as_str()) && free > 0 {
                    return Ok(Some(cidr));
                }
                if b.is_empty() && free > 0 {
                    empties.push(*b);
                }
            }
        }
        let now = chrono::Utc::now();
        for b in empties {
            let claimed = b
                .affinity_claim_time()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            if claimed.is_some_and(|t| now.signed_duration_since(t) < EMPTY_BLOCK_MIN_RECLAIM_AGE) {
                continue;
            }
            match b.host() {
                Some(owner) => {
                    if self
                        .release_affinity(owner, b.cidr(), true, Some(b.sequence_number()))
                        .await
                        .is_ok()
                    {
                        info!(%host, previous = %owner, cidr = %b.cidr(), "taking over empty block");
                        return Ok(Some(b.cidr()));
                    }
                }
                None => return Ok(Some(b.cidr())),
            }
        }
        Ok(None)
    }

    // ---- assign a given address ----

    /// Assign `args.ip` (Calico's `AssignIP`), claiming its block for the host if nobody has it.
    pub async fn assign_ip(&self, args: &AssignIpArgs) -> Result<(), IpamError> {
        let host = args.hostname.as_str();
        let all_pools = self.pools().await?;
        let pool = pools::pool_for_ip(&all_pools, args.ip).ok_or(IpamError::NotInPool(args.ip))?;
        if pool.is_disabled() {
            return Err(IpamError::PoolDisabled {
                ip: args.ip,
                pool: pool.name.clone(),
            });
        }
        if let Some(usage) = args.intended_use
            && !pool.allows(usage)
        {
            return Err(IpamError::NotAllowedForUse {
                ip: args.ip,
                pool: pool.name.clone(),
                intended: format!("{usage:?}"),
                allowed: format!("{:?}", pool.resource.spec.effective_allowed_uses()),
            });
        }
        let config = self.get_config().await?;
        let cidr = pool.block_for(args.ip);
        for _ in 0..RETRIES {
            let block = match self.read_block(cidr).await? {
                Some(b) => b,
                None => {
                    let aff = match self.pending_affinity(host, cidr).await {
                        Ok(a) => a,
                        Err(e) if e.is_conflict() => continue,
                        Err(e) => return Err(e),
                    };
                    match self.claim_block(host, cidr, aff).await {
                        Ok(Claim::Claimed(b)) => b,
                        Ok(Claim::TakenByOther) => continue,
                        Err(e) if e.is_conflict() => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            if config.strict_affinity
                && let Some(owner) = block.value.host()
                && owner != host
            {
                return Err(IpamError::NotAffine {
                    ip: args.ip,
                    block: cidr.to_string(),
                    host: host.to_string(),
                });
            }
            let mut next = block.value.clone();
            match next.assign(args.ip, args.handle_id.as_deref(), &args.attrs) {
                Ok(()) => {}
                Err(crate::block::BlockError::AlreadyAllocated { .. }) => {
                    return Err(IpamError::AlreadyAssigned { ip: args.ip });
                }
                Err(e) => return Err(e.into()),
            }
            let mut deltas = BTreeMap::new();
            if let Some(h) = &args.handle_id {
                deltas.insert(h.clone(), 1);
            }
            match self
                .commit_block(&block, Some(&next), &deltas, &mut Prefetched::new())
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::TooManyRetries)
    }

    // ---- release ----

    /// Release addresses (Calico's `ReleaseIPs`). An address that is not allocated, or not to
    /// the handle given, is reported in `not_allocated`; one whose allocation changed since the
    /// sequence number given, in `mismatched`.
    pub async fn release_ips(&self, opts: &[ReleaseOptions]) -> Result<Released, IpamError> {
        let all_pools = self.pools().await?;
        let mut by_block: BTreeMap<BlockCidr, Vec<&ReleaseOptions>> = BTreeMap::new();
        let mut out = Released::default();
        let mut homeless = Vec::new();
        for o in opts {
            match pools::pool_for_ip(&all_pools, o.address) {
                Some(p) => by_block.entry(p.block_for(o.address)).or_default().push(o),
                None => homeless.push(o),
            }
        }
        if !homeless.is_empty() {
            // Outside every pool (its pool was deleted): look for a block that holds it.
            let blocks: Vec<BlockCidr> =
                self.list_blocks().await?.iter().map(|b| b.cidr()).collect();
            for o in homeless {
                match blocks.iter().find(|c| c.network().contains(o.address)) {
                    Some(c) => by_block.entry(*c).or_default().push(o),
                    None => out.not_allocated.push(o.address),
                }
            }
        }
        for (cidr, opts) in by_block {
            let r = self.release_from_block(cidr, &opts).await?;
            out.released.extend(r.released);
            out.not_allocated.extend(r.not_allocated);
            out.mismatched.extend(r.mismatched);
        }
        Ok(out)
    }

    async fn release_from_block(
        &self,
        cidr: BlockCidr,
        opts: &[&ReleaseOptions],
    ) -> Result<Released, IpamError> {
        for _ in 0..RETRIES {
            let Some(block) = self.read_block(cidr).await? else {
                return Ok(Released {
                    not_allocated: opts.iter().map(|o| o.address).collect(),
                    ..Default::default()
                });
            };
            let mut wrong_handle = Vec::new();
            let mut wanted = Vec::new();
            for o in opts {
                let owner = block
                    .value
                    .attribute_of(o.address)
                    .and_then(|a| a.handle_id.as_deref());
                match &o.handle_id {
                    Some(h) if owner != Some(h.as_str()) => wrong_handle.push(o.address),
                    _ => wanted.push((o.address, o.sequence_number)),
                }
            }
            let mut next = block.value.clone();
            let outcome = next.release(&wanted)?;
            let mut result = Released {
                released: outcome.released.clone(),
                not_allocated: outcome.not_allocated.clone(),
                mismatched: outcome.mismatched.clone(),
            };
            result.not_allocated.extend(wrong_handle);
            if outcome.released.is_empty() {
                return Ok(result);
            }
            let deltas: BTreeMap<String, i64> = outcome
                .released_by_handle
                .iter()
                .map(|(h, n)| (h.clone(), -(*n as i64)))
                .collect();
            // A block nobody is affine to (borrowed from a node since removed) goes when empty.
            let write = if next.is_empty() && next.affinity().is_none() {
                None
            } else {
                Some(&next)
            };
            match self
                .commit_block(&block, write, &deltas, &mut Prefetched::new())
                .await
            {
                Ok(()) => return Ok(result),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::TooManyRetries)
    }

    /// Release every address of a handle (Calico's `ReleaseByHandle`). Returns how many were
    /// released; a handle that does not exist has none.
    pub async fn release_by_handle(&self, handle_id: &str) -> Result<usize, IpamError> {
        let Some(handle) = self
            .read::<Handle>(&Key::Handle(handle_id.to_string()))
            .await?
        else {
            return Ok(0);
        };
        let mut total = 0;
        for block in handle.value.block.keys() {
            let cidr: BlockCidr = block
                .parse()
                .map_err(|e| IpamError::corrupt(&Key::Handle(handle_id.to_string()), e))?;
            total += self.release_handle_from_block(handle_id, cidr).await?;
        }
        Ok(total)
    }

    async fn release_handle_from_block(
        &self,
        handle_id: &str,
        cidr: BlockCidr,
    ) -> Result<usize, IpamError> {
        let hkey = Key::Handle(handle_id.to_string());
        for _ in 0..RETRIES {
            let (block, handle) =
                futures::try_join!(self.read_block(cidr), self.read::<Handle>(&hkey))?;
            let Some(block) = block else {
                // The block is gone, so are its addresses: drop it from the handle.
                let Some(h) = handle else {
                    return Ok(0);
                };
                let mut next = h.value.clone();
                next.block.remove(&cidr.to_string());
                let write = if next.is_empty() {
                    Write::Delete(hkey.clone())
                } else {
                    Write::Put(hkey.clone(), to_json(&next))
                };
                let conditions = [
                    Condition::At(hkey.clone(), h.revision),
                    Condition::Absent(block_key(cidr)),
                ];
                match self.backend.commit(&conditions, vec![write]).await {
                    Ok(_) => return Ok(0),
                    Err(e) if crate::error::lost_race(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let mut next = block.value.clone();
            let n = next.release_by_handle(handle_id);
            let recorded = handle
                .as_ref()
                .and_then(|h| h.value.block.get(&cidr.to_string()).copied())
                .unwrap_or(0);
            if n == 0 && recorded == 0 {
                return Ok(0);
            }
            // The handle's count for this block goes to zero whatever it said: the block is
            // the truth, and commit_block drops a count that would go below zero.
            let deltas =
                BTreeMap::from([(handle_id.to_string(), -(i64::from(recorded).max(n as i64)))]);
            // A block nobody is affine to goes when its last address does.
            let block_write = if n > 0 && next.is_empty() && next.affinity().is_none() {
                None
            } else if n > 0 {
                Some(&next)
            } else {
                Some(&block.value)
            };
            let mut prefetched = Prefetched::from([(handle_id.to_string(), handle)]);
            match self
                .commit_block(&block, block_write, &deltas, &mut prefetched)
                .await
            {
                Ok(()) => return Ok(n),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::TooManyRetries)
    }

    /// The addresses allocated to a handle (Calico's `IPsByHandle`).
    pub async fn ips_by_handle(&self, handle_id: &str) -> Result<Vec<IpAddr>, IpamError> {
        let Some(handle) = self
            .read::<Handle>(&Key::Handle(handle_id.to_string()))
            .await?
        else {
            return Err(datastore::Error::NotFound(Key::Handle(handle_id.to_string())).into());
        };
        let mut ips = Vec::new();
        for block in handle.value.block.keys() {
            let Ok(cidr) = block.parse::<BlockCidr>() else {
                continue;
            };
            if let Some(b) = self.read_block(cidr).await? {
                ips.extend(b.value.ips_by_handle(handle_id));
            }
        }
        Ok(ips)
    }
}

/// The addresses a Node holds for its tunnels, each with the kind of tunnel: what Calico's
/// `ipam check` counts as in use besides workload endpoints, and what a Node's deletion releases.
pub fn tunnel_addresses(node: &Node) -> Vec<(IpAddr, &'static str)> {
    let s = &node.spec;
    let candidates = [
        (
            s.bgp
                .as_ref()
                .and_then(|b| b.ipv4_ipip_tunnel_addr.as_deref()),
            "ipip-tunnel-address",
        ),
        (s.ipv4_vxlan_tunnel_addr.as_deref(), "vxlan-tunnel-address"),
        (
            s.ipv6_vxlan_tunnel_addr.as_deref(),
            "vxlan-v6-tunnel-address",
        ),
        (
            s.wireguard
                .as_ref()
                .and_then(|w| w.interface_ipv4_address.as_deref()),
            "wireguard-tunnel-address",
        ),
        (
            s.wireguard
                .as_ref()
                .and_then(|w| w.interface_ipv6_address.as_deref()),
            "wireguard-v6-tunnel-address",
        ),
    ];
    candidates
        .into_iter()
        .filter_map(|(text, kind)| Some((api::net::parse_cidr_or_ip(text?.trim())?.ip(), kind)))
        .collect()
}

/// The state of one family's auto-assign: Calico's `blockAssignState` plus the loop around it.
struct AssignState<'a> {
    ipam: &'a Ipam,
    host: &'a str,
    version: u8,
    pools: &'a [&'a Pool],
    reservations: &'a Reservations,
    config: &'a IpamConfig,
    remaining_affine: std::collections::VecDeque<BlockCidr>,
    owned: u32,
    limit: u32,
    handle: Option<&'a str>,
    attrs: &'a BTreeMap<String, String>,
    assigned: Vec<IpNetwork>,
    msgs: Vec<String>,
    /// Affinities as listed at the start, used instead of reading each again.
    listed: BTreeMap<BlockCidr, Stored<BlockAffinity>>,
    /// The host's blocks as read at the start, each used once instead of reading it again.
    blocks_read: BTreeMap<BlockCidr, Option<Stored<AllocationBlock>>>,
    prefetched: Prefetched,
}

/// How looking for a block with room ended.
#[allow(clippy::large_enum_variant)]
enum Found {
    Block(BlockCidr, Stored<AllocationBlock>),
    /// No affine block has room and no new one can be claimed.
    NoMore,
}

impl AssignState<'_> {
    async fn run(&mut self, num: usize) -> Result<(), IpamError> {
        // 1. Blocks affine to the host: its own, then newly claimed ones.
        while self.assigned.len() < num {
            match self.find_or_claim_block().await? {
                Found::NoMore => break,
                Found::Block(cidr, block) => {
                    let want = num - self.assigned.len();
                    let ips = self
                        .ipam
                        .assign_from_block(
                            cidr,
                            Some(block),
                            want,
                            self.host,
                            true,
                            self.handle,
                            self.attrs,
                            self.reservations,
                            &mut self.prefetched,
                        )
                        .await?;
                    self.assigned.extend(ips);
                }
            }
        }
        // 2. Borrow from other nodes' blocks, unless strict affinity forbids it.
        if self.assigned.len() < num && !self.config.strict_affinity {
            self.borrow(num).await?;
        }
        Ok(())
    }

    async fn find_or_claim_block(&mut self) -> Result<Found, IpamError> {
        while let Some(cidr) = self.remaining_affine.pop_front() {
            if self.reservations.covers(cidr) {
                continue;
            }
            for attempt in 0..=RETRIES {
                if attempt == RETRIES {
                    return Err(IpamError::TooManyRetries);
                }
                let aff = match self.listed.remove(&cidr) {
                    Some(a) => a,
                    None => {
                        let key = affinity_key(self.host, cidr);
                        let Some(a) = self.ipam.read::<BlockAffinity>(&key).await? else {
                            break;
                        };
                        a
                    }
                };
                let read_ahead = self.blocks_read.remove(&cidr);
                match self
                    .ipam
                    .block_from_affinity(self.host, cidr, aff, read_ahead)
                    .await
                {
                    Ok(Some(b)) if usable_free(&b.value, self.reservations) > 0 => {
                        return Ok(Found::Block(cidr, b));
                    }
                    Ok(_) => break,
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => {
                        warn!(host = %self.host, %cidr, error = %e, "cannot use affine block");
                        break;
                    }
                }
            }
        }
        if self.owned >= self.limit {
            warn!(host = %self.host, owned = self.owned, limit = self.limit,
                "unable to allocate a new IPAM block: per-host block limit reached");
            return Err(IpamError::BlockLimit { limit: self.limit });
        }
        if !self.config.auto_allocate_blocks {
            return Ok(Found::NoMore);
        }
        for _ in 0..RETRIES {
            let Some(cidr) = self
                .ipam
                .find_usable_block(self.host, self.pools, self.reservations)
                .await?
            else {
                if self.config.strict_affinity {
                    self.msg("No more free affine blocks and strict affinity enabled");
                }
                return Ok(Found::NoMore);
            };
            let aff = match self.ipam.pending_affinity(self.host, cidr).await {
                Ok(a) => a,
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            };
            let claim = if aff.value.is_confirmed() {
                // Ours already (claimed by a concurrent request of this host).
                self.ipam
                    .block_from_affinity(self.host, cidr, aff, None)
                    .await
                    .map(|b| b.map_or(Claim::TakenByOther, Claim::Claimed))
            } else {
                self.ipam.claim_block(self.host, cidr, aff).await
            };
            match claim {
                Ok(Claim::Claimed(b)) => {
                    self.owned += 1;
                    if usable_free(&b.value, self.reservations) > 0 {
                        return Ok(Found::Block(cidr, b));
                    }
                }
                Ok(Claim::TakenByOther) => continue,
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::TooManyRetries)
    }

    /// Take addresses from existing blocks of the pools, whoever they are affine to, starting
    /// at the host's seeded offset.
    async fn borrow(&mut self, num: usize) -> Result<(), IpamError> {
        let blocks = self.ipam.list_blocks().await?;
        let mut exhausted = Vec::new();
        for pool in self.pools {
            let start = pool.blocks_from(self.host).next();
            let mut candidates: Vec<BlockCidr> = blocks
                .iter()
                .filter(|b| pool.cidr.contains(b.cidr().network().ip()))
                .filter(|b| usable_free(b, self.reservations) > 0)
                .map(|b| b.cidr())
                .collect();
            candidates.sort_by_key(|c| (Some(*c) < start, *c));
            for cidr in candidates {
                if self.assigned.len() >= num {
                    return Ok(());
                }
                let want = num - self.assigned.len();
                let ips = self
                    .ipam
                    .assign_from_block(
                        cidr,
                        None,
                        want,
                        self.host,
                        false,
                        self.handle,
                        self.attrs,
                        self.reservations,
                        &mut self.prefetched,
                    )
                    .await?;
                if !ips.is_empty() {
                    info!(host = %self.host, %cidr, ?ips, "borrowed addresses from non-affine block");
                }
                self.assigned.extend(ips);
            }
            if self.assigned.len() < num {
                exhausted.push(pool.resource.spec.cidr.clone());
            }
        }
        if !exhausted.is_empty() {
            debug!(host = %self.host, version = self.version, ?exhausted, "pools exhausted");
            self.msg(&format!(
                "No IPs available in pools: [{}]",
                exhausted.join(" ")
            ));
        }
        Ok(())
    }

    fn msg(&mut self, m: &str) {
        if !self.msgs.iter().any(|x| x == m) {
            self.msgs.push(m.to_string());
        }
    }
}
