//! `cargo bench -p ipam --bench assign`: IPAM auto-assignments (one IPv4 address with a handle,
//! as a CNI ADD asks) per second and their p50/p99 latency, with 1 host and with 10 concurrent
//! hosts against one etcd (Debian's etcd-server, started by `testutil`, data on local disk).
//!
//! Beside each figure, from the same run and the same etcd: the floor, the same number of
//! single-key compare-and-swap transactions from the same number of concurrent clients. An
//! assignment must at least write its block and handle in one such transaction, so the ratio
//! says how much the reads around that write cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::AnyResource;
use datastore::config::EtcdConfig;
use datastore::etcd::EtcdBackend;
use datastore::{Backend, Client, Condition, Key, Write};
use ipam::{AutoAssignArgs, Ipam};

const PER_HOST_1: usize = 2000;
const PER_HOST_10: usize = 1000;

async fn connect(endpoints: &[String]) -> Arc<dyn Backend> {
    Arc::new(
        EtcdBackend::connect(&EtcdConfig {
            endpoints: endpoints.to_vec(),
            ..Default::default()
        })
        .await
        .expect("connect to etcd"),
    )
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn figures(mut latencies: Vec<Duration>, wall: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        per_second: latencies.len() as f64 / wall.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// `hosts` concurrent allocators, each assigning `per_host` addresses with its own handle
/// per address.
async fn assignments(endpoints: &[String], hosts: usize, per_host: usize, run: &str) -> Figures {
    let mut ipams = Vec::new();
    for _ in 0..hosts {
        ipams.push(Ipam::new(connect(endpoints).await));
    }
    let start = Instant::now();
    let tasks: Vec<_> = ipams
        .into_iter()
        .enumerate()
        .map(|(h, ipam)| {
            let run = run.to_string();
            tokio::spawn(async move {
                let host = format!("bench{h}");
                let mut lat = Vec::with_capacity(per_host);
                for i in 0..per_host {
                    let t = Instant::now();
                    let handle = format!("k8s-pod-network.{run}-{h}-{i}");
                    ipam.auto_assign(&AutoAssignArgs::new(&host, 1, 0).handle(&handle))
                        .await
                        .expect("assignment");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("allocator task"));
    }
    figures(all, start.elapsed())
}

/// The floor: `clients` concurrent writers, each doing `per_client` compare-and-swap
/// transactions (read revision, then a conditional put), one key per writer.
async fn floor(endpoints: &[String], clients: usize, per_client: usize, run: &str) -> Figures {
    let mut backends = Vec::new();
    for _ in 0..clients {
        backends.push(connect(endpoints).await);
    }
    let start = Instant::now();
    let tasks: Vec<_> = backends
        .into_iter()
        .enumerate()
        .map(|(c, b)| {
            let run = run.to_string();
            tokio::spawn(async move {
                let key = Key::Handle(format!("floor-{run}-{c}"));
                let mut rev = b
                    .create(&key, b"{}".to_vec(), None)
                    .await
                    .expect("create floor key");
                let mut lat = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let t = Instant::now();
                    rev = b
                        .commit(
                            &[Condition::At(key.clone(), rev)],
                            vec![Write::Put(
                                key.clone(),
                                format!("{{\"n\":{i}}}").into_bytes(),
                            )],
                        )
                        .await
                        .expect("floor transaction");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("floor task"));
    }
    figures(all, start.elapsed())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(label: &str, ours: &Figures, floor: &Figures) {
    println!(
        "{label}: {:.0} assignments/s (p50 {:.2} ms, p99 {:.2} ms); floor {:.0} CAS txns/s (p50 {:.2} ms, p99 {:.2} ms); ratio {:.2}",
        ours.per_second,
        ms(ours.p50),
        ms(ours.p99),
        floor.per_second,
        ms(floor.p50),
        ms(floor.p99),
        ours.per_second / floor.per_second
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let endpoints = etcd.endpoints().to_vec();
    let backend = connect(&endpoints).await;
    let client = Client::new(backend.clone());
    let pool = AnyResource::from_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "bench"},
        "spec": {"cidr": "10.64.0.0/14", "ipipMode": "Never", "natOutgoing": true}
    }))
    .expect("pool");
    client.create(&pool).await.expect("create pool");
    for h in 0..10 {
        let node = AnyResource::from_value(serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "Node", "metadata": {"name": format!("bench{h}")}
        }))
        .expect("node");
        client.create(&node).await.expect("create node");
    }
    // Enough blocks for 10 hosts' worth of addresses without hitting the 20-block default.
    let ipam = Ipam::new(backend.clone());
    let mut config = ipam.get_config().await.expect("config");
    config.strict_affinity = true;
    config.max_blocks_per_host = 64;
    ipam.set_config(&config).await.expect("set config");

    let one = assignments(&endpoints, 1, PER_HOST_1, "one").await;
    let one_floor = floor(&endpoints, 1, PER_HOST_1, "one").await;
    report("1 host", &one, &one_floor);
    let ten = assignments(&endpoints, 10, PER_HOST_10, "ten").await;
    let ten_floor = floor(&endpoints, 10, PER_HOST_10, "ten").await;
    report("10 hosts", &ten, &ten_floor);
    println!(
        "goal (10 hosts): >= 5000 assignments/s and p99 < 20 ms: {}",
        if ten.per_second >= 5000.0 && ten.p99 < Duration::from_millis(20) {
            "met"
        } else {
            "missed"
        }
    );
}
