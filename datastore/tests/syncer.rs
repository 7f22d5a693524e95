//! The syncer against a real etcd: what the consumer holds always converges to what etcd holds,
//! through etcd restarts and compactions, without duplicates or reordering.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::{AnyResource, Resource, ResourceKind};
use async_trait::async_trait;
use datastore::backend::WatchStream;
use datastore::syncer::{SyncStatus, Syncer, SyncerEvent};
use datastore::{
    Backend, Condition, Error, Key, KvPair, LeaseId, ListKey, Listing, ResourceKey, Revision,
    Write, codec,
};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use common::{backend, eventually, pool, pool_bytes, pool_key};

const DEADLINE: Duration = Duration::from_secs(30);

async fn next_event(rx: &mut mpsc::Receiver<SyncerEvent>) -> SyncerEvent {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("syncer event in time")
        .expect("syncer running")
}

fn node(name: &str, addr: &str) -> AnyResource {
    AnyResource::from_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "Node",
        "metadata": { "name": name },
        "spec": { "bgp": { "ipv4Address": addr } },
    }))
    .expect("valid node")
}

fn node_key(name: &str) -> Key {
    Key::Resource(ResourceKey::new(ResourceKind::Node, None, name))
}

fn resource_key(r: &AnyResource) -> ResourceKey {
    datastore::client::resource_key(r).expect("resources in these tests have names")
}

