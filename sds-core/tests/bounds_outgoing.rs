//! The outgoing buffer's bounds, and what the op-end snapshot of a large buffer costs.
//!
//! Before: nobody acknowledging meant an unbounded outgoing buffer, and every operation
//! deep-copied each buffered message into its snapshot (27 ms per wrap at 4,500
//! unacknowledged messages, 24 wraps per second at 10,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use sds_codec::wire::decode_message;
use sds_core::{Event, Limit, ReliabilityConfig};
use support::{Peer, test_config};

const CH: &str = "room";

fn id(n: usize) -> String {
    format!("m{n:05}")
}

/// Given-up messages and outgoing-buffer limit events, in order.
fn give_ups(events: &[Event]) -> (Vec<String>, Vec<usize>) {
    let mut failed = Vec::new();
    let mut limits = Vec::new();
    for event in events {
        match event {
            Event::MessageSendFailed { message_id, .. } => failed.push(message_id.clone()),
            Event::LimitReached {
                limit: Limit::OutgoingBuffer,
                dropped,
                ..
            } => limits.push(*dropped),
            _ => {}
        }
    }
    (failed, limits)
}

/// Nobody acknowledges 4,500 wrapped messages: the outgoing buffer holds exactly the newest
/// 1,000 (the default `max_outgoing_buffer`), in memory and in the stored snapshot; each of
/// the 3,500 oldest is given up once, with one limit event per wrap that gave one up; and a
/// peer joining afterwards still gets the newest messages delivered once, in order.
#[tokio::test]
async fn nobody_acks_keeps_the_newest_1000_unacknowledged() {
    let mut alice = Peer::new("alice");
    let mut sent = Vec::new();
    for n in 0..4_500 {
        alice.clock.advance(1);
        sent.push(alice.send(CH, &id(n)).await);
        if n % 500 == 499 {
            assert!(alice.state(CH).await.outgoing.len() <= 1_000);
        }
    }
    let state = alice.state(CH).await;
    assert_eq!(state.outgoing.len(), 1_000);
    assert_eq!(state.outgoing.first(), Some(&id(3_500)));
    assert_eq!(state.outgoing.last(), Some(&id(4_499)));

    let (failed, limits) = give_ups(&alice.take_events());
    assert_eq!(failed, (0..3_500).map(id).collect::<Vec<_>>());
    assert_eq!(limits, vec![1; 3_500]);

    let stored = alice.stored_meta(CH).await.expect("stored");
    assert_eq!(stored.outgoing.len(), 1_000);
    let first = stored.outgoing.get(0).unwrap().decode_message().unwrap();
    assert_eq!(first.message_id, id(3_500));

    // Honest traffic afterwards: bob, who heard nothing before, gets alice's last message
    // (its causal history names ids bob will never see, which he marks met) and then a new
    // one, each delivered once, in order.
    let mut bob = Peer::new("bob");
    let last = decode_message(&sent[4_499]).unwrap();
    bob.receive(&sent[4_499]).await;
    let dependencies: Vec<String> = last
        .causal_history
        .iter()
        .map(|entry| entry.message_id.clone())
        .collect();
    bob.manager
        .mark_dependencies_met(CH, &dependencies)
        .await
        .unwrap();
    alice.clock.advance(1);
    let next = alice.send(CH, "after").await;
    bob.receive(&next).await;
    bob.receive(&next).await;
    assert_eq!(bob.delivered(), vec![id(4_499), "after".to_string()]);
}

/// Past `max_outgoing_buffer_bytes`, the oldest messages are given up until the buffer's
/// stored bytes fit: with 1,000 B messages and a 10,000 B budget, 9 stay buffered
/// (9 x 1,0xx B fit, 10 do not), the newest.
#[tokio::test]
async fn byte_budget_gives_up_the_oldest_messages() {
    let config = ReliabilityConfig {
        max_outgoing_buffer_bytes: 10_000,
        max_causal_history: 0,
        ..test_config()
    };
    let mut alice = Peer::with_config("alice", config);
    for n in 0..30 {
        alice.clock.advance(1);
        alice
            .manager
            .wrap_outgoing(CH, id(n), vec![7; 1_000])
            .await
            .unwrap();
    }
    let state = alice.state(CH).await;
    assert_eq!(state.outgoing, (21..30).map(id).collect::<Vec<_>>());
    let stored = alice.stored_meta(CH).await.expect("stored");
    let bytes: usize = stored
        .outgoing
        .iter()
        .map(|entry| entry.message.len())
        .sum();
    let each = stored.outgoing.get(0).unwrap().message.len();
    assert!((1_000..1_100).contains(&each), "{each} B per message");
    assert!(
        bytes <= 10_000 && bytes + each > 10_000,
        "{bytes} B buffered"
    );

    let (failed, limits) = give_ups(&alice.take_events());
    assert_eq!(failed, (0..21).map(id).collect::<Vec<_>>());
    assert_eq!(limits.iter().sum::<usize>(), 21);

    // A message larger than the whole budget is sent, but not kept for resending.
    alice.clock.advance(1);
    let big = alice
        .manager
        .wrap_outgoing(CH, "big", vec![7; 20_000])
        .await
        .unwrap();
    assert_eq!(decode_message(&big).unwrap().message_id, "big");
    assert!(alice.state(CH).await.outgoing.is_empty());
    let (failed, limits) = give_ups(&alice.take_events());
    assert_eq!(failed.len(), 10);
    assert_eq!(failed.last().map(String::as_str), Some("big"));
    assert_eq!(limits, vec![10]);
}

