//! Calico's IP address management: per-node affine blocks carved from IP pools, claimed with a
//! two-phase affinity, allocated by ordinal, and tracked by handle, all in the datastore with
//! compare-and-swap on every write.
//!
//! Main types: [`block::AllocationBlock`], Calico's allocation block as pure code (its stored
//! JSON, auto-assign, assign, release by address or handle, sequence numbers against ABA), with
//! [`block::BlockCidr`] and [`block::BlockError`]; the other stored values, as Calico writes
//! them: [`affinity::BlockAffinity`] (a node's two-phase claim on a block), [`handle::Handle`]
//! (addresses per block of one workload) and [`config::IpamConfig`]; [`check`], `ipam check`'s
//! analysis of IPAM against the cluster. These modules do no I/O; the datastore-facing
//! allocator is [`allocator::Ipam`]. The crate must never write a block, affinity or
//! handle without a revision check, and never hand out an address twice.

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
