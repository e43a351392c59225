//! Operations cancelled at an await, and idempotent `wrap_outgoing` retries.
//!
//! Before: a caller timeout that cancelled `wrap_outgoing` during its commit left the message
//! logged and unsendable, the retry refused as a duplicate id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use sds_codec::wire::{SdsMessage, decode_message};
use sds_core::bloom::BloomFilter;
use sds_core::persistence::fault::{FaultInjector, Operation};
use sds_core::persistence::memory::{MemoryPersistence, MemoryStore};
use sds_core::{ChannelState, ManualClock, ReliabilityManager, SdsError, UnwrapStatus};
use support::{START_MS, crafted, test_config};

const CH: &str = "room";
/// How long the callers below wait before giving up on an operation.
const CALLER_TIMEOUT: Duration = Duration::from_secs(1);

/// The in-memory backend behind the fault injector, whose `commit` can be made to hang: the
/// call never returns until it is dropped, as a backend stuck on a dead connection would.
type Hanging = Arc<FaultInjector<MemoryPersistence>>;

/// A participant over one namespace of `store`.
fn node(id: &str, store: &MemoryStore, clock: &ManualClock) -> (ReliabilityManager, Hanging) {
    let backend: Hanging = Arc::new(FaultInjector::new(store.namespace(id)));
    let (manager, _events) = ReliabilityManager::builder(id)
        .config(test_config())
        .persistence(backend.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    (manager, backend)
}

async fn state(manager: &ReliabilityManager) -> ChannelState {
    manager.channel_state(CH).await.unwrap()
}

/// What a fresh manager on the same store loads: the stored state.
async fn reloaded(id: &str, store: &MemoryStore, clock: &ManualClock) -> ChannelState {
    let (fresh, _) = node(id, store, clock);
    fresh.join_channel(CH).await.unwrap();
    state(&fresh).await
}

/// A wrap cancelled by a caller timeout while its commit hangs leaves the message wrapped,
/// logged and buffered once; the retry, once the backend works again, returns the very bytes
/// the cancelled call produced (byte for byte those of a twin participant whose backend
/// never hung), not a new message; a second retry returns them again; and the stored state
/// then equals memory.
#[tokio::test(start_paused = true)]
async fn wrap_cancelled_during_its_commit_is_retried_with_the_same_bytes() {
    let clock = ManualClock::new(START_MS);
    let store = MemoryStore::new();
    let twin_store = MemoryStore::new();
    let (alice, backend) = node("alice", &store, &clock);
    let (twin, _) = node("alice", &twin_store, &clock);
    for manager in [&alice, &twin] {
        manager
            .wrap_outgoing(CH, "m1", b"first".to_vec())
            .await
            .unwrap();
    }

    clock.advance(10);
    backend.hang_always(Operation::Commit);
    let cancelled = tokio::time::timeout(
        CALLER_TIMEOUT,
        alice.wrap_outgoing(CH, "m2", b"second".to_vec()),
    )
    .await;
    assert!(cancelled.is_err(), "the caller gave up on the hung commit");
    let expected = twin
        .wrap_outgoing(CH, "m2", b"second".to_vec())
        .await
        .unwrap();

    // The message was wrapped once; retrying while the backend still hangs times out again
    // without wrapping another.
    clock.advance(10);
    let again = tokio::time::timeout(
        CALLER_TIMEOUT,
        alice.wrap_outgoing(CH, "m2", b"second".to_vec()),
    )
    .await;
    assert!(again.is_err());
    let held = state(&alice).await;
    assert_eq!(held.log, ["m1", "m2"]);
    assert_eq!(held.outgoing, ["m1", "m2"]);
    let committed = backend.calls(Operation::Commit);

    backend.clear(Operation::Commit);
    clock.advance(10);
    let retried = alice
        .wrap_outgoing(CH, "m2", b"second".to_vec())
        .await
        .expect("a retry with the same id and content succeeds");
    assert_eq!(retried, expected);
    assert_eq!(
        decode_message(&retried).unwrap().lamport_timestamp,
        Some(START_MS as u64 + 10),
        "the message wrapped by the cancelled call, not a new one"
    );
    assert_eq!(
        backend.calls(Operation::Commit),
        committed + 1,
        "the retry wrote what was left"
    );
    let again = alice
        .wrap_outgoing(CH, "m2", b"second".to_vec())
        .await
        .unwrap();
    assert_eq!(again, expected);
    assert_eq!(
        backend.calls(Operation::Commit),
        committed + 1,
        "a retry with nothing left commits nothing"
    );

    let held = state(&alice).await;
    assert_eq!(held.log, ["m1", "m2"], "logged once");
    assert_eq!(held.outgoing, ["m1", "m2"], "buffered once");
    assert_eq!(held.pending_history, 0);
    assert_eq!(reloaded("alice", &store, &clock).await, held);
    assert_eq!(held, state(&twin).await);
}

/// A received message whose processing is cancelled during its commit was delivered once;
/// receiving the same bytes again is a duplicate, and after the backend works again the
/// stored state equals memory.
#[tokio::test(start_paused = true)]
async fn unwrap_cancelled_during_its_commit_leaves_the_channel_consistent() {
    let clock = ManualClock::new(START_MS);
    let store = MemoryStore::new();
    let (bob, backend) = node("bob", &store, &clock);
    bob.join_channel(CH).await.unwrap();
    let a1 = crafted("alice", CH, "a1", START_MS as u64, &[]);
    let a2 = crafted("alice", CH, "a2", START_MS as u64 + 1, &["a1"]);

    backend.hang_always(Operation::Commit);
    assert!(
        tokio::time::timeout(CALLER_TIMEOUT, bob.unwrap_received(&a1))
            .await
            .is_err()
    );
    backend.clear(Operation::Commit);
    assert_eq!(
        bob.unwrap_received(&a1).await.unwrap().status,
        UnwrapStatus::Duplicate
    );
    assert_eq!(
        bob.unwrap_received(&a2).await.unwrap().status,
        UnwrapStatus::Delivered
    );
    let held = state(&bob).await;
    assert_eq!(held.log, ["a1", "a2"]);
    assert_eq!(held.pending_history, 0);
    assert_eq!(reloaded("bob", &store, &clock).await, held);
}

/// A retry after a successful wrap returns the same bytes and commits nothing; a retry of
/// an older message returns the same message (same Lamport timestamp, causal history and
/// content) with the current bloom filter; other content under a used id, or an id held by
/// another sender's message, stays refused.
#[tokio::test]
async fn retries_return_the_message_wrapped_and_conflicts_stay_refused() {
    let clock = ManualClock::new(START_MS);
    let store = MemoryStore::new();
    let (alice, backend) = node("alice", &store, &clock);
    let first = alice
        .wrap_outgoing(CH, "m1", b"one".to_vec())
        .await
        .unwrap();
    let commits = backend.calls(Operation::Commit);
    clock.advance(5);
    let retry = alice
        .wrap_outgoing(CH, "m1", b"one".to_vec())
        .await
        .unwrap();
    assert_eq!(retry, first);
    assert_eq!(backend.calls(Operation::Commit), commits);

    clock.advance(5);
    alice
        .wrap_outgoing(CH, "m2", b"two".to_vec())
        .await
        .unwrap();
    let older = decode_message(
        &alice
            .wrap_outgoing(CH, "m1", b"one".to_vec())
            .await
            .unwrap(),
    )
    .unwrap();
    let original = decode_message(&first).unwrap();
    assert_eq!(
        SdsMessage {
            bloom_filter: None,
            ..older.clone()
        },
        SdsMessage {
            bloom_filter: None,
            ..original.clone()
        }
    );
    assert_ne!(
        older.bloom_filter, original.bloom_filter,
        "the current filter"
    );

    let other_content = alice.wrap_outgoing(CH, "m1", b"changed".to_vec()).await;
    assert!(matches!(
        other_content,
        Err(SdsError::DuplicateMessageId { ref message_id, .. }) if message_id == "m1"
    ));
    // Bob's message is delivered here first: its id is his.
    alice.join_channel(CH).await.unwrap();
    alice
        .unwrap_received(&crafted("bob", CH, "b1", START_MS as u64 + 20, &[]))
        .await
        .unwrap();
    let taken = alice
        .wrap_outgoing(CH, "b1", b"content of b1".to_vec())
        .await;
    assert!(matches!(taken, Err(SdsError::DuplicateMessageId { .. })));
    // An older message comes back with the filter of now, which knows bob's message (the
    // last wrap's filter, m2's, predates it).
    let again = decode_message(
        &alice
            .wrap_outgoing(CH, "m1", b"one".to_vec())
            .await
            .unwrap(),
    )
    .unwrap();
    let config = test_config();
    let filter = BloomFilter::from_bytes(
        config.bloom_capacity,
        config.bloom_error_rate,
        again.bloom_filter.as_deref().unwrap(),
    )
    .unwrap();
    assert!(filter.contains("b1"));

    let held = state(&alice).await;
    assert_eq!(held.log, ["m1", "m2", "b1"]);
    assert_eq!(held.outgoing, ["m1", "m2"]);
    assert_eq!(reloaded("alice", &store, &clock).await, held);
}
