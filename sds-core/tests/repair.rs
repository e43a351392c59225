//! SDS-R: repair requests, responses, their timing and their cancellation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_core::codec::storage::ChannelMeta;
use sds_core::codec::wire::{HistoryEntry, SdsMessage, decode_message, encode_message};
use sds_core::repair_timing::{in_response_group, request_at, response_at};
use sds_core::{Clock, Event, ManualClock, Persistence, ReliabilityConfig};
use support::{Peer, START_MS, new_store, test_config};

const CH: &str = "room";
const T_MIN: i64 = 10_000;
const T_MAX: i64 = 60_000;

async fn stored_meta(peer: &Peer) -> ChannelMeta {
    peer.store
        .inner()
        .load_channel(CH)
        .await
        .unwrap()
        .meta
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

/// Three participants sharing one clock.
fn trio(config: ReliabilityConfig) -> (Peer, Peer, Peer) {
    let clock = ManualClock::new(START_MS);
    let peer = |id: &str| Peer::with(id, config.clone(), new_store(), clock.clone());
    (peer("alice"), peer("bob"), peer("carol"))
}

/// Alice sends m1 (lost at carol) then m2 (received by all): carol misses m1.
async fn carol_misses_m1(alice: &Peer, bob: &Peer, carol: &Peer) {
    let m1 = alice.send(CH, "m1").await;
    bob.receive(&m1).await;
    let m2 = alice.send(CH, "m2").await;
    bob.receive(&m2).await;
    carol.receive(&m2).await;
}

// A detected loss schedules a repair request at T_req in [now + T_min, now + T_max),
// matching the formula, and no wrap carries it before then.
#[tokio::test]
async fn request_time_is_within_bounds() {
    let (alice, bob, carol) = trio(test_config());
    carol_misses_m1(&alice, &bob, &carol).await;
    let meta = stored_meta(&carol).await;
    assert_eq!(meta.outgoing_repairs.len(), 1);
    let t_req = meta.outgoing_repairs[0].request_at_ms;
    assert!(
        (START_MS + T_MIN..START_MS + T_MAX).contains(&t_req),
        "{t_req}"
    );
    assert_eq!(
        t_req,
        request_at(START_MS, "carol", "m1", T_MIN as u64, T_MAX as u64)
    );
    carol.clock.set(t_req - 1);
    assert!(requested_ids(&carol.send(CH, "early").await).is_empty());
    carol.clock.set(t_req);
    assert_eq!(requested_ids(&carol.send(CH, "due").await), vec!["m1"]);
    // Sent: the request waits a fresh T_req before it is asked again.
    assert!(requested_ids(&carol.send(CH, "after").await).is_empty());
}

// The original sender answers at once (T_resp = now); another holder answers later.
#[tokio::test]
async fn original_sender_answers_first() {
    let (mut alice, bob, carol) = trio(test_config());
    carol_misses_m1(&alice, &bob, &carol).await;
    carol.clock.advance(T_MAX);
    let request = carol.send(CH, "c1").await;
    alice.receive(&request).await;
    bob.receive(&request).await;
    let now = carol.clock.now_ms();
    let alice_meta = stored_meta(&alice).await;
    let bob_meta = stored_meta(&bob).await;
    assert_eq!(alice_meta.incoming_repairs[0].respond_at_ms, now);
    let bob_at = bob_meta.incoming_repairs[0].respond_at_ms;
    assert_eq!(bob_at, response_at(now, "bob", "alice", "m1", T_MAX as u64));
    assert!(bob_at > now && bob_at < now + T_MAX, "{bob_at}");
    alice.take_events();
    alice.manager.sweep_repairs().await;
    let ready: Vec<_> = alice
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, Event::RepairReady { .. }))
        .collect();
    assert_eq!(ready.len(), 1);
    let Event::RepairReady { bytes, .. } = &ready[0] else {
        unreachable!()
    };
    let repaired = decode_message(bytes).unwrap();
    assert_eq!(repaired.message_id, "m1");
    assert_eq!(repaired.content.as_deref(), Some(&b"content of m1"[..]));
}

