//! How fast the syncer delivers updates, against its ceiling: a raw etcd-client watch on the
//! same prefix, in the same run, on the same etcd.
//!
//! `cargo bench -p datastore --bench syncer`. Each phase creates 10,000 IPPools from many
//! concurrent writer tasks (etcd here takes ~5-7k CAS txns/s from many clients, so one client's
//! round trips are not the bound), and times from the first write until the consumer has
//! received all 10,000 puts. A third phase times the initial sync of everything written (list
//! + decode, no watch) against a raw paged read of the prefix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{AnyResource, ResourceKind};
use datastore::config::EtcdConfig;
use datastore::etcd::EtcdBackend;
use datastore::syncer::{SyncStatus, Syncer, SyncerEvent};
use datastore::{Backend, Key, ListKey, ResourceKey, codec};
use etcd_client::{GetOptions, WatchOptions};

const UPDATES: usize = 10_000;
const WRITER_TASKS: usize = 32;
const WRITER_CONNECTIONS: usize = 4;
const DEADLINE: Duration = Duration::from_secs(60);

fn pool(name: &str, i: usize) -> (Key, Vec<u8>) {
    let r = AnyResource::from_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "IPPool",
        "metadata": { "name": name },
        "spec": {
            "cidr": format!("10.{}.{}.0/24", (i / 256) % 256, i % 256),
            "ipipMode": "CrossSubnet",
            "natOutgoing": true,
        },
    }))
    .expect("valid pool");
    let key = Key::Resource(ResourceKey::new(ResourceKind::IPPool, None, name));
    (key, codec::encode(&r).expect("encode"))
}

/// Create `UPDATES` pools named `<prefix>-<i>` from many tasks; returns when all are written.
async fn write_pools(writers: &[Arc<EtcdBackend>], prefix: &str) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..WRITER_TASKS {
        let b = writers[t % writers.len()].clone();
        let items: Vec<_> = (t..UPDATES)
            .step_by(WRITER_TASKS)
            .map(|i| pool(&format!("{prefix}-{i:05}"), i))
            .collect();
        tasks.push(tokio::spawn(async move {
            for (key, value) in items {
                b.create(&key, value, None).await.expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    start.elapsed()
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

async fn run(endpoints: Vec<String>) {
    let connect = || async {
        Arc::new(
            EtcdBackend::connect(&EtcdConfig {
                endpoints: endpoints.to_vec(),
                ..Default::default()
            })
            .await
            .expect("connect"),
        )
    };
    let mut writers = Vec::new();
    for _ in 0..WRITER_CONNECTIONS {
        writers.push(connect().await);
    }
    let list = ListKey::kind(ResourceKind::IPPool);

    // Ours: the syncer, in sync on an empty prefix, then 10,000 creates.
    let (mut rx, _syncer) = Syncer::spawn(connect().await, vec![list.clone()]);
    loop {
        match rx.recv().await.expect("syncer running") {
            SyncerEvent::Status(SyncStatus::InSync) => break,
            _ => continue,
        }
    }
    let start = Instant::now();
    let writing = tokio::spawn({
        let writers = writers.clone();
        async move { write_pools(&writers, "ours").await }
    });
    let mut puts = 0;
    while puts < UPDATES {
        match tokio::time::timeout(DEADLINE, rx.recv()).await {
            Ok(Some(SyncerEvent::Put { .. })) => puts += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("syncer delivered only {puts} of {UPDATES} puts"),
        }
    }
    let ours = start.elapsed();
    let ours_writes = writing.await.expect("writers");
    drop(rx);

    // Peer: a raw watch on the same prefix, then 10,000 more creates.
    let mut client = writers[0].etcd_client();
    let mut watch = client
        .watch(list.etcd_prefix(), Some(WatchOptions::new().with_prefix()))
        .await
        .expect("watch");
    let created = watch.message().await.expect("watch created");
    assert!(created.is_some_and(|r| r.created()));
    let start = Instant::now();
    let writing = tokio::spawn({
        let writers = writers.clone();
        async move { write_pools(&writers, "raw").await }
    });
    let mut received = 0;
    while received < UPDATES {
        match tokio::time::timeout(DEADLINE, watch.message()).await {
            Ok(Ok(Some(resp))) => received += resp.events().len(),
            other => panic!("raw watch received only {received} of {UPDATES}: {other:?}"),
        }
    }
    let raw = start.elapsed();
    let raw_writes = writing.await.expect("writers");

    // Initial sync of everything written: list + decode into events, vs a raw paged read.
    let total = 2 * UPDATES;
    let start = Instant::now();
    let (mut rx, _syncer) = Syncer::spawn(connect().await, vec![list.clone()]);
    let mut listed = 0;
    loop {
        match rx.recv().await.expect("syncer running") {
            SyncerEvent::Put { .. } => listed += 1,
            SyncerEvent::Status(SyncStatus::InSync) => break,
            _ => {}
        }
    }
    let ours_list = start.elapsed();
    assert_eq!(listed, total);
    let start = Instant::now();
    let prefix = list.etcd_prefix();
    let end = format!("{}0", &prefix[..prefix.len() - 1]);
    let mut from = prefix.clone().into_bytes();
    let mut read = 0;
    loop {
        let options = GetOptions::new().with_range(end.clone()).with_limit(500);
        let resp = client.get(from.clone(), Some(options)).await.expect("get");
        read += resp.kvs().len();
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => break,
        }
    }
    let raw_list = start.elapsed();
    assert_eq!(read, total);

    println!(
        "ours (Syncer on IPPools):    {UPDATES} puts delivered in {:.2} s = {:.0} updates/s \
         (writers done after {:.2} s)",
        ours.as_secs_f64(),
        rate(UPDATES, ours),
        ours_writes.as_secs_f64()
    );
    println!(
        "peer (raw etcd-client watch): {UPDATES} puts received in {:.2} s = {:.0} updates/s \
         (writers done after {:.2} s)",
        raw.as_secs_f64(),
        rate(UPDATES, raw),
        raw_writes.as_secs_f64()
    );
    println!(
        "ratio ours/raw (updates/s): {:.2}",
        rate(UPDATES, ours) / rate(UPDATES, raw)
    );
    println!(
        "initial sync of {total} pools: ours (list + decode) {:.2} s = {:.0}/s; \
         raw paged get {:.2} s = {:.0}/s; ratio {:.2}",
        ours_list.as_secs_f64(),
        rate(total, ours_list),
        raw_list.as_secs_f64(),
        rate(total, raw_list),
        rate(total, ours_list) / rate(total, raw_list)
    );
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "syncer benchmark, {}, {cores} cores, etcd {} (loopback, --unsafe-no-fsync); \
         {UPDATES} IPPool creates per phase from {WRITER_TASKS} tasks over \
         {WRITER_CONNECTIONS} connections",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        etcd_version()
    );
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(etcd.endpoints()));
}

fn etcd_version() -> String {
    testutil::etcd::etcd_binary()
        .and_then(|bin| {
            std::process::Command::new(bin)
                .arg("--version")
                .output()
                .ok()
        })
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("etcd Version: "))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "(not installed)".into())
}
