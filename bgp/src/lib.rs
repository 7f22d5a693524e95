//! Our BGP-4 speaker: the wire codec (`wire`: bytes to typed messages and back with RFC 7606
//! error handling, no sockets, fuzzed), the RFC 4271 state machine (`fsm`, a pure function of
//! state and event), peers, the RIB with best-path selection and route reflection, the FIB sync
//! over rtnetlink (route protocol 186 only), and the configuration (`config`: the sessions one
//! node runs, computed as Calico computes them from `BGPConfiguration`, `BGPPeer`s and `Node`s).
//! `wire`, `fsm` and `config` do no I/O; peers, RIB and FIB are still to come.
//!
//! Built in the BGP issue. It must never touch a kernel route that does not carry protocol 186.

pub mod config;
pub mod fib;
pub mod fsm;
pub mod peer;
pub mod policy;
pub mod rib;
pub mod route;
pub mod speaker;
pub mod transport;
pub mod wire;
