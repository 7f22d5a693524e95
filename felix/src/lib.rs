//! Felix, the per-node agent: `calc` turns datastore resources into the desired dataplane as
//! plain data (no I/O); `dataplane` diffs that against the kernel and applies the difference.
//!
//! Built in the calico-node issue; so far `calc` exists (routes, tunnel devices, VTEPs, NAT
//! outgoing pools). It must never touch kernel state it does not own: routes of
//! protocol 80, `tunl0`'s address and MTU, `vxlan.calico`, and the nftables table `inet calico`.

pub mod calc;
