//! `calicoctl ipam ...` and `delete node` as a user runs them: the built binary against a real
//! etcd, on IPAM state built with the allocator (`ipam::Ipam`), checking what it prints, its
//! exit status, and what is in etcd afterwards (read with etcd-client, not through our code).
//!
//! Expected outputs live in `tests/expected/ipam_*.txt`; run with `UPDATE_EXPECTED=1` to
//! rewrite them after a deliberate change (and review the diff).

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use api::{AnyResource, ResourceKind};
use common::{Calicoctl, Run};
use datastore::config::EtcdConfig;
use datastore::etcd::EtcdBackend;
use datastore::{Client, Key, ResourceKey};
use ipam::{AssignIpArgs, AutoAssignArgs, Ipam, ReleaseOptions};
use serde_json::{Value, json};

/// The shared harness plus a client and allocator on the same etcd, to build IPAM state.
struct Cluster {
    base: Calicoctl,
    rt: tokio::runtime::Runtime,
    client: Client,
    ipam: Ipam,
}

impl std::ops::Deref for Cluster {
    type Target = Calicoctl;
    fn deref(&self) -> &Calicoctl {
        &self.base
    }
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let base = Calicoctl::start()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let backend = rt.block_on(async {
            EtcdBackend::connect(&EtcdConfig {
                endpoints: base.etcd.endpoints().to_vec(),
                ..Default::default()
            })
            .await
            .expect("connect to test etcd")
        });
        let backend: Arc<dyn datastore::Backend> = Arc::new(backend);
        Some(Cluster {
            base,
            rt,
            client: Client::new(backend.clone()),
            ipam: Ipam::new(backend),
        })
    }

    fn ctl(&self, args: &[&str]) -> Run {
        self.run(args, None)
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.ctl(args);
        assert_eq!(
            r.code, 0,
            "{args:?}\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// Run expecting failure; returns stderr.
    fn fails(&self, args: &[&str]) -> Run {
        let r = self.ctl(args);
        assert_eq!(
            r.code, 1,
            "{args:?}\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        r
    }

    fn apply(&self, value: Value) {
        self.rt.block_on(async {
            let r = AnyResource::from_value(value).unwrap();
            self.client.create(&r).await.unwrap();
        });
    }

    /// Every key under /calico and its value, read with etcd-client.
    fn etcd_state(&self) -> BTreeMap<String, String> {
        self.rt.block_on(async {
            let mut c = etcd_client::Client::connect([self.etcd.endpoint()], None)
                .await
                .unwrap();
            let opts = etcd_client::GetOptions::new().with_prefix();
            let resp = c.get("/calico/", Some(opts)).await.unwrap();
            resp.kvs()
                .iter()
                .map(|kv| {
                    (
                        kv.key_str().unwrap().to_string(),
                        kv.value_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
    }

    fn auto_assign(&self, host: &str, handle: &str, attrs: &[(&str, &str)]) -> IpAddr {
        self.rt.block_on(async {
            let mut args = AutoAssignArgs::new(host, 1, 0).handle(handle);
            args.attrs = attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if handle.starts_with("ipip-tunnel-addr") {
                args.intended_use = api::ippool::AllowedUse::Tunnel;
            }
            let got = self.ipam.auto_assign(&args).await.unwrap();
            got.ipv4[0].ip()
        })
    }

    fn assign(&self, ip: IpAddr, host: &str, handle: &str, attrs: &[(&str, &str)]) {
        self.rt.block_on(async {
            self.ipam
                .assign_ip(&AssignIpArgs {
                    ip,
                    handle_id: Some(handle.to_string()),
                    attrs: attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    hostname: host.to_string(),
                    intended_use: None,
                })
                .await
                .unwrap();
        });
    }

    fn release(&self, ip: IpAddr) {
        self.rt.block_on(async {
            self.ipam
                .release_ips(&[ReleaseOptions::ip(ip)])
                .await
                .unwrap();
        });
    }

    /// A pod on `node` with one address: allocated with Calico's attributes and handle, and
    /// its WorkloadEndpoint written.
    fn pod(&self, node: &str, pod: &str) -> IpAddr {
        let ip = self.auto_assign(
            node,
            &format!("k8s-pod-network.{pod}"),
            &[("namespace", "default"), ("node", node), ("pod", pod)],
        );
        self.wep(node, pod, ip);
        ip
    }

    fn wep(&self, node: &str, pod: &str, ip: IpAddr) {
        self.apply(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
            "metadata": {"namespace": "default"},
            "spec": {
                "orchestrator": "k8s", "node": node, "pod": pod, "endpoint": "eth0",
                "interfaceName": format!("cali{pod}"), "ipNetworks": [format!("{ip}/32")]
            }
        }));
    }

    fn set_ipip_tunnel(&self, node: &str, ip: IpAddr) {
        self.rt.block_on(async {
            let key = ResourceKey::new(ResourceKind::Node, None, node);
            let mut n: api::node::Node = self.client.get(&key).await.unwrap();
            n.spec
                .bgp
                .get_or_insert_with(Default::default)
                .ipv4_ipip_tunnel_addr = Some(ip.to_string());
            self.client.update(&n).await.unwrap();
        });
    }

    /// Lock or unlock the datastore with `calicoctl datastore migrate lock|unlock`
    /// (ClusterInformation `datastoreReady`).
    fn set_datastore_ready(&self, ready: bool) {
        let (verb, said) = if ready {
            ("unlock", "Datastore unlocked.\n")
        } else {
            ("lock", "Datastore locked.\n")
        };
        let r = self.ctl(&["datastore", "migrate", verb]);
        assert_eq!(r.stdout, said, "{}", r.stderr);
        assert_eq!(
            self.cluster_information()["spec"]["datastoreReady"],
            Value::Bool(ready)
        );
    }

    fn cluster_information(&self) -> Value {
        let state = self.etcd_state();
        serde_json::from_str(
            &state["/calico/resources/v3/projectcalico.org/clusterinformations/default"],
        )
        .unwrap()
    }
}

fn expected(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected")
        .join(name)
}

/// Compare with an expected file (or rewrite it with `UPDATE_EXPECTED=1`).
fn assert_expected(name: &str, actual: &str) {
    let path = expected(name);
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, want, "output differs from {name}:\n{actual}");
}

/// The known state the show and check tests start from: pool 10.65.0.0/16 (blocks of /26),
/// nodes node-a and node-b, pods a1 and a2 on node-a, b1 on node-b, node-a's IPIP tunnel
/// address, and b2 on node-b with an address borrowed from node-a's block.
struct State {
    a1: IpAddr,
    b1: IpAddr,
    tunnel: IpAddr,
    borrowed: IpAddr,
}

fn build_state(c: &Cluster) -> State {
    c.rt.block_on(c.client.ensure_initialized("", "")).unwrap();
    c.apply(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "default-pool"}, "spec": {"cidr": "10.65.0.0/16"}
    }));
    for n in ["node-a", "node-b"] {
        c.apply(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "Node",
            "metadata": {"name": n}, "spec": {}
        }));
    }
    let a1 = c.pod("node-a", "a1");
    c.pod("node-a", "a2");
    let b1 = c.pod("node-b", "b1");
    let tunnel = c.auto_assign(
        "node-a",
        "ipip-tunnel-addr-node-a",
        &[("node", "node-a"), ("type", "ipipTunnelAddress")],
    );
    c.set_ipip_tunnel("node-a", tunnel);
    // Ordinal 10 of node-a's block, taken by node-b.
    let IpAddr::V4(base) = a1 else { panic!() };
    let borrowed = IpAddr::V4(std::net::Ipv4Addr::from(u32::from(base) + 10));
    c.assign(
        borrowed,
        "node-b",
        "k8s-pod-network.b2",
        &[("namespace", "default"), ("node", "node-b"), ("pod", "b2")],
    );
    c.wep("node-b", "b2", borrowed);
    State {
        a1,
        b1,
        tunnel,
        borrowed,
    }
}

