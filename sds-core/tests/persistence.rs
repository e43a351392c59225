//! Persistence through the manager: what survives a restart, how many commits each
//! operation issues, the failure policy, the R2 pending-history queue and bootstrap checks.
//!
//! Every peer runs over the in-memory backend wrapped in the fault injector; a "restart" is
//! a fresh manager over the same store and clock ([`Peer::restart`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sds_core::bloom::BloomFilter;
use sds_core::codec::storage::{
    ChannelData, ChannelMeta, HistoryUpdate, LoggedMessage, SCHEMA_VERSION,
};
use sds_core::codec::wire::{HistoryEntry, decode_message, encode_message};
use sds_core::pending_history::{PendingHistory, PendingOp};
use sds_core::persistence::fault::Operation;
use sds_core::repair_timing::{request_at, response_at};
use sds_core::{
    Event, ManualClock, Persistence, PersistenceError, PersistenceErrorKind, ReliabilityConfig,
    ReliabilityManager, RetrievalHintProvider, SdsError, UnwrapStatus,
};
use support::{
    Peer, START_MS, crafted, crafted_message, crafted_sync, lamport_of, new_store,
    persistence_events, test_config,
};

const CH: &str = "room";

/// The default `commit_retry_min_ms`: after a failed commit, the next write waits this long.
const RETRY_MS: i64 = 1_000;

fn small_history(max_message_history: usize) -> ReliabilityConfig {
    ReliabilityConfig {
        max_message_history,
        max_causal_history: max_message_history.min(10),
        ..test_config()
    }
}

