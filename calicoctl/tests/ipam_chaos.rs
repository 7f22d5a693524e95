//! The IPAM chaos test: ten allocators acting as ten hosts do 10,000 assign and release
//! operations against one etcd (Debian's etcd-server, started by `testutil`) while the test
//! kills and restarts etcd twice. Afterwards no address is held twice, every handle's counts
//! match the blocks, each allocator's view of its pods' addresses is the store's, and
//! `calicoctl ipam check` reports no problems.
//!
//! An allocator does what the CNI plugin does: an ADD that fails (etcd gone mid-request, even
//! after the write landed) is undone with a release by handle, retried until it succeeds.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use api::AnyResource;
use common::Calicoctl;
use datastore::config::EtcdConfig;
use datastore::etcd::EtcdBackend;
use datastore::{Backend, Client, Key, ListKey};
use ipam::block::AllocationBlock;
use ipam::handle::Handle;
use ipam::{AutoAssignArgs, Ipam};

const HOSTS: usize = 10;
const OPS: usize = 10_000;
/// Each host keeps at most this many pods.
const MAX_LIVE: usize = 30;
/// A pause before retrying while etcd is down, so a retry loop does not spin.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
const DEADLINE: Duration = Duration::from_secs(600);

async fn connect(endpoints: &[String]) -> Arc<dyn Backend> {
    Arc::new(
        EtcdBackend::connect(&EtcdConfig {
            endpoints: endpoints.to_vec(),
            ..Default::default()
        })
        .await
        .expect("connect to test etcd"),
    )
}

fn resource(value: serde_json::Value) -> AnyResource {
    AnyResource::from_value(value).expect("valid resource")
}

/// A tiny deterministic generator; the test's randomness only decides the mix of operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Counters {
    done: AtomicUsize,
    failed: AtomicUsize,
}