#[test]
fn show_prints_calicos_tables_and_lookups() {
    let Some(c) = Cluster::start() else { return };
    let s = build_state(&c);
    // Reserved after b1 was allocated at the start of node-b's block: b1 counts as in use and
    // as reserved, as in Calico.
    assert_eq!(
        s.b1.to_string(),
        "10.65.65.128",
        "block choice is deterministic"
    );
    c.apply(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "IPReservation",
        "metadata": {"name": "r1"},
        "spec": {"reservedCIDRs": ["10.65.65.128/28", "10.65.0.0/24"]}
    }));

    assert_expected("ipam_show.txt", &c.ok(&["ipam", "show"]));
    assert_expected(
        "ipam_show_blocks.txt",
        &c.ok(&["ipam", "show", "--show-blocks"]),
    );
    assert_expected(
        "ipam_show_borrowed.txt",
        &c.ok(&["ipam", "show", "--show-borrowed"]),
    );
    assert_expected(
        "ipam_show_configuration.txt",
        &c.ok(&["ipam", "show", "--show-configuration"]),
    );

    let a1 = s.a1.to_string();
    assert_eq!(
        c.ok(&["ipam", "show", &format!("--ip={a1}")]),
        format!(
            "IP {a1} is in use\nHandle ID: k8s-pod-network.a1\nActive Owner Attributes:\n  \
             namespace: default\n  node: node-a\n  pod: a1\n"
        )
    );
    assert_eq!(
        c.ok(&["ipam", "show", "--ip", &s.tunnel.to_string()]),
        format!(
            "IP {} is in use\nHandle ID: ipip-tunnel-addr-node-a\nActive Owner Attributes:\n  \
             node: node-a\n  type: ipipTunnelAddress\n",
            s.tunnel
        )
    );
    // Free in an existing block, in a block nobody has, outside every pool.
    for ip in ["10.65.255.1", "192.168.0.1"] {
        assert_eq!(
            c.ok(&["ipam", "show", "--ip", ip]),
            format!("{ip} is not assigned\n")
        );
    }
    let IpAddr::V4(b1) = s.b1 else { panic!() };
    let free = std::net::Ipv4Addr::from(u32::from(b1) + 20).to_string();
    assert_eq!(
        c.ok(&["ipam", "show", "--ip", &free]),
        format!("{free} is not assigned\n")
    );
    let r = c.fails(&["ipam", "show", "--ip=10.240.0.300"]);
    assert_eq!(
        r.stdout,
        "Error executing command: invalid IP address specified: 10.240.0.300\n"
    );
    let _ = s.borrowed;
}

