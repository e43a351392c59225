//! SDS-R bounds under hostile peers (issue 11): repair requests we send, answers we give.
//!
//! Before: a sync naming unknown ids scheduled one request each, without a per-channel cap
//! (77 syncs held 3.85 M requests, +1.6 GiB, and the next wrap took 7 s); one repair request
//! naming our whole log made us rebroadcast all 1,000 messages (81x its size), every round;
//! and a peer repeating our own request postponed it forever.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_core::codec::storage::ChannelMeta;
use sds_core::codec::wire::{HistoryEntry, SdsMessage, decode_message, encode_message};
use sds_core::repair_timing::request_at;
use sds_core::{Clock, Event, Limit, ManualClock, Persistence, ReliabilityConfig, UnwrapStatus};
use support::{Peer, START_MS, crafted, delivered_ids, new_store, repair_answers, test_config};

const CH: &str = "room";
const T_MIN: i64 = 10_000;
const T_MAX: i64 = 60_000;

async fn meta(peer: &Peer) -> ChannelMeta {
    peer.stored_meta(CH).await.expect("channel stored")
}

async fn pending_requests(peer: &Peer) -> Vec<String> {
    meta(peer)
        .await
        .outgoing_repairs
        .into_iter()
        .map(|repair| repair.entry.unwrap().message_id)
        .collect()
}

fn entry(id: &str) -> HistoryEntry {
    HistoryEntry {
        message_id: id.into(),
        retrieval_hint: None,
        sender_id: None,
    }
}

/// A sync message from `sender` whose causal history names `ids`.
fn sync_naming(sender: &str, sync_id: &str, ids: &[String]) -> Vec<u8> {
    encode_message(&SdsMessage {
        sender_id: sender.into(),
        message_id: sync_id.into(),
        channel_id: CH.into(),
        lamport_timestamp: Some(START_MS as u64),
        causal_history: ids.iter().map(|id| entry(id)).collect(),
        ..Default::default()
    })
    .unwrap()
}

/// A sync message from `sender` asking for `ids` (a sync, so it never enters our log and
/// never pushes the requested messages out of it).
fn request_for(sender: &str, message_id: &str, ids: &[String]) -> Vec<u8> {
    encode_message(&SdsMessage {
        sender_id: sender.into(),
        message_id: message_id.into(),
        channel_id: CH.into(),
        lamport_timestamp: Some(START_MS as u64),
        repair_request: ids.iter().map(|id| entry(id)).collect(),
        ..Default::default()
    })
    .unwrap()
}

fn requested_ids(bytes: &[u8]) -> Vec<String> {
    decode_message(bytes)
        .unwrap()
        .repair_request
        .into_iter()
        .map(|entry| entry.message_id)
        .collect()
}

/// Total `dropped` of the `LimitReached` events for `limit`.
fn limit_dropped(events: &[Event], limit: Limit) -> usize {
    events
        .iter()
        .map(|event| match event {
            Event::LimitReached {
                limit: reached,
                dropped,
                ..
            } if *reached == limit => *dropped,
            _ => 0,
        })
        .sum()
}

