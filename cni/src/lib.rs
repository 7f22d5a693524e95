//! The `calico` and `calico-ipam` CNI plugins (one binary, dispatched on argv[0]).
//!
//! Built in the CNI issue. Any failure after IPAM must undo the address and the veth.
