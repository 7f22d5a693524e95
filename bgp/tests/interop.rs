//! Our speaker against BIRD 2 in its own network namespace: eBGP and iBGP, 2- and 4-octet AS
//! numbers, routes both ways into each side's kernel FIB, route refresh, TCP MD5, GTSM, IPv6,
//! and graceful restart both ways (FRR and GoBGP: `frr.rs`, `gobgp.rs`). Our speaker runs
//! in-process on a tokio runtime whose threads live in our namespace; the peers are the Debian
//! daemons.

mod common;

use std::time::Duration;

use common::*;
use testutil::netns::wait_for;
use testutil::routers::Bird;

const UP: Duration = Duration::from_secs(30);

fn bird_conf(local_as: u32, peer_as: u32, extra_protocol: &str, extra_bgp: &str) -> String {
    format!(
        r#"log stderr all;
router id 10.0.0.2;
protocol device {{ scan time 10; }}
protocol kernel {{
  ipv4 {{ import none; export where source = RTS_BGP; }};
  merge paths on;
}}
protocol static {{ ipv4; route 10.99.200.0/24 blackhole; }}
{extra_protocol}
protocol bgp ours {{
  local 10.0.0.2 as {local_as};
  neighbor 10.0.0.1 as {peer_as};
  hold time 90; connect retry time 1; connect delay time 1; error wait time 1, 5;
  graceful restart on;
  {extra_bgp}
  ipv4 {{ gateway direct; import all; export where source ~ [RTS_STATIC, RTS_BGP]; }};
}}
"#
    )
}

/// Routes both ways: ours in BIRD's kernel, BIRD's static route in ours.
fn assert_routes_both_ways(lab: &Lab, bird: &Bird) {
    let diag = |e: String| {
        panic!(
            "{e}\nBIRD routes:\n{}\nBIRD kernel: {:?}\nour kernel: {:?}\nBIRD log:\n{}",
            bird.birdc("show route all").unwrap_or_default(),
            lab.peer_routes("bird"),
            lab.our_routes(),
            bird.log()
        )
    };
    wait_for("10.244.1.0/26 via 10.0.0.1 in BIRD's kernel", UP, || {
        lab.peer_routes("bird")
            .iter()
            .any(|r| r.starts_with("10.244.1.0/26 via 10.0.0.1 dev eth0"))
    })
    .unwrap_or_else(diag);
    wait_for("10.99.200.0/24 via 10.0.0.2 in our kernel", UP, || {
        lab.our_routes()
            .iter()
            .any(|r| r == "10.99.200.0/24 via 10.0.0.2 dev eth0")
    })
    .unwrap_or_else(diag);
}

#[test]
fn bird_ebgp_two_and_four_octet_as_and_ibgp() {
    if !require_peers("bird_ebgp_two_and_four_octet_as_and_ibgp") {
        return;
    }
    // (our AS, BIRD's AS, what BIRD is told our AS is, extra BIRD options)
    let cases = [
        (65001, 65002, 65001, ""),
        (4_200_000_001, 4_200_000_002, 4_200_000_001, ""),
        // BIRD without the 4-octet AS capability: both sides encode AS_PATH in 2 octets
        // (RFC 6793 §4.2). (BIRD still reads our capability, so it cannot play an old speaker
        // facing a 4-octet AS; the AS_TRANS/AS4_PATH encoding is covered by the codec tests.)
        (65001, 65002, 65001, "enable as4 off;"),
        (65001, 65001, 65001, "direct;"),
    ];
    for (ours, theirs, told, extra) in cases {
        let lab = Lab::new("bird");
        let bird = Bird::start(&lab.peer, &bird_conf(theirs, told, "", extra)).unwrap();
        let speaker = lab.start_speaker(desired(ours, vec![peer("10.0.0.2", theirs)]));
        wait_for("BIRD Established", UP, || bird.established("ours"))
            .unwrap_or_else(|e| panic!("AS {ours} vs {theirs}: {e}\n{}", bird.log()));
        assert_routes_both_ways(&lab, &bird);
        if theirs != ours {
            let route = bird.birdc("show route 10.244.1.0/26 all").unwrap();
            assert!(
                route.contains(&format!("BGP.as_path: {told}")),
                "AS {ours} vs {theirs}: {route}"
            );
        }
        drop(speaker);
    }
}

