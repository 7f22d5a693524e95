//! Route reflection (RFC 4456) with BIRD 2: our speaker reflecting between two BIRD clients,
//! and our speaker as a client of a BIRD reflector. All iBGP in AS 65001 on one bridge:
//! ours 10.0.0.1, BIRDs 10.0.0.2 and 10.0.0.3.

mod common;

use std::time::Duration;

use common::*;
use testutil::netns::{Fabric, Netns, wait_for};
use testutil::routers::Bird;

const UP: Duration = Duration::from_secs(30);

/// BIRD at 10.0.0.`me` with a static /24 10.99.`me`.0/24 and iBGP sessions to `neighbors`
/// (address, is it our reflector client).
fn bird_conf(me: u8, neighbors: &[(&str, bool)]) -> String {
    let mut c = format!(
        r#"log stderr all;
router id 10.0.0.{me};
protocol device {{ scan time 10; }}
protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}
protocol static {{ ipv4; route 10.99.{me}.0/24 blackhole; }}
"#
    );
    for (i, (addr, client)) in neighbors.iter().enumerate() {
        c.push_str(&format!(
            r#"protocol bgp n{i} {{
  local 10.0.0.{me} as 65001;
  neighbor {addr} as 65001;
  direct; {}
  hold time 90; connect retry time 1; connect delay time 1; error wait time 1, 5;
  ipv4 {{ gateway direct; import all; export where source ~ [RTS_STATIC, RTS_BGP]; }};
}}
"#,
            if *client {
                "rr client; rr cluster id 10.0.0.2;"
            } else {
                ""
            }
        ));
    }
    c
}

fn has(routes: &[String], prefix_via: &str) -> bool {
    routes.iter().any(|r| r.starts_with(prefix_via))
}

/// Us (10.0.0.1) and two BIRDs (10.0.0.2, 10.0.0.3) on one bridge.
fn fabric(tag: &str) -> Fabric {
    Fabric::new(tag, &["10.0.0.1/24", "10.0.0.2/24", "10.0.0.3/24"]).unwrap()
}

fn routes(ns: &Netns, proto: &str) -> Vec<String> {
    Lab::routes(ns, proto)
}

#[test]
fn we_reflect_between_two_bird_clients() {
    if !require_peers("we_reflect_between_two_bird_clients") {
        return;
    }
    let f = fabric("rr");
    let b2 = Bird::start(&f.members[1], &bird_conf(2, &[("10.0.0.1", false)])).unwrap();
    let b3 = Bird::start(&f.members[2], &bird_conf(3, &[("10.0.0.1", false)])).unwrap();
    let mut d = desired(65001, Vec::new());
    d.node.cluster_id = Some("1.1.1.1".into());
    for ip in ["10.0.0.2", "10.0.0.3"] {
        let mut p = peer(ip, 65001);
        p.route_reflector_client = true;
        d.node.peers.push(p);
    }
    let _ours = TestSpeaker::start(&f.members[0], d);
    wait_for("both clients Established", UP, || {
        b2.established("n0") && b3.established("n0")
    })
    .unwrap();
    // Reflected with the originator's next hop, so traffic goes client to client.
    wait_for("10.99.2.0/24 via 10.0.0.2 at the other client", UP, || {
        has(&routes(&f.members[2], "bird"), "10.99.2.0/24 via 10.0.0.2")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", b3.birdc("show route all").unwrap_or_default()));
    wait_for("10.99.3.0/24 via 10.0.0.3 at the other client", UP, || {
        has(&routes(&f.members[1], "bird"), "10.99.3.0/24 via 10.0.0.3")
    })
    .unwrap();
    let shown = b3.birdc("show route 10.99.2.0/24 all").unwrap();
    assert!(shown.contains("BGP.originator_id: 10.0.0.2"), "{shown}");
    assert!(shown.contains("BGP.cluster_list: 1.1.1.1"), "{shown}");
    // And our own kernel has both clients' routes.
    assert!(has(
        &routes(&f.members[0], "bgp"),
        "10.99.2.0/24 via 10.0.0.2"
    ));
    assert!(has(
        &routes(&f.members[0], "bgp"),
        "10.99.3.0/24 via 10.0.0.3"
    ));
}

#[test]
fn we_are_a_client_of_a_bird_reflector() {
    if !require_peers("we_are_a_client_of_a_bird_reflector") {
        return;
    }
    let f = fabric("rc");
    // BIRD 10.0.0.2 reflects for us and for BIRD 10.0.0.3.
    let rr = Bird::start(
        &f.members[1],
        &bird_conf(2, &[("10.0.0.1", true), ("10.0.0.3", true)]),
    )
    .unwrap();
    let other = Bird::start(&f.members[2], &bird_conf(3, &[("10.0.0.2", false)])).unwrap();
    let _ours = TestSpeaker::start(&f.members[0], desired(65001, vec![peer("10.0.0.2", 65001)]));
    wait_for("sessions Established", UP, || {
        rr.established("n0") && rr.established("n1") && other.established("n0")
    })
    .unwrap();
    // Our block reaches the other client through the reflector, next hop still us.
    wait_for("10.244.1.0/26 via 10.0.0.1 at the other client", UP, || {
        has(&routes(&f.members[2], "bird"), "10.244.1.0/26 via 10.0.0.1")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", other.birdc("show route all").unwrap_or_default()));
    // The other client's route reaches our kernel, next hop the other client.
    wait_for("10.99.3.0/24 via 10.0.0.3 in our kernel", UP, || {
        has(&routes(&f.members[0], "bgp"), "10.99.3.0/24 via 10.0.0.3")
    })
    .unwrap();
}