/// What etcd holds for `lists`, decoded as the syncer decodes it.
async fn etcd_state(
    b: &dyn Backend,
    lists: &[ListKey],
) -> Result<BTreeMap<ResourceKey, AnyResource>, Error> {
    let mut state = BTreeMap::new();
    for list in lists {
        for kv in b.list(list).await?.items {
            if let Ok(r) = codec::decode::<AnyResource>(&kv) {
                state.insert(resource_key(&r), r);
            }
        }
    }
    Ok(state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncer_lists_then_follows_live_changes_with_in_sync_after_the_listing() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = Arc::new(backend(&etcd).await);
    let r_a = b
        .create(&pool_key("a"), pool_bytes("a", "10.0.0.0/16"), None)
        .await
        .unwrap();
    let n = node("n1", "192.0.2.1/24");
    b.create(&node_key("n1"), codec::encode(&n).unwrap(), None)
        .await
        .unwrap();

    let lists = vec![
        ListKey::kind(ResourceKind::IPPool),
        ListKey::kind(ResourceKind::Node),
    ];
    let (mut rx, handle) = Syncer::spawn(b.clone(), lists);
    assert_eq!(
        next_event(&mut rx).await,
        SyncerEvent::Status(SyncStatus::WaitForDatastore)
    );
    let mut puts = BTreeMap::new();
    let mut statuses = Vec::new();
    loop {
        match next_event(&mut rx).await {
            SyncerEvent::Status(SyncStatus::InSync) => break,
            SyncerEvent::Status(s) => statuses.push(s),
            SyncerEvent::Put { resource, revision } => {
                assert_eq!(
                    resource.metadata().resource_version.as_deref(),
                    Some(revision.to_string().as_str())
                );
                puts.insert(resource_key(&resource), resource);
            }
            other => panic!("unexpected before InSync: {other:?}"),
        }
    }
    assert_eq!(statuses, [SyncStatus::ResyncInProgress]);
    assert_eq!(puts.len(), 2, "both listed resources before InSync");
    assert_eq!(
        puts[&ResourceKey::new(ResourceKind::IPPool, None, "a")]
            .metadata()
            .resource_version
            .as_deref(),
        Some(r_a.to_string().as_str())
    );

    let r2 = b
        .update(&pool_key("a"), pool_bytes("a", "10.9.0.0/16"), r_a)
        .await
        .unwrap();
    match next_event(&mut rx).await {
        SyncerEvent::Put { resource, revision } => {
            assert_eq!(revision, r2);
            assert_eq!(resource, {
                let mut p = pool("a", "10.9.0.0/16");
                p.metadata_mut().resource_version = Some(r2.to_string());
                p
            });
        }
        other => panic!("expected the update, got {other:?}"),
    }
    let deleted = b.delete(&node_key("n1"), None).await.unwrap();
    match next_event(&mut rx).await {
        SyncerEvent::Delete { key, revision } => {
            assert_eq!(key, ResourceKey::new(ResourceKind::Node, None, "n1"));
            assert!(revision > deleted.revision);
        }
        other => panic!("expected the delete, got {other:?}"),
    }

    drop(rx);
    tokio::time::timeout(DEADLINE, handle)
        .await
        .expect("syncer ends when the receiver is dropped")
        .expect("no panic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_values_are_treated_as_absent() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = Arc::new(backend(&etcd).await);
    let mut raw = b.etcd_client();
    raw.put(pool_key("garbage").etcd_path(), "not json", None)
        .await
        .unwrap();
    b.create(&pool_key("good"), pool_bytes("good", "10.0.0.0/16"), None)
        .await
        .unwrap();

    let (mut rx, _handle) = Syncer::spawn(b.clone(), vec![ListKey::kind(ResourceKind::IPPool)]);
    let mut held = Vec::new();
    loop {
        match next_event(&mut rx).await {
            SyncerEvent::Status(SyncStatus::InSync) => break,
            SyncerEvent::Put { resource, .. } => held.push(resource.metadata().name.clone()),
            _ => {}
        }
    }
    assert_eq!(held, ["good"], "the undecodable value is not delivered");

    // A delivered resource that becomes undecodable is deleted from the consumer's view.
    let bad = raw
        .put(pool_key("good").etcd_path(), "{\"kind\":\"IPPool\"", None)
        .await
        .unwrap();
    match next_event(&mut rx).await {
        SyncerEvent::Delete { key, revision } => {
            assert_eq!(key, ResourceKey::new(ResourceKind::IPPool, None, "good"));
            assert_eq!(revision.0, bad.header().unwrap().revision());
        }
        other => panic!("expected a delete, got {other:?}"),
    }
    // Deleting a value the consumer never had is not an event; the next real change is.
    raw.delete(pool_key("garbage").etcd_path(), None)
        .await
        .unwrap();
    let r = b
        .create(&pool_key("next"), pool_bytes("next", "10.1.0.0/16"), None)
        .await
        .unwrap();
    match next_event(&mut rx).await {
        SyncerEvent::Put { revision, .. } => assert_eq!(revision, r),
        other => panic!("expected the next put, got {other:?}"),
    }
}

/// A backend in front of the real one whose connection the test can cut: while the gate is
/// closed, reads fail as Unavailable and open watches break. It lets the test hold the syncer
/// disconnected while etcd moves on and compacts, which a kill alone cannot guarantee (the
/// syncer may reconnect before the compaction).
struct Gated {
    inner: Arc<dyn Backend>,
    open: watch::Sender<bool>,
    lists: AtomicUsize,
}

impl Gated {
    fn check(&self) -> Result<(), Error> {
        if *self.open.borrow() {
            Ok(())
        } else {
            Err(Error::Unavailable("gate closed by the test".into()))
        }
    }
}

#[async_trait]
impl Backend for Gated {
    async fn get(&self, key: &Key) -> Result<Option<KvPair>, Error> {
        self.check()?;
        self.inner.get(key).await
    }
    async fn list(&self, list: &ListKey) -> Result<Listing, Error> {
        self.check()?;
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(list).await
    }
    async fn create(&self, k: &Key, v: Vec<u8>, l: Option<LeaseId>) -> Result<Revision, Error> {
        self.check()?;
        self.inner.create(k, v, l).await
    }
    async fn update(&self, k: &Key, v: Vec<u8>, e: Revision) -> Result<Revision, Error> {
        self.check()?;
        self.inner.update(k, v, e).await
    }
    async fn delete(&self, k: &Key, e: Option<Revision>) -> Result<KvPair, Error> {
        self.check()?;
        self.inner.delete(k, e).await
    }
    async fn commit(&self, c: &[Condition], w: Vec<Write>) -> Result<Revision, Error> {
        self.check()?;
        self.inner.commit(c, w).await
    }
    async fn watch(&self, list: &ListKey, after: Revision) -> Result<WatchStream, Error> {
        self.check()?;
        let inner = self.inner.watch(list, after).await?;
        let gate = self.open.subscribe();
        let cut = futures::stream::unfold(
            (inner, gate, false),
            |(mut inner, mut gate, done)| async move {
                if done {
                    return None;
                }
                let cut = tokio::select! {
                    item = inner.next() => Some(item),
                    _ = gate.wait_for(|open| !*open) => None,
                };
                match cut {
                    Some(item) => item.map(|i| (i, (inner, gate, false))),
                    None => Some((
                        Err(Error::Unavailable("gate closed by the test".into())),
                        (inner, gate, true),
                    )),
                }
            },
        );
        Ok(Box::pin(cut))
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, Error> {
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), Error> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), Error> {
        self.inner.revoke_lease(lease).await
    }
}

/// The consumer: applies events in order, and records anything that breaks the syncer's
/// promises (a Put or Delete not newer than what it last saw for that key is a duplicate or a
/// reordering).
#[derive(Default)]
struct Consumer {
    held: BTreeMap<ResourceKey, AnyResource>,
    last_seen: HashMap<ResourceKey, Revision>,
    status: Option<SyncStatus>,
    statuses: Vec<SyncStatus>,
    puts: u64,
    deletes: u64,
    /// Every Put delivered, to check that none of the writer's writes was skipped.
    seen: std::collections::HashSet<(ResourceKey, Revision)>,
    max_revision: Revision,
    violations: Vec<String>,
}

impl Consumer {
    fn apply(&mut self, event: SyncerEvent) {
        match event {
            SyncerEvent::Status(s) => {
                self.status = Some(s);
                self.statuses.push(s);
            }
            SyncerEvent::Put { resource, revision } => {
                let key = resource_key(&resource);
                self.check_newer(&key, revision, "put");
                self.puts += 1;
                self.seen.insert((key.clone(), revision));
                self.max_revision = self.max_revision.max(revision);
                self.held.insert(key, resource);
            }
            SyncerEvent::Delete { key, revision } => {
                self.check_newer(&key, revision, "delete");
                self.max_revision = self.max_revision.max(revision);
                if self.held.remove(&key).is_none() {
                    self.violations
                        .push(format!("delete of {key} the consumer never had"));
                }
                self.deletes += 1;
            }
            // This consumer syncs resource lists only.
            SyncerEvent::PutIpam(kv) => self
                .violations
                .push(format!("IPAM object {} from a resource list", kv.key)),
            SyncerEvent::DeleteIpam { key, .. } => self
                .violations
                .push(format!("IPAM deletion {key} from a resource list")),
        }
    }

    fn check_newer(&mut self, key: &ResourceKey, revision: Revision, what: &str) {
        if let Some(prev) = self.last_seen.insert(key.clone(), revision)
            && revision <= prev
        {
            self.violations
                .push(format!("{what} of {key} at {revision} after {prev}"));
        }
    }
}

/// What the writer has written: every successful create or update, and a count of all writes.
#[derive(Default)]
struct WriteLog {
    puts: Mutex<Vec<(ResourceKey, Revision)>>,
    writes: AtomicU64,
}

impl WriteLog {
    fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
    fn last_revision(&self) -> Revision {
        self.puts
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| *r)
            .max()
            .unwrap_or_default()
    }
}

/// A writer task and how to stop it; stopping hands back what it believes is stored so a
/// later writer carries on from there.
struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<HashMap<Key, Revision>>,
}

