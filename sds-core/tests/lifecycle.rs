//! The manager's life across restarts and at its end: large history batches split into
//! commits, reopening every stored channel, reset of stored channels, and a clean shutdown.
//!
//! Every peer runs over the in-memory backend wrapped in the fault injector; a "restart" is
//! a fresh manager over the same store and clock ([`Peer::restart`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sds_core::codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};
use sds_core::persistence::fault::Operation;
use sds_core::persistence::{BackendCapabilities, MAX_HISTORY_BATCH};
use sds_core::{
    Event, ManualClock, Persistence, PersistenceError, PersistenceErrorKind, ReliabilityConfig,
    ReliabilityManager, SdsError,
};
use support::{Peer, START_MS, Store, crafted, new_store, test_config};

/// The default `commit_retry_max_ms`: past it, any retry backoff has elapsed.
const RETRY_MAX_MS: i64 = 60_000;

/// What one commit carried: (snapshot?, appends, evictions).
type CommitShape = (bool, usize, usize);

/// Forwards to the fault-injecting store and records the shape of every commit; can hide
/// the store's ability to list channels, to act as a backend without it.
struct Recording {
    store: Store,
    commits: Mutex<Vec<CommitShape>>,
    lists: bool,
}

impl Recording {
    fn new(store: Store, lists: bool) -> Arc<Self> {
        Arc::new(Recording {
            store,
            commits: Mutex::new(Vec::new()),
            lists,
        })
    }

    fn take_commits(&self) -> Vec<CommitShape> {
        std::mem::take(&mut *self.commits.lock().unwrap())
    }
}

