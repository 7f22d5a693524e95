//! The etcd backend's compare-and-swap semantics against a real etcd.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use api::ResourceKind;
use datastore::config::EtcdConfig;
use datastore::etcd::EtcdBackend;
use datastore::{
    Backend, Condition, Error, Key, ListKey, Listing, Read, ReadResult, ResourceKey, Revision,
    WatchEvent, Write,
};
use futures::StreamExt;

use common::{backend, eventually, pool_bytes, pool_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_twice_is_already_exists() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = backend(&etcd).await;
    let key = pool_key("p1");
    let rev = b
        .create(&key, pool_bytes("p1", "10.0.0.0/16"), None)
        .await
        .unwrap();
    let err = b
        .create(&key, pool_bytes("p1", "10.1.0.0/16"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists(k) if *k == key),
        "{err:?}"
    );
    let kv = b.get(&key).await.unwrap().expect("stored");
    assert_eq!(kv.revision, rev);
    assert_eq!(
        kv.value,
        pool_bytes("p1", "10.0.0.0/16"),
        "first write kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_stale_revision_is_conflict_and_missing_key_is_not_found() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = backend(&etcd).await;
    let key = pool_key("p1");
    let r1 = b
        .create(&key, pool_bytes("p1", "10.0.0.0/16"), None)
        .await
        .unwrap();
    let r2 = b
        .update(&key, pool_bytes("p1", "10.1.0.0/16"), r1)
        .await
        .unwrap();
    assert!(r2 > r1);
    let err = b
        .update(&key, pool_bytes("p1", "10.2.0.0/16"), r1)
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Conflict(k) if *k == key), "{err:?}");
    assert!(err.is_conflict());
    assert_eq!(b.get(&key).await.unwrap().unwrap().revision, r2);

    let missing = pool_key("nope");
    let err = b
        .update(&missing, pool_bytes("nope", "10.3.0.0/16"), r2)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound(k) if *k == missing),
        "{err:?}"
    );
    assert_eq!(b.get(&missing).await.unwrap(), None);

    // Revision 0 is what etcd reports for an absent key; it never names a stored version.
    let err = b
        .update(&missing, pool_bytes("nope", "10.3.0.0/16"), Revision(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRevision(_)), "{err:?}");
    assert_eq!(b.get(&missing).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_checks_revision_and_returns_what_it_deleted() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = backend(&etcd).await;
    let key = pool_key("p1");
    let r1 = b
        .create(&key, pool_bytes("p1", "10.0.0.0/16"), None)
        .await
        .unwrap();
    let r2 = b
        .update(&key, pool_bytes("p1", "10.1.0.0/16"), r1)
        .await
        .unwrap();

    let err = b.delete(&key, Some(r1)).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict(k) if *k == key), "{err:?}");
    assert!(b.get(&key).await.unwrap().is_some(), "stale delete left it");

    let deleted = b.delete(&key, Some(r2)).await.unwrap();
    assert_eq!(deleted.key, key);
    assert_eq!(deleted.revision, r2);
    assert_eq!(deleted.value, pool_bytes("p1", "10.1.0.0/16"));

    let err = b.delete(&key, Some(r2)).await.unwrap_err();
    assert!(matches!(&err, Error::NotFound(k) if *k == key), "{err:?}");
    let err = b.delete(&key, None).await.unwrap_err();
    assert!(matches!(&err, Error::NotFound(k) if *k == key), "{err:?}");

    let r3 = b
        .create(&key, pool_bytes("p1", "10.2.0.0/16"), None)
        .await
        .unwrap();
    assert_eq!(
        b.delete(&key, None).await.unwrap().revision,
        r3,
        "unconditional delete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_is_one_snapshot_of_the_prefix_and_skips_foreign_paths() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = backend(&etcd).await;
    // More than one list page (500 keys), to cover paging at one revision.
    let mut expected = Vec::new();
    for i in 0..1203 {
        let name = format!("pool-{i:05}");
        let rev = b
            .create(&pool_key(&name), pool_bytes(&name, "10.0.0.0/16"), None)
            .await
            .unwrap();
        expected.push((pool_key(&name), rev));
    }
    let gnp = Key::Resource(ResourceKey::new(
        ResourceKind::GlobalNetworkPolicy,
        None,
        "g",
    ));
    b.create(&gnp, b"{}".to_vec(), None).await.unwrap();
    let mut raw = b.etcd_client();
    raw.put(
        "/calico/resources/v3/projectcalico.org/ippools/a/b",
        "x",
        None,
    )
    .await
    .unwrap();
    raw.put("/calico/resources/v3/projectcalico.org/ippoolsx", "x", None)
        .await
        .unwrap();
    let last = raw.put("/other", "x", None).await.unwrap();

    let listing = b.list(&ListKey::kind(ResourceKind::IPPool)).await.unwrap();
    let got: Vec<(Key, Revision)> = listing
        .items
        .iter()
        .map(|kv| (kv.key.clone(), kv.revision))
        .collect();
    assert_eq!(got, expected, "every pool, in key order, nothing else");
    assert_eq!(listing.revision.0, last.header().unwrap().revision());

    let gnps = b
        .list(&ListKey::kind(ResourceKind::GlobalNetworkPolicy))
        .await
        .unwrap();
    assert_eq!(gnps.items.len(), 1);
    assert_eq!(gnps.items[0].key, gnp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_under_a_lease_disappears_on_revoke_and_update_keeps_the_lease() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = backend(&etcd).await;
    let lease = b.grant_lease(Duration::from_secs(30)).await.unwrap();
    b.keep_alive(lease).await.unwrap();
    let key = pool_key("leased");
    let r1 = b
        .create(&key, pool_bytes("leased", "10.0.0.0/16"), Some(lease))
        .await
        .unwrap();
    assert_eq!(b.get(&key).await.unwrap().unwrap().lease, Some(lease));
    b.update(&key, pool_bytes("leased", "10.1.0.0/16"), r1)
        .await
        .unwrap();
    assert_eq!(b.get(&key).await.unwrap().unwrap().lease, Some(lease));
    let plain = pool_key("plain");
    b.create(&plain, pool_bytes("plain", "10.2.0.0/16"), None)
        .await
        .unwrap();

    b.revoke_lease(lease).await.unwrap();
    assert_eq!(b.get(&key).await.unwrap(), None);
    assert!(b.get(&plain).await.unwrap().is_some());
    assert!(
        b.keep_alive(lease).await.is_err(),
        "revoked lease cannot be renewed"
    );
    b.revoke_lease(lease).await.expect("revoking twice is fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_changes_after_a_revision_in_order() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = backend(&etcd).await;
    let list = ListKey::kind(ResourceKind::IPPool);
    let r0 = b
        .create(
            &pool_key("before"),
            pool_bytes("before", "10.0.0.0/16"),
            None,
        )
        .await
        .unwrap();
    let r1 = b
        .create(&pool_key("a"), pool_bytes("a", "10.1.0.0/16"), None)
        .await
        .unwrap();
    let mut watch = b.watch(&list, r0).await.unwrap();
    let r2 = b
        .update(&pool_key("a"), pool_bytes("a", "10.2.0.0/16"), r1)
        .await
        .unwrap();
    let gnp = Key::Resource(ResourceKey::new(
        ResourceKind::GlobalNetworkPolicy,
        None,
        "g",
    ));
    b.create(&gnp, b"{}".to_vec(), None).await.unwrap();
    let deleted = b.delete(&pool_key("before"), None).await.unwrap();
    assert_eq!(deleted.revision, r0);

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("no error");
        seen.push(ev);
    }
    assert!(
        matches!(&seen[0], WatchEvent::Put(kv) if kv.key == pool_key("a") && kv.revision == r1)
    );
    assert!(
        matches!(&seen[1], WatchEvent::Put(kv) if kv.key == pool_key("a") && kv.revision == r2)
    );
    assert!(
        matches!(&seen[2], WatchEvent::Delete { key, revision } if *key == pool_key("before") && *revision > r2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_revision_is_compacted() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = backend(&etcd).await;
    let r1 = b
        .create(&pool_key("a"), pool_bytes("a", "10.0.0.0/16"), None)
        .await
        .unwrap();
    let r2 = b
        .update(&pool_key("a"), pool_bytes("a", "10.1.0.0/16"), r1)
        .await
        .unwrap();
    let r3 = b
        .update(&pool_key("a"), pool_bytes("a", "10.2.0.0/16"), r2)
        .await
        .unwrap();
    b.etcd_client().compact(r3.0, None).await.unwrap();
    let list = ListKey::kind(ResourceKind::IPPool);
    let result = match b.watch(&list, r1).await {
        Err(e) => Err(e),
        Ok(mut stream) => tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("answer in time")
            .expect("an item"),
    };
    assert!(
        matches!(result, Err(Error::Compacted { compact_revision }) if compact_revision == r3.0),
        "{result:?}"
    );
    // From the compaction point on, watching works.
    assert!(b.watch(&list, r3).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_etcd_is_unavailable_naming_the_endpoint() {
    let Some(mut etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let endpoints = etcd.endpoints();
    let b = backend(&etcd).await;
    tokio::task::block_in_place(|| etcd.kill());
    let err = b.get(&pool_key("a")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let err = EtcdBackend::connect(&EtcdConfig {
        endpoints: endpoints.to_vec(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains(&endpoints[0])),
        "{err}"
    );

    // The same client works again once etcd is back.
    tokio::task::block_in_place(|| etcd.restart());
    assert!(
        eventually(Duration::from_secs(15), async || b
            .get(&pool_key("a"))
            .await
            .is_ok())
        .await,
        "client recovers after etcd restart"
    );
}

/// Two writers start from the same revision of one resource, round after round: etcd's
/// compare-and-swap lets exactly one of them win each round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_racing_on_one_resource_exactly_one_wins() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = Arc::new(backend(&etcd).await);
    let key = pool_key("contended");
    let mut rev = b
        .create(&key, pool_bytes("contended", "10.0.0.0/16"), None)
        .await
        .unwrap();
    const ROUNDS: usize = 200;
    let mut revisions = HashSet::new();
    for round in 0..ROUNDS {
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (b, key, barrier) = (b.clone(), key.clone(), barrier.clone());
                let value = pool_bytes("contended", &format!("10.{w}.{}.0/24", round % 256));
                tokio::spawn(async move {
                    barrier.wait().await;
                    b.update(&key, value.clone(), rev).await.map(|r| (r, value))
                })
            })
            .collect();
        let mut wins = Vec::new();
        let mut conflicts = 0;
        for w in writers {
            match w.await.unwrap() {
                Ok(win) => wins.push(win),
                Err(Error::Conflict(k)) => {
                    assert_eq!(k, key);
                    conflicts += 1;
                }
                Err(e) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        assert_eq!((wins.len(), conflicts), (1, 1), "round {round}");
        let (new_rev, value) = wins.pop().unwrap();
        let stored = b.get(&key).await.unwrap().unwrap();
        assert_eq!(
            (stored.revision, stored.value),
            (new_rev, value),
            "winner's write stored"
        );
        assert!(new_rev > rev);
        assert!(revisions.insert(new_rev));
        rev = new_rev;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_keys_live_under_calicos_paths_and_list_by_kind() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = backend(&etcd).await;
    let block = Key::Block("10.65.79.0/26".parse().unwrap());
    let affinity = Key::BlockAffinity {
        host: "node-1".into(),
        cidr: "10.65.79.0/26".parse().unwrap(),
    };
    let handle = Key::Handle("k8s-pod-network.abc".into());
    for key in [&block, &affinity, &handle, &Key::IpamConfig] {
        b.create(key, b"{}".to_vec(), None).await.unwrap();
    }
    // A resource beside them must not show up in IPAM listings.
    b.create(&pool_key("p1"), pool_bytes("p1", "10.0.0.0/16"), None)
        .await
        .unwrap();

    let keys = |l: datastore::Listing| l.items.into_iter().map(|kv| kv.key).collect::<Vec<_>>();
    assert_eq!(keys(b.list(&ListKey::Blocks).await.unwrap()), [block]);
    assert_eq!(
        keys(
            b.list(&ListKey::BlockAffinities { host: None })
                .await
                .unwrap()
        ),
        [affinity]
    );
    assert_eq!(
        keys(
            b.list(&ListKey::BlockAffinities {
                host: Some("node-2".into())
            })
            .await
            .unwrap()
        ),
        Vec::<Key>::new()
    );
    assert_eq!(keys(b.list(&ListKey::Handles).await.unwrap()), [handle]);

    // Read back by the raw etcd path Calico uses.
    let mut raw = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .unwrap();
    let got = raw
        .get("/calico/ipam/v2/assignment/ipv4/block/10.65.79.0-26", None)
        .await
        .unwrap();
    assert_eq!(got.kvs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_writes_all_or_nothing_and_names_the_key_that_moved() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = backend(&etcd).await;
    let block = Key::Block("10.0.0.0/26".parse().unwrap());
    let handle = Key::Handle("k8s-pod-network.c1".into());
    let r1 = b.create(&block, b"{\"v\":1}".to_vec(), None).await.unwrap();

    // Block at r1 and handle absent: both written, at one revision.
    let r2 = b
        .commit(
            &[
                Condition::At(block.clone(), r1),
                Condition::Absent(handle.clone()),
            ],
            vec![
                Write::Put(block.clone(), b"{\"v\":2}".to_vec()),
                Write::Put(handle.clone(), b"{\"n\":1}".to_vec()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(b.get(&block).await.unwrap().unwrap().revision, r2);
    assert_eq!(b.get(&handle).await.unwrap().unwrap().revision, r2);

    // A stale block revision: nothing is written, and the error names the block.
    let err = b
        .commit(
            &[
                Condition::At(block.clone(), r1),
                Condition::At(handle.clone(), r2),
            ],
            vec![
                Write::Put(block.clone(), b"{\"v\":3}".to_vec()),
                Write::Delete(handle.clone()),
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Conflict(k) if *k == block), "{err:?}");
    assert_eq!(b.get(&block).await.unwrap().unwrap().value, b"{\"v\":2}");
    assert!(b.get(&handle).await.unwrap().is_some());

    // A key that should be absent but exists, and one that should exist but is gone.
    let err = b
        .commit(&[Condition::Absent(handle.clone())], vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists(k) if *k == handle),
        "{err:?}"
    );
    let gone = Key::Handle("gone".into());
    let err = b
        .commit(
            &[Condition::At(gone.clone(), r2)],
            vec![Write::Delete(gone.clone())],
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::NotFound(k) if *k == gone), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_batch_is_one_snapshot_of_gets_and_lists_in_the_order_asked() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let b = backend(&etcd).await;
    let r1 = b
        .create(&pool_key("a"), pool_bytes("a", "10.1.0.0/16"), None)
        .await
        .unwrap();
    b.create(&pool_key("b"), pool_bytes("b", "10.2.0.0/16"), None)
        .await
        .unwrap();
    let handle = Key::Handle("h1".into());
    let last = b.create(&handle, b"{}".to_vec(), None).await.unwrap();
    let out = b
        .read_batch(&[
            Read::Get(Key::IpamConfig),
            Read::List(ListKey::kind(ResourceKind::IPPool)),
            Read::Get(pool_key("a")),
            Read::List(ListKey::Blocks),
            Read::Get(handle.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(out.len(), 5);
    assert_eq!(out[0], ReadResult::Get(None));
    let ReadResult::List(pools) = &out[1] else {
        panic!("a list answers a list: {:?}", out[1]);
    };
    assert_eq!(
        pools
            .items
            .iter()
            .map(|kv| kv.key.clone())
            .collect::<Vec<_>>(),
        [pool_key("a"), pool_key("b")]
    );
    assert_eq!(
        pools.revision, last,
        "the batch reads at the newest revision"
    );
    let ReadResult::Get(Some(a)) = &out[2] else {
        panic!("pool a is there: {:?}", out[2]);
    };
    assert_eq!(a.revision, r1);
    assert_eq!(
        out[3],
        ReadResult::List(Listing {
            items: vec![],
            revision: last
        })
    );
    let ReadResult::Get(Some(h)) = &out[4] else {
        panic!("the handle is there: {:?}", out[4]);
    };
    assert_eq!(h.value, b"{}");
}
