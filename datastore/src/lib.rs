//! The datastore: where resources and IPAM state live, with Calico's etcd key layout and JSON,
//! and compare-and-swap on every write.
//!
//! Main types: [`Key`] (what is stored, independent of the backend), the [`Backend`] trait (get,
//! list, create, update and delete with a revision check, watch from a revision, leases) with its
//! etcd v3 implementation [`etcd::EtcdBackend`], [`Client`] (typed resource operations on top of a
//! backend: uid and creation timestamp on create, `resourceVersion` from the revision), the
//! [`syncer`] (list + watch into an ordered stream of updates with an in-sync marker), and
//! [`config`] (how calicoctl and calico-node find the datastore).
//!
//! It must never write without a revision condition except where a key is created (which checks
//! that the key is absent), and never hide a conflict: the caller retries on fresh state.

pub mod backend;
pub mod client;
pub mod codec;
pub mod config;
pub mod error;
pub mod etcd;
pub mod key;
pub mod syncer;

pub use backend::{
    Backend, Condition, KvPair, LeaseId, Listing, Read, ReadResult, Revision, WatchEvent,
    WatchStream, Write,
};
pub use client::Client;

pub use error::Error;
pub use key::{Key, ListKey, ResourceKey};