/// 77 syncs of a hostile peer, each naming 255 fresh ids nobody sent (just under the
/// missing-dependency bound), then one naming 50,000: pending repair requests stop at the
/// 1,000 cap (before: 19,635 with this core, 3.85 M in the run), the rest is
/// reported as `LimitReached`, and an honest loss found afterwards is still requested first
/// and repaired, delivered exactly once in causal order.
#[tokio::test]
async fn hostile_syncs_cannot_grow_repair_requests_past_the_cap() {
    let clock = ManualClock::new(START_MS);
    let mut alice = Peer::with("alice", test_config(), new_store(), clock.clone());
    let mut bob = Peer::with("bob", test_config(), new_store(), clock.clone());
    for round in 0..77 {
        let ids: Vec<String> = (0..255).map(|n| format!("fake-{round}-{n}")).collect();
        bob.receive(&sync_naming("mallory", &format!("sync-{round}"), &ids))
            .await;
        assert!(pending_requests(&bob).await.len() <= 1_000, "round {round}");
    }
    assert_eq!(pending_requests(&bob).await.len(), 1_000);
    let events = bob.take_events();
    assert_eq!(
        limit_dropped(&events, Limit::OutgoingRepairs),
        77 * 255 - 1_000
    );

    let many: Vec<String> = (0..50_000).map(|n| format!("b{n}")).collect();
    let status = bob
        .receive(&sync_naming("mallory", "sync-big", &many))
        .await;
    assert_eq!(status.status, UnwrapStatus::SyncProcessed);
    assert_eq!(pending_requests(&bob).await.len(), 1_000);

    // Honest traffic: a1 is lost on the way to bob, a2 arrives and waits for it. The
    // awaited loss takes the place of a sync-revealed one, and goes out first.
    let a1 = alice.send(CH, "a1").await;
    let a2 = alice.send(CH, "a2").await;
    bob.take_events();
    assert_eq!(
        bob.receive(&a2).await.status,
        UnwrapStatus::Buffered {
            missing: vec!["a1".into()]
        }
    );
    assert_eq!(
        limit_dropped(&bob.take_events(), Limit::OutgoingRepairs),
        1,
        "the sync-revealed loss pushed out is reported"
    );
    let pending = pending_requests(&bob).await;
    assert_eq!(pending.len(), 1_000);
    assert!(pending.contains(&"a1".to_string()));
    clock.advance(T_MAX);
    let sync = bob.manager.build_sync_message(CH).await.unwrap();
    let requested = requested_ids(&sync);
    assert_eq!(requested.len(), 10);
    assert_eq!(requested[0], "a1");
    alice.receive(&sync).await;
    alice.take_events();
    alice.manager.sweep_repairs().await;
    let answered = repair_answers(&alice.take_events());
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].0, "a1");
    bob.receive(&answered[0].1).await;
    assert_eq!(bob.receive(&a1).await.status, UnwrapStatus::Duplicate);
    bob.receive(&alice.send(CH, "a3").await).await;
    assert_eq!(delivered_ids(&bob.take_events()), vec!["a1", "a2", "a3"]);
    assert!(bob.state(CH).await.incoming.is_empty());
}

/// When every pending request is for a dependency some buffered message waits for, a new
/// awaited loss has nothing to push out: it is left unrequested and reported (dropped 1),
/// and requested by the incoming sweep once a request leaves.
#[tokio::test]
async fn awaited_losses_past_the_cap_are_reported_and_requested_later() {
    let config = ReliabilityConfig {
        max_outgoing_repairs: 2,
        ..test_config()
    };
    let mut bob = Peer::with_config("bob", config);
    bob.join(CH).await;
    let lamport = START_MS as u64;
    for (n, lost) in ["x1", "x2"].iter().enumerate() {
        let waiting = crafted("alice", CH, &format!("w{n}"), lamport + 10, &[lost]);
        bob.receive(&waiting).await;
    }
    assert_eq!(pending_requests(&bob).await, ["x1", "x2"]);
    bob.take_events();
    bob.receive(&crafted("alice", CH, "w2", lamport + 10, &["x3"]))
        .await;
    assert_eq!(pending_requests(&bob).await, ["x1", "x2"]);
    assert_eq!(limit_dropped(&bob.take_events(), Limit::OutgoingRepairs), 1);

    bob.receive(&crafted("alice", CH, "x1", lamport, &[])).await;
    bob.manager.sweep_incoming().await;
    assert_eq!(pending_requests(&bob).await, ["x2", "x3"]);
}

