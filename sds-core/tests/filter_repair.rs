//! Repair from peers' filters: a message that no causal history names any more is still
//! repaired at a peer that never received it, because that peer's bloom filter (sent with
//! every sync message) shows it lacks the message.
//!
//! The situation, found by `sds simulate --scenario bursty --seed 2`: carol misses alice's
//! a1 (offline, or every copy lost); bob receives it only after his own later b1, so a1
//! sorts below b1 in every log and no causal history names it again; bob's filter counts
//! as its acknowledgement, so alice never resends it. Carol cannot ask for what she never
//! heard of.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_core::bloom::BloomFilter;
use sds_core::codec::wire::{SdsMessage, decode_message, encode_message};
use sds_core::{Clock, Event, Limit, ManualClock, ReliabilityConfig, UnwrapStatus};
use support::{Peer, START_MS, delivered_ids, new_store, repair_answers, test_config};

const CH: &str = "room";
/// The default `repair_from_filters_after_ms`.
const AFTER: i64 = 60_000;
/// `repair_t_max_ms` by default: the latest any holder answers.
const T_MAX: i64 = 60_000;

/// One causal-history entry and one filter for an acknowledgement make the situation
/// with three peers instead of dozens of messages.
fn config(repair_from_filters_after_ms: Option<u64>) -> ReliabilityConfig {
    ReliabilityConfig {
        max_causal_history: 1,
        possible_acks_threshold: 1,
        repair_from_filters_after_ms,
        ..test_config()
    }
}

struct Trio {
    clock: ManualClock,
    alice: Peer,
    bob: Peer,
    carol: Peer,
}

fn trio(config: ReliabilityConfig) -> Trio {
    let clock = ManualClock::new(START_MS);
    let peer = |id: &str| Peer::with(id, config.clone(), new_store(), clock.clone());
    Trio {
        alice: peer("alice"),
        bob: peer("bob"),
        carol: peer("carol"),
        clock,
    }
}

fn history_ids(bytes: &[u8]) -> Vec<String> {
    decode_message(bytes)
        .unwrap()
        .causal_history
        .into_iter()
        .map(|entry| entry.message_id)
        .collect()
}

async fn sync(peer: &Peer) -> Vec<u8> {
    peer.manager.build_sync_message(CH).await.unwrap()
}

/// Three peers with `repair_from_filters_after_ms` set so: carol misses a1, bob delivers it
/// after his own b1, and alice counts it acknowledged from bob's filter: nobody names a1
/// any more.
async fn a1_is_forgotten(repair_from_filters_after_ms: Option<u64>) -> Trio {
    let mut trio = trio(config(repair_from_filters_after_ms));
    let Trio {
        clock,
        alice,
        bob,
        carol,
    } = &mut trio;
    let a1 = alice.send(CH, "a1").await;
    clock.advance(1);
    let b1 = bob.send(CH, "b1").await;
    alice.receive(&b1).await;
    carol.receive(&b1).await;
    assert_eq!(bob.receive(&a1).await.status, UnwrapStatus::Delivered);
    alice.receive(&sync(bob).await).await;
    assert!(alice.take_events().iter().any(|event| matches!(event,
        Event::MessageAcknowledged { message_id, .. } if message_id == "a1")));
    for peer in [&*alice, &*bob, &*carol] {
        assert_eq!(history_ids(&sync(peer).await), vec!["b1"], "{}", peer.id);
    }
    assert_eq!(delivered_ids(&carol.take_events()), vec!["b1"]);
    bob.take_events();
    trio
}

/// Carol's sync after the delay shows alice (a1's sender, who answers first) that carol
/// lacks a1: alice rebroadcasts it once, carol delivers it, and bob's own scheduled answer
/// is cancelled by alice's rebroadcast: one rebroadcast in all.
#[tokio::test]
async fn a_message_nobody_names_is_repaired_from_the_peers_filter() {
    let Trio {
        clock,
        mut alice,
        mut bob,
        mut carol,
    } = a1_is_forgotten(Some(60_000)).await;
    clock.advance(AFTER);
    let carol_sync = sync(&carol).await;
    alice.receive(&carol_sync).await;
    bob.receive(&carol_sync).await;
    alice.manager.sweep_repairs().await;
    let answered = repair_answers(&alice.take_events());
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].0, "a1");

    assert_eq!(
        carol.receive(&answered[0].1).await.status,
        UnwrapStatus::Delivered
    );
    assert_eq!(delivered_ids(&carol.take_events()), vec!["a1"]);
    assert_eq!(
        bob.receive(&answered[0].1).await.status,
        UnwrapStatus::Duplicate
    );
    clock.advance(T_MAX);
    bob.manager.sweep_repairs().await;
    assert!(repair_answers(&bob.take_events()).is_empty());
    assert!(
        bob.stored_meta(CH)
            .await
            .unwrap()
            .incoming_repairs
            .is_empty()
    );
}

