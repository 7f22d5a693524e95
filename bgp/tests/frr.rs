//! Our speaker against FRR 8 (zebra + bgpd) in its own network namespace: eBGP with 2- and
//! 4-octet AS numbers and iBGP, routes both ways into both kernels, route refresh, TCP MD5
//! (right, wrong, missing) and GTSM.

mod common;

use std::time::Duration;

use common::*;
use testutil::netns::wait_for;
use testutil::routers::Frr;

const UP: Duration = Duration::from_secs(30);

/// FRR at 10.0.0.2 in `local_as`, peering with us (10.0.0.1, `peer_as`), originating
/// 10.99.200.0/24; `extra` adds neighbor lines (`password ...`, `ttl-security hops 1`).
fn frr_conf(local_as: u32, peer_as: u32, extra: &[&str]) -> String {
    let mut c = format!(
        "hostname frr-test\nrouter bgp {local_as}\n bgp router-id 10.0.0.2\n no bgp ebgp-requires-policy\n no bgp network import-check\n neighbor 10.0.0.1 remote-as {peer_as}\n neighbor 10.0.0.1 timers connect 1\n"
    );
    for e in extra {
        c.push_str(&format!(" neighbor 10.0.0.1 {e}\n"));
    }
    c.push_str(" address-family ipv4 unicast\n  network 10.99.200.0/24\n exit-address-family\n");
    c
}

fn neighbor(frr: &Frr) -> serde_json::Value {
    let text = frr
        .vtysh("show bgp neighbors 10.0.0.1 json")
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("10.0.0.1").cloned())
        .unwrap_or_default()
}

fn assert_routes_both_ways(lab: &Lab, frr: &Frr) {
    let diag = |e: String| -> () {
        panic!(
            "{e}\nFRR:\n{}\nFRR kernel: {:?}\nour kernel: {:?}\n{}",
            frr.vtysh("show bgp ipv4 unicast").unwrap_or_default(),
            lab.peer_routes("bgp"),
            lab.our_routes(),
            frr.log()
        )
    };
    wait_for("10.244.1.0/26 via 10.0.0.1 in FRR's kernel", UP, || {
        lab.peer
            .exec_ok(&["ip", "route", "show", "10.244.1.0/26"])
            .is_ok_and(|r| r.contains("via 10.0.0.1") && r.contains("proto bgp"))
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
fn frr_ebgp_two_and_four_octet_as_and_ibgp_routes_both_ways() {
    if !require_peers("frr_ebgp_two_and_four_octet_as_and_ibgp_routes_both_ways") {
        return;
    }
    for (ours, theirs) in [
        (65001, 65002),
        (4_200_000_001, 4_200_000_002),
        (65001, 65001),
    ] {
        let lab = Lab::new("frr");
        let frr = Frr::start(&lab.peer, &frr_conf(theirs, ours, &[])).unwrap();
        let _speaker = lab.start_speaker(desired(ours, vec![peer("10.0.0.2", theirs)]));
        wait_for("FRR Established", UP, || frr.established("10.0.0.1"))
            .unwrap_or_else(|e| panic!("AS {ours} vs {theirs}: {e}\n{}", frr.log()));
        assert_routes_both_ways(&lab, &frr);
        let shown = frr.vtysh("show bgp ipv4 unicast 10.244.1.0/26").unwrap();
        if ours != theirs {
            assert!(
                shown.contains(&ours.to_string()),
                "AS path has {ours}: {shown}"
            );
        } else {
            assert!(
                shown.contains("Local") || shown.contains("internal"),
                "iBGP: {shown}"
            );
        }
    }
}

#[test]
fn frr_route_refresh_resends_our_routes() {
    if !require_peers("frr_route_refresh_resends_our_routes") {
        return;
    }
    let lab = Lab::new("frrrr");
    let frr = Frr::start(&lab.peer, &frr_conf(65002, 65001, &[])).unwrap();
    let _speaker = lab.start_speaker(desired(65001, vec![peer("10.0.0.2", 65002)]));
    wait_for("FRR Established", UP, || frr.established("10.0.0.1")).unwrap();
    assert_routes_both_ways(&lab, &frr);
    let updates = || {
        neighbor(&frr)["messageStats"]["updatesRecv"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = updates();
    // Without soft-reconfiguration FRR asks us with ROUTE-REFRESH (RFC 2918).
    frr.vtysh("clear bgp ipv4 unicast 10.0.0.1 soft in")
        .unwrap();
    wait_for(
        "our routes sent again after FRR's ROUTE-REFRESH",
        UP,
        || updates() > before,
    )
    .unwrap();
    assert!(frr.established("10.0.0.1"));
}

#[test]
fn frr_md5_right_password_up_wrong_or_missing_refused() {
    if !require_peers("frr_md5_right_password_up_wrong_or_missing_refused") {
        return;
    }
    for (ours, up) in [
        (Some("s3cret"), true),
        (Some("wrong"), false),
        (None, false),
    ] {
        let lab = Lab::new("frrmd5");
        let frr = Frr::start(&lab.peer, &frr_conf(65002, 65001, &["password s3cret"])).unwrap();
        let mut d = desired(65001, vec![peer("10.0.0.2", 65002)]);
        if let Some(pw) = ours {
            d.passwords.insert("Node_10_0_0_2".into(), pw.into());
        }
        let _speaker = lab.start_speaker(d);
        if up {
            wait_for("FRR Established with MD5", UP, || {
                frr.established("10.0.0.1")
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", frr.log()));
            assert_routes_both_ways(&lab, &frr);
        } else {
            wait_for(
                "the kernel dropping segments for their MD5 signature",
                UP,
                || lab.md5_drops() > 0,
            )
            .unwrap();
            assert!(
                !frr.established("10.0.0.1"),
                "password {ours:?} must be refused"
            );
        }
    }
}

#[test]
fn frr_gtsm_directly_connected() {
    if !require_peers("frr_gtsm_directly_connected") {
        return;
    }
    let lab = Lab::new("frrgtsm");
    let frr = Frr::start(&lab.peer, &frr_conf(65002, 65001, &["ttl-security hops 1"])).unwrap();
    let mut p = peer("10.0.0.2", 65002);
    p.ttl_security = Some(1);
    let _speaker = lab.start_speaker(desired(65001, vec![p]));
    wait_for("FRR Established with GTSM", UP, || {
        frr.established("10.0.0.1")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", frr.log()));
    assert_routes_both_ways(&lab, &frr);
}
