//! The writer fence: two managers misconfigured onto one namespace. The one started last
//! owns it; the other's writes are refused, reported once, and never retried, and the
//! stored state stays the newer manager's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use sds_core::codec::storage::{ChannelData, ChannelMeta, HistoryUpdate};
use sds_core::persistence::fault::{FaultInjector, Operation};
use sds_core::persistence::memory::{MemoryPersistence, MemoryStore};
use sds_core::persistence::{WriterEpoch, memory};
use sds_core::{
    Event, Events, ManualClock, Persistence, PersistenceError, PersistenceErrorKind,
    ReliabilityManager, SdsError,
};
use support::{START_MS, test_config};

const NS: &str = "node";
const CH: &str = "room";

type Backend = Arc<FaultInjector<MemoryPersistence>>;

/// A backend instance of its own over the namespace [`NS`] of `store`, as a second process
/// would open it.
fn instance(store: &MemoryStore) -> Backend {
    Arc::new(FaultInjector::new(store.namespace(NS)))
}

fn builder(backend: Backend, clock: &ManualClock) -> sds_core::ManagerBuilder {
    ReliabilityManager::builder("alice")
        .config(test_config())
        .persistence(backend)
        .clock(Arc::new(clock.clone()))
}

async fn started(backend: Backend, clock: &ManualClock) -> (ReliabilityManager, Events) {
    builder(backend, clock)
        .start()
        .await
        .expect("manager starts")
}

async fn send(manager: &ReliabilityManager, id: &str) {
    manager
        .wrap_outgoing(CH, id, id.as_bytes().to_vec())
        .await
        .expect("wrap succeeds whatever persistence does");
}

/// What the namespace holds, read through an instance that never claimed.
async fn stored(store: &MemoryStore) -> ChannelData {
    store.namespace(NS).load_channel(CH).await.unwrap()
}

fn fenced_events(events: &mut Events) -> Vec<(String, String)> {
    events
        .drain()
        .into_iter()
        .filter_map(|event| match event {
            Event::WriterFenced { channel, error } => Some((channel, error)),
            Event::PersistenceDegraded { channel, .. } => {
                panic!("a fenced write is not an outage, yet {channel} was reported degraded")
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_manager_started_last_owns_the_namespace() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(START_MS);
    let (old_backend, new_backend) = (instance(&store), instance(&store));
    let (old, mut old_events) = started(old_backend.clone(), &clock).await;
    assert_eq!(old.writer_epoch(), Some(WriterEpoch::new(1)));
    send(&old, "m1").await;

    let (new, mut new_events) = started(new_backend.clone(), &clock).await;
    assert_eq!(new.writer_epoch(), Some(WriterEpoch::new(2)));
    send(&new, "m2").await;
    let newer_state = stored(&store).await;
    assert_eq!(newer_state.history.len(), 2, "m1 and m2 are logged");

    // The stale manager's next operation succeeds in memory; its commit is refused.
    let commits_before = old_backend.calls(Operation::Commit);
    send(&old, "m3").await;
    assert_eq!(old_backend.calls(Operation::Commit), commits_before + 1);
    let fenced = fenced_events(&mut old_events);
    assert_eq!(fenced.len(), 1, "{fenced:?}");
    assert_eq!(fenced[0].0, CH);
    assert!(fenced[0].1.contains("fenced"), "{}", fenced[0].1);
    assert!(old.is_fenced() && !new.is_fenced());
    assert_eq!(
        stored(&store).await,
        newer_state,
        "the stale commit wrote nothing"
    );
    assert_eq!(old.channel_state(CH).await.unwrap().outgoing, ["m1", "m3"]);

    // Not retried: two more operations make no backend write and no second event.
    send(&old, "m4").await;
    old.mark_dependencies_met(CH, &[]).await.unwrap();
    assert_eq!(old_backend.calls(Operation::Commit), commits_before + 1);
    assert!(fenced_events(&mut old_events).is_empty());
    assert_eq!(stored(&store).await, newer_state);

    // The newer manager keeps writing, unaware of the stale one.
    send(&new, "m5").await;
    let now_stored = stored(&store).await;
    let ids: Vec<&str> = now_stored.history.iter().map(|e| e.message_id()).collect();
    assert_eq!(ids, ["m1", "m2", "m5"]);
    assert_eq!(
        new.channel_state(CH).await.unwrap().outgoing,
        ["m1", "m2", "m5"]
    );
    assert!(fenced_events(&mut new_events).is_empty());
}

#[tokio::test]
async fn a_fenced_manager_cannot_remove_the_newer_managers_channel() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(START_MS);
    let (old, mut old_events) = started(instance(&store), &clock).await;
    send(&old, "m1").await;
    let (_new, _new_events) = started(instance(&store), &clock).await;

    let err = old.remove_channel(CH).await.unwrap_err();
    assert!(
        matches!(&err, SdsError::Persistence(e) if e.kind() == PersistenceErrorKind::Fenced),
        "{err}"
    );
    assert_eq!(fenced_events(&mut old_events).len(), 1);
    assert_eq!(stored(&store).await.history.len(), 1, "m1 is still stored");
    assert!(
        old.is_joined(CH),
        "a refused removal leaves the channel joined"
    );
}

#[tokio::test]
async fn a_fenced_managers_shutdown_says_its_state_was_not_written() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(START_MS);
    let (old, _old_events) = started(instance(&store), &clock).await;
    send(&old, "m1").await;
    let (new, _new_events) = started(instance(&store), &clock).await;
    send(&new, "m2").await;
    send(&old, "m3").await;
    let newer_state = stored(&store).await;

    let err = old.shutdown().await.unwrap_err();
    assert!(
        matches!(&err, SdsError::Persistence(PersistenceError::Fenced { held, current })
            if held.get() == 1 && current.get() == 2),
        "{err}"
    );
    assert_eq!(stored(&store).await, newer_state);
    new.shutdown().await.unwrap();
}

/// A manager that knows it is fenced (a removal was refused) but owes the backend nothing
/// (its last write landed before the newer manager claimed) shuts down cleanly: there is
/// no state to report lost.
#[tokio::test]
async fn a_fenced_manager_with_nothing_unwritten_shuts_down_cleanly() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(START_MS);
    let (old, _old_events) = started(instance(&store), &clock).await;
    send(&old, "m1").await;
    let (new, _new_events) = started(instance(&store), &clock).await;
    send(&new, "m2").await;
    old.remove_channel(CH).await.unwrap_err();
    assert_eq!(old.open_channels(), [CH]);

    old.shutdown().await.unwrap();
    new.shutdown().await.unwrap();
}