impl Writer {
    fn start(b: Arc<dyn Backend>, believed: HashMap<Key, Revision>, log: Arc<WriteLog>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(write_until(b, believed, stop.clone(), log));
        Writer { stop, task }
    }
    async fn stop(self) -> HashMap<Key, Revision> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// Creates, updates and deletes pools and nodes with CAS until stopped, riding out etcd
/// outages (requests then fail as Unavailable and are simply tried again).
async fn write_until(
    b: Arc<dyn Backend>,
    mut believed: HashMap<Key, Revision>,
    stop: Arc<AtomicBool>,
    log: Arc<WriteLog>,
) -> HashMap<Key, Revision> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ log.writes();
    let mut rand = move || {
        // xorshift64: a deterministic mix of operations without a rand dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let i = rand() % 60;
        let (key, value) = if i < 40 {
            let name = format!("pool-{i}");
            let cidr = format!("10.{}.{}.0/24", i, round % 256);
            (pool_key(&name), pool_bytes(&name, &cidr))
        } else {
            let name = format!("node-{i}");
            let addr = format!("192.0.2.{}/24", round % 250 + 1);
            (node_key(&name), codec::encode(&node(&name, &addr)).unwrap())
        };
        let result = match believed.get(&key).copied() {
            None => b.create(&key, value, None).await.map(Some),
            Some(rev) if rand() % 10 < 7 => b.update(&key, value, rev).await.map(Some),
            Some(rev) => b.delete(&key, Some(rev)).await.map(|_| None),
        };
        match result {
            Ok(Some(rev)) => {
                let Key::Resource(rk) = &key else {
                    unreachable!("the writer only writes nodes")
                };
                log.puts.lock().unwrap().push((rk.clone(), rev));
                believed.insert(key, rev);
                log.writes.fetch_add(1, Ordering::SeqCst);
            }
            Ok(None) => {
                believed.remove(&key);
                log.writes.fetch_add(1, Ordering::SeqCst);
            }
            Err(Error::Unavailable(_)) => {
                // etcd is down (the test killed it): pause before the next try rather than spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {
                // The key moved (e.g. an earlier write timed out but was applied): re-read, as
                // every CAS writer must.
                match b.get(&key).await {
                    Ok(Some(kv)) => {
                        believed.insert(key, kv.revision);
                    }
                    Ok(None) => {
                        believed.remove(&key);
                    }
                    Err(_) => {}
                }
            }
        }
    }
    believed
}

