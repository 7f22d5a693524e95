//! The workspace's one test harness for real external parts: etcd, network namespaces and
//! real BGP routers (BIRD 2, FRR, GoBGP) inside them.
//!
//! [`etcd::Etcd`] runs Debian's `etcd` (3.4) as a child process on free loopback ports in a
//! fresh temporary directory (`--unsafe-no-fsync`, as DESIGN.md's test setup says), waits until
//! it answers a real request, and can kill, restart and stop it so tests can exercise a
//! datastore that goes away. [`etcd::start_or_skip`] applies the workspace's skip policy: a
//! machine without etcd skips the test, unless `CI` is set, where a missing etcd is fatal.
//!
//! It must never touch anything outside its own temporary directory, nor signal any process it
//! did not start itself: it kills only the pid of the child it spawned, and removes only the
//! directory it created, also when a test panics.

pub mod etcd;
pub mod netns;
pub mod routers;