// Only members of the request's response group schedule an answer.
#[tokio::test]
async fn response_groups_limit_responders() {
    let groups = 8;
    let config = ReliabilityConfig {
        repair_response_groups: groups,
        ..test_config()
    };
    let member = (0..200)
        .map(|n| format!("peer-{n}"))
        .find(|id| in_response_group(id, "alice", "m1", groups))
        .unwrap();
    let outsider = (0..200)
        .map(|n| format!("peer-{n}"))
        .find(|id| !in_response_group(id, "alice", "m1", groups))
        .unwrap();
    let clock = ManualClock::new(START_MS);
    let alice = Peer::with("alice", config.clone(), new_store(), clock.clone());
    let carol = Peer::with("carol", config.clone(), new_store(), clock.clone());
    let inside = Peer::with(&member, config.clone(), new_store(), clock.clone());
    let outside = Peer::with(&outsider, config, new_store(), clock.clone());
    let m1 = alice.send(CH, "m1").await;
    inside.receive(&m1).await;
    outside.receive(&m1).await;
    carol.receive(&alice.send(CH, "m2").await).await;
    clock.advance(T_MAX);
    let request = carol.send(CH, "c1").await;
    inside.receive(&request).await;
    outside.receive(&request).await;
    assert_eq!(stored_meta(&inside).await.incoming_repairs.len(), 1);
    assert!(stored_meta(&outside).await.incoming_repairs.is_empty());
}

// Due requests go out most overdue first, at most max_repair_requests per message; the
// rest wait for the next one.
#[tokio::test]
async fn most_overdue_first_and_capped() {
    let config = ReliabilityConfig {
        max_repair_requests: 3,
        ..test_config()
    };
    let (alice, _bob, carol) = trio(config);
    let lost: Vec<String> = (0..5).map(|n| format!("lost-{n}")).collect();
    for id in &lost {
        alice.send(CH, id).await;
    }
    carol.receive(&alice.send(CH, "last").await).await;
    let mut expected: Vec<(i64, String)> = stored_meta(&carol)
        .await
        .outgoing_repairs
        .into_iter()
        .map(|repair| (repair.request_at_ms, repair.entry.unwrap().message_id))
        .collect();
    assert_eq!(expected.len(), 5);
    expected.sort();
    carol.clock.advance(T_MAX);
    let first = requested_ids(&carol.send(CH, "c1").await);
    let second = requested_ids(&carol.send(CH, "c2").await);
    let ids: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    assert_eq!(first, ids[..3]);
    assert_eq!(second, ids[3..]);
}

// The missing message arriving cancels our pending request for it.
#[tokio::test]
async fn arrival_cancels_request() {
    let (alice, bob, carol) = trio(test_config());
    let m1 = alice.send(CH, "m1").await;
    bob.receive(&m1).await;
    carol.receive(&alice.send(CH, "m2").await).await;
    carol.receive(&m1).await;
    assert!(stored_meta(&carol).await.outgoing_repairs.is_empty());
    carol.clock.advance(T_MAX);
    assert!(requested_ids(&carol.send(CH, "c1").await).is_empty());
}

// A peer asking for the same message postpones our own request by a fresh T_req: their
// answer reaches us too, and if it is lost we still ask ourselves.
#[tokio::test]
async fn peer_request_postpones_ours() {
    let clock = ManualClock::new(START_MS);
    let alice = Peer::with("alice", test_config(), new_store(), clock.clone());
    let bob = Peer::with("bob", test_config(), new_store(), clock.clone());
    let carol = Peer::with("carol", test_config(), new_store(), clock.clone());
    alice.send(CH, "m1").await;
    let m2 = alice.send(CH, "m2").await;
    bob.receive(&m2).await;
    carol.receive(&m2).await;
    assert_eq!(stored_meta(&bob).await.outgoing_repairs.len(), 1);
    clock.advance(T_MAX);
    let request = carol.send(CH, "c1").await;
    assert_eq!(requested_ids(&request), vec!["m1"]);
    bob.receive(&request).await;
    let postponed_to = request_at(clock.now_ms(), "bob", "m1", T_MIN as u64, T_MAX as u64);
    let meta = stored_meta(&bob).await;
    assert_eq!(meta.outgoing_repairs.len(), 1);
    assert_eq!(meta.outgoing_repairs[0].request_at_ms, postponed_to);
    clock.set(postponed_to - 1);
    assert!(requested_ids(&bob.send(CH, "b1").await).is_empty());
    // Nobody answered carol: bob asks himself.
    clock.set(postponed_to);
    assert_eq!(requested_ids(&bob.send(CH, "b2").await), vec!["m1"]);
}

// Marking the dependency met out of band cancels the request.
#[tokio::test]
async fn mark_dependencies_met_cancels_request() {
    let (alice, _bob, carol) = trio(test_config());
    alice.send(CH, "m1").await;
    carol.receive(&alice.send(CH, "m2").await).await;
    carol
        .manager
        .mark_dependencies_met(CH, &["m1".to_string()])
        .await
        .unwrap();
    assert!(stored_meta(&carol).await.outgoing_repairs.is_empty());
}

