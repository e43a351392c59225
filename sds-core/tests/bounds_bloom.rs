//! Bloom filter bounds (issue 11): the rolling filter cleans itself during a flood, decisions
//! are made on exact knowledge only, and received filters acknowledge only when they are
//! plausible and per distinct sender.
//!
//! Before: a flood between two cleanings saturated the filter, so 198 of 200 messages were
//! delivered without their dependency and 198 of 200 new messages were dropped as
//! duplicates; two sync messages with an all-ones filter acknowledged every unacknowledged
//! message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;

use sds_core::bloom::BloomFilter;
use sds_core::codec::wire::{SdsMessage, decode_message, encode_message};
use sds_core::{Event, Limit, ReliabilityConfig, UnwrapStatus};
use support::{Peer, START_MS, crafted, crafted_message, test_config};

const CH: &str = "room";

/// A sync message from `sender` carrying `filter` and no causal history.
fn sync_with_filter(sender: &str, id: &str, lamport: u64, filter: Vec<u8>) -> Vec<u8> {
    let message = SdsMessage {
        content: None,
        bloom_filter: Some(filter),
        ..crafted_message(sender, CH, id, lamport, &[])
    };
    encode_message(&message).unwrap()
}

/// The filter length at the test configuration (capacity 200, p = 0.001): 47 words.
fn filter_len(config: &ReliabilityConfig) -> usize {
    BloomFilter::new(config.bloom_capacity, config.bloom_error_rate)
        .unwrap()
        .to_bytes()
        .len()
}

/// A filter of the test size holding `ids`.
fn filter_of(config: &ReliabilityConfig, ids: &[&str]) -> Vec<u8> {
    let mut filter = BloomFilter::new(config.bloom_capacity, config.bloom_error_rate).unwrap();
    for id in ids {
        filter.insert(id);
    }
    filter.to_bytes()
}

fn count_acks(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|event| matches!(event, Event::MessageAcknowledged { .. }))
        .count()
}

fn untrusted_filter_events(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|event| {
            matches!(
                event,
                Event::LimitReached {
                    limit: Limit::UntrustedBloomFilter,
                    dropped: 1,
                    ..
                }
            )
        })
        .count()
}

/// A flood of 10x the bloom capacity between two timer cleanings (the 100,000 at
/// capacity 10,000, here 2,000 at the test capacity 200) neither delivers a message before
/// its dependency nor drops a new message as a duplicate: out-of-order deliveries 0 of 200
/// (before: 198), false duplicates 0 of 200 (before: 198). The filter we send afterwards
/// stays within its trusted fill, and the withheld dependencies, once sent, deliver every
/// message exactly once in causal order.
#[tokio::test]
async fn flood_between_cleanings_breaks_neither_order_nor_duplicates() {
    let config = test_config();
    let mut bob = Peer::with_config("bob", config.clone());
    bob.manager.ensure_channel(CH).await.unwrap();
    let base = START_MS as u64;
    for i in 0..2_000u64 {
        let bytes = crafted("flood", CH, &format!("flood-{i}"), base + 10_000 + i, &[]);
        assert_eq!(bob.receive(&bytes).await.status, UnwrapStatus::Delivered);
    }
    assert_eq!(bob.delivered().len(), 2_000);
    // Nothing but a sweep timer would have cleaned the filter before; none ran.

    // 200 messages whose dependency was never sent: all wait for it.
    let mut out_of_order = 0;
    for i in 0..200u64 {
        let dep = format!("dep-{i}");
        let bytes = crafted(
            "alice",
            CH,
            &format!("child-{i}"),
            base + 20_000 + i,
            &[&dep],
        );
        match bob.receive(&bytes).await.status {
            UnwrapStatus::Buffered { missing } => assert_eq!(missing, vec![dep]),
            UnwrapStatus::Delivered => out_of_order += 1,
            other => panic!("child-{i}: {other:?}"),
        }
    }
    assert_eq!(out_of_order, 0, "delivered without their dependency");
    assert!(bob.delivered().is_empty());

    // 200 new messages older than everything in the (full) log: new, not duplicates.
    let mut false_duplicates = 0;
    for i in 0..200u64 {
        let bytes = crafted("carol", CH, &format!("late-{i}"), base + i, &[]);
        match bob.receive(&bytes).await.status {
            UnwrapStatus::Delivered => {}
            UnwrapStatus::Duplicate => false_duplicates += 1,
            other => panic!("late-{i}: {other:?}"),
        }
    }
    assert_eq!(false_duplicates, 0, "new messages dropped as duplicates");
    assert_eq!(bob.delivered().len(), 200);

    // A delivered message evicted from the log is still known exactly (the newest
    // `bloom_capacity` evicted ids are: here the late ones, each evicted on arrival as the
    // oldest): naming it is no missing dependency, and it arriving again is a duplicate.
    let recent = crafted("alice", CH, "names-evicted", base + 30_000, &["late-150"]);
    assert_eq!(bob.receive(&recent).await.status, UnwrapStatus::Delivered);
    let again = crafted("carol", CH, "late-150", base + 150, &[]);
    assert_eq!(bob.receive(&again).await.status, UnwrapStatus::Duplicate);
    assert_eq!(bob.delivered(), vec!["names-evicted"]);

    // The filter we send rolled itself and stays trusted by peers.
    let sent = decode_message(&bob.send(CH, "bob-1").await).unwrap();
    let sent_filter = BloomFilter::from_bytes(
        config.bloom_capacity,
        config.bloom_error_rate,
        &sent.bloom_filter.unwrap(),
    )
    .unwrap();
    assert!(!sent_filter.is_overfilled(), "{sent_filter:?}");
    assert!(sent_filter.contains("names-evicted") && sent_filter.contains("late-199"));

    // Honest traffic afterwards: the dependencies arrive and each child follows its own.
    for i in 0..200u64 {
        let bytes = crafted("alice", CH, &format!("dep-{i}"), base + 19_000 + i, &[]);
        assert_eq!(bob.receive(&bytes).await.status, UnwrapStatus::Delivered);
    }
    let delivered = bob.delivered();
    assert_eq!(delivered.len(), 400);
    let position: HashMap<&str, usize> = delivered
        .iter()
        .enumerate()
        .map(|(n, id)| (id.as_str(), n))
        .collect();
    assert_eq!(position.len(), 400, "each delivered exactly once");
    for i in 0..200 {
        assert!(position[format!("dep-{i}").as_str()] < position[format!("child-{i}").as_str()]);
    }
    assert!(bob.state(CH).await.incoming.is_empty());
}

