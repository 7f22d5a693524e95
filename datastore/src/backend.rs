//! The [`Backend`] trait: what a datastore must offer, in terms of [`Key`]s and JSON bytes.
//!
//! Revisions are the store's: for etcd, a key's `mod_revision`, and for a listing or a watch,
//! the store revision it was read at. A write that names a revision succeeds only if the key is
//! still at that revision; the loser of a race gets [`Error::Conflict`] and retries on fresh
//! state.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;

use crate::{Error, Key, ListKey};

/// A store revision (etcd's `mod_revision` for a key, the header revision for a read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Revision(pub i64);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Revision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        s.parse::<i64>()
            .ok()
            .filter(|r| *r > 0)
            .map(Revision)
            .ok_or_else(|| Error::InvalidRevision(s.to_string()))
    }
}

/// A lease: keys written under it vanish when it expires or is revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseId(pub i64);

/// One stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvPair {
    pub key: Key,
    /// The stored JSON.
    pub value: Vec<u8>,
    /// The revision of the key's last modification.
    pub revision: Revision,
    pub lease: Option<LeaseId>,
}

/// The result of a list: the objects and the store revision they were read at (watch from
/// there to see every later change).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub items: Vec<KvPair>,
    pub revision: Revision,
}

/// One change seen by a watch, in store order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// Created or updated.
    Put(KvPair),
    /// Deleted (or its lease expired) at `revision`.
    Delete { key: Key, revision: Revision },
}

impl WatchEvent {
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put(kv) => kv.revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }
}

/// What a transaction requires of one key before it writes anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The key does not exist.
    Absent(Key),
    /// The key exists at exactly this revision (as read).
    At(Key, Revision),
}

/// One write of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Put(Key, Vec<u8>),
    Delete(Key),
}

/// One read of a [`Backend::read_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    Get(Key),
    List(ListKey),
}

/// What one [`Read`] found, in the order asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadResult {
    Get(Option<KvPair>),
    List(Listing),
}

/// The changes after a revision. Ends (`None`) or yields an error when the watch breaks; a
/// compacted start revision yields [`Error::Compacted`], after which the caller must re-list.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Error>> + Send>>;

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The object at `key`, if any.
    async fn get(&self, key: &Key) -> Result<Option<KvPair>, Error>;

    /// Every object in `list`, in key order, and the revision of the read. Stored paths under
    /// the prefix that are not valid keys are skipped (and logged).
    async fn list(&self, list: &ListKey) -> Result<Listing, Error>;

    /// Create `key`; [`Error::AlreadyExists`] if it exists. Returns the new revision.
    async fn create(
        &self,
        key: &Key,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, Error>;

    /// Replace `key` only if it is still at `expected`: [`Error::Conflict`] if it moved,
    /// [`Error::NotFound`] if it is gone. Returns the new revision.
    async fn update(
        &self,
        key: &Key,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, Error>;

    /// Delete `key`, only if it is at `expected` when one is given. Returns what was deleted.
    async fn delete(&self, key: &Key, expected: Option<Revision>) -> Result<KvPair, Error>;

    /// Every write at once, only if every condition holds; otherwise nothing is written and the
    /// error names the first key whose condition failed: [`Error::AlreadyExists`] for a key
    /// that should be absent, [`Error::NotFound`] or [`Error::Conflict`] for one that should
    /// be at a revision. Returns the revision of the writes. (IPAM writes a block and its
    /// handle this way, so neither can land without the other.)
    async fn commit(&self, conditions: &[Condition], writes: Vec<Write>)
    -> Result<Revision, Error>;

    /// Several reads at one store revision (a consistent snapshot), in one request where the
    /// store allows: an IPAM assignment reads its configuration, pools, reservations, node,
    /// affinities and handle this way, in one round trip instead of seven. Meant for a few
    /// keys and small lists; a list here is not paged, so big ones go through [`Backend::list`].
    async fn read_batch(&self, reads: &[Read]) -> Result<Vec<ReadResult>, Error> {
        let mut out = Vec::with_capacity(reads.len());
        for r in reads {
            out.push(match r {
                Read::Get(key) => ReadResult::Get(self.get(key).await?),
                Read::List(list) => ReadResult::List(self.list(list).await?),
            });
        }
        Ok(out)
    }

    /// Every change in `list` with a revision greater than `after`, in order.
    async fn watch(&self, list: &ListKey, after: Revision) -> Result<WatchStream, Error>;

    /// A lease that expires `ttl` after its last keep-alive.
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, Error>;

    /// Renew a lease once.
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), Error>;

    /// End a lease now; its keys are deleted.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), Error>;
}
