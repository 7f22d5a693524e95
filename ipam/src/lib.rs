//! Calico's IP address management: per-node affine blocks carved from IP pools, claimed with a
//! two-phase affinity, allocated by ordinal, and tracked by handle, all in the datastore with
//! compare-and-swap on every write.
//!
//! Main types: [`block::AllocationBlock`], Calico's allocation block as pure code (its stored
//! JSON, auto-assign, assign, release by address or handle, sequence numbers against ABA), with
//! [`block::BlockCidr`] and [`block::BlockError`]. Affinities (`affinity`), handles (`handle`) and
//! the datastore-facing allocator are to come. `block` does no I/O. The crate must never write a
//! block, affinity or handle without a revision check, and never hand out an address twice.

pub mod block;