#[tokio::test]
async fn build_claims_at_the_first_backend_call() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(START_MS);
    let backend = instance(&store);
    let (old, mut old_events) = builder(backend.clone(), &clock).build().unwrap();
    assert_eq!(old.writer_epoch(), None);
    assert_eq!(backend.calls(Operation::ClaimWriter), 0);
    old.join_channel(CH).await.unwrap();
    assert_eq!(old.writer_epoch(), Some(WriterEpoch::new(1)));

    // Claimed once per manager: more channels and an explicit call claim nothing new.
    old.join_channel("other").await.unwrap();
    assert_eq!(old.claim_writer().await.unwrap(), Some(WriterEpoch::new(1)));
    assert_eq!(backend.calls(Operation::ClaimWriter), 1);

    let (new, _) = builder(instance(&store), &clock).build().unwrap();
    new.join_channel(CH).await.unwrap();
    assert_eq!(new.writer_epoch(), Some(WriterEpoch::new(2)));
    send(&old, "m1").await;
    assert_eq!(fenced_events(&mut old_events).len(), 1);
    assert_eq!(stored(&store).await, ChannelData::empty());
}

#[tokio::test]
async fn a_failed_claim_fails_start_and_the_first_bootstrap_then_is_retried() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(START_MS);
    let backend = instance(&store);
    backend.fail_once(Operation::ClaimWriter);
    let err = builder(backend.clone(), &clock).start().await.unwrap_err();
    assert!(
        matches!(&err, SdsError::Persistence(e) if e.kind() == PersistenceErrorKind::Unavailable),
        "{err}"
    );

    backend.fail_once(Operation::ClaimWriter);
    let (manager, _) = builder(backend.clone(), &clock).build().unwrap();
    let err = manager.join_channel(CH).await.unwrap_err();
    assert!(matches!(err, SdsError::Persistence(_)), "{err}");
    assert_eq!(
        backend.calls(Operation::LoadChannel),
        0,
        "no load before the claim"
    );
    manager.join_channel(CH).await.unwrap();
    // Two claims failed (one per attempt above), the third took the first epoch.
    assert_eq!(backend.calls(Operation::ClaimWriter), 3);
    assert_eq!(manager.writer_epoch(), Some(WriterEpoch::new(1)));
}

/// A backend that keeps no fence: every call but `claim_writer` forwarded.
struct Unfenced(MemoryPersistence);

#[async_trait]
impl Persistence for Unfenced {
    async fn save_channel_meta(
        &self,
        ch: &str,
        meta: &ChannelMeta,
    ) -> Result<(), PersistenceError> {
        self.0.save_channel_meta(ch, meta).await
    }
    async fn update_history(&self, ch: &str, up: &HistoryUpdate) -> Result<(), PersistenceError> {
        self.0.update_history(ch, up).await
    }
    async fn load_channel(&self, ch: &str) -> Result<ChannelData, PersistenceError> {
        self.0.load_channel(ch).await
    }
    async fn drop_channel(&self, ch: &str) -> Result<(), PersistenceError> {
        self.0.drop_channel(ch).await
    }
    async fn set_retrieval_hint(
        &self,
        ch: &str,
        id: &str,
        hint: &[u8],
    ) -> Result<(), PersistenceError> {
        self.0.set_retrieval_hint(ch, id, hint).await
    }
}

#[tokio::test]
async fn a_backend_without_a_fence_claims_nothing_and_fences_nothing() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(START_MS);
    let manager = |backend: Unfenced| {
        ReliabilityManager::builder("alice")
            .config(test_config())
            .persistence(Arc::new(backend))
            .clock(Arc::new(clock.clone()))
            .start()
    };
    let (old, mut old_events) = manager(Unfenced(store.namespace(NS))).await.unwrap();
    let (new, _) = manager(Unfenced(store.namespace(NS))).await.unwrap();
    assert_eq!((old.writer_epoch(), new.writer_epoch()), (None, None));
    assert!(
        !Unfenced(memory::MemoryPersistence::new())
            .capabilities()
            .fencing
    );
    old.join_channel(CH).await.unwrap();
    send(&new, "m1").await;
    send(&old, "m2").await;
    // Nothing stops the stale writer: its snapshot overwrote the newer one's (m1 lost).
    assert!(fenced_events(&mut old_events).is_empty());
    let outgoing: Vec<String> = stored(&store)
        .await
        .meta
        .unwrap()
        .outgoing
        .iter()
        .map(|entry| entry.decode_message().unwrap().message_id)
        .collect();
    assert_eq!(outgoing, ["m2"]);
}
