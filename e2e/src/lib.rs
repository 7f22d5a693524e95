//! Whole clusters in network namespaces on one machine: a fabric, etcd, nodes running
//! `calico-node`, pods wired by the CNI plugin, a top-of-rack router; the demo and the benchmarks.
//!
//! Built in the e2e issue. Everything it creates lives in namespaces it made and removes.