/// A buffer stored under a larger bound is trimmed to a lowered one when the channel is
/// loaded: the newest 5 of 20 stay, 15 are given up with one limit event, and the trimmed
/// snapshot is what the backend holds after the next commit.
#[tokio::test]
async fn a_lowered_bound_trims_the_stored_buffer_on_load() {
    let alice = Peer::new("alice");
    for n in 0..20 {
        alice.clock.advance(1);
        alice.send(CH, &id(n)).await;
    }
    let mut alice = Peer::with(
        "alice",
        ReliabilityConfig {
            max_outgoing_buffer: 5,
            ..test_config()
        },
        alice.store.clone(),
        alice.clock.clone(),
    );
    alice.join(CH).await;
    assert_eq!(
        alice.state(CH).await.outgoing,
        (15..20).map(id).collect::<Vec<_>>()
    );
    let (failed, limits) = give_ups(&alice.take_events());
    assert_eq!(failed, (0..15).map(id).collect::<Vec<_>>());
    assert_eq!(limits, vec![15]);
    assert_eq!(alice.stored_meta(CH).await.unwrap().outgoing.len(), 5);
}

/// The op-end snapshot costs what changed: after one more wrap on a buffer of 999
/// unacknowledged messages, the stored snapshot shares all but its last chunk with the one
/// before (the same allocations, not copies), and holds each message's encoding once.
#[tokio::test]
async fn a_wrap_rebuilds_only_the_last_snapshot_chunk() {
    let alice = Peer::new("alice");
    for n in 0..999 {
        alice.clock.advance(1);
        alice.send(CH, &id(n)).await;
    }
    let before = alice.stored_meta(CH).await.unwrap();
    alice.clock.advance(1);
    alice.send(CH, &id(999)).await;
    let after = alice.stored_meta(CH).await.unwrap();
    assert_eq!(before.outgoing.len(), 999);
    assert_eq!(after.outgoing.len(), 1_000);

    let chunks = after.outgoing.chunks();
    let shared = chunks
        .iter()
        .filter(|chunk| {
            before
                .outgoing
                .chunks()
                .iter()
                .any(|old| Arc::ptr_eq(old, chunk))
        })
        .count();
    assert_eq!(chunks.len(), 32, "1,000 entries in chunks of 32");
    assert_eq!(
        shared, 31,
        "only the chunk that gained the message was rebuilt"
    );
    // The unchanged entries' encodings are the very bytes stored before.
    let (old, new) = (
        before.outgoing.get(0).unwrap(),
        after.outgoing.get(0).unwrap(),
    );
    assert_eq!(old.message.as_ptr(), new.message.as_ptr());
}

/// Both bounds at once, with messages of two sizes: the message bound gives up the oldest
/// first, and the byte bound then counts only what is left. With room for 3 messages and
/// 3,500 B, a fourth small (~1,030 B) message gives up one, and a big (~2,030 B) one after
/// it gives up two: the one the message bound took, then one more for the bytes.
#[tokio::test]
async fn message_and_byte_bounds_together_give_up_exactly_what_is_needed() {
    let config = ReliabilityConfig {
        max_outgoing_buffer: 3,
        max_outgoing_buffer_bytes: 3_500,
        max_causal_history: 0,
        ..test_config()
    };
    let mut alice = Peer::with_config("alice", config);
    for n in 0..4 {
        alice.clock.advance(1);
        alice
            .manager
            .wrap_outgoing(CH, id(n), vec![7; 1_000])
            .await
            .unwrap();
    }
    assert_eq!(alice.state(CH).await.outgoing, [id(1), id(2), id(3)]);
    assert_eq!(give_ups(&alice.take_events()), (vec![id(0)], vec![1]));

    alice.clock.advance(1);
    alice
        .manager
        .wrap_outgoing(CH, id(4), vec![7; 2_000])
        .await
        .unwrap();
    assert_eq!(alice.state(CH).await.outgoing, [id(3), id(4)]);
    assert_eq!(
        give_ups(&alice.take_events()),
        (vec![id(1), id(2)], vec![2])
    );

    // What the buffer holds is what it counts: a ~130 B message still fits (~3,190 B).
    alice.clock.advance(1);
    alice
        .manager
        .wrap_outgoing(CH, id(5), vec![7; 100])
        .await
        .unwrap();
    assert_eq!(alice.state(CH).await.outgoing, [id(3), id(4), id(5)]);
    assert_eq!(give_ups(&alice.take_events()), (vec![], vec![]));
}

/// A retried wrap of a message the log no longer holds (the log keeps fewer messages than
/// the outgoing buffer) is answered from the buffer: the message first sent, with its
/// Lamport timestamp, and nothing new is logged or buffered.
#[tokio::test]
async fn a_retried_wrap_is_answered_from_the_buffer_after_the_log_evicted_it() {
    let config = ReliabilityConfig {
        max_message_history: 2,
        max_causal_history: 2,
        ..test_config()
    };
    let alice = Peer::with_config("alice", config);
    let mut sent = Vec::new();
    for n in 0..5 {
        alice.clock.advance(1);
        sent.push(alice.send(CH, &id(n)).await);
    }
    let before = alice.state(CH).await;
    assert_eq!(before.log, [id(3), id(4)]);
    assert_eq!(before.outgoing.len(), 5);

    alice.clock.advance(1);
    let retried = alice
        .manager
        .wrap_outgoing(CH, id(0), format!("content of {}", id(0)).into_bytes())
        .await
        .unwrap();
    let (retried, first) = (
        decode_message(&retried).unwrap(),
        decode_message(&sent[0]).unwrap(),
    );
    assert_eq!(retried.message_id, id(0));
    assert_eq!(retried.lamport_timestamp, first.lamport_timestamp);
    assert_eq!(retried.causal_history, first.causal_history);
    assert_eq!(alice.state(CH).await, before);
}
