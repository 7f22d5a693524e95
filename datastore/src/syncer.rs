//! The syncer: Calico's list + watch loop, turning a [`Backend`] into one ordered stream of
//! [`SyncerEvent`]s with a status that says when the consumer holds everything.
//!
//! Shape (as libcalico-go's `watchersyncer`): one watcher task per [`ListKey`] (Calico's
//! per-type `watcherCache`), each feeding a coordinator task that merges their events into the
//! consumer's channel and folds their states into one [`SyncStatus`]. A watcher per list keeps
//! lists independent: a compaction that forces one type to re-list does not disturb the
//! others, and decoding runs in parallel per type. The coordinator owns nothing but the
//! per-watcher states; every watcher owns its own view.
//!
//! Each watcher keeps the view it has delivered (key -> revision) and the last store revision
//! it delivered, and from them:
//! - lists, emits a Put per item, then watches from the list's revision;
//! - when the watch breaks (etcd restarted, connection lost) it retries with a bounded
//!   backoff and resumes from the last delivered revision: etcd replays everything after it,
//!   so there is no gap, and events at or below a key's delivered revision are dropped, so
//!   there is no duplicate. While etcd cannot be reached the status is `WaitForDatastore`;
//! - when that revision has been compacted (etcd can no longer replay from it) it re-lists
//!   and emits only the difference against its view: Puts for new or changed keys, Deletes for
//!   keys that are gone, like Calico's `watcherCache` resync;
//! - a stored value that does not decode is logged and treated as absent (a Delete if the
//!   consumer holds that key), so the consumer never holds something the store does not.
//!
//! Hence the invariant the tests check: after any sequence of restarts and compactions, the
//! resources a consumer holds by applying the events in order equal the store's.
//!
//! The syncer runs until the receiver is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use api::AnyResource;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::backend::WatchStream;
use crate::{Backend, Error, Key, KvPair, ListKey, ResourceKey, Revision, WatchEvent, codec};

/// Events buffered towards the consumer.
const CHANNEL_CAPACITY: usize = 1024;
/// Most events a watcher hands to the coordinator at once (what its watch has ready).
const MAX_BATCH: usize = 512;
/// Retry delays while etcd cannot be reached: Calico's watchers retry after 100 ms-ish and back
/// off to a few seconds; 2 s keeps recovery after an etcd restart quick.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How complete the consumer's view is (Calico's `api.SyncStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStatus {
    /// The datastore cannot be reached (yet, or any more).
    WaitForDatastore,
    /// Reading the current state; the view is incomplete until `InSync`.
    ResyncInProgress,
    /// The consumer has every listed resource as of a recent revision; updates follow live.
    InSync,
}

/// One thing the consumer must apply, in order.
// Puts dominate the stream, so boxing the resource would only add an allocation per event
// (the api crate's AnyResource makes the same choice).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum SyncerEvent {
    Status(SyncStatus),
    /// Created or changed; `resource.metadata.resourceVersion` is `revision`.
    Put {
        resource: AnyResource,
        revision: Revision,
    },
    /// Gone (deleted, expired, or no longer decodable) as of `revision`.
    Delete {
        key: ResourceKey,
        revision: Revision,
    },
    /// An IPAM object (block, affinity, handle, config) created or changed. These are not v3
    /// resources; their JSON is Calico's IPAM format, for the `ipam` crate's types to read.
    PutIpam(KvPair),
    /// An IPAM object gone as of `revision`.
    DeleteIpam {
        key: Key,
        revision: Revision,
    },
}

/// Starts syncers; see the module documentation.
pub struct Syncer;

impl Syncer {
    /// Start syncing `lists`. The first event is `Status(WaitForDatastore)`; `InSync` follows
    /// once every list has been delivered. Runs until the receiver is dropped; the handle's
    /// result is an error only if a watcher panicked.
    pub fn spawn(
        backend: Arc<dyn Backend>,
        lists: Vec<ListKey>,
    ) -> (mpsc::Receiver<SyncerEvent>, JoinHandle<()>) {
        let (out, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (to_coordinator, from_watchers) = mpsc::channel(lists.len().max(1) * 4);
        let mut watchers = JoinSet::new();
        let count = lists.len();
        for (index, list) in lists.into_iter().enumerate() {
            let watcher = Watcher {
                index,
                backend: backend.clone(),
                list,
                view: HashMap::new(),
                resume: Revision(0),
                state: WatcherState::Connecting,
                tx: to_coordinator.clone(),
            };
            watchers.spawn(watcher.run());
        }
        drop(to_coordinator);
        let handle = tokio::spawn(coordinate(out, from_watchers, count, watchers));
        (rx, handle)
    }
}

/// Where one watcher is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WatcherState {
    /// Not yet reached the datastore.
    Connecting,
    /// A request failed; retrying.
    Unreachable,
    /// Listing (first time or after a compaction).
    Resyncing,
    /// Delivered a listing and watching from it.
    Synced,
}

enum WatcherMsg {
    State(usize, WatcherState),
    Events(Vec<SyncerEvent>),
}