/// One peer asking for our whole log (1,000 messages) every 5 s for two minutes: each
/// request gets at most 10 answers, and that peer at most 100 a minute, 200 in all (before:
/// 1,000 a request, 24,000 over the two minutes, 81x the request's size each time). The
/// answers to one request weigh less than the request itself. An honest peer's request is
/// still answered, and its loss repaired.
#[tokio::test]
async fn requests_for_the_whole_log_are_answered_within_bounds() {
    let clock = ManualClock::new(START_MS);
    let mut alice = Peer::with("alice", test_config(), new_store(), clock.clone());
    let mut carol = Peer::with("carol", test_config(), new_store(), clock.clone());
    let mut log = Vec::new();
    for n in 0..1_000 {
        let id = format!("m{n}");
        carol.receive(&alice.send(CH, &id).await).await;
        log.push(id);
    }
    assert_eq!(alice.log(CH).await.len(), 1_000);
    assert_eq!(carol.log(CH).await.len(), 1_000);
    carol.take_events();
    alice.take_events();

    let mut per_round = Vec::new();
    for round in 0..24 {
        let request = request_for("mallory", &format!("req-{round}"), &log);
        alice.receive(&request).await;
        alice.manager.sweep_repairs().await;
        let events = alice.take_events();
        let answered = repair_answers(&events);
        let answer_bytes: usize = answered.iter().map(|(_, bytes)| bytes.len()).sum();
        assert!(answered.len() <= 10, "round {round}: {}", answered.len());
        assert!(
            answer_bytes < request.len(),
            "round {round}: {answer_bytes} answer bytes for a {} byte request",
            request.len()
        );
        assert_eq!(
            limit_dropped(&events, Limit::RepairAnswers),
            1_000 - answered.len()
        );
        per_round.push(answered.len());
        clock.advance(5_000);
    }
    // Two windows of 60 s: ten rounds of 10 answers, then nothing until the next window.
    let window = [vec![10; 10], vec![0; 2]].concat();
    assert_eq!(per_round, [window.clone(), window].concat());
    assert_eq!(per_round.iter().sum::<usize>(), 200);
    assert!(meta(&alice).await.incoming_repairs.is_empty());

    // Honest traffic afterwards: x1 is lost at carol, who asks for it and gets it.
    let x1 = alice.send(CH, "x1").await;
    carol.receive(&alice.send(CH, "x2").await).await;
    clock.advance(T_MAX);
    let sync = carol.manager.build_sync_message(CH).await.unwrap();
    assert_eq!(requested_ids(&sync), vec!["x1"]);
    alice.receive(&sync).await;
    alice.manager.sweep_repairs().await;
    let answered = repair_answers(&alice.take_events());
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].0, "x1");
    carol.receive(&answered[0].1).await;
    assert_eq!(carol.receive(&x1).await.status, UnwrapStatus::Duplicate);
    assert_eq!(delivered_ids(&carol.take_events()), vec!["x1", "x2"]);
}

