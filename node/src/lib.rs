//! `calico-node`: startup (node registration, IP autodetection, default pool, tunnel
//! addresses), then felix and the BGP speaker as tasks of one process.
//!
//! Built in the calico-node issue. Thin: it parses the environment and calls the libraries.
//! So far the binary (`src/main.rs`) runs the BGP speaker (`calico-node -bgp`) and answers
//! Calico's BGP health flags (`-bgp-ready`/`-bird-ready`, `-bgp-live`/`-bird-live`).
