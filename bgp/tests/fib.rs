//! `bgp::fib` against the real kernel, inside namespaces this test creates: what `ip route`
//! shows after installs, replaces, deletes and ECMP; that routes of other protocols are never
//! touched; that a new `Fib` keeps and later sweeps what an earlier one left; that a refused
//! route is reported while the rest of its batch applies.

use std::collections::BTreeSet;
use std::net::IpAddr;

use bgp::fib::{Fib, FibRoute};
use ipnetwork::IpNetwork;
use testutil::netns::{Netns, require_root};

/// A namespace with two directly connected next hops, 10.1.0.2 and 10.1.0.3 (and fd00:1::2),
/// behind a veth to a second namespace.
struct Lab {
    ns: Netns,
    _peer: Netns,
}

fn lab(tag: &str) -> Lab {
    let ns = Netns::new(tag).unwrap();
    let peer = Netns::new("peer").unwrap();
    Netns::veth(&ns, "eth0", "10.1.0.1/24", &peer, "eth0", "10.1.0.2/24").unwrap();
    peer.exec_ok(&["ip", "addr", "add", "10.1.0.3/24", "dev", "eth0"])
        .unwrap();
    ns.exec_ok(&["ip", "addr", "add", "fd00:1::1/64", "dev", "eth0", "nodad"])
        .unwrap();
    Lab { ns, _peer: peer }
}

impl Lab {
    /// Runs `f` with a Fib opened inside the namespace.
    fn with_fib<T: Send + 'static>(&self, f: impl FnOnce(&mut Fib) -> T + Send + 'static) -> T {
        self.ns
            .spawn_thread(move || {
                let mut fib = Fib::open(254).expect("open fib");
                f(&mut fib)
            })
            .join()
            .expect("fib thread")
            .expect("enter namespace")
    }

    fn routes(&self, proto: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for family in ["-4", "-6"] {
            let text = self
                .ns
                .exec_ok(&["ip", family, "route", "show", "proto", proto])
                .unwrap();
            // ECMP next hops come on continuation lines; fold them into their route.
            let mut current = String::new();
            for line in text.lines() {
                if line.starts_with(char::is_whitespace) {
                    current.push(' ');
                    current.push_str(line.trim());
                } else {
                    if !current.is_empty() {
                        out.insert(std::mem::take(&mut current));
                    }
                    current = line.trim().to_string();
                }
            }
            if !current.is_empty() {
                out.insert(current);
            }
        }
        out
    }
}

