//! Calico's IP address management: per-node affine blocks carved from IP pools, claimed with a
//! two-phase affinity, allocated by ordinal, and tracked by handle, all in the datastore with
//! compare-and-swap on every write.
//!
//! Main types (to come with the IPAM issue): the pure block algorithm (`block`), affinities
//! (`affinity`), handles (`handle`) and the datastore-facing allocator. It must never write a
//! block, affinity or handle without a revision check, and never hand out an address twice.

pub mod affinity;
pub mod config;
pub mod handle;