/// Two sync messages with an all-ones filter, from two senders, acknowledge nothing (before:
/// all 5 unacknowledged messages); each is reported as an untrusted filter. Honest peers
/// then acknowledge all 5, each exactly once.
#[tokio::test]
async fn all_ones_filter_acknowledges_nothing() {
    let config = test_config();
    let mut alice = Peer::with_config("alice", config.clone());
    let bob = Peer::with_config("bob", config.clone());
    let ids: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    let mut sent = Vec::new();
    for id in &ids {
        sent.push(alice.send(CH, id).await);
    }
    alice.take_events();
    let lamport = START_MS as u64;
    let all_ones = vec![0xff; filter_len(&config)];
    for (n, sender) in ["mallory", "trudy"].into_iter().enumerate() {
        let sync = sync_with_filter(sender, &format!("sync-{n}"), lamport, all_ones.clone());
        assert_eq!(
            alice.receive(&sync).await.status,
            UnwrapStatus::SyncProcessed
        );
    }
    let events = alice.take_events();
    assert_eq!(count_acks(&events), 0, "{events:?}");
    assert_eq!(untrusted_filter_events(&events), 2, "{events:?}");
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, Event::MessagePossiblyAcknowledged { .. }))
    );
    assert_eq!(alice.state(CH).await.outgoing, ids);

    // Honest traffic: bob receives everything and answers; his causal history (10 entries)
    // names all 5.
    for bytes in &sent {
        assert_eq!(bob.receive(bytes).await.status, UnwrapStatus::Delivered);
    }
    alice.receive(&bob.send(CH, "b1").await).await;
    let events = alice.take_events();
    assert_eq!(count_acks(&events), 5, "{events:?}");
    assert_eq!(untrusted_filter_events(&events), 0);
    assert!(alice.state(CH).await.outgoing.is_empty());
    // Later filters acknowledge nothing twice.
    alice.receive(&bob.send(CH, "b2").await).await;
    assert_eq!(count_acks(&alice.take_events()), 0);
}

/// One peer repeating its filter counts once toward the possible-acknowledgement threshold
/// (2): three syncs from bob whose filter holds m1 make one possible acknowledgement, not an
/// acknowledgement (before: the second acknowledged it); carol's filter makes the second.
#[tokio::test]
async fn possible_acks_count_distinct_senders() {
    let config = test_config();
    let mut alice = Peer::with_config("alice", config.clone());
    alice.send(CH, "m1").await;
    alice.take_events();
    let filter = filter_of(&config, &["m1"]);
    let lamport = START_MS as u64;
    for n in 0..3 {
        let sync = sync_with_filter("bob", &format!("bob-sync-{n}"), lamport + n, filter.clone());
        alice.receive(&sync).await;
    }
    let events = alice.take_events();
    assert_eq!(
        events,
        vec![Event::MessagePossiblyAcknowledged {
            channel: CH.into(),
            message_id: "m1".into(),
            count: 1
        }]
    );
    assert_eq!(alice.state(CH).await.outgoing, vec!["m1"]);

    alice
        .receive(&sync_with_filter("carol", "carol-sync", lamport, filter))
        .await;
    assert_eq!(
        alice.take_events(),
        vec![Event::MessageAcknowledged {
            channel: CH.into(),
            message_id: "m1".into()
        }]
    );
    assert!(alice.state(CH).await.outgoing.is_empty());
}

/// A filter at the fill an honest rolling filter reaches (120% of capacity) is still trusted
/// for acknowledgements: the bound leaves honest peers alone.
#[tokio::test]
async fn honest_full_filter_is_still_trusted() {
    let config = ReliabilityConfig {
        possible_acks_threshold: 1,
        ..test_config()
    };
    let mut alice = Peer::with_config("alice", config.clone());
    alice.send(CH, "m1").await;
    alice.take_events();
    let mut ids: Vec<String> = (0..239).map(|i| format!("other-{i}")).collect();
    ids.push("m1".into());
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let filter = filter_of(&config, &refs);
    let sync = sync_with_filter("bob", "bob-sync", START_MS as u64, filter);
    alice.receive(&sync).await;
    let events = alice.take_events();
    assert_eq!(count_acks(&events), 1, "{events:?}");
    assert_eq!(untrusted_filter_events(&events), 0);
}
