//! Incoming-buffer bounds (issue 11): byte budgets for the whole buffer and per sender, a
//! count, eviction of the heaviest sender's oldest instead of dropping the newcomer, and a
//! default lost-dependency timeout.
//!
//! Before: 1,000 x 128 KiB messages waiting on ids nobody will send pinned 508 MiB for 24 h
//! of sweeps, and then an honest out-of-order message was dropped because the buffer was
//! full.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;

use sds_core::codec::wire::{SdsMessage, decode_message, encode_message};
use sds_core::{DropReason, Event, ReliabilityConfig, UnwrapStatus};
use support::{Peer, crafted, crafted_message, delivered_ids, test_config};

const CH: &str = "room";
const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A content message from `sender` with `size` bytes of content, waiting on `deps`.
fn padded(sender: &str, id: &str, lamport: u64, deps: &[&str], size: usize) -> Vec<u8> {
    encode_message(&SdsMessage {
        content: Some(vec![b'x'; size]),
        ..crafted_message(sender, CH, id, lamport, deps)
    })
    .unwrap()
}

fn evicted(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::MessageDropped {
                message_id,
                reason: DropReason::EvictedForSpace,
                ..
            } => Some(message_id.clone()),
            _ => None,
        })
        .collect()
}

/// Bytes and messages held in bob's buffer, per sender, from the ids it reports and the
/// sizes of the messages we sent it.
async fn held(bob: &Peer, sizes: &HashMap<String, (String, usize)>) -> HashMap<String, usize> {
    let mut per_sender: HashMap<String, usize> = HashMap::new();
    for id in bob.state(CH).await.incoming {
        let (sender, size) = &sizes[&id];
        *per_sender.entry(sender.clone()).or_default() += size;
    }
    per_sender
}

/// 1,000 messages of 128 KiB from 8 senders, each waiting on an id nobody will send: the
/// buffer never holds more than the 64 MiB budget, nor any sender more than 16 MiB (before:
/// 508 MiB for 24 h); an honest out-of-order message arriving into the full buffer is kept
/// (a flooder's oldest makes room) and delivered in order once its dependency arrives; and
/// after 30 minutes of sweeps the default lost-dependency timeout has emptied the buffer.
#[tokio::test]
async fn a_flood_of_large_messages_is_held_to_the_byte_budgets() {
    let alice = Peer::new("alice");
    let mut bob = Peer::new("bob");
    let budget = ReliabilityConfig::default();
    assert_eq!(budget.max_incoming_buffer_bytes, 64 * MIB);
    assert_eq!(budget.max_incoming_bytes_per_sender, 16 * MIB);
    let mut sizes: HashMap<String, (String, usize)> = HashMap::new();
    for n in 0..1_000 {
        let sender = format!("flooder-{}", n % 8);
        let id = format!("f{n:04}");
        let bytes = padded(&sender, &id, 10, &["never-sent"], 128 * KIB);
        sizes.insert(id, (sender, bytes.len()));
        bob.receive(&bytes).await;
        if n % 100 == 99 {
            let per_sender = held(&bob, &sizes).await;
            let total: usize = per_sender.values().sum();
            assert!(total <= 64 * MIB, "{total} bytes held after {n}");
            assert!(per_sender.values().all(|bytes| *bytes <= 16 * MIB));
        }
    }
    let per_sender = held(&bob, &sizes).await;
    let total: usize = per_sender.values().sum();
    let size = sizes["f0000"].1;
    assert!(total <= 64 * MIB && total > 64 * MIB - size, "{total}");
    let kept = bob.state(CH).await.incoming.len();
    assert_eq!(kept, 64 * MIB / size);
    assert_eq!(evicted(&bob.take_events()).len(), 1_000 - kept);

    // Honest traffic: a2 (as large, so it needs room) arrives before a1.
    let a1 = alice.send(CH, "a1").await;
    let a2 = alice
        .manager
        .wrap_outgoing(CH, "a2", vec![b'a'; 128 * KIB])
        .await
        .unwrap();
    let status = bob.receive(&a2).await.status;
    assert_eq!(
        status,
        UnwrapStatus::Buffered {
            missing: vec!["a1".into()]
        }
    );
    let events = bob.take_events();
    assert_eq!(evicted(&events).len(), 1);
    assert!(evicted(&events)[0].starts_with('f'));
    bob.receive(&a1).await;
    assert_eq!(delivered_ids(&bob.take_events()), vec!["a1", "a2"]);

    // Nobody sends "never-sent": the default timeout delivers the rest after 30 minutes.
    for _ in 0..30 {
        bob.clock.advance(60_000);
        bob.manager.sweep_incoming().await;
    }
    assert!(bob.state(CH).await.incoming.is_empty());
    let events = bob.take_events();
    assert_eq!(
        events
            .iter()
            .filter(|event| matches!(event, Event::DependenciesLost { .. }))
            .count(),
        kept - 1
    );
    bob.receive(&alice.send(CH, "a3").await).await;
    assert_eq!(delivered_ids(&bob.take_events()), vec!["a3"]);
}