fn route(prefix: &str, hops: &[&str]) -> FibRoute {
    FibRoute {
        prefix: prefix.parse().unwrap(),
        next_hops: hops.iter().map(|h| h.parse::<IpAddr>().unwrap()).collect(),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn installs_replaces_deletes_and_ecmp_as_ip_route_shows_them() {
    if !require_root("installs_replaces_deletes_and_ecmp_as_ip_route_shows_them") {
        return;
    }
    let lab = lab("fib-basic");
    let report = lab.with_fib(|fib| {
        fib.apply(&[
            route("10.20.0.0/24", &["10.1.0.2"]),
            route("10.21.0.0/24", &["10.1.0.2"]),
            route("10.22.0.0/26", &["10.1.0.2", "10.1.0.3"]),
            route("fd00:20::/64", &["fd00:1::2"]),
        ])
        .unwrap()
    });
    assert_eq!(
        (report.installed, report.failed.len()),
        (4, 0),
        "{report:?}"
    );
    assert_eq!(
        lab.routes("bgp"),
        set(&[
            "10.20.0.0/24 via 10.1.0.2 dev eth0",
            "10.21.0.0/24 via 10.1.0.2 dev eth0",
            "10.22.0.0/26 nexthop via 10.1.0.2 dev eth0 weight 1 nexthop via 10.1.0.3 dev eth0 weight 1",
            "fd00:20::/64 via fd00:1::2 dev eth0 metric 1024 pref medium",
        ])
    );
    let report = lab.with_fib(|fib| {
        fib.apply(&[
            route("10.20.0.0/24", &["10.1.0.3"]),
            route("10.21.0.0/24", &[]),
            route("fd00:20::/64", &[]),
        ])
        .unwrap()
    });
    assert_eq!((report.installed, report.deleted), (1, 2), "{report:?}");
    assert_eq!(
        lab.routes("bgp"),
        set(&[
            "10.20.0.0/24 via 10.1.0.3 dev eth0",
            "10.22.0.0/26 nexthop via 10.1.0.2 dev eth0 weight 1 nexthop via 10.1.0.3 dev eth0 weight 1",
        ])
    );
}

#[test]
fn routes_of_other_protocols_are_never_touched() {
    if !require_root("routes_of_other_protocols_are_never_touched") {
        return;
    }
    let lab = lab("fib-owner");
    lab.ns
        .exec_ok(&[
            "ip",
            "route",
            "add",
            "10.30.0.0/24",
            "via",
            "10.1.0.2",
            "proto",
            "static",
        ])
        .unwrap();
    lab.ns
        .exec_ok(&[
            "ip",
            "route",
            "add",
            "10.31.0.0/24",
            "via",
            "10.1.0.2",
            "proto",
            "80",
        ])
        .unwrap();
    let report = lab.with_fib(|fib| {
        let stale = fib.stale_count();
        let r = fib
            .apply(&[route("10.30.0.0/24", &[]), route("10.31.0.0/24", &[])])
            .unwrap();
        let swept = fib.sweep_stale().unwrap();
        (stale, r, swept)
    });
    assert_eq!(report.0, 0, "other protocols' routes are not ours to sweep");
    assert_eq!(report.2, 0);
    assert_eq!(
        lab.routes("static"),
        set(&["10.30.0.0/24 via 10.1.0.2 dev eth0"])
    );
    assert_eq!(
        lab.routes("80"),
        set(&["10.31.0.0/24 via 10.1.0.2 dev eth0"])
    );
}

#[test]
fn a_new_fib_keeps_the_previous_routes_until_the_sweep() {
    if !require_root("a_new_fib_keeps_the_previous_routes_until_the_sweep") {
        return;
    }
    let lab = lab("fib-restart");
    let first: Vec<FibRoute> = (0..10)
        .map(|i| route(&format!("10.40.{i}.0/24"), &["10.1.0.2"]))
        .collect();
    lab.with_fib(move |fib| fib.apply(&first).unwrap());
    let (stale_at_open, swept) = lab.with_fib(|fib| {
        let stale = fib.stale_count();
        let again: Vec<FibRoute> = (0..5)
            .map(|i| route(&format!("10.40.{i}.0/24"), &["10.1.0.2"]))
            .collect();
        fib.apply(&again).unwrap();
        (stale, fib.sweep_stale().unwrap())
    });
    assert_eq!((stale_at_open, swept), (10, 5));
    let expected: BTreeSet<String> = (0..5)
        .map(|i| format!("10.40.{i}.0/24 via 10.1.0.2 dev eth0"))
        .collect();
    assert_eq!(lab.routes("bgp"), expected);
}

#[test]
fn a_refused_route_is_reported_and_the_rest_of_the_batch_applies() {
    if !require_root("a_refused_route_is_reported_and_the_rest_of_the_batch_applies") {
        return;
    }
    let lab = lab("fib-errors");
    let report = lab.with_fib(|fib| {
        fib.apply(&[
            route("10.50.0.0/24", &["10.1.0.2"]),
            route("10.51.0.0/24", &["192.0.2.1"]),
            route("10.52.0.0/24", &["10.1.0.2"]),
        ])
        .unwrap()
    });
    assert_eq!(report.installed, 2);
    let failed: Vec<IpNetwork> = report.failed.iter().map(|(p, _)| *p).collect();
    assert_eq!(failed, ["10.51.0.0/24".parse::<IpNetwork>().unwrap()]);
    assert!(
        report.failed[0].1.contains("unreachable"),
        "the kernel's reason: {}",
        report.failed[0].1
    );
    assert_eq!(
        lab.routes("bgp"),
        set(&[
            "10.50.0.0/24 via 10.1.0.2 dev eth0",
            "10.52.0.0/24 via 10.1.0.2 dev eth0"
        ])
    );
}

#[test]
fn twenty_thousand_routes_in_one_apply_and_out_again() {
    if !require_root("twenty_thousand_routes_in_one_apply_and_out_again") {
        return;
    }
    let lab = lab("fib-scale");
    let routes: Vec<FibRoute> = (0..20_000u32)
        .map(|i| FibRoute {
            prefix: IpNetwork::new(IpAddr::from((0x1400_0000 + (i << 8)).to_be_bytes()), 24)
                .unwrap(),
            next_hops: vec!["10.1.0.2".parse().unwrap()],
        })
        .collect();
    let deletes: Vec<FibRoute> = routes
        .iter()
        .map(|r| FibRoute {
            prefix: r.prefix,
            next_hops: Vec::new(),
        })
        .collect();
    let count = |lab: &Lab| {
        lab.ns
            .exec_ok(&["ip", "route", "show", "proto", "bgp"])
            .unwrap()
            .lines()
            .count()
    };
    let r = lab.with_fib(move |fib| fib.apply(&routes).unwrap());
    assert_eq!((r.installed, r.failed.len()), (20_000, 0));
    assert_eq!(count(&lab), 20_000);
    let r = lab.with_fib(move |fib| fib.apply(&deletes).unwrap());
    assert_eq!(r.deleted, 20_000);
    assert_eq!(count(&lab), 0);
}
