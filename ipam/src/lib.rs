//! Calico's IP address management: per-node affine blocks carved from IP pools, claimed with a
//! two-phase affinity, allocated by ordinal, and tracked by handle, all in the datastore with
//! compare-and-swap on every write.
//!
//! Main types: [`Ipam`], the allocator over a [`datastore::Backend`] (auto-assign, assign a
//! given address, release by address or handle, IPAM configuration, releasing a node's
//! affinities, reclaiming orphaned blocks), with its requests ([`AutoAssignArgs`],
//! [`AssignIpArgs`], [`ReleaseOptions`]) and [`IpamError`]. Underneath, pure code with no I/O:
//! [`block::AllocationBlock`], Calico's allocation block (its stored JSON, auto-assign, assign,
//! release, sequence numbers against ABA); [`pools`] (which pools a request may use, the blocks
//! of a pool from a host-seeded start, reservations); and the other stored values as Calico
//! writes them: [`affinity::BlockAffinity`], [`handle::Handle`], [`config::IpamConfig`]; and
//! [`check`], `calicoctl ipam check`'s analysis of IPAM against the cluster.
//!
//! The crate must never write a block, affinity or handle without a revision check, never
//! write a block without the handle counts that go with it (one transaction), and never hand
//! out an address twice or one an `IPReservation` holds back.

pub mod affinity;
pub mod allocator;
pub mod block;
pub mod check;
pub mod config;
pub mod error;
pub mod handle;
pub mod pools;

pub use allocator::{AssignIpArgs, Assigned, AutoAssignArgs, Ipam, ReleaseOptions, Released};
pub use error::IpamError;