/// One sender fills the 1,000-message buffer with messages waiting on an id nobody sends,
/// then keeps flooding: an honest out-of-order message is still buffered (the flooder's
/// oldest is evicted instead; before, it was dropped as `IncomingBufferFull`), survives
/// another 1,000 flooding messages, and is delivered once its dependency arrives.
#[tokio::test]
async fn an_honest_message_survives_a_full_buffer() {
    let alice = Peer::new("alice");
    let mut bob = Peer::new("bob");
    for n in 0..1_500 {
        bob.receive(&crafted("mallory", CH, &format!("f{n:04}"), 10, &["never"]))
            .await;
    }
    assert_eq!(bob.state(CH).await.incoming.len(), 1_000);
    assert_eq!(evicted(&bob.take_events()).len(), 500);

    let a1 = alice.send(CH, "a1").await;
    let a2 = alice.send(CH, "a2").await;
    assert!(matches!(
        bob.receive(&a2).await.status,
        UnwrapStatus::Buffered { .. }
    ));
    assert_eq!(evicted(&bob.take_events()), vec!["f0500"]);
    for n in 1_500..2_500 {
        bob.receive(&crafted("mallory", CH, &format!("f{n:04}"), 10, &["never"]))
            .await;
    }
    let incoming = bob.state(CH).await.incoming;
    assert_eq!(incoming.len(), 1_000);
    assert!(incoming.contains(&"a2".to_string()));
    assert_eq!(evicted(&bob.take_events()).len(), 1_000);

    bob.receive(&a1).await;
    assert_eq!(delivered_ids(&bob.take_events()), vec!["a1", "a2"]);
    assert_eq!(bob.state(CH).await.incoming.len(), 999);
}

