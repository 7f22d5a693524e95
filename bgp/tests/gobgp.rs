//! Our speaker against GoBGP 3 in its own network namespace: eBGP with 2- and 4-octet AS
//! numbers and iBGP, routes both ways (GoBGP runs without zebra, so its side is its RIB; ours
//! is our kernel FIB), communities, route refresh, TCP MD5 (right, wrong, missing) and GTSM.

mod common;

use std::time::Duration;

use common::*;
use testutil::netns::wait_for;
use testutil::routers::GoBgp;

const UP: Duration = Duration::from_secs(30);

/// GoBGP at 10.0.0.2 in `local_as`, peering with us (10.0.0.1, `peer_as`); `extra` is added
/// to the neighbor's table (`auth-password = ...`) and `sections` after it (ttl-security).
fn gobgp_conf(local_as: u32, peer_as: u32, extra: &str, sections: &str) -> String {
    format!(
        r#"[global.config]
  as = {local_as}
  router-id = "10.0.0.2"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.0.0.1"
    peer-as = {peer_as}
    {extra}
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
{sections}
"#
    )
}

fn start(lab: &Lab, conf: &str) -> GoBgp {
    let g = GoBgp::start(&lab.peer, conf).unwrap();
    g.cli(&[
        "global",
        "rib",
        "add",
        "-a",
        "ipv4",
        "10.99.200.0/24",
        "nexthop",
        "10.0.0.2",
    ])
    .unwrap();
    g
}

