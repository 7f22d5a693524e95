//! What the allocator reports. Wording follows Calico's messages where Calico has one, so a
//! user searching for the text finds Calico's documentation.

use std::net::IpAddr;

use thiserror::Error;

use crate::block::BlockError;

#[derive(Debug, Error)]
pub enum IpamError {
    #[error(transparent)]
    Datastore(#[from] datastore::Error),

    /// A stored IPAM value (block, affinity, handle, config) is not what Calico writes.
    #[error("failed to parse IPAM entry {key}: {reason}")]
    Corrupt { key: String, reason: String },

    #[error(transparent)]
    Block(#[from] BlockError),

    /// A requested pool (by name or CIDR) does not exist or is disabled.
    #[error("the given pool ({0}) does not exist, or is not enabled")]
    PoolNotFound(String),

    /// A requested pool is of the other IP family.
    #[error("provided IPv{want} IPPools list contains one or more IPv{got} IPPools")]
    PoolWrongFamily { want: u8, got: u8 },

    /// No enabled pool of the family selects the node (and namespace).
    #[error("no configured Calico pools for node {0}")]
    NoPoolsForNode(String),

    /// Pools select the node, but none allows the intended use.
    #[error("cannot find a qualified ippool, no pools match the required use ({0})")]
    NoQualifiedPool(String),

    /// The request could not be met in full; whatever was assigned has been released again.
    #[error(
        "IPAM allocated only {assigned} of {requested} IPv{version} addresses{}",
        detail.iter().map(|m| format!("; {m}")).collect::<String>()
    )]
    Exhausted {
        assigned: usize,
        requested: usize,
        version: u8,
        detail: Vec<String>,
    },

    /// The node owns as many blocks as it may and they are full.
    #[error(
        "Need to allocate an IPAM block but could not - limit of {limit} blocks reached for this node"
    )]
    BlockLimit { limit: u32 },

    #[error("The provided IP address {0} is not in a configured pool")]
    NotInPool(IpAddr),

    #[error("IP address {ip} is in IP pool {pool:?}, which is disabled")]
    PoolDisabled { ip: IpAddr, pool: String },

    #[error(
        "IP address {ip} is in IP pool {pool:?}, which is not allowed for use {intended:?} (allowedUses: {allowed})"
    )]
    NotAllowedForUse {
        ip: IpAddr,
        pool: String,
        intended: String,
        allowed: String,
    },

    #[error("The provided IP address {ip} is already assigned")]
    AlreadyAssigned { ip: IpAddr },

    /// strictAffinity: an address may only come from a block affine to the node asking.
    #[error(
        "IP {ip} is in block {block}, which is not affine to host {host} (strictAffinity is enabled)"
    )]
    NotAffine {
        ip: IpAddr,
        block: String,
        host: String,
    },

    #[error("Cannot disable 'StrictAffinity' and 'AutoAllocateBlocks' at the same time")]
    NoAllocationPossible,

    #[error("MaxBlocksPerHost requires StrictAffinity to be enabled")]
    MaxBlocksNeedsStrictAffinity,

    /// Every retry lost a compare-and-swap race.
    #[error("Max retries hit - excessive concurrent IPAM requests")]
    TooManyRetries,
}

impl IpamError {
    pub(crate) fn corrupt(key: &datastore::Key, reason: impl ToString) -> Self {
        IpamError::Corrupt {
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Whether another attempt on fresh state may succeed (a lost compare-and-swap race).
    pub fn is_conflict(&self) -> bool {
        matches!(self, IpamError::Datastore(e) if lost_race(e))
    }
}

/// A write whose condition failed: the key moved, appeared or vanished since it was read.
pub(crate) fn lost_race(e: &datastore::Error) -> bool {
    matches!(
        e,
        datastore::Error::Conflict(_)
            | datastore::Error::AlreadyExists(_)
            | datastore::Error::NotFound(_)
    )
}