/// Calico's rule: wait while any part cannot reach the store; in sync when all parts are.
fn overall(states: &[WatcherState]) -> SyncStatus {
    use WatcherState::*;
    if states.contains(&Unreachable) || states.iter().all(|s| *s == Connecting) {
        SyncStatus::WaitForDatastore
    } else if states.iter().all(|s| *s == Synced) {
        SyncStatus::InSync
    } else {
        SyncStatus::ResyncInProgress
    }
}

async fn coordinate(
    out: mpsc::Sender<SyncerEvent>,
    mut from_watchers: mpsc::Receiver<WatcherMsg>,
    count: usize,
    mut watchers: JoinSet<()>,
) {
    let mut states = vec![WatcherState::Connecting; count];
    let mut status = if count == 0 {
        SyncStatus::InSync
    } else {
        SyncStatus::WaitForDatastore
    };
    if out.send(SyncerEvent::Status(status)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            // Dropping `watchers` on return aborts every watcher.
            _ = out.closed() => return,
            joined = watchers.join_next(), if !watchers.is_empty() => {
                // Watchers loop forever; ending means a panic (or abort, which only we do).
                if let Some(Err(e)) = joined {
                    tracing::error!(error = %e, "syncer watcher task died; stopping the syncer");
                    if e.is_panic() {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
                return;
            }
            msg = from_watchers.recv(), if count > 0 => match msg {
                None => return,
                Some(WatcherMsg::Events(events)) => {
                    for event in events {
                        if out.send(event).await.is_err() {
                            return;
                        }
                    }
                }
                Some(WatcherMsg::State(index, state)) => {
                    states[index] = state;
                    let now = overall(&states);
                    if now != status {
                        status = now;
                        tracing::debug!(?status, "syncer status");
                        if out.send(SyncerEvent::Status(status)).await.is_err() {
                            return;
                        }
                    }
                }
            },
        }
    }
}

struct Backoff(Duration);

impl Backoff {
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        d
    }
    fn reset(&mut self) {
        self.0 = BACKOFF_MIN;
    }
}

/// The coordinator is gone: the consumer dropped the receiver.
struct Closed;

struct Watcher {
    index: usize,
    backend: Arc<dyn Backend>,
    list: ListKey,
    /// What the consumer holds of this list: key -> revision delivered.
    view: HashMap<Key, Revision>,
    /// The store revision the consumer is up to date with for this list.
    resume: Revision,
    state: WatcherState,
    tx: mpsc::Sender<WatcherMsg>,
}

impl Watcher {
    async fn run(mut self) {
        let _ = self.sync_forever().await;
    }

    async fn sync_forever(&mut self) -> Result<(), Closed> {
        let mut backoff = Backoff(BACKOFF_MIN);
        let mut need_list = true;
        loop {
            if need_list {
                match self.backend.list(&self.list).await {
                    Ok(listing) => {
                        backoff.reset();
                        self.set_state(WatcherState::Resyncing).await?;
                        self.apply_listing(listing.items, listing.revision).await?;
                        self.set_state(WatcherState::Synced).await?;
                        need_list = false;
                    }
                    Err(Error::Compacted { .. }) => {
                        // The list's own snapshot revision went away between pages: list again.
                        tracing::debug!(list = ?self.list, "list revision compacted; listing again");
                    }
                    Err(e) => {
                        tracing::warn!(list = ?self.list, error = %e, "syncer cannot list");
                        self.set_state(WatcherState::Unreachable).await?;
                        tokio::time::sleep(backoff.next()).await;
                    }
                }
                continue;
            }
            match self.backend.watch(&self.list, self.resume).await {
                Ok(stream) => {
                    backoff.reset();
                    if self.state != WatcherState::Synced {
                        self.set_state(WatcherState::Synced).await?;
                    }
                    match self.follow(stream).await? {
                        Some(Error::Compacted { compact_revision }) => {
                            tracing::info!(
                                list = ?self.list, resume = %self.resume, compact_revision,
                                "watch revision compacted; re-listing"
                            );
                            self.set_state(WatcherState::Resyncing).await?;
                            need_list = true;
                        }
                        other => {
                            if let Some(e) = other {
                                tracing::info!(list = ?self.list, error = %e, "watch broke; resuming");
                            }
                            tokio::time::sleep(backoff.next()).await;
                        }
                    }
                }
                Err(Error::Compacted { compact_revision }) => {
                    tracing::info!(
                        list = ?self.list, resume = %self.resume, compact_revision,
                        "watch revision compacted; re-listing"
                    );
                    self.set_state(WatcherState::Resyncing).await?;
                    need_list = true;
                }
                Err(e) => {
                    tracing::warn!(list = ?self.list, error = %e, "syncer cannot watch");
                    self.set_state(WatcherState::Unreachable).await?;
                    tokio::time::sleep(backoff.next()).await;
                }
            }
        }
    }

    async fn set_state(&mut self, state: WatcherState) -> Result<(), Closed> {
        if self.state == state {
            return Ok(());
        }
        self.state = state;
        self.send(WatcherMsg::State(self.index, state)).await
    }