/// Carol's content message carrying a repair request for alice's `message_id`.
fn carol_requests(message_id: &str) -> Vec<u8> {
    encode_message(&SdsMessage {
        sender_id: "carol".into(),
        message_id: "c1".into(),
        channel_id: CH.into(),
        lamport_timestamp: Some(1),
        repair_request: vec![HistoryEntry {
            message_id: message_id.into(),
            retrieval_hint: None,
            sender_id: Some("alice".into()),
        }],
        content: Some(b"hi".to_vec()),
        ..Default::default()
    })
    .unwrap()
}

// Requests for messages we do not hold are not answered.
#[tokio::test]
async fn only_logged_messages_are_answered() {
    let bob = Peer::new("bob");
    bob.receive(&carol_requests("unknown")).await;
    assert!(stored_meta(&bob).await.incoming_repairs.is_empty());
}

// An empty participant id disables SDS-R: no requests are scheduled.
#[tokio::test]
async fn empty_participant_disables_repair() {
    let alice = Peer::new("alice");
    let anon = Peer::new("");
    alice.send(CH, "m1").await;
    anon.receive(&alice.send(CH, "m2").await).await;
    assert!(stored_meta(&anon).await.outgoing_repairs.is_empty());
}

// With SDS-R off, a peer's request for a message we hold schedules no answer either.
#[tokio::test]
async fn disabled_repair_answers_no_request() {
    let config = ReliabilityConfig {
        repair_enabled: false,
        ..test_config()
    };
    let alice = Peer::with_config("alice", config);
    alice.send(CH, "m1").await;
    alice.receive(&carol_requests("m1")).await;
    assert!(stored_meta(&alice).await.incoming_repairs.is_empty());
}

// A request that a buffered message waits for is never forgotten, however long it stays
// unsent or unanswered: forgetting it would leave that message buffered forever.
#[tokio::test]
async fn awaited_requests_are_kept_until_answered() {
    let (alice, _bob, carol) = trio(test_config());
    alice.send(CH, "m1").await;
    carol.receive(&alice.send(CH, "m2").await).await;
    for _ in 0..10 {
        carol.clock.advance(T_MAX);
        carol.manager.sweep_repairs().await;
        assert_eq!(stored_meta(&carol).await.outgoing_repairs.len(), 1);
        assert_eq!(
            requested_ids(&carol.manager.build_sync_message(CH).await.unwrap()),
            vec!["m1"]
        );
    }
}

// A loss only a sync revealed (no buffered message waits for it) is given up after five
// unanswered requests: the id may be gone from every log.
#[tokio::test]
async fn sync_revealed_loss_is_given_up_after_five_requests() {
    let (alice, bob, _carol) = trio(test_config());
    alice.send(CH, "last").await;
    bob.receive(&alice.manager.build_sync_message(CH).await.unwrap())
        .await;
    for attempt in 1..=5 {
        bob.clock.advance(T_MAX);
        let sync = bob.manager.build_sync_message(CH).await.unwrap();
        assert_eq!(requested_ids(&sync), vec!["last"], "attempt {attempt}");
        // The answer to the request just sent may still come: nothing is given up yet.
        bob.manager.sweep_repairs().await;
        assert_eq!(stored_meta(&bob).await.outgoing_repairs.len(), 1);
    }
    bob.clock.advance(T_MAX);
    bob.manager.sweep_repairs().await;
    assert!(stored_meta(&bob).await.outgoing_repairs.is_empty());
}