#[async_trait]
impl Persistence for Recording {
    async fn save_channel_meta(
        &self,
        ch: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError> {
        self.store.save_channel_meta(ch, meta).await
    }

    async fn update_history(&self, ch: &str, up: &HistoryUpdate) -> Result<(), PersistenceError> {
        self.store.update_history(ch, up).await
    }

    async fn load_channel(&self, ch: &str) -> Result<ChannelData, PersistenceError> {
        self.store.load_channel(ch).await
    }

    async fn drop_channel(&self, ch: &str) -> Result<(), PersistenceError> {
        self.store.drop_channel(ch).await
    }

    async fn set_retrieval_hint(
        &self,
        ch: &str,
        id: &str,
        h: &[u8],
    ) -> Result<(), PersistenceError> {
        self.store.set_retrieval_hint(ch, id, h).await
    }

    async fn commit(
        &self,
        ch: &str,
        meta: Option<&ChannelMeta>,
        history: Option<&HistoryUpdate>,
    ) -> Result<(), PersistenceError> {
        let (appends, evicts) = history.map_or((0, 0), |up| (up.append.len(), up.evict.len()));
        self.commits
            .lock()
            .unwrap()
            .push((meta.is_some(), appends, evicts));
        self.store.commit(ch, meta, history).await
    }

    fn capabilities(&self) -> BackendCapabilities {
        self.store.capabilities().with_list_channels(self.lists)
    }

    async fn list_channels(&self) -> Result<Vec<String>, PersistenceError> {
        if self.lists {
            self.store.list_channels().await
        } else {
            Err(PersistenceError::other("this test backend cannot list"))
        }
    }

    async fn close(&self) -> Result<(), PersistenceError> {
        self.store.close().await
    }
}

fn manager_over(backend: Arc<Recording>, config: ReliabilityConfig) -> ReliabilityManager {
    let (manager, _events) = ReliabilityManager::builder("alice")
        .config(config)
        .persistence(backend)
        .clock(Arc::new(ManualClock::new(START_MS)))
        .build()
        .expect("valid test config");
    manager
}

fn stored_ids(data: &ChannelData) -> Vec<String> {
    data.history
        .iter()
        .map(|logged| logged.message_id().to_string())
        .collect()
}

async fn stored(store: &Store, channel: &str) -> ChannelData {
    store
        .inner()
        .load_channel(channel)
        .await
        .expect("store loads")
}

// A history batch of 2,500 appends (a long outage's queue) goes out as three commits of at
// most MAX_HISTORY_BATCH entries, the snapshot with the last. A failure after the first
// part leaves the old snapshot and part of the history stored and everything queued; the
// retry sends every part again and the stored state then equals the manager's.
#[tokio::test]
async fn large_history_batch_is_split_and_a_failed_part_is_completed_by_the_retry() {
    const MESSAGES: usize = 2_500;
    assert_eq!(MAX_HISTORY_BATCH, 1_000);
    let store = new_store();
    let backend = Recording::new(store.clone(), true);
    let clock = ManualClock::new(START_MS);
    let (manager, _events) = ReliabilityManager::builder("alice")
        .config(ReliabilityConfig {
            max_message_history: 3_000,
            bloom_capacity: 3_000,
            ..test_config()
        })
        .persistence(backend.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let ch = "big";
    manager.join_channel(ch).await.unwrap();

    // The outage: the first receive's commit fails, the others queue within the backoff.
    store.fail_always(Operation::Commit);
    for n in 0..MESSAGES {
        let id = format!("c{n:04}");
        let lamport = u64::try_from(n).unwrap() + 1;
        manager
            .unwrap_received(&crafted("carol", ch, &id, lamport, &[]))
            .await
            .unwrap();
    }
    let state = manager.channel_state(ch).await.unwrap();
    assert_eq!(state.log.len(), MESSAGES);
    assert_eq!(state.pending_history, MESSAGES);
    assert_eq!(backend.take_commits(), [(true, 1, 0)]);

    // Recovery, with a failure between the first and second parts.
    store.fail_after(Operation::Commit, 1, 1);
    clock.advance(RETRY_MAX_MS);
    manager.sweep_outgoing().await;
    assert_eq!(
        backend.take_commits(),
        [(false, 1_000, 0), (false, 1_000, 0)]
    );
    let partial = stored(&store, ch).await;
    assert_eq!(stored_ids(&partial).len(), 1_000, "the first part landed");
    assert_eq!(
        partial.meta,
        Some(ChannelMeta::empty()),
        "no snapshot before its history"
    );
    let state = manager.channel_state(ch).await.unwrap();
    assert_eq!(
        state.pending_history, MESSAGES,
        "the whole batch stays queued"
    );

    // The retry sends every part again (the first one a second time: idempotent).
    clock.advance(RETRY_MAX_MS);
    manager.sweep_outgoing().await;
    assert_eq!(
        backend.take_commits(),
        [(false, 1_000, 0), (false, 1_000, 0), (true, 500, 0)]
    );
    let data = stored(&store, ch).await;
    assert_eq!(stored_ids(&data), state.log);
    assert_eq!(data.meta.unwrap().lamport, state.lamport);
    assert_eq!(manager.channel_state(ch).await.unwrap().pending_history, 0);

    // A batch within the bound stays one commit.
    manager
        .unwrap_received(&crafted("carol", ch, "last", 9_999, &[]))
        .await
        .unwrap();
    assert_eq!(backend.take_commits(), [(true, 1, 0)]);
}

// Shutdown writes what a failed commit left queued at once (the retry backoff has not
// passed), closes the backend once, and refuses every later operation as ShutDown.
#[tokio::test]
async fn shutdown_flushes_the_queue_ignoring_backoff_closes_and_refuses_further_operations() {
    let mut alice = Peer::new("alice");
    alice.store.fail_once(Operation::Commit);
    alice.send("room", "m1").await;
    alice.send("room", "m2").await;
    assert_eq!(alice.commits(), 1, "m2 came within the backoff");
    assert_eq!(alice.state("room").await.pending_history, 2);
    assert!(alice.stored_history("room").await.is_empty());

    alice.manager.shutdown().await.unwrap();
    assert_eq!(alice.commits(), 2);
    assert_eq!(alice.stored_history("room").await, ["m1", "m2"]);
    let meta = stored(&alice.store, "room").await.meta.unwrap();
    assert_eq!(meta.outgoing.len(), 2);
    assert_eq!(alice.store.calls(Operation::Close), 1);
    assert!(alice.manager.is_shut_down());
    assert!(
        alice
            .take_events()
            .iter()
            .any(|event| matches!(event, Event::PersistenceRecovered { .. })),
        "the flush recovered the degraded channel"
    );

    let refused = [
        alice
            .manager
            .wrap_outgoing("room", "m3", b"x".to_vec())
            .await
            .map(drop),
        alice
            .manager
            .unwrap_received(&crafted("bob", "room", "b1", 1, &[]))
            .await
            .map(drop),
        alice.manager.join_channel("other").await,
        alice.manager.channel_state("room").await.map(drop),
        alice.manager.mark_dependencies_met("room", &[]).await,
        alice.manager.build_sync_message("room").await.map(drop),
        alice.manager.remove_channel("room").await,
        alice.manager.reset().await,
        alice.manager.reopen_stored_channels().await.map(drop),
    ];
    for (n, outcome) in refused.into_iter().enumerate() {
        assert!(
            matches!(outcome, Err(SdsError::ShutDown)),
            "{n}: {outcome:?}"
        );
    }
    alice.clock.advance(RETRY_MAX_MS);
    alice.manager.sweep_outgoing().await;
    assert_eq!(alice.commits(), 2, "sweeps write nothing after shutdown");
    alice.manager.shutdown().await.unwrap();
    assert_eq!(alice.store.calls(Operation::Close), 1, "closed once");
    assert_eq!(alice.stored_history("room").await, ["m1", "m2"]);
}

// A channel shutdown cannot write is reported (its state was not stored), and the backend
// is closed all the same.
#[tokio::test]
async fn shutdown_reports_unwritten_state_and_still_closes() {
    let alice = Peer::new("alice");
    alice.send("room", "m1").await;
    alice.store.fail_always(Operation::Commit);
    alice.send("room", "m2").await;
    let err = alice.manager.shutdown().await.unwrap_err();
    match err {
        SdsError::Persistence(err) => assert_eq!(err.kind(), PersistenceErrorKind::Unavailable),
        other => panic!("expected a persistence error, got {other:?}"),
    }
    assert_eq!(alice.store.calls(Operation::Close), 1);
    assert_eq!(alice.stored_history("room").await, ["m1"]);
}

// After a restart nothing is open; reopening the stored channels joins and loads every one
// of them, so the outgoing sweep resends their unacknowledged messages. A channel that
// cannot be loaded is reported and the others open all the same.
#[tokio::test]
async fn reopened_stored_channels_are_swept_after_a_restart() {
    let alice = Peer::new("alice");
    for channel in ["a", "b", "c"] {
        alice.send(channel, &format!("{channel}-1")).await;
    }
    let mut alice = alice.restart();
    alice.clock.advance(30_000);
    alice.manager.sweep_outgoing().await;
    assert!(alice.take_events().is_empty(), "nothing is open yet");
    assert_eq!(
        alice.manager.stored_channels().await.unwrap(),
        ["a", "b", "c"]
    );

    alice.store.fail_once(Operation::LoadChannel);
    let report = alice.manager.reopen_stored_channels().await.unwrap();
    assert_eq!(report.opened, ["b", "c"]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "a");
    assert!(matches!(&report.failed[0].1, SdsError::Persistence(err)
        if err.kind() == PersistenceErrorKind::Unavailable));
    assert_eq!(alice.manager.joined_channels(), ["a", "b", "c"]);

    alice.manager.sweep_outgoing().await;
    let mut resent: Vec<String> = alice
        .take_events()
        .into_iter()
        .filter_map(|event| match event {
            Event::Resend { message_id, .. } => Some(message_id),
            _ => None,
        })
        .collect();
    resent.sort();
    assert_eq!(resent, ["b-1", "c-1"]);

    // The failed one is joined: reopening again (or any use) loads it.
    let report = alice.manager.reopen_stored_channels().await.unwrap();
    assert_eq!(report.opened, ["a", "b", "c"]);
    assert!(report.failed.is_empty());
    assert_eq!(alice.manager.open_channels(), ["a", "b", "c"]);
}

// Reset removes the channels stored in the namespace, not only those the manager has open
// or joined; when the channels cannot be listed it removes nothing and says so.
#[tokio::test]
async fn reset_removes_stored_channels_the_manager_never_opened() {
    let alice = Peer::new("alice");
    for channel in ["a", "b", "c"] {
        alice.send(channel, "m1").await;
    }
    let alice = alice.restart();
    alice.manager.join_channel("a").await.unwrap();

    alice.store.fail_once(Operation::ListChannels);
    let err = alice.manager.reset().await.unwrap_err();
    assert!(matches!(err, SdsError::Persistence(_)), "{err:?}");
    assert_eq!(alice.store.inner().channels().unwrap(), ["a", "b", "c"]);
    assert_eq!(alice.manager.open_channels(), ["a"]);

    alice.manager.reset().await.unwrap();
    assert!(alice.store.inner().channels().unwrap().is_empty());
    assert!(alice.manager.open_channels().is_empty());
    assert!(alice.manager.joined_channels().is_empty());
}

// Over a backend that cannot list, reset removes what the manager knows and the other
// stored channels keep their state; reopening fails as a persistence error.
#[tokio::test]
async fn reset_without_listing_removes_only_known_channels() {
    let store = new_store();
    let writer = manager_over(Recording::new(store.clone(), true), test_config());
    for channel in ["a", "b"] {
        writer
            .wrap_outgoing(channel, "m1", b"x".to_vec())
            .await
            .unwrap();
    }
    let manager = manager_over(Recording::new(store.clone(), false), test_config());
    manager.join_channel("a").await.unwrap();
    manager.reset().await.unwrap();
    assert_eq!(store.inner().channels().unwrap(), ["b"]);
    assert!(matches!(
        manager.reopen_stored_channels().await,
        Err(SdsError::Persistence(err)) if err.kind() == PersistenceErrorKind::Other
    ));
}