fn assert_persistence_error(
    result: Result<impl std::fmt::Debug, SdsError>,
    kind: PersistenceErrorKind,
) {
    match result {
        Err(SdsError::Persistence(err)) => assert_eq!(err.kind(), kind, "{err}"),
        other => panic!("expected a {kind:?} persistence error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Restart survival
// ---------------------------------------------------------------------------------------

fn resends(events: Vec<Event>) -> Vec<(String, Vec<u8>, u32)> {
    events
        .into_iter()
        .filter_map(|event| match event {
            Event::Resend {
                channel,
                message_id,
                bytes,
                attempt,
            } => {
                assert_eq!(channel, CH);
                Some((message_id, bytes, attempt))
            }
            _ => None,
        })
        .collect()
}

// Unacknowledged messages are still resent after a restart: the original message (id,
// clock, causal history, content) with the current bloom filter, byte for byte what a
// peer that never restarted resends.
#[tokio::test]
async fn outgoing_buffer_survives_restart() {
    let alice = Peer::new("alice");
    let mut twin = Peer::new("alice");
    let mut originals = Vec::new();
    for id in ["m1", "m2"] {
        let bytes = alice.send(CH, id).await;
        assert_eq!(twin.send(CH, id).await, bytes);
        originals.push(bytes);
    }

    let mut alice = alice.restart();
    // Sweeps cover the channels a manager has open; after a restart the application opens
    // its channels again (the contract has no "list channels" operation).
    alice.manager.ensure_channel(CH).await.unwrap();
    assert_eq!(alice.state(CH).await.outgoing, vec!["m1", "m2"]);

    let interval = i64::try_from(alice.config.resend_interval_ms).unwrap();
    alice.clock.advance(interval);
    twin.clock.advance(interval);
    alice.manager.sweep_outgoing().await;
    twin.manager.sweep_outgoing().await;
    let resent = resends(alice.take_events());
    assert_eq!(resent, resends(twin.take_events()));

    let ids: Vec<(&str, u32)> = resent.iter().map(|(id, _, n)| (id.as_str(), *n)).collect();
    assert_eq!(ids, vec![("m1", 1), ("m2", 1)]);
    for ((_, bytes, _), original) in resent.iter().zip(&originals) {
        let mut resent = decode_message(bytes).unwrap();
        let mut original = decode_message(original).unwrap();
        let bloom = BloomFilter::from_bytes(
            alice.config.bloom_capacity,
            alice.config.bloom_error_rate,
            resent
                .bloom_filter
                .as_deref()
                .expect("a resend carries a bloom filter"),
        )
        .unwrap();
        assert!(bloom.contains("m1") && bloom.contains("m2"));
        resent.bloom_filter = None;
        original.bloom_filter = None;
        assert_eq!(resent, original);
    }
}

// A history longer than a lowered max_message_history is trimmed at bootstrap, and the
// trim is written back by the bootstrap itself.
#[tokio::test]
async fn lowered_history_cap_trims_store_at_bootstrap() {
    let alice = Peer::new("alice");
    for id in ["m1", "m2", "m3", "m4", "m5"] {
        alice.send(CH, id).await;
        alice.clock.advance(10);
    }
    let Peer { store, clock, .. } = alice;
    let alice = Peer::with("alice", small_history(3), store, clock);
    let commits = alice.commits();
    alice.manager.ensure_channel(CH).await.unwrap();
    assert_eq!(alice.commits(), commits + 1);
    assert_eq!(alice.stored_history(CH).await, vec!["m3", "m4", "m5"]);
    assert_eq!(alice.log(CH).await, vec!["m3", "m4", "m5"]);
}

// A wrap after a restart gets a larger Lamport timestamp than any before it, even with the
// clock set back in time, and even when the largest one came from a sync message (which is
// never logged, so only the snapshot remembers it).
#[tokio::test]
async fn lamport_is_monotonic_across_restarts() {
    let alice = Peer::new("alice");
    alice.send(CH, "m1").await;
    alice.clock.advance(5_000);
    let before = lamport_of(&alice.send(CH, "m2").await);

    let alice = alice.restart();
    assert_eq!(alice.state(CH).await.lamport, before);
    alice.clock.set(START_MS - 3_600_000);
    let after = lamport_of(&alice.send(CH, "m3").await);
    assert!(after > before, "lamport went from {before} to {after}");

    // A peer's sync message ahead of our wall clock (within `max_lamport_skew_ms`) raises
    // the clock without touching the log.
    alice.clock.set(START_MS);
    let future = START_MS as u64 + 500_000;
    let status = alice
        .receive(&crafted_sync("bob", CH, "sync-1", future))
        .await
        .status;
    assert_eq!(status, UnwrapStatus::SyncProcessed);
    let alice = alice.restart();
    let after_sync = lamport_of(&alice.send(CH, "m4").await);
    assert!(
        after_sync > future,
        "lamport {after_sync} not above {future}"
    );
}

// A buffered message and its missing-dependency set survive a restart: delivering the
// dependency afterwards cascades it.
#[tokio::test]
async fn incoming_buffer_with_missing_deps_survives_restart() {
    let alice = Peer::new("alice");
    let m1 = alice.send(CH, "m1").await;
    alice.clock.advance(1);
    let m2 = alice.send(CH, "m2").await;

    let bob = Peer::new("bob");
    assert_eq!(
        bob.receive(&m2).await.status,
        UnwrapStatus::Buffered {
            missing: vec!["m1".into()]
        }
    );

    let mut bob = bob.restart();
    let state = bob.state(CH).await;
    assert_eq!(state.incoming, vec!["m2"]);
    assert!(state.log.is_empty());

    assert_eq!(bob.receive(&m1).await.status, UnwrapStatus::Delivered);
    assert_eq!(bob.delivered(), vec!["m1", "m2"]);
    assert_eq!(bob.log(CH).await, vec!["m1", "m2"]);
    assert!(bob.state(CH).await.incoming.is_empty());
    assert_eq!(bob.stored_history(CH).await, vec!["m1", "m2"]);
}

// SDS-R buffers are stored with absolute times to the millisecond, restored unchanged (not
// recomputed from the restart time), and still drive behaviour: the repair request goes
// out with the first wrap at or after T_req and the repair response at T_resp.
#[tokio::test]
async fn repair_buffers_survive_with_absolute_ms_times() {
    let config = test_config();
    let bob = Peer::new("bob");
    let received_at = START_MS + 123;
    bob.clock.set(received_at);

    // m0 is in bob's log; m2 arrives missing m1 (outgoing repair for m1); carol asks for m0
    // (incoming repair for m0, bob is in the single response group).
    bob.receive(&crafted("alice", CH, "m0", 10, &[])).await;
    bob.receive(&crafted("alice", CH, "m2", 12, &["m1"])).await;
    let mut asks = crafted_message("carol", CH, "c1", 13, &[]);
    asks.repair_request = vec![HistoryEntry {
        message_id: "m0".into(),
        retrieval_hint: None,
        sender_id: Some("alice".into()),
    }];
    bob.receive(&encode_message(&asks).unwrap()).await;

    let t_req = request_at(
        received_at,
        "bob",
        "m1",
        config.repair_t_min_ms,
        config.repair_t_max_ms,
    );
    let t_resp = response_at(received_at, "bob", "alice", "m0", config.repair_t_max_ms);
    let before = bob.stored_meta(CH).await.expect("snapshot saved");
    let request_times: Vec<(String, i64)> = before
        .outgoing_repairs
        .iter()
        .map(|r| {
            (
                r.entry.as_ref().unwrap().message_id.clone(),
                r.request_at_ms,
            )
        })
        .collect();
    assert_eq!(request_times, vec![("m1".to_string(), t_req)]);
    let response_times: Vec<(String, i64)> = before
        .incoming_repairs
        .iter()
        .map(|r| {
            (
                r.entry.as_ref().unwrap().message_id.clone(),
                r.respond_at_ms,
            )
        })
        .collect();
    assert_eq!(response_times, vec![("m0".to_string(), t_resp)]);
    assert!(
        t_resp > received_at,
        "pick ids whose T_resp is in the future"
    );

    // Restart later, and make the restarted channel save its snapshot again.
    bob.clock.advance(777);
    let mut bob = bob.restart();
    bob.send(CH, "b1").await;
    let after = bob.stored_meta(CH).await.expect("snapshot saved");
    assert_eq!(after.outgoing_repairs, before.outgoing_repairs);
    assert_eq!(after.incoming_repairs, before.incoming_repairs);

    // Behaviour after the restart (the manual clock may be set back between checks).
    let repairs_ready = |events: Vec<Event>| -> Vec<(String, Vec<u8>)> {
        events
            .into_iter()
            .filter_map(|event| match event {
                Event::RepairReady {
                    message_id, bytes, ..
                } => Some((message_id, bytes)),
                _ => None,
            })
            .collect()
    };
    bob.take_events();
    bob.clock.set(t_resp - 1);
    bob.manager.sweep_repairs().await;
    assert!(repairs_ready(bob.take_events()).is_empty());
    bob.clock.set(t_resp);
    bob.manager.sweep_repairs().await;
    let ready = repairs_ready(bob.take_events());
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].0, "m0");
    assert_eq!(decode_message(&ready[0].1).unwrap().message_id, "m0");

    let requested = |bytes: &[u8]| -> Vec<String> {
        decode_message(bytes)
            .unwrap()
            .repair_request
            .into_iter()
            .map(|entry| entry.message_id)
            .collect()
    };
    bob.clock.set(t_req - 1);
    assert!(requested(&bob.send(CH, "b2").await).is_empty());
    bob.clock.set(t_req);
    assert_eq!(requested(&bob.send(CH, "b3").await), vec!["m1"]);
}

// FIFO eviction reaches the store, and the restarted log is exactly the newest entries.
#[tokio::test]
async fn fifo_eviction_survives_restart() {
    let alice = Peer::with_config("alice", small_history(3));
    for id in ["m1", "m2", "m3", "m4", "m5"] {
        alice.send(CH, id).await;
        alice.clock.advance(10);
    }
    assert_eq!(alice.log(CH).await, vec!["m3", "m4", "m5"]);
    assert_eq!(alice.stored_history(CH).await, vec!["m3", "m4", "m5"]);

    let alice = alice.restart();
    assert_eq!(alice.log(CH).await, vec!["m3", "m4", "m5"]);
}

// What a cascade delivered is durable: after a restart the whole chain is in the log and
// nothing is left buffered.
#[tokio::test]
async fn cascade_result_survives_restart() {
    let mut bob = Peer::new("bob");
    bob.receive(&crafted("alice", CH, "m3", 3, &["m2"])).await;
    bob.receive(&crafted("alice", CH, "m2", 2, &["m1"])).await;
    assert_eq!(bob.state(CH).await.incoming, vec!["m3", "m2"]);
    bob.receive(&crafted("alice", CH, "m1", 1, &[])).await;
    assert_eq!(bob.delivered(), vec!["m1", "m2", "m3"]);

    let bob = bob.restart();
    let state = bob.state(CH).await;
    assert_eq!(state.log, vec!["m1", "m2", "m3"]);
    assert!(state.incoming.is_empty());
    assert_eq!(bob.stored_history(CH).await, vec!["m1", "m2", "m3"]);
    let meta = bob.stored_meta(CH).await.expect("snapshot saved");
    assert!(meta.incoming.is_empty());
    assert!(meta.outgoing_repairs.is_empty());
}

// ---------------------------------------------------------------------------------------
// Commit discipline
// ---------------------------------------------------------------------------------------

// Each foreground operation that changes state ends with exactly one commit; a duplicate,
// idle sweeps, bloom cleaning and a sync build with nothing due commit nothing, even with
// non-empty buffers.
#[tokio::test]
async fn one_commit_per_foreground_op_and_none_when_idle() {
    let alice = Peer::new("alice");
    let bob = Peer::new("bob");

    let commits = bob.commits();
    bob.send(CH, "b1").await;
    assert_eq!(bob.commits(), commits + 1, "wrap");

    let a1 = alice.send(CH, "a1").await;
    let commits = bob.commits();
    assert_eq!(bob.receive(&a1).await.status, UnwrapStatus::Delivered);
    assert_eq!(bob.commits(), commits + 1, "unwrap content");

    let commits = bob.commits();
    assert_eq!(bob.receive(&a1).await.status, UnwrapStatus::Duplicate);
    assert_eq!(
        bob.commits(),
        commits,
        "a duplicate changes nothing and commits nothing"
    );

    let sync = alice.manager.build_sync_message(CH).await.unwrap();
    let commits = bob.commits();
    assert_eq!(bob.receive(&sync).await.status, UnwrapStatus::SyncProcessed);
    assert_eq!(bob.commits(), commits + 1, "unwrap sync");

    let commits = bob.commits();
    let status = bob
        .receive(&crafted("carol", CH, "c2", 2, &["c1"]))
        .await
        .status;
    assert!(matches!(status, UnwrapStatus::Buffered { .. }));
    assert_eq!(bob.commits(), commits + 1, "unwrap into the buffer");

    let commits = bob.commits();
    bob.manager
        .mark_dependencies_met(CH, &["c1".to_string()])
        .await
        .unwrap();
    assert!(bob.log(CH).await.contains(&"c2".to_string()));
    assert_eq!(bob.commits(), commits + 1, "mark dependencies met");

    // Leave something in every buffer, none of it due: an unacknowledged message, a
    // buffered message and its outgoing repair request.
    bob.receive(&crafted("carol", CH, "c4", 4, &["c3"])).await;
    let state = bob.state(CH).await;
    assert!(!state.outgoing.is_empty() && !state.incoming.is_empty());

    let commits = bob.commits();
    bob.manager.sweep_outgoing().await;
    bob.manager.sweep_incoming().await;
    bob.manager.sweep_repairs().await;
    bob.manager.clean_bloom_filters().await;
    bob.manager.build_sync_message(CH).await.unwrap();
    bob.manager.ensure_channel(CH).await.unwrap();
    assert_eq!(bob.commits(), commits, "idle work must not commit");
}

// An idle incoming sweep over a buffered chain (m3 waits for m2, which waits for m1)
// changes nothing and commits nothing: m2 is held locally, so it needs no repair request.
#[tokio::test]
async fn idle_incoming_sweep_over_buffered_chain_does_not_commit() {
    let bob = Peer::new("bob");
    bob.receive(&crafted("alice", CH, "m3", 3, &["m2"])).await;
    bob.receive(&crafted("alice", CH, "m2", 2, &["m1"])).await;
    assert_eq!(bob.state(CH).await.incoming, vec!["m3", "m2"]);
    let requested = |meta: ChannelMeta| -> Vec<String> {
        meta.outgoing_repairs
            .into_iter()
            .map(|repair| repair.entry.unwrap().message_id)
            .collect()
    };
    assert_eq!(requested(bob.stored_meta(CH).await.unwrap()), vec!["m1"]);

    let commits = bob.commits();
    bob.manager.sweep_incoming().await;
    assert_eq!(
        requested(bob.stored_meta(CH).await.unwrap()),
        vec!["m1"],
        "no repair request for a message we hold"
    );
    assert_eq!(bob.commits(), commits, "an idle sweep must not commit");
}

// ---------------------------------------------------------------------------------------
// Failure policy and the R2 queue
// ---------------------------------------------------------------------------------------

// A failed snapshot save and a failed history update do not fail the operation; each
// emits PersistenceDegraded once, then PersistenceRecovered with the next good commit,
// which writes everything that was missed.
#[tokio::test]
async fn save_and_update_failures_degrade_then_recover() {
    let mut alice = Peer::new("alice");

    alice.store.fail_once(Operation::SaveChannelMeta);
    alice.send(CH, "m1").await;
    let events = alice.take_events();
    assert_eq!(
        persistence_events(&events),
        vec![("degraded", CH.to_string())]
    );
    assert!(events.iter().any(|event| matches!(
        event,
        Event::PersistenceDegraded { error, .. } if error.contains("save_channel_meta")
    )));
    assert_eq!(alice.state(CH).await.pending_history, 1);
    assert_eq!(alice.stored_meta(CH).await, None);

    // The next write waits for the retry backoff.
    alice.clock.advance(RETRY_MS);
    alice.send(CH, "m2").await;
    assert_eq!(
        persistence_events(&alice.take_events()),
        vec![("recovered", CH.to_string())]
    );
    assert_eq!(alice.stored_history(CH).await, vec!["m1", "m2"]);
    let outgoing: Vec<String> = alice
        .stored_meta(CH)
        .await
        .unwrap()
        .outgoing
        .iter()
        .map(|entry| entry.decode_message().unwrap().message_id)
        .collect();
    assert_eq!(outgoing, vec!["m1", "m2"]);

    alice.store.fail_once(Operation::UpdateHistory);
    alice.send(CH, "m3").await;
    let events = alice.take_events();
    assert_eq!(
        persistence_events(&events),
        vec![("degraded", CH.to_string())]
    );
    assert!(events.iter().any(|event| matches!(
        event,
        Event::PersistenceDegraded { error, .. } if error.contains("update_history")
    )));
    assert_eq!(alice.state(CH).await.pending_history, 1);
    assert_eq!(alice.stored_history(CH).await, vec!["m1", "m2"]);

    alice.clock.advance(RETRY_MS);
    alice.send(CH, "m4").await;
    assert_eq!(
        persistence_events(&alice.take_events()),
        vec![("recovered", CH.to_string())]
    );
    assert_eq!(alice.stored_history(CH).await, vec!["m1", "m2", "m3", "m4"]);
    assert_eq!(alice.state(CH).await.pending_history, 0);
}

// Failed appends wait in the R2 queue (operations within the retry backoff only queue),
// and the first operation after the backoff writes all of them with one commit.
#[tokio::test]
async fn r2_queue_holds_failed_appends_and_drains_in_one_commit() {
    let mut alice = Peer::new("alice");
    alice.store.fail_always(Operation::Commit);
    for id in ["m1", "m2", "m3"] {
        alice.send(CH, id).await;
    }
    assert_eq!(alice.commits(), 1, "m2 and m3 came within the backoff");
    assert_eq!(alice.state(CH).await.pending_history, 3);
    assert!(alice.stored_history(CH).await.is_empty());

    alice.store.clear(Operation::Commit);
    alice.clock.advance(RETRY_MS);
    alice.send(CH, "m4").await;
    assert_eq!(
        alice.commits(),
        2,
        "the queue drains with the op's own commit"
    );
    assert_eq!(alice.stored_history(CH).await, vec!["m1", "m2", "m3", "m4"]);
    assert_eq!(alice.state(CH).await.pending_history, 0);
    assert_eq!(
        persistence_events(&alice.take_events()),
        vec![("degraded", CH.to_string()), ("recovered", CH.to_string())]
    );
}

// Operations that change no history of their own still drain the queue: a duplicate, a
// sync message, an empty mark_dependencies_met and a sync build.
#[tokio::test]
async fn r2_queue_drains_on_ops_without_history_change() {
    let alice = Peer::new("alice");
    let c1 = crafted("carol", CH, "c1", 1, &[]);
    alice.receive(&c1).await;

    // A duplicate.
    alice.store.fail_once(Operation::Commit);
    alice.send(CH, "a1").await;
    alice.send(CH, "a2").await;
    assert_eq!(alice.state(CH).await.pending_history, 2);
    alice.clock.advance(RETRY_MS);
    let commits = alice.commits();
    assert_eq!(alice.receive(&c1).await.status, UnwrapStatus::Duplicate);
    assert_eq!(alice.commits(), commits + 1);
    assert_eq!(alice.stored_history(CH).await, vec!["c1", "a1", "a2"]);
    assert_eq!(alice.state(CH).await.pending_history, 0);

    // A sync message.
    alice.store.fail_once(Operation::Commit);
    alice.send(CH, "a3").await;
    assert_eq!(alice.state(CH).await.pending_history, 1);
    alice.clock.advance(RETRY_MS);
    let status = alice
        .receive(&crafted_sync("carol", CH, "sync-1", 2))
        .await
        .status;
    assert_eq!(status, UnwrapStatus::SyncProcessed);
    assert_eq!(alice.stored_history(CH).await, vec!["c1", "a1", "a2", "a3"]);
    assert_eq!(alice.state(CH).await.pending_history, 0);

    // mark_dependencies_met with nothing to mark.
    alice.store.fail_once(Operation::Commit);
    alice.send(CH, "a4").await;
    assert_eq!(alice.state(CH).await.pending_history, 1);
    alice.clock.advance(RETRY_MS);
    alice.manager.mark_dependencies_met(CH, &[]).await.unwrap();
    assert_eq!(
        alice.stored_history(CH).await.last().map(String::as_str),
        Some("a4")
    );
    assert_eq!(alice.state(CH).await.pending_history, 0);

    // Building a sync message (not a foreground op, but the channel is dirty).
    alice.store.fail_once(Operation::Commit);
    alice.send(CH, "a5").await;
    assert_eq!(alice.state(CH).await.pending_history, 1);
    alice.clock.advance(RETRY_MS);
    alice.manager.build_sync_message(CH).await.unwrap();
    assert_eq!(
        alice.stored_history(CH).await.last().map(String::as_str),
        Some("a5")
    );
    assert_eq!(alice.state(CH).await.pending_history, 0);
}

// After a failed commit, an idle sweep past the retry backoff retries it (a degraded
// channel is dirty) and recovers.
#[tokio::test]
async fn idle_sweep_retries_after_failed_commit() {
    let mut alice = Peer::new("alice");
    for (round, id) in ["m1", "m2", "m3"].into_iter().enumerate() {
        alice.store.fail_once(Operation::Commit);
        alice.send(CH, id).await;
        assert_eq!(alice.state(CH).await.pending_history, 1);
        alice.take_events();
        alice.clock.advance(RETRY_MS);
        let commits = alice.commits();
        match round {
            0 => alice.manager.sweep_outgoing().await,
            1 => alice.manager.sweep_incoming().await,
            _ => alice.manager.sweep_repairs().await,
        }
        assert_eq!(alice.commits(), commits + 1, "round {round}");
        assert_eq!(alice.state(CH).await.pending_history, 0);
        assert_eq!(
            alice.stored_history(CH).await.last().map(String::as_str),
            Some(id)
        );
        assert_eq!(
            persistence_events(&alice.take_events()),
            vec![("recovered", CH.to_string())]
        );
        // Recovered: the next idle sweep has nothing to write.
        let commits = alice.commits();
        alice.manager.sweep_outgoing().await;
        assert_eq!(alice.commits(), commits);
    }
}

// Evict-then-re-add during an outage leaves the message on disk after recovery.
//
// The manager refuses an id it still holds, so a message can only come back after it left
// the log and the outgoing buffer: alice's "x" is acknowledged by bob, evicted by a newer
// message during the outage, and then alice sends a new message under the same id. The
// queue holds evict(x) and then append(x); latest wins, so x must be stored afterwards.
#[tokio::test]
async fn evict_then_readd_during_outage_leaves_message_on_disk() {
    let alice = Peer::with_config("alice", small_history(2));
    let bob = Peer::with_config("bob", small_history(2));
    let x = alice.send(CH, "x").await;
    bob.receive(&x).await;
    let b1 = bob.send(CH, "b1").await;
    alice.receive(&b1).await;
    let state = alice.state(CH).await;
    assert!(state.outgoing.is_empty(), "x is acknowledged");
    assert_eq!(state.log, vec!["x", "b1"]);
    assert_eq!(alice.stored_history(CH).await, vec!["x", "b1"]);

    alice.store.fail_always(Operation::Commit);
    alice.clock.advance(10);
    alice.send(CH, "y").await; // evicts x
    assert_eq!(alice.log(CH).await, vec!["b1", "y"]);
    alice.clock.advance(10);
    let readded = alice
        .manager
        .wrap_outgoing(CH, "x", b"x again".to_vec())
        .await
        .expect("x left the log and the outgoing buffer, so its id is free again");
    assert_eq!(alice.log(CH).await, vec!["y", "x"]); // evicts b1
    assert!(alice.stored_history(CH).await.contains(&"b1".to_string()));

    alice.store.clear(Operation::Commit);
    alice.clock.advance(RETRY_MS);
    alice.manager.mark_dependencies_met(CH, &[]).await.unwrap();
    assert_eq!(alice.stored_history(CH).await, vec!["y", "x"]);
    let stored = support::stored_data(&alice.store, CH).await;
    let stored_x = stored.history[1].message.as_ref().unwrap();
    assert_eq!(stored_x.lamport_timestamp, Some(lamport_of(&readded)));
    assert_eq!(stored_x.content.as_deref(), Some(&b"x again"[..]));

    let alice = alice.restart();
    assert_eq!(alice.log(CH).await, vec!["y", "x"]);
}

// Add-then-evict during an outage leaves the message absent after recovery, whether the
// eviction comes with a later operation or in the same one (a received message older than
// the whole log is inserted and evicted at once, after being delivered).
#[tokio::test]
async fn add_then_evict_during_outage_leaves_message_absent() {
    let mut bob = Peer::with_config("bob", small_history(2));
    bob.receive(&crafted("alice", CH, "a", 20, &[])).await;
    bob.receive(&crafted("alice", CH, "b", 30, &[])).await;
    assert_eq!(bob.stored_history(CH).await, vec!["a", "b"]);
    bob.take_events();

    bob.store.fail_always(Operation::Commit);
    bob.receive(&crafted("alice", CH, "o", 25, &[])).await; // added, evicts a
    assert_eq!(bob.log(CH).await, vec!["o", "b"]);
    bob.receive(&crafted("alice", CH, "p", 40, &[])).await; // evicts o
    assert_eq!(bob.log(CH).await, vec!["b", "p"]);
    bob.receive(&crafted("alice", CH, "q", 5, &[])).await; // added and evicted at once
    assert_eq!(bob.log(CH).await, vec!["b", "p"]);
    assert_eq!(bob.delivered(), vec!["o", "p", "q"]);

    bob.store.clear(Operation::Commit);
    bob.clock.advance(RETRY_MS);
    bob.manager.mark_dependencies_met(CH, &[]).await.unwrap();
    assert_eq!(bob.stored_history(CH).await, vec!["b", "p"]);
    assert_eq!(bob.state(CH).await.pending_history, 0);

    let bob = bob.restart();
    assert_eq!(bob.log(CH).await, vec!["b", "p"]);
}

// The latest-wins merge rule of the R2 queue at the unit level (public API): the last
// queued operation per id decides, and appends keep their queueing order. (An evict of an
// append never offered to the backend cancels it outright: see pending_history's tests.)
#[test]
fn pending_history_latest_wins() {
    let mut pending = PendingHistory::default();
    pending.queue_append("x");
    pending.queue_append("y");
    pending.mark_offered(); // a flush offered x and y, and failed
    pending.queue_evict("x"); // add-then-evict
    pending.queue_evict("z");
    pending.queue_append("z"); // evict-then-re-add
    assert_eq!(pending.get("x"), Some(PendingOp::Evict));
    assert_eq!(pending.get("z"), Some(PendingOp::Append));
    assert_eq!(pending.len(), 3);
    assert_eq!(pending.ordered(), (vec!["y", "z"], vec!["x"]));
}

// ---------------------------------------------------------------------------------------
// Durability-intent operations surface their errors
// ---------------------------------------------------------------------------------------

// A bootstrap load failure is a typed Unavailable error (never an empty channel), and the
// next call bootstraps the intact channel.
#[tokio::test]
async fn load_failure_surfaces_and_retry_succeeds() {
    let alice = Peer::new("alice");
    alice.send(CH, "m1").await;
    alice.send(CH, "m2").await;

    let alice = alice.restart();
    alice.store.fail_once(Operation::LoadChannel);
    assert_persistence_error(
        alice.manager.ensure_channel(CH).await,
        PersistenceErrorKind::Unavailable,
    );
    alice.manager.ensure_channel(CH).await.unwrap();
    assert_eq!(alice.log(CH).await, vec!["m1", "m2"]);
    assert_eq!(alice.state(CH).await.outgoing, vec!["m1", "m2"]);

    let alice = alice.restart();
    alice.store.fail_once(Operation::LoadChannel);
    assert_persistence_error(
        alice
            .manager
            .wrap_outgoing(CH, "m3", b"three".to_vec())
            .await,
        PersistenceErrorKind::Unavailable,
    );
    // Nothing was consumed by the failed call: the same id goes through now.
    alice
        .manager
        .wrap_outgoing(CH, "m3", b"three".to_vec())
        .await
        .unwrap();
    assert_eq!(alice.log(CH).await, vec!["m1", "m2", "m3"]);
    assert_eq!(alice.stored_history(CH).await, vec!["m1", "m2", "m3"]);
}

// A channel whose bootstrap failed is not reported open (and gets no SyncDue).
#[tokio::test]
async fn failed_bootstrap_does_not_open_channel() {
    let mut alice = Peer::new("alice");
    alice.store.fail_once(Operation::LoadChannel);
    assert!(alice.manager.ensure_channel(CH).await.is_err());
    assert!(
        alice.manager.open_channels().is_empty(),
        "open after a failed bootstrap: {:?}",
        alice.manager.open_channels()
    );
    alice.manager.announce_sync_due();
    assert!(alice.take_events().is_empty());
}

// A drop failure surfaces and leaves the channel open and intact; the retry wipes it.
#[tokio::test]
async fn drop_failure_surfaces_and_retry_succeeds() {
    let alice = Peer::new("alice");
    alice.send(CH, "m1").await;
    alice.send(CH, "m2").await;

    alice.store.fail_once(Operation::DropChannel);
    assert_persistence_error(
        alice.manager.remove_channel(CH).await,
        PersistenceErrorKind::Unavailable,
    );
    assert_eq!(alice.manager.open_channels(), vec![CH]);
    assert_eq!(alice.log(CH).await, vec!["m1", "m2"]);
    assert_eq!(alice.stored_history(CH).await, vec!["m1", "m2"]);

    alice.manager.remove_channel(CH).await.unwrap();
    assert!(alice.manager.open_channels().is_empty());
    assert_eq!(
        support::stored_data(&alice.store, CH).await,
        ChannelData::empty()
    );
    assert!(alice.store.inner().channels().unwrap().is_empty());
    // Reopening starts from nothing.
    assert!(alice.log(CH).await.is_empty());
}

/// A backend that loads fixed data and counts commits, for bootstrap checks the memory
/// backend cannot produce (it always orders its history).
struct FixedLoad {
    data: ChannelData,
    commits: AtomicUsize,
}

#[async_trait]
impl Persistence for FixedLoad {
    async fn save_channel_meta(&self, _: &str, _: &ChannelMeta) -> Result<(), PersistenceError> {
        Ok(())
    }

    async fn update_history(&self, _: &str, _: &HistoryUpdate) -> Result<(), PersistenceError> {
        Ok(())
    }

    async fn load_channel(&self, _: &str) -> Result<ChannelData, PersistenceError> {
        Ok(self.data.clone())
    }

    async fn drop_channel(&self, _: &str) -> Result<(), PersistenceError> {
        Ok(())
    }

    async fn set_retrieval_hint(&self, _: &str, _: &str, _: &[u8]) -> Result<(), PersistenceError> {
        Ok(())
    }

    async fn commit(
        &self,
        _: &str,
        _: Option<&ChannelMeta>,
        _: Option<&HistoryUpdate>,
    ) -> Result<(), PersistenceError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn manager_over(data: ChannelData) -> (ReliabilityManager, Arc<FixedLoad>) {
    let backend = Arc::new(FixedLoad {
        data,
        commits: AtomicUsize::new(0),
    });
    let (manager, _events) = ReliabilityManager::builder("alice")
        .config(test_config())
        .persistence(backend.clone())
        .clock(Arc::new(ManualClock::new(START_MS)))
        .build()
        .unwrap();
    (manager, backend)
}

fn logged(id: &str, lamport: u64) -> LoggedMessage {
    LoggedMessage {
        message: Some(crafted_message("bob", CH, id, lamport, &[])),
        retrieval_hint: None,
    }
}

// Bootstrap refuses a history that is not oldest-first with a Corrupt error naming the
// rule, refuses repeated entries too, and writes nothing over the stored data.
#[tokio::test]
async fn bootstrap_rejects_history_not_oldest_first() {
    for history in [
        vec![logged("m1", 1), logged("m3", 3), logged("m2", 2)],
        vec![logged("b", 5), logged("a", 5)],
        vec![logged("m1", 1), logged("m1", 1)],
    ] {
        let (manager, backend) = manager_over(ChannelData {
            meta: Some(ChannelMeta::empty()),
            history,
        });
        match manager.ensure_channel(CH).await {
            Err(SdsError::Persistence(err)) => {
                assert_eq!(err.kind(), PersistenceErrorKind::Corrupt, "{err}");
                assert!(err.to_string().contains("oldest-first"), "{err}");
            }
            other => panic!("expected a corrupt-data error, got {other:?}"),
        }
        assert_persistence_error(
            manager.wrap_outgoing(CH, "m9", b"nine".to_vec()).await,
            PersistenceErrorKind::Corrupt,
        );
        assert_eq!(backend.commits.load(Ordering::SeqCst), 0);
    }
}

// Bootstrap refuses a snapshot with an unknown schema version, loudly and without writing.
#[tokio::test]
async fn bootstrap_rejects_unknown_schema_version() {
    let (manager, backend) = manager_over(ChannelData {
        meta: Some(ChannelMeta {
            schema_version: SCHEMA_VERSION + 1,
            lamport: 42,
            ..ChannelMeta::empty()
        }),
        history: vec![logged("m1", 1)],
    });
    match manager.ensure_channel(CH).await {
        Err(SdsError::Persistence(err)) => {
            assert_eq!(err.kind(), PersistenceErrorKind::UnsupportedSchema, "{err}");
            assert!(matches!(
                err,
                PersistenceError::UnsupportedSchema { found, supported }
                    if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
            ));
        }
        other => panic!("expected an unsupported-schema error, got {other:?}"),
    }
    assert_eq!(backend.commits.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------
// Retrieval hints
// ---------------------------------------------------------------------------------------

/// How often the hint provider was asked, per message id.
type AskCounts = Arc<Mutex<HashMap<String, usize>>>;

/// A hint provider answering `hint-<id>` and counting how often each id was asked.
fn counting_provider() -> (Arc<dyn RetrievalHintProvider>, AskCounts) {
    let asked: AskCounts = Arc::default();
    let counter = asked.clone();
    let provider = move |_channel: &str, id: &str| -> Option<Vec<u8>> {
        *counter.lock().unwrap().entry(id.to_string()).or_default() += 1;
        Some(format!("hint-{id}").into_bytes())
    };
    (Arc::new(provider), asked)
}

fn hints_in(bytes: &[u8]) -> Vec<(String, Option<Vec<u8>>)> {
    decode_message(bytes)
        .unwrap()
        .causal_history
        .into_iter()
        .map(|entry| (entry.message_id, entry.retrieval_hint))
        .collect()
}

fn hint(id: &str) -> Option<Vec<u8>> {
    Some(format!("hint-{id}").into_bytes())
}

/// The stored history of the channel as (id, retrieval hint) pairs, oldest first.
async fn stored_hints(store: &support::Store) -> Vec<(String, Option<Vec<u8>>)> {
    support::stored_data(store, CH)
        .await
        .history
        .into_iter()
        .map(|entry| (entry.message_id().to_string(), entry.retrieval_hint))
        .collect()
}

// The hint provider is asked once per message; hints are persisted on the history entry,
// reused after a restart without asking again, and carried in the causal history.
#[tokio::test]
async fn retrieval_hints_are_asked_once_persisted_and_reused() {
    let (provider, asked) = counting_provider();
    let store = new_store();
    let clock = ManualClock::new(START_MS);
    let alice = Peer::with_hints(
        "alice",
        test_config(),
        store.clone(),
        clock.clone(),
        provider,
    );
    for id in ["m1", "m2", "m3"] {
        alice.send(CH, id).await;
        alice.clock.advance(1);
    }
    let m4 = alice.send(CH, "m4").await;
    assert_eq!(
        hints_in(&m4),
        vec![
            ("m1".to_string(), hint("m1")),
            ("m2".to_string(), hint("m2")),
            ("m3".to_string(), hint("m3")),
        ]
    );
    assert_eq!(
        *asked.lock().unwrap(),
        HashMap::from([("m1".into(), 1), ("m2".into(), 1), ("m3".into(), 1)])
    );

    assert_eq!(
        stored_hints(&store).await,
        [
            ("m1".to_string(), hint("m1")),
            ("m2".to_string(), hint("m2")),
            ("m3".to_string(), hint("m3")),
            ("m4".to_string(), None),
        ]
    );

    drop(alice);
    let (provider, asked_after) = counting_provider();
    let alice = Peer::with_hints("alice", test_config(), store.clone(), clock, provider);
    alice.clock.advance(1);
    let m5 = alice.send(CH, "m5").await;
    assert_eq!(
        *asked_after.lock().unwrap(),
        HashMap::from([("m4".into(), 1)]),
        "stored hints are reused; only m4 had none"
    );
    assert_eq!(
        hints_in(&m5),
        vec![
            ("m1".to_string(), hint("m1")),
            ("m2".to_string(), hint("m2")),
            ("m3".to_string(), hint("m3")),
            ("m4".to_string(), hint("m4")),
        ]
    );
    alice.clock.advance(1);
    alice.send(CH, "m6").await;
    assert_eq!(
        *asked_after.lock().unwrap(),
        HashMap::from([("m4".into(), 1), ("m5".into(), 1)])
    );
}

// A failed hint save is kept and retried by the next operation; the provider is not asked
// again.
#[tokio::test]
async fn failed_hint_save_is_retried() {
    let (provider, asked) = counting_provider();
    let store = new_store();
    let alice = Peer::with_hints(
        "alice",
        test_config(),
        store.clone(),
        ManualClock::new(START_MS),
        provider,
    );
    alice.send(CH, "m1").await;
    store.fail_once(Operation::SetRetrievalHint);
    alice.send(CH, "m2").await; // asks for m1's hint; saving it fails
    let hint_of_m1 = |data: ChannelData| data.history[0].retrieval_hint.clone();
    assert_eq!(hint_of_m1(support::stored_data(&store, CH).await), None);

    alice.manager.mark_dependencies_met(CH, &[]).await.unwrap();
    assert_eq!(
        hint_of_m1(support::stored_data(&store, CH).await),
        hint("m1")
    );
    assert_eq!(asked.lock().unwrap().get("m1"), Some(&1));
}

// Retrieval hints are saved only after the commit of the operation that gathered them, and
// never while commits back off: hints gathered while the backend fails commits wait (0
// saves) and are all stored by the first write after it is back; a shutdown whose last
// flush fails saves none either.
#[tokio::test]
async fn hints_wait_for_a_successful_commit() {
    let hinted_peer = |id: &str| {
        let (provider, _) = counting_provider();
        Peer::with_hints(
            id,
            test_config(),
            new_store(),
            ManualClock::new(START_MS),
            provider,
        )
    };
    let alice = hinted_peer("alice");
    alice.send(CH, "m1").await;
    alice.store.fail_always(Operation::Commit);
    alice.clock.advance(1);
    alice.send(CH, "m2").await; // m1's hint: this commit fails
    alice.clock.advance(100);
    alice.send(CH, "m3").await; // m2's hint: commits back off, nothing is written
    assert_eq!(alice.store.calls(Operation::SetRetrievalHint), 0);

    alice.store.clear_all();
    alice.clock.advance(RETRY_MS);
    alice.send(CH, "m4").await;
    assert_eq!(
        stored_hints(&alice.store).await,
        [
            ("m1".to_string(), hint("m1")),
            ("m2".to_string(), hint("m2")),
            ("m3".to_string(), hint("m3")),
            ("m4".to_string(), None),
        ]
    );

    let bob = hinted_peer("bob");
    bob.send(CH, "b1").await;
    bob.store.fail_always(Operation::Commit);
    bob.clock.advance(1);
    bob.send(CH, "b2").await; // b1's hint: this commit fails
    assert!(bob.manager.shutdown().await.is_err());
    assert_eq!(bob.store.calls(Operation::SetRetrievalHint), 0);
}