    async fn send(&self, msg: WatcherMsg) -> Result<(), Closed> {
        self.tx.send(msg).await.map_err(|_| Closed)
    }

    /// Deliver the watch's events until it ends; returns why it ended.
    async fn follow(&mut self, mut stream: WatchStream) -> Result<Option<Error>, Closed> {
        let floor = self.resume;
        loop {
            let Some(first) = stream.next().await else {
                return Ok(None);
            };
            let mut batch = Vec::new();
            let mut item = Some(first);
            // Take whatever else is ready, so the coordinator gets one message per burst.
            while let Some(next) = item.take() {
                match next {
                    Ok(event) => self.apply_event(floor, event, &mut batch),
                    Err(e) => {
                        if !batch.is_empty() {
                            self.send(WatcherMsg::Events(batch)).await?;
                        }
                        return Ok(Some(e));
                    }
                }
                if batch.len() < MAX_BATCH {
                    item = stream.next().now_or_never().flatten();
                }
            }
            if !batch.is_empty() {
                self.send(WatcherMsg::Events(batch)).await?;
            }
        }
    }

    /// Apply one event of a watch that started after `floor`. Several events may share a
    /// revision (a multi-key txn); etcd never splits a revision across watch responses, and a
    /// response is applied whole before a failure is seen, so resuming after the last revision
    /// delivered neither repeats nor skips any.
    fn apply_event(&mut self, floor: Revision, event: WatchEvent, batch: &mut Vec<SyncerEvent>) {
        let revision = event.revision();
        if revision <= floor {
            // Defensive: etcd starts a watch at floor + 1, so this is never expected.
            return;
        }
        self.resume = self.resume.max(revision);
        match event {
            WatchEvent::Put(kv) => self.put(kv, batch),
            WatchEvent::Delete { key, revision } => self.delete(key, revision, batch),
        }
    }

    fn put(&mut self, kv: KvPair, batch: &mut Vec<SyncerEvent>) {
        if self.view.get(&kv.key) == Some(&kv.revision) {
            return;
        }
        if !matches!(kv.key, Key::Resource(_)) {
            self.view.insert(kv.key.clone(), kv.revision);
            batch.push(SyncerEvent::PutIpam(kv));
            return;
        }
        match codec::decode::<AnyResource>(&kv) {
            Ok(resource) => {
                self.view.insert(kv.key, kv.revision);
                batch.push(SyncerEvent::Put {
                    resource,
                    revision: kv.revision,
                });
            }
            Err(e) => {
                tracing::warn!(key = %kv.key, revision = %kv.revision, error = %e,
                    "ignoring stored value that does not decode");
                self.delete(kv.key, kv.revision, batch);
            }
        }
    }

    fn delete(&mut self, key: Key, revision: Revision, batch: &mut Vec<SyncerEvent>) {
        // Only what was delivered is in the view, so only that comes back out.
        if self.view.remove(&key).is_some() {
            batch.push(match key {
                Key::Resource(key) => SyncerEvent::Delete { key, revision },
                key => SyncerEvent::DeleteIpam { key, revision },
            });
        }
    }

    /// Bring the consumer from its view to `items` at `revision`: Puts for new or changed
    /// keys, Deletes for keys no longer listed.
    async fn apply_listing(
        &mut self,
        items: Vec<KvPair>,
        revision: Revision,
    ) -> Result<(), Closed> {
        let mut batch = Vec::new();
        let mut listed = HashMap::with_capacity(items.len());
        for kv in items {
            listed.insert(kv.key.clone(), kv.revision);
            self.put(kv, &mut batch);
            if batch.len() >= MAX_BATCH {
                self.send(WatcherMsg::Events(std::mem::take(&mut batch)))
                    .await?;
            }
        }
        let gone: Vec<Key> = self
            .view
            .keys()
            .filter(|k| !listed.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            self.delete(key, revision, &mut batch);
        }
        self.resume = revision;
        if !batch.is_empty() {
            self.send(WatcherMsg::Events(batch)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use WatcherState::*;

    #[test]
    fn status_folds_watcher_states() {
        assert_eq!(
            overall(&[Connecting, Connecting]),
            SyncStatus::WaitForDatastore
        );
        assert_eq!(overall(&[Synced, Connecting]), SyncStatus::ResyncInProgress);
        assert_eq!(overall(&[Resyncing, Synced]), SyncStatus::ResyncInProgress);
        assert_eq!(
            overall(&[Synced, Unreachable]),
            SyncStatus::WaitForDatastore
        );
        assert_eq!(overall(&[Synced, Synced]), SyncStatus::InSync);
    }

    #[test]
    fn backoff_is_bounded() {
        let mut b = Backoff(BACKOFF_MIN);
        let delays: Vec<_> = (0..8).map(|_| b.next()).collect();
        assert_eq!(delays[0], BACKOFF_MIN);
        assert!(delays.iter().all(|d| *d <= BACKOFF_MAX));
        assert_eq!(delays[7], BACKOFF_MAX);
        b.reset();
        assert_eq!(b.next(), BACKOFF_MIN);
    }
}
