//! What the speaker's namespace tests share: two namespaces joined by a veth (ours 10.0.0.1,
//! the peer 10.0.0.2), our speaker started in-process inside ours, and readers of both kernels.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

use api::asn::Asn;
use bgp::config::{NodeBgpConfig, PeerConfig, PeerKind};
use bgp::route::{AcceptAll, LocalRoute};
use bgp::speaker::{Desired, Options, Speaker, SpeakerState};
use testutil::netns::{Netns, require_root};
use tokio::sync::watch;

/// Root and the three daemons; skips (without CI) or fails (with CI) otherwise.
pub fn require_peers(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    if !testutil::routers::installed() {
        if std::env::var_os("CI").is_some() {
            panic!("{test} needs {} (CI is set)", testutil::routers::PACKAGES);
        }
        eprintln!("SKIPPED {test}: needs {}", testutil::routers::PACKAGES);
        return false;
    }
    true
}

pub struct Lab {
    pub ours: Netns,
    pub peer: Netns,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        let ours = Netns::new(&format!("{tag}o")).unwrap();
        let peer = Netns::new(&format!("{tag}p")).unwrap();
        Netns::veth(&ours, "eth0", "10.0.0.1/24", &peer, "eth0", "10.0.0.2/24").unwrap();
        Lab { ours, peer }
    }

    pub fn start_speaker(&self, desired: Desired) -> TestSpeaker {
        TestSpeaker::start(&self.ours, desired)
    }

    pub fn routes(ns: &Netns, proto: &str) -> Vec<String> {
        ns.exec_ok(&["ip", "route", "show", "proto", proto])
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// Our kernel's protocol-186 routes.
    pub fn our_routes(&self) -> Vec<String> {
        Lab::routes(&self.ours, "bgp")
    }

    pub fn peer_routes(&self, proto: &str) -> Vec<String> {
        Lab::routes(&self.peer, proto)
    }

    /// Segments both kernels dropped for a missing, unexpected or wrong MD5 signature.
    pub fn md5_drops(&self) -> u64 {
        [&self.ours, &self.peer]
            .iter()
            .map(|ns| {
                let text = ns
                    .exec_ok(&["cat", "/proc/net/netstat"])
                    .unwrap_or_default();
                tcp_ext(
                    &text,
                    &["TCPMD5NotFound", "TCPMD5Unexpected", "TCPMD5Failure"],
                )
            })
            .sum()
    }
}

/// Sums the named TcpExt counters of /proc/net/netstat.
fn tcp_ext(text: &str, names: &[&str]) -> u64 {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let [header, values] = lines.as_slice() else {
        return 0;
    };
    header
        .split_whitespace()
        .zip(values.split_whitespace())
        .filter(|(n, _)| names.contains(n))
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum()
}

/// Our speaker running inside a namespace.
pub struct TestSpeaker {
    rt: Option<tokio::runtime::Runtime>,
    speaker: Option<Arc<Speaker>>,
    pub state: watch::Receiver<SpeakerState>,
}

impl TestSpeaker {
    pub fn start(ns: &Netns, desired: Desired) -> TestSpeaker {
        // RUST_LOG=debug shows the speaker's log in a failing test's output.
        if let Ok(filter) = std::env::var("RUST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let rt = ns.runtime(2).unwrap();
        // Spawned, not block_on'd: the work must run on the runtime's threads, which are in
        // the namespace.
        let speaker = rt
            .block_on(rt.spawn(async move {
                let s = Speaker::start(Options::default())
                    .await
                    .expect("speaker starts");
                s.apply(desired).await;
                s
            }))
            .unwrap();
        let state = speaker.state();
        TestSpeaker {
            rt: Some(rt),
            speaker: Some(Arc::new(speaker)),
            state,
        }
    }

    pub fn apply(&self, desired: Desired) {
        if let (Some(rt), Some(s)) = (&self.rt, &self.speaker) {
            let s = s.clone();
            rt.block_on(rt.spawn(async move { s.apply(desired).await }))
                .unwrap();
        }
    }

    /// Ends the speaker the way a crash does: no NOTIFICATION, sockets closed by the kernel,
    /// kernel routes left in place.
    pub fn kill(mut self) {
        self.speaker = None;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for TestSpeaker {
    fn drop(&mut self) {
        self.speaker = None;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A session to `ip`, AS `asn`, as a node-specific BGPPeer gives it.
pub fn peer(ip: &str, asn: u32) -> PeerConfig {
    PeerConfig::new(PeerKind::Node, ip.parse().unwrap(), None, Asn(asn))
}

/// Our node 10.0.0.1 in AS `asn` with `peers`, originating 10.244.1.0/26, accepting and
/// installing everything.
pub fn desired(asn: u32, peers: Vec<PeerConfig>) -> Desired {
    let mut local_routes = BTreeMap::new();
    local_routes.insert("10.244.1.0/26".parse().unwrap(), LocalRoute::default());
    Desired {
        node: NodeBgpConfig {
            router_id: "10.0.0.1".parse().unwrap(),
            local_as: Asn(asn),
            listen_port: 179,
            cluster_id: None,
            peers,
        },
        passwords: HashMap::new(),
        policies: HashMap::new(),
        default_policy: Arc::new(AcceptAll),
        local_routes,
        install: Arc::new(|_| true),
    }
}