/// A sender past its own byte budget (here 3 messages' worth) loses its oldest buffered
/// message. The evicted message is not delivered; the messages that waited for it, and a
/// later message naming it, treat it as unknown and request it; once it arrives again
/// everything is delivered exactly once, in causal order.
#[tokio::test]
async fn a_sender_past_its_budget_loses_its_own_oldest() {
    let size = encode_message(&crafted_message("alice", CH, "a2", 2, &["a1"]))
        .unwrap()
        .len();
    let config = ReliabilityConfig {
        max_incoming_bytes_per_sender: 3 * size + size / 2,
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    let chain: Vec<Vec<u8>> = (1..=5)
        .map(|n| {
            let previous = format!("a{}", n - 1);
            let deps: Vec<&str> = if n == 1 { vec![] } else { vec![&previous] };
            crafted("alice", CH, &format!("a{n}"), n, &deps)
        })
        .collect();
    // a1 is lost; a2..a4 wait in line.
    for bytes in &chain[1..4] {
        bob.receive(bytes).await;
    }
    assert_eq!(bob.state(CH).await.incoming, vec!["a2", "a3", "a4"]);
    bob.take_events();
    bob.receive(&chain[4]).await;
    assert_eq!(evicted(&bob.take_events()), vec!["a2"]);
    assert_eq!(bob.state(CH).await.incoming, vec!["a3", "a4", "a5"]);
    let requested: Vec<String> = bob
        .stored_meta(CH)
        .await
        .unwrap()
        .outgoing_repairs
        .into_iter()
        .map(|repair| repair.entry.unwrap().message_id)
        .collect();
    assert_eq!(requested, vec!["a1", "a2"]);

    // Another sender's message naming a2 finds it unknown, not met.
    let status = bob.receive(&crafted("carol", CH, "c1", 6, &["a2"])).await;
    assert_eq!(
        status.status,
        UnwrapStatus::Buffered {
            missing: vec!["a2".into()]
        }
    );
    bob.receive(&chain[0]).await;
    assert_eq!(delivered_ids(&bob.take_events()), vec!["a1"]);
    bob.receive(&chain[1]).await;
    // c1 needs only a2: it is delivered with a3, in (lamport, id) order within each wave.
    assert_eq!(
        delivered_ids(&bob.take_events()),
        vec!["a2", "a3", "c1", "a4", "a5"]
    );
    assert!(bob.state(CH).await.incoming.is_empty());
    assert_eq!(bob.log(CH).await, vec!["a1", "a2", "a3", "a4", "a5", "c1"]);
}

/// A newcomer larger than its sender's whole budget is dropped (`IncomingBufferFull`) and
/// evicts nothing: what was buffered stays.
#[tokio::test]
async fn a_newcomer_over_a_budget_on_its_own_is_dropped() {
    let config = ReliabilityConfig {
        max_incoming_bytes_per_sender: 4 * KIB,
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    bob.receive(&crafted("mallory", CH, "small", 10, &["never"]))
        .await;
    let status = bob
        .receive(&padded("mallory", "big", 10, &["never"], 8 * KIB))
        .await
        .status;
    assert_eq!(
        status,
        UnwrapStatus::Dropped(DropReason::IncomingBufferFull)
    );
    assert!(evicted(&bob.take_events()).is_empty());
    assert_eq!(bob.state(CH).await.incoming, vec!["small"]);
}

/// With the default lost-dependency timeout (30 minutes), a message waiting on an id nobody
/// sends is delivered with `DependenciesLost` after 30 minutes of sweeps every 5 s, not a
/// sweep earlier (before: `None`, it waited forever); later messages are delivered in order.
#[tokio::test]
async fn a_message_waiting_on_a_lost_id_is_delivered_after_30_minutes() {
    assert_eq!(
        ReliabilityConfig::default().lost_dependency_timeout_ms,
        Some(30 * 60 * 1000)
    );
    let alice = Peer::new("alice");
    let mut bob = Peer::new("bob");
    alice.send(CH, "m1").await;
    let m2 = alice.send(CH, "m2").await;
    bob.receive(&m2).await;
    bob.take_events();
    let mut lost_after = None;
    for sweep in 1..=400 {
        bob.clock.advance(5_000);
        bob.manager.sweep_incoming().await;
        let events = bob.take_events();
        if events.contains(&Event::DependenciesLost {
            channel: CH.into(),
            message_id: "m2".into(),
            lost: vec!["m1".into()],
        }) {
            assert_eq!(delivered_ids(&events), vec!["m2"]);
            lost_after = Some(sweep * 5_000);
            break;
        }
        assert!(delivered_ids(&events).is_empty());
    }
    assert_eq!(lost_after, Some(30 * 60 * 1000));
    assert!(bob.state(CH).await.incoming.is_empty());
    assert!(
        bob.stored_meta(CH)
            .await
            .unwrap()
            .outgoing_repairs
            .is_empty()
    );
    // m3 names m1 too: given up on, it no longer holds anything back.
    let m3 = alice.send(CH, "m3").await;
    let history: Vec<String> = decode_message(&m3)
        .unwrap()
        .causal_history
        .into_iter()
        .map(|entry| entry.message_id)
        .collect();
    assert_eq!(history, vec!["m1", "m2"]);
    bob.receive(&m3).await;
    assert_eq!(delivered_ids(&bob.take_events()), vec!["m3"]);
    assert_eq!(bob.log(CH).await, vec!["m2", "m3"]);
}