/// Ten peers each asking for 10 of our messages (we are not their sender, so our answers
/// wait up to T_max): at most `max_incoming_repairs` (here 25) answers are held, the 75
/// others are refused with `LimitReached`, and once the held ones went out an honest
/// request is answered again.
#[tokio::test]
async fn held_answers_stay_within_the_total_cap() {
    let config = ReliabilityConfig {
        max_incoming_repairs: 25,
        ..test_config()
    };
    let clock = ManualClock::new(START_MS);
    let alice = Peer::with("alice", config.clone(), new_store(), clock.clone());
    let mut bob = Peer::with("bob", config.clone(), new_store(), clock.clone());
    let mut carol = Peer::with("carol", config, new_store(), clock.clone());
    let mut log = Vec::new();
    for n in 0..100 {
        let id = format!("m{n}");
        let bytes = alice.send(CH, &id).await;
        bob.receive(&bytes).await;
        carol.receive(&bytes).await;
        log.push(id);
    }
    bob.take_events();
    for sybil in 0..10 {
        let ids = &log[sybil * 10..sybil * 10 + 10];
        bob.receive(&request_for(
            &format!("sybil-{sybil}"),
            &format!("r{sybil}"),
            ids,
        ))
        .await;
        assert!(meta(&bob).await.incoming_repairs.len() <= 25);
    }
    assert_eq!(meta(&bob).await.incoming_repairs.len(), 25);
    let events = bob.take_events();
    assert_eq!(limit_dropped(&events, Limit::RepairAnswers), 75);

    clock.advance(T_MAX);
    bob.manager.sweep_repairs().await;
    assert_eq!(repair_answers(&bob.take_events()).len(), 25);
    assert!(meta(&bob).await.incoming_repairs.is_empty());

    // Honest traffic afterwards: carol misses x1 and bob (not its sender) answers her.
    let x1 = alice.send(CH, "x1").await;
    bob.receive(&x1).await;
    carol.receive(&alice.send(CH, "x2").await).await;
    clock.advance(T_MAX);
    let sync = carol.manager.build_sync_message(CH).await.unwrap();
    assert_eq!(requested_ids(&sync), vec!["x1"]);
    bob.receive(&sync).await;
    assert_eq!(meta(&bob).await.incoming_repairs.len(), 1);
    clock.advance(T_MAX);
    bob.manager.sweep_repairs().await;
    let answered = repair_answers(&bob.take_events());
    assert_eq!(answered.len(), 1);
    carol.take_events();
    carol.receive(&answered[0].1).await;
    assert_eq!(delivered_ids(&carol.take_events()), vec!["x1", "x2"]);
}

/// A hostile peer asking every 5 s for the id we miss ourselves postpones our request once
/// per request cycle, not forever (before: each of its requests pushed ours a fresh T_req
/// away, and ours never went out). Over 10 minutes ours goes out at least 5 times, the
/// first time 5 s after its original T_req; the honest sender's answer then delivers.
#[tokio::test]
async fn a_repeated_peer_request_postpones_ours_once_per_cycle() {
    let config = ReliabilityConfig {
        // The sender's own resends would heal the loss without any request.
        max_resend_attempts: 0,
        ..test_config()
    };
    let clock = ManualClock::new(START_MS);
    let mut alice = Peer::with("alice", config.clone(), new_store(), clock.clone());
    let mut bob = Peer::with("bob", config, new_store(), clock.clone());
    let m1 = alice.send(CH, "m1").await;
    bob.receive(&alice.send(CH, "m2").await).await;
    let first_due = request_at(START_MS, "bob", "m1", T_MIN as u64, T_MAX as u64);
    assert_eq!(
        meta(&bob).await.outgoing_repairs[0].request_at_ms,
        first_due
    );

    let mut sent_at = Vec::new();
    for step in 1..=120 {
        clock.advance(5_000);
        bob.receive(&request_for(
            "mallory",
            &format!("nag-{step}"),
            &["m1".to_string()],
        ))
        .await;
        let sync = bob.manager.build_sync_message(CH).await.unwrap();
        if requested_ids(&sync) == vec!["m1"] {
            sent_at.push(clock.now_ms());
        }
    }
    // Postponed once, by the first nag at START + 5 s, to a fresh T_req from then.
    let postponed_to = request_at(START_MS + 5_000, "bob", "m1", T_MIN as u64, T_MAX as u64);
    assert_eq!(postponed_to, first_due + 5_000);
    assert!(!sent_at.is_empty(), "our request never went out");
    assert!(
        sent_at[0] - postponed_to < 5_000,
        "{} vs {postponed_to}",
        sent_at[0]
    );
    assert!(
        sent_at.len() >= 5,
        "only {} requests in 10 minutes",
        sent_at.len()
    );

    // The honest answer still delivers, once.
    bob.take_events();
    bob.receive(&m1).await;
    assert_eq!(delivered_ids(&bob.take_events()), vec!["m1", "m2"]);
    assert!(pending_requests(&bob).await.is_empty());
    alice.take_events();
}

