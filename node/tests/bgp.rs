//! `calico-node -bgp` configured from etcd, as a user runs it: two nodes in their own
//! namespaces form the full mesh; a global BGPPeer applied with `calicoctl apply` brings up a
//! session to a BIRD "ToR" from both, `calico-node -bgp-ready` follows it, `calicoctl node
//! status` shows it, and deleting the peer takes it down, all without touching the mesh.
//!
//! etcd runs in a namespace of its own on the fabric (10.0.0.10); nodes are 10.0.0.1 and
//! 10.0.0.2, BIRD 10.0.0.3. `calicoctl` is the workspace's binary, built by `cargo test
//! --workspace` (or `cargo build -p calicoctl`) beside this crate's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bgp::status::Status;
use testutil::etcd::Etcd;
use testutil::netns::{Fabric, Netns, require_root, wait_for};
use testutil::routers::Bird;

const UP: Duration = Duration::from_secs(40);

fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let p = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build -p calicoctl` (cargo test --workspace does)",
        p.display()
    );
    p
}

/// A calico-node we started; stopped by its pid on drop.
struct CalicoNode {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Drop for CalicoNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl CalicoNode {
    fn start(ns: &Netns, name: &str, ip: &str, dir: &Path) -> CalicoNode {
        let socket = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        let child = ns
            .command(env!("CARGO_BIN_EXE_calico-node"))
            .arg("-bgp")
            .env("NODENAME", name)
            .env("IP", ip)
            .env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", "http://10.0.0.10:2379")
            .env("CALICO_BGP_STATUS_SOCKET", &socket)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        CalicoNode { child, socket, log }
    }

    /// SIGTERM, as a DaemonSet rollout sends it; waits for the exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling the child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.child.wait().unwrap()
    }

    fn status(&self) -> Status {
        bgp::status::query(&self.socket, Duration::from_secs(2)).unwrap_or_default()
    }

    fn established(&self, name: &str) -> bool {
        self.status()
            .peers
            .iter()
            .any(|p| p.name == name && p.bgp_state == "Established")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `calico-node -bgp-ready` against this node's socket.
    fn ready(&self) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_calico-node"))
            .arg("-bgp-ready")
            .env("CALICO_BGP_STATUS_SOCKET", &self.socket)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Assigns one IPv4 address to a pod on `node` with Calico's IPAM, from inside `ns` (where
/// etcd is reachable); returns the block it came from.
fn assign_one(ns: &Netns, node: &str) -> ipnetwork::IpNetwork {
    let node = node.to_string();
    Netns::run_at(ns.path(), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = datastore::config::DatastoreConfig::load(None, |k| match k {
                "DATASTORE_TYPE" => Some("etcdv3".into()),
                "ETCD_ENDPOINTS" => Some("http://10.0.0.10:2379".into()),
                _ => None,
            })
            .unwrap();
            let client = datastore::client::Client::connect(&config).await.unwrap();
            let ipam = ipam::allocator::Ipam::new(client.backend().clone());
            let mut args = ipam::allocator::AutoAssignArgs::new(&node, 1, 0);
            args.attrs.insert("node".into(), node.clone());
            let got = ipam.auto_assign(&args).await.unwrap();
            let ip = got.ipv4[0].ip();
            // The pool's default block size is /26.
            ipnetwork::IpNetwork::new(ip, 26)
                .map(|n| ipnetwork::IpNetwork::new(n.network(), 26).unwrap())
                .unwrap()
        })
    })
    .unwrap()
}

fn calicoctl(ns: &Netns, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = ns
        .command(sibling("calicoctl").to_str().unwrap())
        .args(args)
        .env("DATASTORE_TYPE", "etcdv3")
        .env("ETCD_ENDPOINTS", "http://10.0.0.10:2379")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const TOR_PEER: &str = "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor
spec:
  peerIP: 10.0.0.3
  asNumber: 65003
";

#[test]
fn sessions_follow_the_datastore_and_the_mesh_is_untouched() {
    if !require_root("sessions_follow_the_datastore_and_the_mesh_is_untouched") {
        return;
    }
    if !testutil::routers::installed() || testutil::etcd::etcd_binary().is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "needs etcd and {}",
            testutil::routers::PACKAGES
        );
        eprintln!("SKIPPED: needs etcd and {}", testutil::routers::PACKAGES);
        return;
    }
    let f = Fabric::new(
        "cfg",
        &["10.0.0.1/24", "10.0.0.2/24", "10.0.0.3/24", "10.0.0.10/24"],
    )
    .unwrap();
    let _etcd = Etcd::start_in(&f.members[3], "10.0.0.10".parse().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = calicoctl(
        &f.members[0],
        &["apply", "-f", "-"],
        "apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool
spec:
  cidr: 10.244.0.0/16
  ipipMode: Never
  vxlanMode: Never
",
    );
    assert!(ok, "{out}");
    let a = CalicoNode::start(&f.members[0], "node-a", "10.0.0.1/24", dir.path());
    let b = CalicoNode::start(&f.members[1], "node-b", "10.0.0.2/24", dir.path());
    wait_for("the mesh Established on both nodes", UP, || {
        a.established("Mesh_10_0_0_2") && b.established("Mesh_10_0_0_1")
    })
    .unwrap_or_else(|e| panic!("{e}\nnode-a:\n{}\nnode-b:\n{}", a.log(), b.log()));
    let mesh_since = a.status().peers[0].since;
    assert!(a.ready().0, "ready with only the mesh: {}", a.ready().1);

    // The ToR peer, before the ToR runs: configured, not up, not ready.
    let (ok, out) = calicoctl(&f.members[0], &["apply", "-f", "-"], TOR_PEER);
    assert!(ok, "{out}");
    wait_for("Global_10_0_0_3 configured on node-a", UP, || {
        a.status().peers.iter().any(|p| p.name == "Global_10_0_0_3")
    })
    .unwrap();
    let (ready, why) = a.ready();
    assert!(!ready, "not ready while the ToR session is down");
    assert!(why.contains("10.0.0.3"), "{why}");

    let bird = Bird::start(
        &f.members[2],
        "log stderr all;
router id 10.0.0.3;
protocol device { }
protocol bgp a { local 10.0.0.3 as 65003; neighbor 10.0.0.1 as 64512; connect retry time 1; connect delay time 1; ipv4 { import all; export none; }; }
protocol bgp b { local 10.0.0.3 as 65003; neighbor 10.0.0.2 as 64512; connect retry time 1; connect delay time 1; ipv4 { import all; export none; }; }
",
    )
    .unwrap();
    wait_for("the ToR sessions Established", UP, || {
        a.established("Global_10_0_0_3")
            && b.established("Global_10_0_0_3")
            && bird.established("a")
            && bird.established("b")
    })
    .unwrap_or_else(|e| panic!("{e}\nnode-a:\n{}", a.log()));
    assert!(a.ready().0, "ready: {}", a.ready().1);
    let (ok, shown) = {
        let out = Command::new(sibling("calicoctl"))
            .args(["node", "status"])
            .env("CALICO_BGP_STATUS_SOCKET", &a.socket)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(ok, "{shown}");
    assert!(
        shown.contains("| 10.0.0.2     | node-to-node mesh | up    |"),
        "{shown}"
    );
    assert!(
        shown.contains("| 10.0.0.3     | global            | up    |"),
        "{shown}"
    );

    // A pod address on node-a claims a block: node-a exports it (one aggregate), the ToR and
    // node-b learn it, and node-b installs it (a no-encap pool) with node-a as next hop.
    let block = assign_one(&f.members[0], "node-a");
    wait_for(
        "node-a's block at the ToR and in node-b's kernel",
        UP,
        || {
            bird.birdc(&format!("show route {block}"))
                .is_ok_and(|r| r.contains(&block.to_string()) && r.contains("10.0.0.1"))
                && f.members[1]
                    .exec_ok(&["ip", "route", "show", "proto", "bgp"])
                    .is_ok_and(|r| r.contains(&format!("{block} via 10.0.0.1 dev eth0")))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\nnode-a:\n{}", a.log()));

    // Deleting the peer takes the ToR session down on both nodes.
    let (ok, out) = calicoctl(&f.members[0], &["delete", "bgppeer", "tor"], "");
    assert!(ok, "{out}");
    wait_for("the ToR sessions gone", UP, || {
        !a.status().peers.iter().any(|p| p.name == "Global_10_0_0_3")
            && !b.status().peers.iter().any(|p| p.name == "Global_10_0_0_3")
            && !bird.established("a")
            && !bird.established("b")
    })
    .unwrap();
    // The mesh session was never reset.
    let mesh = a
        .status()
        .peers
        .into_iter()
        .find(|p| p.name == "Mesh_10_0_0_2")
        .unwrap();
    assert_eq!(
        (mesh.bgp_state.as_str(), mesh.since, mesh.established),
        ("Established", mesh_since, 1)
    );

    // A restart of node-a (SIGTERM, then a new process): node-b keeps node-a's block as stale
    // (graceful restart) and still has it once node-a is back.
    let route = format!("{block} via 10.0.0.1 dev eth0");
    let on_b = || {
        f.members[1]
            .exec_ok(&["ip", "route", "show", "proto", "bgp"])
            .is_ok_and(|r| r.contains(&route))
    };
    let log_a = a.log();
    let status = a.terminate();
    assert!(
        status.success(),
        "calico-node exits cleanly on SIGTERM: {status}\n{log_a}"
    );
    wait_for("node-b to see the mesh session drop", UP, || {
        !b.established("Mesh_10_0_0_1")
    })
    .unwrap();
    assert!(on_b(), "node-b dropped node-a's block during the restart");
    let a = CalicoNode::start(&f.members[0], "node-a", "10.0.0.1/24", dir.path());
    wait_for("the mesh back", UP, || {
        a.established("Mesh_10_0_0_2") && b.established("Mesh_10_0_0_1")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", a.log()));
    assert!(on_b(), "node-a's block after the restart");
}
