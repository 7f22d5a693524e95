//! Our BGP-4 speaker, replacing what BIRD and confd do in Calico.
//!
//! Pure parts, no I/O: `wire` (bytes to typed messages and back, RFC 7606 error handling,
//! fuzzed), `fsm` (RFC 4271 §8 as a function of state and event), `rib` (Adj-RIB-In, best
//! path, ECMP, route reflection, export rules, graceful-restart helper), `config` (the sessions
//! a node runs, as Calico's confd computes them), `policy` (what a Calico node exports,
//! imports and installs) and `route` (the types those share). I/O shells: `transport` (TCP
//! with MD5, GTSM, source address), `peer` (one task per session around the FSM), `fib` (the
//! kernel routes, batched rtnetlink), `speaker` (the task owning the RIB), `sync` (the
//! speaker kept in step with the datastore) and `status` (the socket `calicoctl node status`
//! reads).
//!
//! It must never touch a kernel route that does not carry protocol 186, nor block a session on
//! a slow peer or the kernel.

pub mod config;
pub mod fib;
pub mod fsm;
pub mod peer;
pub mod policy;
pub mod rib;
pub mod route;
pub mod speaker;
pub mod status;
pub mod sync;
pub mod transport;
pub mod wire;