fn assert_routes_both_ways(lab: &Lab, gobgp: &GoBgp) {
    wait_for("10.99.200.0/24 via 10.0.0.2 in our kernel", UP, || {
        lab.our_routes()
            .iter()
            .any(|r| r == "10.99.200.0/24 via 10.0.0.2 dev eth0")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", gobgp.log()));
    wait_for("10.244.1.0/26 from 10.0.0.1 in GoBGP", UP, || {
        gobgp
            .cli(&["global", "rib", "-a", "ipv4", "10.244.1.0/26"])
            .is_ok_and(|r| r.contains("10.244.1.0/26") && r.contains("10.0.0.1"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", gobgp.log()));
}

#[test]
fn gobgp_ebgp_two_and_four_octet_as_and_ibgp_routes_both_ways() {
    if !require_peers("gobgp_ebgp_two_and_four_octet_as_and_ibgp_routes_both_ways") {
        return;
    }
    for (ours, theirs) in [
        (65001, 65002),
        (4_200_000_001, 4_200_000_002),
        (65001, 65001),
    ] {
        let lab = Lab::new("gobgp");
        let gobgp = start(&lab, &gobgp_conf(theirs, ours, "", ""));
        let _speaker = lab.start_speaker(desired(ours, vec![peer("10.0.0.2", theirs)]));
        wait_for("GoBGP Established", UP, || gobgp.established("10.0.0.1"))
            .unwrap_or_else(|e| panic!("AS {ours} vs {theirs}: {e}\n{}", gobgp.log()));
        assert_routes_both_ways(&lab, &gobgp);
        if ours != theirs {
            let shown = gobgp
                .cli(&["global", "rib", "-a", "ipv4", "10.244.1.0/26"])
                .unwrap();
            assert!(
                shown.contains(&ours.to_string()),
                "AS path has {ours}: {shown}"
            );
        }
    }
}

#[test]
fn gobgp_sees_our_communities() {
    if !require_peers("gobgp_sees_our_communities") {
        return;
    }
    let lab = Lab::new("gobgpcomm");
    let gobgp = start(&lab, &gobgp_conf(65002, 65001, "", ""));
    let mut d = desired(65001, vec![peer("10.0.0.2", 65002)]);
    d.local_routes.insert(
        "10.244.1.0/26".parse().unwrap(),
        bgp::route::LocalRoute {
            communities: vec![bgp::wire::Community((65001 << 16) | 100)],
            large_communities: vec![bgp::wire::LargeCommunity {
                global_admin: 65001,
                local_data_1: 1,
                local_data_2: 2,
            }],
        },
    );
    let _speaker = lab.start_speaker(d);
    wait_for("10.244.1.0/26 with our communities in GoBGP", UP, || {
        gobgp
            .cli(&["global", "rib", "-a", "ipv4", "10.244.1.0/26"])
            .is_ok_and(|r| r.contains("65001:100") && r.contains("65001:1:2"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", gobgp.log()));
}

/// GoBGP's "Message statistics" row `label` (`Updates:`, `Route Refresh:`): (sent, received).
fn message_stats(gobgp: &GoBgp, label: &str) -> (u64, u64) {
    let text = gobgp.cli(&["neighbor", "10.0.0.1"]).unwrap_or_default();
    let nums: Vec<u64> = text
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
    )
}

/// GoBGP keeps its Adj-RIB-In and never asks for a refresh, so here we are the side that
/// asks: a new import policy for the session sends ROUTE-REFRESH (RFC 2918) instead of
/// resetting it, and GoBGP answers by sending its routes again.
#[test]
fn we_ask_gobgp_for_a_route_refresh_when_our_import_policy_changes() {
    if !require_peers("we_ask_gobgp_for_a_route_refresh_when_our_import_policy_changes") {
        return;
    }
    let lab = Lab::new("gobgprr");
    let gobgp = start(&lab, &gobgp_conf(65002, 65001, "", ""));
    let speaker = lab.start_speaker(desired(65001, vec![peer("10.0.0.2", 65002)]));
    wait_for("GoBGP Established", UP, || gobgp.established("10.0.0.1")).unwrap();
    assert_routes_both_ways(&lab, &gobgp);
    let (sent_before, _) = message_stats(&gobgp, "Updates:");
    let mut d = desired(65001, vec![peer("10.0.0.2", 65002)]);
    d.policies.insert(
        "Node_10_0_0_2".into(),
        std::sync::Arc::new(bgp::route::AcceptAll),
    );
    speaker.apply(d);
    wait_for("GoBGP to receive our ROUTE-REFRESH and resend", UP, || {
        message_stats(&gobgp, "Route Refresh:").1 == 1
            && message_stats(&gobgp, "Updates:").0 > sent_before
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            gobgp.cli(&["neighbor", "10.0.0.1"]).unwrap_or_default()
        )
    });
    assert!(gobgp.established("10.0.0.1"), "the session was not reset");
    assert!(
        lab.our_routes()
            .iter()
            .any(|r| r == "10.99.200.0/24 via 10.0.0.2 dev eth0")
    );
}

#[test]
fn gobgp_md5_right_password_up_wrong_or_missing_refused() {
    if !require_peers("gobgp_md5_right_password_up_wrong_or_missing_refused") {
        return;
    }
    for (ours, up) in [
        (Some("s3cret"), true),
        (Some("wrong"), false),
        (None, false),
    ] {
        let lab = Lab::new("gobgpmd5");
        let gobgp = start(
            &lab,
            &gobgp_conf(65002, 65001, r#"auth-password = "s3cret""#, ""),
        );
        let mut d = desired(65001, vec![peer("10.0.0.2", 65002)]);
        if let Some(pw) = ours {
            d.passwords.insert("Node_10_0_0_2".into(), pw.into());
        }
        let _speaker = lab.start_speaker(d);
        if up {
            wait_for("GoBGP Established with MD5", UP, || {
                gobgp.established("10.0.0.1")
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", gobgp.log()));
            assert_routes_both_ways(&lab, &gobgp);
        } else {
            wait_for(
                "the kernel dropping segments for their MD5 signature",
                UP,
                || lab.md5_drops() > 0,
            )
            .unwrap();
            assert!(
                !gobgp.established("10.0.0.1"),
                "password {ours:?} must be refused"
            );
        }
    }
}

#[test]
fn gobgp_gtsm_directly_connected() {
    if !require_peers("gobgp_gtsm_directly_connected") {
        return;
    }
    let lab = Lab::new("gobgpgtsm");
    let gobgp = start(
        &lab,
        &gobgp_conf(
            65002,
            65001,
            "",
            "  [neighbors.ttl-security.config]\n    enabled = true\n    ttl-min = 255\n",
        ),
    );
    let mut p = peer("10.0.0.2", 65002);
    p.ttl_security = Some(1);
    let _speaker = lab.start_speaker(desired(65001, vec![p]));
    wait_for("GoBGP Established with GTSM", UP, || {
        gobgp.established("10.0.0.1")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", gobgp.log()));
    assert_routes_both_ways(&lab, &gobgp);
}