/// One host's allocator: returns its live pods (handle -> addresses) as it believes them.
async fn host_loop(
    endpoints: Vec<String>,
    host: String,
    ops: usize,
    counters: Arc<Counters>,
) -> BTreeMap<String, Vec<IpAddr>> {
    let ipam = Ipam::new(connect(&endpoints).await);
    let mut rng =
        Rng(0x9e37_79b9_7f4a_7c15 ^ host.len() as u64 ^ (host.as_bytes()[5] as u64) << 32);
    let mut live: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    let mut serial = 0;
    let mut mine = 0;
    while mine < ops {
        let assign = live.is_empty() || (live.len() < MAX_LIVE && rng.next().is_multiple_of(2));
        if assign {
            serial += 1;
            let handle = format!("k8s-pod-network.{host}-{serial}");
            let mut args = AutoAssignArgs::new(&host, 1, 0).handle(&handle);
            args.attrs = BTreeMap::from([
                ("node".to_string(), host.clone()),
                ("pod".to_string(), format!("pod{serial}")),
                ("namespace".to_string(), "chaos".to_string()),
            ]);
            match ipam.auto_assign(&args).await {
                Ok(a) => {
                    live.insert(handle, a.ipv4.iter().map(|n| n.ip()).collect());
                    mine += 1;
                    counters.done.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => {
                    counters.failed.fetch_add(1, Ordering::SeqCst);
                    // CNI ADD failed: undo whatever may have landed, until the undo succeeds.
                    while ipam.release_by_handle(&handle).await.is_err() {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        } else {
            let pick = (rng.next() as usize) % live.len();
            let handle = live.keys().nth(pick).cloned().expect("a live pod");
            match ipam.release_by_handle(&handle).await {
                Ok(_) => {
                    live.remove(&handle);
                    mine += 1;
                    counters.done.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => {
                    counters.failed.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
    live
}

/// Wait until `cond` holds, or fail the test at the deadline.
async fn wait_until(what: &str, deadline: Instant, cond: impl Fn() -> bool) {
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_hosts_ten_thousand_operations_two_etcd_crashes() {
    let Some(mut cluster) = Calicoctl::start() else {
        return;
    };
    let endpoints = cluster.etcd.endpoints().to_vec();
    let backend = connect(&endpoints).await;
    let client = Client::new(backend.clone());
    // What calico-node (or the first calicoctl write) does to a new datastore.
    client.ensure_initialized("", "").await.unwrap();
    client
        .create(&resource(serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
            "metadata": {"name": "chaos"},
            "spec": {"cidr": "10.128.0.0/18", "ipipMode": "Never", "natOutgoing": true}
        })))
        .await
        .unwrap();
    let hosts: Vec<String> = (0..HOSTS).map(|i| format!("chaos{i}")).collect();
    for h in &hosts {
        client
            .create(&resource(serde_json::json!({
                "apiVersion": "projectcalico.org/v3", "kind": "Node", "metadata": {"name": h}
            })))
            .await
            .unwrap();
    }

    let counters = Arc::new(Counters {
        done: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
    });
    let started = Instant::now();
    let deadline = started + DEADLINE;
    let tasks: Vec<_> = hosts
        .iter()
        .map(|h| {
            tokio::spawn(host_loop(
                endpoints.clone(),
                h.clone(),
                OPS / HOSTS,
                counters.clone(),
            ))
        })
        .collect();

    // Two crashes, each while the allocators are busy; each restart only after the allocators
    // have seen etcd gone.
    for at in [OPS / 4, OPS * 3 / 5] {
        wait_until("allocators made progress", deadline, || {
            counters.done.load(Ordering::SeqCst) >= at
        })
        .await;
        let failed_before = counters.failed.load(Ordering::SeqCst);
        tokio::task::block_in_place(|| cluster.etcd.kill());
        // Down long enough for every allocator to have failed about once.
        wait_until("the allocators saw etcd gone", deadline, || {
            counters.failed.load(Ordering::SeqCst) >= failed_before + HOSTS
        })
        .await;
        tokio::task::block_in_place(|| cluster.etcd.restart());
    }

    let mut believed: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for t in tasks {
        believed.extend(t.await.expect("allocator task"));
    }
    let elapsed = started.elapsed();
    assert_eq!(counters.done.load(Ordering::SeqCst), OPS);
    eprintln!(
        "chaos: {OPS} operations in {:.1}s, {} failed attempts across two etcd crashes, {} pods live",
        elapsed.as_secs_f64(),
        counters.failed.load(Ordering::SeqCst),
        believed.len()
    );

    // What the store holds.
    let backend = connect(&endpoints).await;
    let ipam = Ipam::new(backend.clone());
    let mut held: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut counted: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for kv in backend.list(&ListKey::Blocks).await.unwrap().items {
        let b: AllocationBlock = serde_json::from_slice(&kv.value).unwrap();
        for (ord, a) in b.allocations().iter().enumerate() {
            let Some(idx) = a else { continue };
            let handle = b.attributes()[*idx]
                .handle_id
                .clone()
                .expect("every chaos allocation has a handle");
            let ip = b.ip_of(ord).unwrap();
            // One ordinal holds one allocation, so a duplicate can only be across blocks.
            assert!(held.insert(ip, handle.clone()).is_none(), "{ip} held twice");
            *counted
                .entry(handle)
                .or_default()
                .entry(b.cidr().to_string())
                .or_default() += 1;
        }
    }
    let handles: BTreeMap<String, BTreeMap<String, u32>> = backend
        .list(&ListKey::Handles)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|kv| {
            let Key::Handle(id) = kv.key else {
                unreachable!()
            };
            let h: Handle = serde_json::from_slice(&kv.value).unwrap();
            (id, h.block)
        })
        .collect();
    assert_eq!(handles, counted, "handle counts disagree with the blocks");

    // Each allocator's belief is the store's: exactly its live pods, with their addresses.
    let believed_ips: BTreeSet<IpAddr> = believed.values().flatten().copied().collect();
    assert_eq!(
        believed_ips.len(),
        believed.values().map(Vec::len).sum::<usize>(),
        "two pods were given the same address"
    );
    assert_eq!(
        held.keys().copied().collect::<BTreeSet<_>>(),
        believed_ips,
        "the store and the allocators disagree on what is allocated"
    );
    for (handle, ips) in &believed {
        assert_eq!(&ipam.ips_by_handle(handle).await.unwrap(), ips, "{handle}");
    }

    // The pods exist as WorkloadEndpoints (as the CNI plugin writes them), so `calicoctl ipam
    // check` can match every allocation to its user.
    for (handle, ips) in &believed {
        let id = handle.trim_start_matches("k8s-pod-network.");
        let (host, serial) = id.rsplit_once('-').unwrap();
        let pod = format!("pod{serial}");
        client
            .create(&resource(serde_json::json!({
                "apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
                "metadata": {"name": format!("{host}-k8s-{pod}-eth0"), "namespace": "chaos"},
                "spec": {
                    "orchestrator": "k8s", "node": host, "pod": pod, "endpoint": "eth0",
                    "containerID": id, "interfaceName": format!("cali{:011x}", serial.parse::<u64>().unwrap()),
                    "ipNetworks": ips.iter().map(|ip| format!("{ip}/32")).collect::<Vec<_>>(),
                }
            })))
            .await
            .unwrap();
    }
    let out = cluster.run(&["ipam", "check"], None);
    assert!(
        out.code == 0 && out.stdout.contains("Check complete; found 0 problems."),
        "calicoctl ipam check:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}