#[test]
fn check_finds_problems_and_release_from_report_fixes_the_leak() {
    let Some(c) = Cluster::start() else { return };
    let s = build_state(&c);

    // A consistent cluster.
    assert_expected("ipam_check_clean.txt", &c.ok(&["ipam", "check"]));

    // One of each problem: a leaked address, a workload using an address IPAM never
    // allocated, a handle with no addresses, and a block affine to a node that is gone.
    let leaked = c.auto_assign(
        "node-a",
        "k8s-pod-network.leaked",
        &[
            ("namespace", "default"),
            ("node", "node-a"),
            ("pod", "gone"),
        ],
    );
    let unallocated: IpAddr = "10.65.255.200".parse().unwrap();
    c.wep("node-b", "b3", unallocated);
    c.rt.block_on(c.ipam.backend().create(
        &Key::Handle("k8s-pod-network.empty".into()),
        br#"{"block":{},"deleted":false}"#.to_vec(),
        None,
    ))
    .unwrap();
    c.apply(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Node",
        "metadata": {"name": "node-gone"}, "spec": {}
    }));
    let gone = c.auto_assign("node-gone", "k8s-pod-network.x", &[("node", "node-gone")]);
    c.release(gone);
    // Removed behind IPAM's back, so its (now empty) block keeps the affinity.
    c.rt.block_on(c.client.delete::<api::node::Node>(
        &ResourceKey::new(ResourceKind::Node, None, "node-gone"),
        None,
    ))
    .unwrap();
    let gone_block = format!("{}/26", {
        let IpAddr::V4(g) = gone else { panic!() };
        std::net::Ipv4Addr::from(u32::from(g) & !63)
    });

    c.set_datastore_ready(false);
    let out = c.ok(&["ipam", "check", "--show-problem-ips", "-o", "report.json"]);
    let problem_lines = [
        format!(
            "  {leaked} leaked; attrs Main:k8s-pod-network.leaked Extra:namespace=default,\
             node=node-a,pod=gone"
        ),
        "Found 1 IPs that are allocated in IPAM but not actually in use.".into(),
        format!(
            "  {unallocated} in use by Workload(default/node--b-k8s-b3-eth0) and in active IPAM \
             pool but has no IPAM allocation."
        ),
        "Found 0 in-use IPs that are not in active IP pools.".into(),
        "Found 1 in-use IPs that are in active IP pools but have no corresponding IPAM \
         allocation."
            .into(),
        "Found 1 handles with no matching IPs (and 6 handles with matches).".into(),
        format!("  {gone_block} is affine to node node-gone, which does not exist."),
        "Found 1 IPAM blocks affine to nodes that no longer exist.".into(),
        "Check complete; found 4 problems.".into(),
    ];
    for line in &problem_lines {
        assert!(
            out.lines().any(|l| l == line),
            "missing {line:?} in:\n{out}"
        );
    }
    assert!(
        out.ends_with("Check complete; found 4 problems.\n"),
        "{out}"
    );

    // The report, as Calico writes it.
    let report_path = c.config.path().join("report.json");
    let text = std::fs::read_to_string(&report_path).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    let info = c.cluster_information();
    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(report["clusterGUID"], info["spec"]["clusterGUID"]);
    assert_eq!(report["datastoreLocked"], true);
    assert_eq!(report["clusterType"], "");
    assert!(
        report["clusterInformationRevision"]
            .as_str()
            .is_some_and(|r| r.parse::<i64>().is_ok())
    );
    let entry = &report["allocations"][leaked.to_string()][0];
    assert_eq!(entry["ip"], leaked.to_string());
    assert_eq!(entry["handle"], "k8s-pod-network.leaked");
    assert_eq!(entry["inUse"], false);
    assert_eq!(entry["node"], "node-a");
    assert_eq!(entry["pod"], "gone");
    assert_eq!(entry["owners"], Value::Null);
    assert!(entry["sequenceNumber"].is_u64());
    let used = &report["allocations"][s.borrowed.to_string()][0];
    assert_eq!(used["inUse"], true);
    assert_eq!(used["borrowed"], true);
    assert_eq!(
        used["owners"],
        json!(["Workload(default/node--b-k8s-b2-eth0)"])
    );
    assert_eq!(
        report["allocations"][s.tunnel.to_string()][0]["owners"],
        json!(["Node(node-a)"])
    );
    assert_eq!(report["leakedHandles"][0]["ID"], "k8s-pod-network.empty");
    assert_eq!(report["leakedHandles"][0]["UID"], Value::Null);
    assert!(text.starts_with("{\n  \"version\": "), "{text}");

    // The leaked address is released and taken again before the report is used: the
    // sequence number check keeps the new allocation.
    assert_eq!(
        c.ok(&["ipam", "release", &format!("--ip={leaked}")]),
        format!("Successfully released IP address {leaked}\n")
    );
    c.assign(
        leaked,
        "node-a",
        "k8s-pod-network.new",
        &[("node", "node-a")],
    );
    let before = c.etcd_state();
    let out = c.ok(&["ipam", "release", "--from-report", "report.json"]);
    assert!(
        out.starts_with(&format!(
            "Releasing 1 old IPs...\nAn error occurred while releasing some IPs: update \
             conflict: {leaked}.  Problems are often caused by an out-of-date IPAM report.  Try \
             regenerating the IPAM report and retry.\n"
        )),
        "{out}"
    );
    assert!(
        c.ok(&["ipam", "show", "--ip", &leaked.to_string()])
            .contains("Handle ID: k8s-pod-network.new")
    );
    let after = c.etcd_state();
    let blocks = |m: &BTreeMap<String, String>| {
        m.iter()
            .filter(|(k, _)| k.contains("/assignment/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(blocks(&before), blocks(&after), "no block changed");
    c.release(leaked);
    c.assign(
        leaked,
        "node-a",
        "k8s-pod-network.leaked",
        &[
            ("namespace", "default"),
            ("node", "node-a"),
            ("pod", "gone"),
        ],
    );
    c.rt.block_on(c.ipam.backend().create(
        &Key::Handle("k8s-pod-network.empty".into()),
        br#"{"block":{},"deleted":false}"#.to_vec(),
        None,
    ))
    .unwrap();

    // Refusals: the datastore must be locked, and the report current.
    c.set_datastore_ready(true);
    c.ok(&["ipam", "check", "-o", "unlocked.json"]);
    let before = c.etcd_state();
    let r = c.fails(&["ipam", "release", "--from-report=unlocked.json"]);
    assert_eq!(
        r.stderr,
        "data store is not locked. Either lock the data store, or re-run with --force\n"
    );
    c.set_datastore_ready(false);
    let r = c.fails(&["ipam", "release", "--from-report=unlocked.json"]);
    assert_eq!(
        r.stderr,
        "the provided reports are all stale - at least one should be up-to-date. Please \
         generate a new report while the data store is locked and try again\n"
    );
    let mut unchanged = c.etcd_state();
    unchanged.remove("/calico/resources/v3/projectcalico.org/clusterinformations/default");
    let mut before = before;
    before.remove("/calico/resources/v3/projectcalico.org/clusterinformations/default");
    assert_eq!(unchanged, before, "a refused release writes nothing");

    // A current report from a locked datastore releases the leak and the empty handle.
    c.ok(&["ipam", "check", "-o", "report.json"]);
    assert_eq!(
        c.ok(&["ipam", "release", "--from-report", "report.json"]),
        "Releasing 1 old IPs...\nReleased 1 IPs successfully\nDeleting 1 handles...\nKey: '.' = \
         Deleted OK; 'x' = skip, handle missing/changed.\n.\nReleased 1 handles; 0 skipped; 0 \
         errors.\nYou may now unlock the data store.\n"
    );
    assert_eq!(
        c.ok(&["ipam", "show", "--ip", &leaked.to_string()]),
        format!("{leaked} is not assigned\n")
    );
    let state = c.etcd_state();
    assert!(!state.contains_key("/calico/ipam/v2/handle/k8s-pod-network.empty"));
    assert!(!state.contains_key("/calico/ipam/v2/handle/k8s-pod-network.leaked"));
    let out = c.ok(&["ipam", "check"]);
    assert!(
        out.ends_with("Check complete; found 2 problems.\n"),
        "{out}"
    );
}

#[test]
fn release_of_an_address_that_is_not_allocated_fails() {
    let Some(c) = Cluster::start() else { return };
    let s = build_state(&c);
    let ip = s.b1.to_string();
    assert_eq!(
        c.ok(&["ipam", "release", "--ip", &ip]),
        format!("Successfully released IP address {ip}\n")
    );
    let r = c.fails(&["ipam", "release", "--ip", &ip]);
    assert_eq!(r.stderr, format!("IP address {ip} is not assigned\n"));
    let r = c.fails(&["ipam", "release", "--ip", "192.168.7.7"]);
    assert_eq!(r.stderr, "IP address 192.168.7.7 is not assigned\n");
    let r = c.fails(&["ipam", "release", "--ip", "nonsense"]);
    assert_eq!(
        r.stdout,
        "Error executing command: invalid IP address specified: nonsense\n"
    );
}

#[test]
fn configure_sets_what_is_asked_and_refuses_what_calico_refuses() {
    let Some(c) = Cluster::start() else { return };
    c.rt.block_on(c.client.ensure_initialized("", "")).unwrap();

    let before = c.etcd_state();
    let r = c.fails(&["ipam", "configure", "--max-blocks-per-host=4"]);
    assert_eq!(
        r.stderr,
        "error: MaxBlocksPerHost requires StrictAffinity to be enabled\n"
    );
    let r = c.fails(&["ipam", "configure", "--strictaffinity=maybe"]);
    assert_eq!(
        r.stderr,
        "invalid value. Use true or false to set strictaffinity\n"
    );
    let r = c.fails(&["ipam", "configure", "--max-blocks-per-host=lots"]);
    assert_eq!(
        r.stderr,
        "invalid value for maxblockhost. Use a valid number\n"
    );
    let r = c.fails(&["ipam", "configure"]);
    assert_eq!(
        r.stderr,
        "at least one configuration option must be specified\n"
    );
    assert_eq!(c.etcd_state(), before, "nothing written on refusal");

    assert_eq!(
        c.ok(&[
            "ipam",
            "configure",
            "--strictaffinity=true",
            "--max-blocks-per-host=4"
        ]),
        "Successfully set StrictAffinity to: true\nSuccessfully set MaxBlocksPerHost to: 4\n"
    );
    let stored: Value = serde_json::from_str(&c.etcd_state()["/calico/ipam/v2/config"]).unwrap();
    assert_eq!(
        stored,
        json!({"strict_affinity": true, "auto_allocate_blocks": true, "maxBlocksPerHost": 4})
    );
    // The other settings are kept.
    assert_eq!(
        c.ok(&["ipam", "configure", "--max-blocks-per-host=2"]),
        "Successfully set MaxBlocksPerHost to: 2\n"
    );
    assert_eq!(
        c.ok(&["ipam", "show", "--show-configuration"]),
        "+--------------------+-------+\n\
         | PROPERTY           | VALUE |\n\
         +--------------------+-------+\n\
         | StrictAffinity     | true  |\n\
         | AutoAllocateBlocks | true  |\n\
         | MaxBlocksPerHost   | 2     |\n\
         +--------------------+-------+\n"
    );
    // Strict affinity cannot be dropped while a block limit is set.
    let before = c.etcd_state();
    let r = c.fails(&["ipam", "configure", "--strictaffinity=false"]);
    assert_eq!(
        r.stderr,
        "error: MaxBlocksPerHost requires StrictAffinity to be enabled\n"
    );
    assert_eq!(c.etcd_state(), before);
}

#[test]
fn split_replaces_a_pool_while_the_datastore_is_locked() {
    let Some(c) = Cluster::start() else { return };
    c.rt.block_on(c.client.ensure_initialized("", "")).unwrap();
    c.apply(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "pool1", "labels": {"zone": "a"}},
        "spec": {"cidr": "10.0.1.0/24", "natOutgoing": true}
    }));
    c.apply(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "pool2"},
        "spec": {"cidr": "10.0.2.0/24", "disabled": true}
    }));
    let pools_prefix = "/calico/resources/v3/projectcalico.org/ippools/";
    let pools = |c: &Cluster| {
        c.etcd_state()
            .into_iter()
            .filter(|(k, _)| k.starts_with(pools_prefix))
            .map(|(k, v)| {
                (
                    k[pools_prefix.len()..].to_string(),
                    serde_json::from_str::<Value>(&v).unwrap(),
                )
            })
            .collect::<BTreeMap<String, Value>>()
    };

    // An enabled pool in a datastore that is not locked: refused, nothing written.
    let before = c.etcd_state();
    let r = c.fails(&["ipam", "split", "4", "--cidr=10.0.1.0/24"]);
    assert_eq!(
        r.stderr,
        "datastore is not locked. Run the `calicoctl datastore migrate lock` command in order \
         split the IP pools\n"
    );
    assert_eq!(c.etcd_state(), before);

    c.set_datastore_ready(false);
    let before = c.etcd_state();
    for (args, err) in [
        (
            vec!["ipam", "split", "4", "--cidr=10.0.9.0/24"],
            "unable to find IP pool  covering the specified CIDR 10.0.9.0/24\n",
        ),
        (
            vec!["ipam", "split", "3", "--cidr=10.0.1.0/24"],
            "error splitting the CIDR 10.0.1.0/24 into 3 CIDRs: number to split CIDR into is \
             not a valid power of 2: 3\n",
        ),
        (
            vec!["ipam", "split", "512", "--name=pool1"],
            "error splitting the CIDR 10.0.1.0/24 into 512 CIDRs: the CIDR 10.0.1.0/24 is not \
             large enough to be split into 512 parts\n",
        ),
        (
            vec!["ipam", "split", "x", "--name=pool1"],
            "error reading number to split IP pools into. x is not a valid number: \
             strconv.Atoi: parsing \"x\": invalid syntax\n",
        ),
        (
            vec!["ipam", "split", "4"],
            "no name or CIDR provided. Provide a name or CIDR to denote the IP pool to split\n",
        ),
    ] {
        let r = c.fails(&args);
        assert_eq!(r.stderr, err, "{args:?}");
    }
    let r = c.fails(&["ipam", "split", "8", "--name=pool1"]);
    assert!(
        r.stderr
            .starts_with("error using unsafe create to make split pool with cidr 10.0.1.0/27:"),
        "a /27 cannot hold the pool's /26 blocks: {}",
        r.stderr
    );
    assert_eq!(c.etcd_state(), before, "refused splits write nothing");

    assert_eq!(
        c.ok(&["ipam", "split", "4", "--name=pool1"]),
        "IP Pool pool1 was successfully split into 4 smaller pools.Created split-pool1-0 with \
         CIDR 10.0.1.0/26.\nCreated split-pool1-1 with CIDR 10.0.1.64/26.\nCreated \
         split-pool1-2 with CIDR 10.0.1.128/26.\nCreated split-pool1-3 with CIDR \
         10.0.1.192/26.\nPlease refer to the documentation for final steps."
    );
    // A disabled pool, by CIDR: the new pools are enabled.
    c.ok(&["ipam", "split", "2", "--cidr=10.0.2.0/24"]);
    let got = pools(&c);
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        [
            "split-pool1-0",
            "split-pool1-1",
            "split-pool1-2",
            "split-pool1-3",
            "split-pool2-0",
            "split-pool2-1"
        ]
    );
    let p = &got["split-pool1-1"];
    assert_eq!(p["spec"]["cidr"], "10.0.1.64/26");
    assert_eq!(p["spec"]["natOutgoing"], true);
    assert_eq!(p["spec"]["blockSize"], 26);
    assert!(p["spec"].get("disabled").is_none());
    assert_eq!(p["metadata"]["labels"], json!({"zone": "a"}));
    assert!(p["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert_eq!(got["split-pool2-1"]["spec"]["cidr"], "10.0.2.128/25");
    assert!(got["split-pool2-1"]["spec"].get("disabled").is_none());
}

#[test]
fn deleting_a_node_releases_its_addresses_and_affinities() {
    let Some(c) = Cluster::start() else { return };
    let s = build_state(&c);
    let affinities = |c: &Cluster, node: &str| {
        c.etcd_state()
            .keys()
            .filter(|k| k.starts_with(&format!("/calico/ipam/v2/host/{node}/")))
            .count()
    };
    assert_eq!(affinities(&c, "node-b"), 1);
    // What goes with the node in Calico: its BGP peers and per-node configuration.
    c.apply(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "BGPPeer",
        "metadata": {"name": "rack-tor-b"},
        "spec": {"node": "node-b", "peerIP": "192.0.2.1", "asNumber": 64512}
    }));
    c.apply(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "FelixConfiguration",
        "metadata": {"name": "node.node-b"}, "spec": {"logSeverityScreen": "Debug"}
    }));
    let count = |c: &Cluster, prefix: &str| {
        c.etcd_state()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count()
    };
    let weps = "/calico/resources/v3/projectcalico.org/workloadendpoints/";
    let weps_before = count(&c, weps);
    assert_eq!(
        c.ok(&["delete", "node", "node-b"]),
        "Successfully deleted 1 'Node' resource(s)\n"
    );
    assert_eq!(affinities(&c, "node-b"), 0);
    assert_eq!(affinities(&c, "node-a"), 1, "other nodes keep theirs");
    assert_eq!(
        count(&c, "/calico/resources/v3/projectcalico.org/bgppeers/"),
        0
    );
    assert_eq!(
        count(
            &c,
            "/calico/resources/v3/projectcalico.org/felixconfigurations/node.node-b"
        ),
        0
    );
    let weps_after = count(&c, weps);
    assert!(
        weps_after < weps_before && weps_after > 0,
        "node-b's endpoints go, node-a's stay ({weps_before} -> {weps_after})"
    );
    // node-b's workload addresses, including the one borrowed from node-a's block, are free.
    for ip in [s.b1, s.borrowed] {
        assert_eq!(
            c.ok(&["ipam", "show", "--ip", &ip.to_string()]),
            format!("{ip} is not assigned\n")
        );
    }
    assert!(
        c.ok(&["ipam", "show", "--ip", &s.a1.to_string()])
            .contains("is in use")
    );

    // From a file, the same; the tunnel address goes too.
    let file = c.config.path().join("node.yaml");
    std::fs::write(
        &file,
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: node-a\n",
    )
    .unwrap();
    c.ok(&["delete", "-f", file.to_str().unwrap()]);
    assert_eq!(affinities(&c, "node-a"), 0);
    for ip in [s.a1, s.tunnel] {
        assert_eq!(
            c.ok(&["ipam", "show", "--ip", &ip.to_string()]),
            format!("{ip} is not assigned\n")
        );
    }
}