/// A peer's request in the very millisecond our own request was scheduled cannot move
/// it, and so does not use up the cycle's one postponement: a request 5 s later still
/// postpones ours by those 5 s.
#[tokio::test]
async fn a_request_that_cannot_postpone_ours_leaves_the_postponement_unused() {
    let clock = ManualClock::new(START_MS);
    let alice = Peer::with("alice", test_config(), new_store(), clock.clone());
    let bob = Peer::with("bob", test_config(), new_store(), clock.clone());
    alice.send(CH, "m1").await;
    bob.receive(&alice.send(CH, "m2").await).await;
    bob.receive(&request_for("mallory", "nag-0", &["m1".to_string()]))
        .await;
    let first_due = request_at(START_MS, "bob", "m1", T_MIN as u64, T_MAX as u64);
    assert_eq!(
        meta(&bob).await.outgoing_repairs[0].request_at_ms,
        first_due
    );
    clock.advance(5_000);
    bob.receive(&request_for("mallory", "nag-1", &["m1".to_string()]))
        .await;
    assert_eq!(
        meta(&bob).await.outgoing_repairs[0].request_at_ms,
        first_due + 5_000
    );
}

/// Alice with `max_repair_answers_per_sender` = 3 and `count` messages of her own logged.
async fn logged_with_sender_budget_of_3(count: usize) -> (ManualClock, Peer, Vec<String>) {
    let config = ReliabilityConfig {
        max_repair_answers_per_sender: 3,
        ..test_config()
    };
    let clock = ManualClock::new(START_MS);
    let alice = Peer::with("alice", config, new_store(), clock.clone());
    let ids: Vec<String> = (0..count).map(|n| format!("m{n}")).collect();
    for id in &ids {
        alice.send(CH, id).await;
    }
    (clock, alice, ids)
}

/// The per-sender budget holds inside one request too: with 3 answers a minute for a
/// sender, a request naming 5 logged messages gets 3 answers, and 2 are reported refused.
#[tokio::test]
async fn one_request_gets_no_more_than_the_senders_budget() {
    let (clock, mut alice, ids) = logged_with_sender_budget_of_3(5).await;
    alice.take_events();
    alice.receive(&request_for("carol", "ask", &ids)).await;
    assert_eq!(limit_dropped(&alice.take_events(), Limit::RepairAnswers), 2);
    clock.advance(T_MAX);
    alice.manager.sweep_repairs().await;
    assert_eq!(repair_answers(&alice.take_events()).len(), 3);
}

/// A sender's window opens with its first answer, not with a request we could not answer:
/// asking for an unknown id at 0 s, then for 3 logged messages at 59 s (the budget of 3),
/// carol gets nothing more at 60 s: her window runs from 59 s.
#[tokio::test]
async fn a_request_answered_with_nothing_opens_no_window() {
    let (clock, mut alice, ids) = logged_with_sender_budget_of_3(6).await;
    alice
        .receive(&request_for("carol", "ask-0", &["unknown".to_string()]))
        .await;
    clock.advance(59_000);
    alice
        .receive(&request_for("carol", "ask-1", &ids[..3]))
        .await;
    clock.advance(1_000);
    alice.take_events();
    alice
        .receive(&request_for("carol", "ask-2", &ids[3..]))
        .await;
    assert_eq!(limit_dropped(&alice.take_events(), Limit::RepairAnswers), 3);
}