/// The same without repair from filters: carol's syncs, the sweeps and every timer leave
/// a1 missing at carol for good. This is what the setting is for.
#[tokio::test]
async fn without_it_the_forgotten_message_is_never_repaired() {
    let Trio {
        clock,
        mut alice,
        mut bob,
        mut carol,
    } = a1_is_forgotten(None).await;
    for _ in 0..20 {
        clock.advance(AFTER);
        let carol_sync = sync(&carol).await;
        alice.receive(&carol_sync).await;
        bob.receive(&carol_sync).await;
        for peer in [&alice, &bob] {
            carol.receive(&sync(peer).await).await;
            peer.manager.sweep_repairs().await;
            peer.manager.sweep_outgoing().await;
        }
        carol.manager.sweep_repairs().await;
        let answered: Vec<_> = [alice.take_events(), bob.take_events()]
            .concat()
            .into_iter()
            .filter(|event| matches!(event, Event::RepairReady { .. } | Event::Resend { .. }))
            .collect();
        assert!(answered.is_empty(), "{answered:?}");
    }
    assert!(delivered_ids(&carol.take_events()).is_empty());
    assert_eq!(carol.log(CH).await, vec!["b1"]);
}

/// Within the delay, a filter that lacks a message says nothing yet: the copy may still
/// be on its way, and resends and requests have their turn first.
#[tokio::test]
async fn a_filter_is_not_read_before_the_delay() {
    let Trio {
        clock,
        mut alice,
        carol,
        ..
    } = a1_is_forgotten(Some(60_000)).await;
    clock.advance(AFTER - 10);
    alice.receive(&sync(&carol).await).await;
    alice.manager.sweep_repairs().await;
    assert!(repair_answers(&alice.take_events()).is_empty());
    assert!(
        alice
            .stored_meta(CH)
            .await
            .unwrap()
            .incoming_repairs
            .is_empty()
    );
}

/// A sync from `sender` at `lamport` carrying `filter`.
fn sync_with_filter(sender: &str, lamport: u64, filter: &BloomFilter) -> Vec<u8> {
    let message = SdsMessage {
        sender_id: sender.into(),
        message_id: format!("sync-{lamport}"),
        channel_id: CH.into(),
        lamport_timestamp: Some(lamport),
        causal_history: vec![],
        bloom_filter: Some(filter.to_bytes()),
        repair_request: vec![],
        content: None,
    };
    encode_message(&message).unwrap()
}

/// A peer claiming to have received nothing (an empty filter, every 5 s for two minutes)
/// against a log of 1,000 old messages: 10 answers per sync, 100 per minute, 200 in all
/// (the bounds of explicit requests), never the whole log. An overfilled filter claims
/// everything and schedules nothing.
#[tokio::test]
async fn an_empty_filter_gets_answers_within_the_repair_bounds() {
    let clock = ManualClock::new(START_MS);
    let mut alice = Peer::with("alice", test_config(), new_store(), clock.clone());
    for n in 0..1_000 {
        alice.send(CH, &format!("m{n}")).await;
    }
    // The 1,000 sends took Lamport timestamps 1 ms apart from the start.
    clock.advance(AFTER + 1_000);
    alice.take_events();
    let config = test_config();
    let empty = BloomFilter::new(config.bloom_capacity, config.bloom_error_rate).unwrap();
    let mut per_sync = Vec::new();
    let mut answered_ids = Vec::new();
    for round in 0..24 {
        let lamport = u64::try_from(clock.now_ms()).unwrap();
        alice
            .receive(&sync_with_filter("mallory", lamport, &empty))
            .await;
        alice.manager.sweep_repairs().await;
        let events = alice.take_events();
        // A sender out of budget is not even scanned for: nothing is refused, nothing
        // reported.
        assert_eq!(limit_events(&events), 0, "round {round}");
        let answered = repair_answers(&events);
        assert!(answered.len() <= 10, "round {round}: {}", answered.len());
        per_sync.push(answered.len());
        answered_ids.extend(answered.into_iter().map(|(id, _)| id));
        clock.advance(5_000);
    }
    let window = [vec![10; 10], vec![0; 2]].concat();
    assert_eq!(per_sync, [window.clone(), window].concat());
    // Only what a rolling filter of this capacity remembers (the newest 160) is judged,
    // oldest of those first.
    assert_eq!(answered_ids.first().map(String::as_str), Some("m840"));

    let mut full = BloomFilter::new(config.bloom_capacity, config.bloom_error_rate).unwrap();
    for n in 0..10_000 {
        full.insert(&format!("x{n}"));
    }
    assert!(full.is_overfilled());
    clock.advance(T_MAX);
    let lamport = u64::try_from(clock.now_ms()).unwrap();
    alice
        .receive(&sync_with_filter("trent", lamport, &full))
        .await;
    alice.manager.sweep_repairs().await;
    let events = alice.take_events();
    assert!(repair_answers(&events).is_empty());
    assert_eq!(limit_events(&events), 0);
}

/// How many `LimitReached` events for repair answers `events` holds.
fn limit_events(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|event| {
            matches!(
                event,
                Event::LimitReached {
                    limit: Limit::RepairAnswers,
                    ..
                }
            )
        })
        .count()
}
