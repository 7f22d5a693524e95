//! Installing N /24s into a namespace's kernel FIB: `bgp::fib` (batched, acks only for
//! errors) against `ip -batch` (one request and one ack per route), same routes, same run.
//!
//!     cargo bench -p bgp --bench fib                  # N = 100,000
//!     FIB_BENCH_N=1000000 cargo bench -p bgp --bench fib
//!
//! Needs root; without it, says so and does nothing.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Instant;

use bgp::fib::{Fib, FibRoute};
use ipnetwork::IpNetwork;
use testutil::netns::Netns;

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("fib bench: needs root; skipped");
        return;
    }
    let n: u32 = std::env::var("FIB_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let prefixes: Vec<IpNetwork> = (0..n)
        .map(|i| {
            IpNetwork::new(IpAddr::V4(Ipv4Addr::from((20u32 << 24) + (i << 8))), 24).expect("/24")
        })
        .collect();
    let gw: IpAddr = "10.99.12.1".parse().expect("address");

    let (ns, _peer) = lab();
    let routes: Vec<FibRoute> = prefixes
        .iter()
        .map(|p| FibRoute {
            prefix: *p,
            next_hops: vec![gw],
        })
        .collect();
    let ours = ns
        .spawn_thread(move || {
            let mut fib = Fib::open(254).expect("fib");
            let start = Instant::now();
            let r = fib.apply(&routes).expect("apply");
            assert_eq!(r.installed, routes.len(), "{:?}", r.failed.first());
            start.elapsed().as_secs_f64()
        })
        .join()
        .expect("thread")
        .expect("namespace");
    drop(ns);

    let (ns, _peer) = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("routes");
    let mut text = String::new();
    for p in &prefixes {
        let _ = writeln!(text, "route add {p} via {gw} proto 186");
    }
    std::fs::write(&file, text).expect("write");
    let start = Instant::now();
    let ok = Command::new("ip")
        .args(["-n", ns.name(), "-batch"])
        .arg(&file)
        .status()
        .expect("ip")
        .success();
    let ip = start.elapsed().as_secs_f64();
    assert!(ok, "ip -batch failed");
    println!(
        "N={n} bgp::fib {ours:.2} s, ip -batch {ip:.2} s, ratio {:.2}x",
        ours / ip
    );
}

fn lab() -> (Netns, Netns) {
    let a = Netns::new("fibbench").expect("netns");
    let b = Netns::new("fibpeer").expect("netns");
    Netns::veth(&a, "eth0", "10.99.12.2/24", &b, "eth0", "10.99.12.1/24").expect("veth");
    (a, b)
}