/// A held answer is an id, not a copy: the snapshot stores it with no bytes, the answer is
/// encoded from the log when due (the same bytes as the original), and an answer whose
/// message left the log meanwhile is skipped.
#[tokio::test]
async fn answers_are_held_as_ids_and_encoded_from_the_log() {
    let config = ReliabilityConfig {
        max_message_history: 3,
        max_causal_history: 2,
        ..test_config()
    };
    let clock = ManualClock::new(START_MS);
    let alice = Peer::with("alice", config.clone(), new_store(), clock.clone());
    let mut bob = Peer::with("bob", config, new_store(), clock.clone());
    let m1 = alice.send(CH, "m1").await;
    let m2 = alice.send(CH, "m2").await;
    bob.receive(&m1).await;
    bob.receive(&m2).await;
    bob.receive(&request_for("carol", "c1", &["m1".into(), "m2".into()]))
        .await;
    let held = meta(&bob).await.incoming_repairs;
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|repair| repair.message.is_empty()));

    // m1 leaves bob's 3-entry log before its answer is due; m2 stays.
    for id in ["m3", "m4"] {
        bob.receive(&alice.send(CH, id).await).await;
    }
    assert_eq!(bob.log(CH).await, vec!["m2", "m3", "m4"]);
    bob.take_events();
    clock.advance(T_MAX);
    bob.manager.sweep_repairs().await;
    let answered = repair_answers(&bob.take_events());
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].0, "m2");
    let repaired = decode_message(&answered[0].1).unwrap();
    let original = decode_message(&m2).unwrap();
    assert_eq!(repaired.content, original.content);
    assert_eq!(repaired.causal_history, original.causal_history);
    assert!(meta(&bob).await.incoming_repairs.is_empty());
}

/// A snapshot written before answers were held as ids (each with its message bytes)
/// restores: the answer is kept, stored again without bytes, and sent when due, encoded from
/// the log. One whose message is no longer logged is dropped on restore.
#[tokio::test]
async fn old_snapshot_answers_with_bytes_restore() {
    let clock = ManualClock::new(START_MS);
    let alice = Peer::with("alice", test_config(), new_store(), clock.clone());
    let bob = Peer::with("bob", test_config(), new_store(), clock.clone());
    let m1 = alice.send(CH, "m1").await;
    bob.receive(&m1).await;
    bob.receive(&request_for("carol", "c1", &["m1".into()]))
        .await;
    let mut old = meta(&bob).await;
    assert_eq!(old.incoming_repairs.len(), 1);
    old.incoming_repairs[0].message = m1.clone();
    let mut gone = old.incoming_repairs[0].clone();
    gone.entry = Some(entry("not-logged"));
    gone.message = b"stale bytes".to_vec();
    old.incoming_repairs.push(gone);
    bob.store.inner().save_channel_meta(CH, &old).await.unwrap();

    let mut bob = bob.restart();
    bob.manager.ensure_channel(CH).await.unwrap();
    clock.advance(T_MAX);
    bob.manager.sweep_repairs().await;
    let answered = repair_answers(&bob.take_events());
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].0, "m1");
    assert_eq!(
        decode_message(&answered[0].1).unwrap().content,
        decode_message(&m1).unwrap().content
    );
    assert!(meta(&bob).await.incoming_repairs.is_empty());
}

/// Marking a dependency met stops our request for it, while our pending answer to a peer's
/// request stays: the application holding a copy says nothing about the peer that asked.
#[tokio::test]
async fn mark_met_clears_requests_and_keeps_answers() {
    let clock = ManualClock::new(START_MS);
    let alice = Peer::with("alice", test_config(), new_store(), clock.clone());
    let mut bob = Peer::with("bob", test_config(), new_store(), clock.clone());
    let m0 = alice.send(CH, "m0").await;
    bob.receive(&m0).await;
    alice.send(CH, "m1").await;
    bob.receive(&alice.send(CH, "m2").await).await;
    bob.receive(&request_for("carol", "c1", &["m0".into()]))
        .await;
    assert_eq!(pending_requests(&bob).await, vec!["m1"]);
    assert_eq!(meta(&bob).await.incoming_repairs.len(), 1);
    bob.take_events();
    bob.manager
        .mark_dependencies_met(CH, &["m1".to_string(), "m0".to_string()])
        .await
        .unwrap();
    assert!(pending_requests(&bob).await.is_empty());
    assert_eq!(meta(&bob).await.incoming_repairs.len(), 1);
    assert_eq!(delivered_ids(&bob.take_events()), vec!["m2"]);
    clock.advance(T_MAX);
    bob.manager.sweep_repairs().await;
    assert_eq!(repair_answers(&bob.take_events()).len(), 1);
}