#[test]
fn bird_route_refresh_resends_our_routes() {
    if !require_peers("bird_route_refresh_resends_our_routes") {
        return;
    }
    let lab = Lab::new("refresh");
    let bird = Bird::start(&lab.peer, &bird_conf(65002, 65001, "", "")).unwrap();
    let _speaker = lab.start_speaker(desired(65001, vec![peer("10.0.0.2", 65002)]));
    assert_routes_both_ways(&lab, &bird);
    let received = || import_updates_received(&bird.birdc("show protocols all ours").unwrap());
    let before = received();
    // BIRD sends ROUTE-REFRESH (RFC 2918); we answer with our whole Adj-RIB-Out.
    bird.birdc("reload in ours").unwrap();
    wait_for("our routes sent again after ROUTE-REFRESH", UP, || {
        received() > before
    })
    .unwrap();
    assert!(bird.established("ours"));
}

/// The "received" column of BIRD's "Import updates:" statistics line.
fn import_updates_received(show: &str) -> u64 {
    show.lines()
        .find(|l| l.trim_start().starts_with("Import updates:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn bird_md5_right_password_up_wrong_or_missing_refused() {
    if !require_peers("bird_md5_right_password_up_wrong_or_missing_refused") {
        return;
    }
    for (ours, up) in [
        (Some("s3cret"), true),
        (Some("wrong"), false),
        (None, false),
    ] {
        let lab = Lab::new("md5");
        let bird = Bird::start(
            &lab.peer,
            &bird_conf(65002, 65001, "", r#"password "s3cret";"#),
        )
        .unwrap();
        let mut d = desired(65001, vec![peer("10.0.0.2", 65002)]);
        if let Some(pw) = ours {
            d.passwords.insert("Node_10_0_0_2".into(), pw.into());
        }
        let _speaker = lab.start_speaker(d);
        if up {
            wait_for("BIRD Established with MD5", UP, || bird.established("ours"))
                .unwrap_or_else(|e| panic!("{e}\n{}", bird.log()));
            assert_routes_both_ways(&lab, &bird);
        } else {
            // The kernel drops the segments (RFC 2385): wait until it has done so, then the
            // session must not be up.
            wait_for(
                "the kernel dropping segments for their MD5 signature",
                UP,
                || lab.md5_drops() > 0,
            )
            .unwrap();
            assert!(
                !bird.established("ours"),
                "password {ours:?} must be refused"
            );
        }
    }
}

#[test]
fn bird_gtsm_directly_connected() {
    if !require_peers("bird_gtsm_directly_connected") {
        return;
    }
    let lab = Lab::new("gtsm");
    let bird = Bird::start(&lab.peer, &bird_conf(65002, 65001, "", "ttl security on;")).unwrap();
    let mut p = peer("10.0.0.2", 65002);
    p.ttl_security = Some(1);
    let _speaker = lab.start_speaker(desired(65001, vec![p]));
    wait_for("BIRD Established with GTSM", UP, || {
        bird.established("ours")
    })
    .unwrap();
    assert_routes_both_ways(&lab, &bird);
}

/// Polls `route` in `ns`'s kernel until told to stop; returns how many polls missed it.
fn watch_route(
    ns: &testutil::netns::Netns,
    route: &'static str,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<(u32, u32)>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let name = ns.name().to_string();
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let (mut polls, mut missed) = (0, 0);
        while !s.load(Ordering::Relaxed) {
            let out = std::process::Command::new("ip")
                .args(["-n", &name, "route", "show", route])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            polls += 1;
            if !out.contains(route) {
                missed += 1;
            }
        }
        (polls, missed)
    });
    (stop, h)
}

#[test]
fn graceful_restart_with_bird_keeps_every_route_in_both_kernels() {
    if !require_peers("graceful_restart_with_bird_keeps_every_route_in_both_kernels") {
        return;
    }
    let lab = Lab::new("gr");
    let bird = Bird::start(&lab.peer, &bird_conf(65002, 65001, "", "")).unwrap();
    let speaker = lab.start_speaker(desired(65001, vec![peer("10.0.0.2", 65002)]));
    assert_routes_both_ways(&lab, &bird);
    let (stop_bird, bird_watch) = watch_route(&lab.peer, "10.244.1.0/26");
    let (stop_ours, our_watch) = watch_route(&lab.ours, "10.99.200.0/24");

    // A crash: no NOTIFICATION; BIRD, as RFC 4724 helper, keeps our routes as stale.
    speaker.kill();
    wait_for("BIRD to notice the restart", UP, || {
        !bird.established("ours")
    })
    .unwrap();
    let route = bird.birdc("show route 10.244.1.0/26 all").unwrap();
    assert!(
        route.contains("10.244.1.0/26"),
        "BIRD dropped our route: {route}"
    );
    let proto = bird.birdc("show protocols all ours").unwrap();
    assert!(
        proto.contains("Neighbor graceful restart active"),
        "BIRD is not helping: {proto}"
    );

    // The restarted speaker finds its routes in the kernel, keeps them until BIRD's
    // End-of-RIB, and BIRD keeps ours until our End-of-RIB.
    let speaker = lab.start_speaker(desired(65001, vec![peer("10.0.0.2", 65002)]));
    wait_for("BIRD Established again", UP, || bird.established("ours")).unwrap();
    let mut state = speaker.state.clone();
    wait_for("our stale routes swept after End-of-RIB", UP, || {
        let s = state.borrow_and_update();
        s.stale_fib_routes == 0 && s.routes >= 2
    })
    .unwrap();
    assert_routes_both_ways(&lab, &bird);
    stop_bird.store(true, std::sync::atomic::Ordering::Relaxed);
    stop_ours.store(true, std::sync::atomic::Ordering::Relaxed);
    let (bird_polls, bird_missed) = bird_watch.join().unwrap();
    let (our_polls, our_missed) = our_watch.join().unwrap();
    assert_eq!(
        bird_missed, 0,
        "BIRD's kernel lost our route in {bird_missed} of {bird_polls} polls"
    );
    assert_eq!(
        our_missed, 0,
        "our kernel lost BIRD's route in {our_missed} of {our_polls} polls"
    );
    assert!(bird_polls > 0 && our_polls > 0);
}

#[test]
fn graceful_restart_helper_keeps_a_restarting_birds_routes() {
    if !require_peers("graceful_restart_helper_keeps_a_restarting_birds_routes") {
        return;
    }
    let lab = Lab::new("grh");
    let conf = bird_conf(65002, 65001, "", "");
    let mut bird = Bird::start(&lab.peer, &conf).unwrap();
    let speaker = lab.start_speaker(desired(65001, vec![peer("10.0.0.2", 65002)]));
    assert_routes_both_ways(&lab, &bird);
    let (stop, watch) = watch_route(&lab.ours, "10.99.200.0/24");
    // BIRD crashes; we are its RFC 4724 helper and keep its route as stale.
    bird.kill();
    let mut state = speaker.state.clone();
    wait_for("our session to notice", UP, || {
        state
            .borrow_and_update()
            .peers
            .iter()
            .all(|p| p.state != bgp::fsm::State::Established)
    })
    .unwrap();
    assert!(
        lab.our_routes()
            .iter()
            .any(|r| r.starts_with("10.99.200.0/24 via 10.0.0.2")),
        "the route must survive the peer's restart"
    );
    let bird = Bird::start(&lab.peer, &conf).unwrap();
    wait_for("BIRD back", UP, || bird.established("ours")).unwrap();
    assert_routes_both_ways(&lab, &bird);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (polls, missed) = watch.join().unwrap();
    assert_eq!(
        missed, 0,
        "our kernel lost BIRD's route in {missed} of {polls} polls"
    );
}

#[test]
fn bird_ipv6_session_carries_ipv6_routes_both_ways() {
    if !require_peers("bird_ipv6_session_carries_ipv6_routes_both_ways") {
        return;
    }
    let lab = Lab::new("v6");
    for (ns, addr) in [(&lab.ours, "fd00:1::1/64"), (&lab.peer, "fd00:1::2/64")] {
        ns.exec_ok(&["ip", "addr", "add", addr, "dev", "eth0", "nodad"])
            .unwrap();
    }
    let bird = Bird::start(
        &lab.peer,
        r#"log stderr all;
router id 10.0.0.2;
protocol device { scan time 10; }
protocol kernel { ipv6 { import none; export where source = RTS_BGP; }; }
protocol static { ipv6; route fd00:99::/48 blackhole; }
protocol bgp ours {
  local fd00:1::2 as 65002;
  neighbor fd00:1::1 as 65001;
  connect retry time 1; connect delay time 1; error wait time 1, 5;
  ipv6 { import all; export where source ~ [RTS_STATIC, RTS_BGP]; };
}
"#,
    )
    .unwrap();
    let mut d = desired(65001, vec![peer("fd00:1::2", 65002)]);
    d.local_routes
        .insert("fd00:244::/64".parse().unwrap(), Default::default());
    let _speaker = lab.start_speaker(d);
    wait_for("BIRD Established over IPv6", UP, || {
        bird.established("ours")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", bird.log()));
    let v6 = |ns: &testutil::netns::Netns, proto: &str| {
        ns.exec_ok(&["ip", "-6", "route", "show", "proto", proto])
            .unwrap_or_default()
    };
    wait_for("fd00:244::/64 via fd00:1::1 in BIRD's kernel", UP, || {
        v6(&lab.peer, "bird").contains("fd00:244::/64 via fd00:1::1 dev eth0")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", bird.birdc("show route all").unwrap_or_default()));
    wait_for("fd00:99::/48 via fd00:1::2 in our kernel", UP, || {
        v6(&lab.ours, "bgp").contains("fd00:99::/48 via fd00:1::2 dev eth0")
    })
    .unwrap();
}

#[test]
fn bird_reaches_us_on_our_listen_port_and_sees_our_source_address() {
    if !require_peers("bird_reaches_us_on_our_listen_port_and_sees_our_source_address") {
        return;
    }
    // listenPort: we wait (passive) on 1179 and BIRD dials it.
    let lab = Lab::new("port");
    let bird = Bird::start(
        &lab.peer,
        &bird_conf(65002, 65001, "", "").replace(
            "neighbor 10.0.0.1 as 65001;",
            "neighbor 10.0.0.1 port 1179 as 65001;",
        ),
    )
    .unwrap();
    let mut d = desired(65001, vec![peer("10.0.0.2", 65002)]);
    d.node.listen_port = 1179;
    d.node.peers[0].passive = true;
    let speaker = lab.start_speaker(d);
    wait_for("BIRD Established on port 1179", UP, || {
        bird.established("ours")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", bird.log()));
    assert_routes_both_ways(&lab, &bird);
    drop(speaker);

    // sourceAddress: BIRD knows us only as 10.0.0.11, a second address of ours.
    let lab = Lab::new("src");
    lab.ours
        .exec_ok(&["ip", "addr", "add", "10.0.0.11/24", "dev", "eth0"])
        .unwrap();
    let bird = Bird::start(
        &lab.peer,
        &bird_conf(65002, 65001, "", "").replace("neighbor 10.0.0.1 as", "neighbor 10.0.0.11 as"),
    )
    .unwrap();
    let mut d = desired(65001, vec![peer("10.0.0.2", 65002)]);
    d.node.peers[0].source_address = Some("10.0.0.11".parse().unwrap());
    let _speaker = lab.start_speaker(d);
    wait_for("BIRD Established with our source address", UP, || {
        bird.established("ours")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", bird.log()));
    // Next hop self is the session's own address.
    wait_for("10.244.1.0/26 via 10.0.0.11 in BIRD's kernel", UP, || {
        lab.peer_routes("bird")
            .iter()
            .any(|r| r.starts_with("10.244.1.0/26 via 10.0.0.11"))
    })
    .unwrap();
}

#[test]
fn a_changed_install_filter_moves_learned_routes_in_and_out_of_the_kernel() {
    if !require_peers("a_changed_install_filter_moves_learned_routes_in_and_out_of_the_kernel") {
        return;
    }
    let lab = Lab::new("inst");
    let bird = Bird::start(&lab.peer, &bird_conf(65002, 65001, "", "")).unwrap();
    // As if 10.99.200.0/24 lay in an IPIP pool: felix's, not ours to install.
    let felix_owns: bgp::speaker::InstallFilter =
        std::sync::Arc::new(|p: &ipnetwork::IpNetwork| p.to_string() != "10.99.200.0/24");
    let mut d = desired(65001, vec![peer("10.0.0.2", 65002)]);
    d.install = felix_owns.clone();
    let speaker = lab.start_speaker(d);
    wait_for("BIRD Established", UP, || bird.established("ours")).unwrap();
    let mut state = speaker.state.clone();
    wait_for("BIRD's route in our RIB", UP, || {
        state
            .borrow_and_update()
            .peers
            .iter()
            .any(|p| p.routes_received == 1)
    })
    .unwrap();
    let ours = |lab: &Lab| {
        lab.our_routes()
            .iter()
            .any(|r| r.starts_with("10.99.200.0/24"))
    };
    assert!(!ours(&lab), "not installed while the pool is encapsulated");
    // The pool becomes no-encap: the route goes in, without waiting for it to change.
    speaker.apply(desired(65001, vec![peer("10.0.0.2", 65002)]));
    wait_for("10.99.200.0/24 installed", UP, || ours(&lab)).unwrap();
    // And back.
    let mut d = desired(65001, vec![peer("10.0.0.2", 65002)]);
    d.install = felix_owns;
    speaker.apply(d);
    wait_for("10.99.200.0/24 removed", UP, || !ours(&lab)).unwrap();
    assert!(bird.established("ours"), "no session was reset");
}