/// The syncer's promise under failure: a writer keeps changing pools and nodes while etcd is
/// killed and restarted, and while the syncer is held disconnected long enough for its resume
/// revision to be compacted (with an etcd restart in that window too). Its consumer never sees
/// a duplicate or out-of-order event, and ends holding exactly what etcd holds, resource
/// versions included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncer_view_equals_etcd_after_kills_restarts_and_compaction() {
    let Some(mut etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let lists = vec![
        ListKey::kind(ResourceKind::IPPool),
        ListKey::kind(ResourceKind::Node),
    ];
    let direct: Arc<dyn Backend> = Arc::new(backend(&etcd).await);
    let syncer_conn: Arc<dyn Backend> = Arc::new(backend(&etcd).await);
    let (gate, _) = watch::channel(true);
    let gated = Arc::new(Gated {
        inner: syncer_conn,
        open: gate,
        lists: AtomicUsize::new(0),
    });

    let consumer = Arc::new(Mutex::new(Consumer::default()));
    let (mut rx, syncer) = Syncer::spawn(gated.clone(), lists.clone());
    let consuming = {
        let consumer = consumer.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                consumer.lock().unwrap().apply(event);
            }
        })
    };
    let log = Arc::new(WriteLog::default());
    let mut writer = Writer::start(direct.clone(), HashMap::new(), log.clone());

    let status = |s: SyncStatus| {
        let consumer = consumer.clone();
        async move || consumer.lock().unwrap().status == Some(s)
    };
    let puts = || consumer.lock().unwrap().puts;
    let writes = || log.writes();

    // Live: in sync and following the writer.
    assert!(eventually(DEADLINE, status(SyncStatus::InSync)).await);
    let w = writes();
    assert!(eventually(DEADLINE, async || writes() > w + 200 && puts() > 100).await);

    // etcd crashes mid-stream and comes back: the syncer waits, then resumes.
    tokio::task::block_in_place(|| etcd.kill());
    assert!(
        eventually(DEADLINE, status(SyncStatus::WaitForDatastore)).await,
        "syncer reports the outage"
    );
    tokio::task::block_in_place(|| etcd.restart());
    assert!(eventually(DEADLINE, status(SyncStatus::InSync)).await);
    let (p, w) = (puts(), writes());
    assert!(eventually(DEADLINE, async || writes() > w + 200 && puts() > p + 100).await);

    // Cut the syncer off at a known point (it has delivered every write so far), then let
    // etcd restart, the writer go on, and history be compacted past the syncer's revision.
    let believed = writer.stop().await;
    let delivered = log.last_revision();
    assert!(
        eventually(DEADLINE, async || consumer.lock().unwrap().max_revision
            >= delivered)
        .await
    );
    let lists_before = gated.lists.load(Ordering::SeqCst);
    gated.open.send_replace(false);
    assert!(eventually(DEADLINE, status(SyncStatus::WaitForDatastore)).await);
    writer = Writer::start(direct.clone(), believed, log.clone());
    let w = writes();
    assert!(eventually(DEADLINE, async || writes() > w + 100).await);
    tokio::task::block_in_place(|| etcd.kill());
    tokio::task::block_in_place(|| etcd.restart());
    let w = writes();
    assert!(eventually(DEADLINE, async || writes() > w + 200).await);
    let believed = writer.stop().await;
    let mut raw = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .unwrap();
    let head = raw
        .get("/", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    raw.compact(head, None).await.unwrap();
    // Writes in (delivered, head] may reach the consumer only as the re-list's difference.
    let compressed = (delivered, Revision(head));
    let statuses_before_reopen = consumer.lock().unwrap().statuses.len();
    gated.open.send_replace(true);

    // It must re-list (its resume revision is gone) and be in sync again; then it follows a
    // running writer live. (The writer waits for the re-lists so that their revision is `head`:
    // every later write must arrive as its own event.)
    let relisted = async || gated.lists.load(Ordering::SeqCst) >= lists_before + 2;
    assert!(
        eventually(DEADLINE, relisted).await,
        "compaction forced both watchers to re-list"
    );
    assert!(eventually(DEADLINE, status(SyncStatus::InSync)).await);
    writer = Writer::start(direct.clone(), believed, log.clone());
    let (p, w) = (puts(), writes());
    assert!(eventually(DEADLINE, async || writes() > w + 100 && puts() > p + 50).await);

    // Quiesce, then the consumer must converge to exactly etcd's state.
    writer.stop().await;
    let converged = eventually(DEADLINE, async || {
        let Ok(truth) = etcd_state(direct.as_ref(), &lists).await else {
            return false;
        };
        consumer.lock().unwrap().held == truth
    })
    .await;
    let truth = etcd_state(direct.as_ref(), &lists).await.unwrap();
    let c = std::mem::take(&mut *consumer.lock().unwrap());
    assert!(
        converged,
        "consumer holds {} resources, etcd {}; first difference: {:?}",
        c.held.len(),
        truth.len(),
        truth
            .iter()
            .find(|(k, v)| c.held.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .or_else(|| c.held.keys().find(|k| !truth.contains_key(*k)))
    );
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    // No gaps: every write outside the compacted window reached the consumer as its own Put.
    let puts_logged = log.puts.lock().unwrap().clone();
    let missed: Vec<_> = puts_logged
        .iter()
        .filter(|(_, r)| !(*r > compressed.0 && *r <= compressed.1))
        .filter(|(k, r)| !c.seen.contains(&(k.clone(), *r)))
        .collect();
    assert!(
        missed.is_empty(),
        "{} of {} writes never delivered (compacted window {compressed:?}), first {:?}, last {:?}",
        missed.len(),
        puts_logged.len(),
        missed.first(),
        missed.last()
    );
    assert!(
        c.deletes > 0 && !truth.is_empty(),
        "the run exercised deletes"
    );
    assert_eq!(c.status, Some(SyncStatus::InSync));
    // A watch on a compacted revision is never taken for a working one: after the reconnect
    // the first InSync comes with the re-list, and stays.
    let after_reopen = &c.statuses[statuses_before_reopen..];
    assert_eq!(
        after_reopen
            .iter()
            .filter(|s| **s == SyncStatus::InSync)
            .count(),
        1,
        "{after_reopen:?}"
    );
    assert_eq!(after_reopen.last(), Some(&SyncStatus::InSync));
    eprintln!(
        "writes {}, logged puts {}, delivered puts {}, deletes {}, lists {}, statuses {:?}",
        writes(),
        puts_logged.len(),
        c.puts,
        c.deletes,
        gated.lists.load(Ordering::SeqCst),
        c.statuses
    );

    syncer.abort();
    let _ = consuming.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncer_delivers_ipam_blocks_and_affinities_as_stored() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = Arc::new(backend(&etcd).await);
    let cidr: ipnetwork::IpNetwork = "10.65.0.0/26".parse().unwrap();
    let block = Key::Block(cidr);
    let affinity = Key::BlockAffinity {
        host: "node-1".into(),
        cidr,
    };
    let block_json = br#"{"cidr":"10.65.0.0/26","affinity":"host:node-1"}"#.to_vec();
    b.create(&block, block_json.clone(), None).await.unwrap();
    let lists = vec![
        ListKey::Blocks,
        ListKey::BlockAffinities {
            host: Some("node-1".into()),
        },
    ];
    let (mut rx, _handle) = Syncer::spawn(b.clone(), lists);
    let mut listed = Vec::new();
    loop {
        match next_event(&mut rx).await {
            SyncerEvent::Status(SyncStatus::InSync) => break,
            SyncerEvent::Status(_) => {}
            SyncerEvent::PutIpam(kv) => listed.push((kv.key, kv.value)),
            other => panic!("unexpected before InSync: {other:?}"),
        }
    }
    assert_eq!(listed, [(block.clone(), block_json)]);

    let value = br#"{"state":"confirmed","deleted":false}"#.to_vec();
    b.create(&affinity, value.clone(), None).await.unwrap();
    match next_event(&mut rx).await {
        SyncerEvent::PutIpam(kv) => assert_eq!((kv.key, kv.value), (affinity.clone(), value)),
        other => panic!("expected the affinity, got {other:?}"),
    }
    b.delete(&block, None).await.unwrap();
    match next_event(&mut rx).await {
        SyncerEvent::DeleteIpam { key, .. } => assert_eq!(key, block),
        other => panic!("expected the block's deletion, got {other:?}"),
    }
}