// Three participants over a lossy network: carol misses m1, asks; alice (the sender)
// rebroadcasts at once; bob sees the rebroadcast and cancels his own answer. Exactly one
// rebroadcast happens and everyone converges.
#[tokio::test]
async fn three_participants_exactly_one_rebroadcast() {
    let (mut alice, mut bob, mut carol) = trio(test_config());
    carol_misses_m1(&alice, &bob, &carol).await;
    assert_eq!(carol.delivered(), Vec::<String>::new());

    carol.clock.advance(T_MAX);
    let request = carol.send(CH, "c1").await;
    assert_eq!(requested_ids(&request), vec!["m1"]);
    alice.receive(&request).await;
    bob.receive(&request).await;

    fn collect(peer: &mut Peer, into: &mut Vec<(String, Vec<u8>)>) {
        for event in peer.take_events() {
            if let Event::RepairReady { bytes, .. } = event {
                into.push((peer.id.clone(), bytes));
            }
        }
    }
    let mut rebroadcasts = Vec::new();
    for _ in 0..3 {
        for peer in [&alice, &bob, &carol] {
            peer.manager.sweep_repairs().await;
        }
        let mut fresh = Vec::new();
        collect(&mut alice, &mut fresh);
        collect(&mut bob, &mut fresh);
        collect(&mut carol, &mut fresh);
        // Deliver every rebroadcast to the others before time moves on.
        for (from, bytes) in &fresh {
            for peer in [&alice, &bob, &carol] {
                if &peer.id != from {
                    peer.receive(bytes).await;
                }
            }
        }
        rebroadcasts.extend(fresh);
        alice.clock.advance(T_MAX / 2);
    }
    assert_eq!(
        rebroadcasts.len(),
        1,
        "{:?}",
        rebroadcasts.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    assert_eq!(rebroadcasts[0].0, "alice");
    assert!(stored_meta(&bob).await.incoming_repairs.is_empty());
    assert_eq!(carol.log(CH).await, vec!["m1", "m2", "c1"]);
    assert_eq!(
        carol.manager.channel_state(CH).await.unwrap().incoming,
        Vec::<String>::new()
    );
}

// A request whose answer never came is asked again at a fresh T_req, so one lost request
// or one lost rebroadcast cannot stall a message forever.
#[tokio::test]
async fn unanswered_request_is_asked_again() {
    let (alice, _bob, carol) = trio(test_config());
    alice.send(CH, "m1").await;
    carol.receive(&alice.send(CH, "m2").await).await;
    carol.clock.advance(T_MAX);
    assert_eq!(requested_ids(&carol.send(CH, "c1").await), vec!["m1"]);
    let meta = stored_meta(&carol).await;
    assert_eq!(meta.outgoing_repairs.len(), 1);
    let now = carol.clock.now_ms();
    let again_at = request_at(now, "carol", "m1", T_MIN as u64, T_MAX as u64);
    assert_eq!(meta.outgoing_repairs[0].request_at_ms, again_at);
    carol.clock.set(again_at);
    assert_eq!(requested_ids(&carol.send(CH, "c2").await), vec!["m1"]);
}

// A dependency that sits in our own buffer is never requested: it arrived, it only waits
// for its own dependencies. Only the id nobody sent us is asked for.
#[tokio::test]
async fn buffered_dependencies_are_not_requested() {
    let (alice, _bob, carol) = trio(test_config());
    alice.send(CH, "m1").await;
    let m2 = alice.send(CH, "m2").await;
    let m3 = alice.send(CH, "m3").await;
    carol.receive(&m3).await;
    carol.receive(&m2).await;
    let mut requested: Vec<String> = stored_meta(&carol)
        .await
        .outgoing_repairs
        .into_iter()
        .map(|repair| repair.entry.unwrap().message_id)
        .collect();
    requested.sort();
    assert_eq!(requested, vec!["m1"]);
    carol.clock.advance(T_MAX);
    assert_eq!(requested_ids(&carol.send(CH, "c1").await), vec!["m1"]);
}

// A sync message naming a message we never received reveals the loss: it is reported and
// requested, though nothing is buffered. This is how the tail of a conversation heals.
#[tokio::test]
async fn sync_reveals_lost_tail() {
    let (alice, mut bob, _carol) = trio(test_config());
    alice.send(CH, "last").await;
    let sync = alice.manager.build_sync_message(CH).await.unwrap();
    bob.receive(&sync).await;
    let events = bob.take_events();
    assert!(events.iter().any(|e| matches!(e,
        Event::MissingDependencies { missing, .. } if missing[0].message_id == "last")));
    assert_eq!(stored_meta(&bob).await.outgoing_repairs.len(), 1);
    assert!(
        bob.manager
            .channel_state(CH)
            .await
            .unwrap()
            .incoming
            .is_empty()
    );
    // A second sync does not report the same loss again while it is being repaired.
    bob.receive(&alice.manager.build_sync_message(CH).await.unwrap())
        .await;
    assert!(
        !bob.take_events()
            .iter()
            .any(|e| matches!(e, Event::MissingDependencies { .. }))
    );
}

// Someone else's rebroadcast of a message we were about to send as an answer cancels our
// answer, and that change alone is committed: after a restart we do not answer again.
#[tokio::test]
async fn rebroadcast_by_another_cancels_our_answer_durably() {
    let (alice, bob, carol) = trio(test_config());
    carol_misses_m1(&alice, &bob, &carol).await;
    carol.clock.advance(T_MAX);
    let request = carol.send(CH, "c1").await;
    bob.receive(&request).await;
    assert_eq!(stored_meta(&bob).await.incoming_repairs.len(), 1);
    let m1 = alice.manager.log_ids(CH).await.unwrap();
    assert_eq!(m1[0], "m1");
    // Alice's rebroadcast (the original bytes) reaches bob as a duplicate.
    let rebroadcast = {
        let mut message = decode_message(&alice.send(CH, "probe").await).unwrap();
        message.message_id = "m1".into();
        message.lamport_timestamp = Some(START_MS as u64);
        message.content = Some(b"content of m1".to_vec());
        encode_message(&message).unwrap()
    };
    let commits = bob.commits();
    bob.receive(&rebroadcast).await;
    assert_eq!(bob.commits(), commits + 1);
    assert!(stored_meta(&bob).await.incoming_repairs.is_empty());
}

// A sync naming more unknown ids than `max_missing_dependencies` schedules nothing; one
// naming exactly that many schedules them all.
#[tokio::test]
async fn sync_loss_detection_obeys_the_missing_bound() {
    let config = ReliabilityConfig {
        max_missing_dependencies: 3,
        ..test_config()
    };
    let sync_naming = |count: usize| {
        let ids: Vec<String> = (0..count).map(|n| format!("x{n}")).collect();
        let deps: Vec<&str> = ids.iter().map(String::as_str).collect();
        let message = SdsMessage {
            content: None,
            ..support::crafted_message("mallory", CH, "sync-1", 5, &deps)
        };
        encode_message(&message).unwrap()
    };
    let bob = Peer::with_config("bob", config.clone());
    bob.receive(&sync_naming(4)).await;
    assert!(stored_meta(&bob).await.outgoing_repairs.is_empty());
    let carol = Peer::with_config("carol", config);
    carol.receive(&sync_naming(3)).await;
    assert_eq!(stored_meta(&carol).await.outgoing_repairs.len(), 3);
}

// A snapshot holding a buffered message but no request for its missing dependency (as an
// older version could leave one) is healed by the incoming sweep: the request is re-armed.
#[tokio::test]
async fn incoming_sweep_rearms_a_missing_request() {
    let bob = Peer::new("bob");
    bob.receive(&support::crafted("alice", CH, "m2", 20, &["m1"]))
        .await;
    let mut meta = stored_meta(&bob).await;
    assert_eq!(meta.outgoing_repairs.len(), 1);
    meta.outgoing_repairs.clear();
    bob.store
        .inner()
        .save_channel_meta(CH, &meta)
        .await
        .unwrap();
    let bob = bob.restart();
    bob.manager.ensure_channel(CH).await.unwrap();
    let commits = bob.commits();
    bob.manager.sweep_incoming().await;
    assert_eq!(bob.commits(), commits + 1);
    let meta = stored_meta(&bob).await;
    assert_eq!(meta.outgoing_repairs.len(), 1);
    assert_eq!(
        meta.outgoing_repairs[0].request_at_ms,
        request_at(bob.clock.now_ms(), "bob", "m1", T_MIN as u64, T_MAX as u64)
    );
    // Nothing more to re-arm: a second sweep commits nothing.
    let commits = bob.commits();
    bob.manager.sweep_incoming().await;
    assert_eq!(bob.commits(), commits);
}

fn sync_due(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::SyncDue { channel } => Some(channel.clone()),
            _ => None,
        })
        .collect()
}

// A repair request that is due and has no message to ride asks for a sync (SyncDue from
// the repair sweep), once: the sync carries it, and the next request waits a fresh T_req.
#[tokio::test]
async fn a_due_request_asks_for_a_sync_to_carry_it() {
    let (alice, bob, mut carol) = trio(test_config());
    carol_misses_m1(&alice, &bob, &carol).await;
    let t_req = stored_meta(&carol).await.outgoing_repairs[0].request_at_ms;
    carol.take_events();
    carol.clock.set(t_req - 1);
    carol.manager.sweep_repairs().await;
    assert!(sync_due(&carol.take_events()).is_empty());
    carol.clock.set(t_req);
    carol.manager.sweep_repairs().await;
    assert_eq!(sync_due(&carol.take_events()), vec![CH.to_string()]);
    let sync = carol.manager.build_sync_message(CH).await.unwrap();
    assert_eq!(requested_ids(&sync), vec!["m1"]);
    carol.manager.sweep_repairs().await;
    assert!(sync_due(&carol.take_events()).is_empty());
}
